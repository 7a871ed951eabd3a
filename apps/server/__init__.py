"""``quintet serve``: an OpenAI-compatible HTTP API and the task endpoints on the shared core.

Modules, one job each: :mod:`.app` (the FastAPI factory :func:`create_app`), :mod:`.schemas`
(request and response models), :mod:`.models` (the served models, loaded once, one lock and
a bounded queue each), :mod:`.errors` (OpenAI-shaped errors), :mod:`.auth` (API keys),
:mod:`.metrics` (Prometheus text), :mod:`.limits` (request body size) and :mod:`.cli` (the
command). FastAPI and uvicorn come with the ``serve`` extra and are imported only here.
"""

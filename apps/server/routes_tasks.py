"""The task routes: what the apps' Python APIs return, over HTTP.

Each runs on a served model (the one named, else the first served model of a kind that fits
the task) and holds that model's lock, so tasks and chat never run one model at once. Each
route's path is its task's ``route`` (:mod:`quintet.core.tasks`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from fastapi import APIRouter, Depends, Request
from fastapi.encoders import jsonable_encoder

from quintet.apps.classification.spec import SPEC as CLASSIFICATION
from quintet.apps.qa.spec import SPEC as QA
from quintet.apps.server import errors
from quintet.apps.server.auth import require_key
from quintet.apps.server.limits import check_generation_budget, check_input_size
from quintet.apps.server.models import ServedModel
from quintet.apps.server.schemas import (
    ClassifyRequest,
    ClassifyResponse,
    QARequest,
    QAResponse,
    SummarizeRequest,
    SummarizeResponse,
    TranslateRequest,
    TranslateResponse,
)
from quintet.apps.summarization.spec import SPEC as SUMMARIZATION
from quintet.apps.translation.spec import SPEC as TRANSLATION

router = APIRouter(prefix="/v1", dependencies=[Depends(require_key)], tags=["tasks"])


def _rows(results: list[Any]) -> list[Any]:
    """The apps' result dataclasses as plain JSON values, for the typed response models
    (scores may be numpy scalars, which pydantic does not take as floats)."""
    return jsonable_encoder(results, custom_encoder={np.generic: lambda value: value.item()})


def _texts(texts: str | list[str]) -> list[str]:
    return [texts] if isinstance(texts, str) else list(texts)


def _check_length(request: Request, value: int | None, param: str) -> None:
    limit = request.app.state.config.max_tokens_limit
    if value is not None and value > limit:
        raise errors.bad_request(f"{param} is {value}, over this server's limit of {limit}", param)


async def _run(request: Request, model: ServedModel, work) -> Any:
    state = request.app.state
    return await model.run(work, state.executor, state.config.request_timeout_s)


def _backend_for(request: Request, model: ServedModel) -> str:
    """Decoding backend for generative models, the matching encoder engine otherwise."""
    backend = request.app.state.config.backend
    if model.kind in ("causal", "seq2seq"):
        return backend
    from quintet.core.encoders import encoder_backend  # imports torch: not at server import

    return encoder_backend(backend, model.loaded)


@router.post(f"/{TRANSLATION.route}", response_model=TranslateResponse)
async def translate(body: TranslateRequest, request: Request) -> TranslateResponse:
    """``Translator(model).translate(texts, src, tgt)``: text, model, route, style, pieces..."""
    state = request.app.state
    check_input_size(body, state.config)
    model = await state.registry.for_task(TRANSLATION.route, body.model, state.executor)
    _check_length(request, body.max_tokens, "max_tokens")
    decode: dict[str, Any] = {}
    if body.max_tokens is not None:
        check_generation_budget(state.config, len(_texts(body.texts)), body.max_tokens)
        decode["max_new_tokens"] = body.max_tokens
    if body.num_beams is not None:
        if body.num_beams > state.config.max_beams:
            raise errors.bad_request(
                f"num_beams is {body.num_beams}, over this server's limit of "
                f"{state.config.max_beams}",
                "num_beams",
            )
        decode["num_beams"] = body.num_beams

    def work() -> list[Any]:
        from quintet.apps.translation.api import Translator

        translator = model.tool(
            "translator",
            lambda: Translator(
                model.name, device=state.config.device, backend=state.config.backend
            ),
        )
        return translator.translate(
            _texts(body.texts), body.src, body.tgt, progress=False, **decode
        )

    results = await _run(request, model, work)
    return TranslateResponse(model=model.name, results=_rows(results))


@router.post(f"/{SUMMARIZATION.route}", response_model=SummarizeResponse)
async def summarize(body: SummarizeRequest, request: Request) -> SummarizeResponse:
    """``Summarizer(model).summarize(texts, ...)``: text, mode, chunks, timings..."""
    state = request.app.state
    check_input_size(body, state.config)
    model = await state.registry.for_task(SUMMARIZATION.route, body.model, state.executor)
    _check_length(request, body.max_length, "max_length")

    def work() -> list[Any]:
        from quintet.apps.summarization.api import Summarizer

        summarizer = model.tool(
            "summarizer", lambda: Summarizer(model.loaded, backend=state.config.backend)
        )
        return summarizer.summarize(
            _texts(body.texts), body.min_length, body.max_length, body.style
        )

    results = await _run(request, model, work)
    return SummarizeResponse(model=model.name, results=_rows(results))


@router.post(f"/{QA.route}", response_model=QAResponse)
async def qa(body: QARequest, request: Request) -> QAResponse:
    """``QuestionAnswerer(model).answer(question, context)``: spans with offsets and
    probabilities, best first."""
    state = request.app.state
    check_input_size(body, state.config)
    model = await state.registry.for_task(QA.route, body.model, state.executor)

    def work() -> list[Any]:
        from quintet.apps.qa.api import QuestionAnswerer

        answerer = model.tool(
            "qa", lambda: QuestionAnswerer(model.loaded, backend=_backend_for(request, model))
        )
        return answerer.answer(
            body.question,
            body.context,
            top_k=body.top_k,
            max_answer_len=body.max_answer_len,
            allow_no_answer=body.allow_no_answer,
        )

    results = await _run(request, model, work)
    return QAResponse(model=model.name, results=_rows(results))


@router.post(f"/{CLASSIFICATION.route}", response_model=ClassifyResponse)
async def classify(body: ClassifyRequest, request: Request) -> ClassifyResponse:
    """``Classifier(model, labels).classify(texts)``: label, score, every label's probability."""
    state = request.app.state
    check_input_size(body, state.config)
    model = await state.registry.for_task(CLASSIFICATION.route, body.model, state.executor)
    labels = tuple(body.labels) if body.labels is not None else None

    def work() -> list[Any]:
        from quintet.apps.classification.api import Classifier

        classifier = model.classifier(
            (labels,),
            lambda: Classifier(model.loaded, labels, backend=_backend_for(request, model)),
        )
        return classifier.classify(
            _texts(body.texts), top_k=body.top_k, multi_label=body.multi_label,
            threshold=body.threshold,
        )  # fmt: skip

    results = await _run(request, model, work)
    return ClassifyResponse(model=model.name, results=_rows(results))

"""Which model a task uses when the user names none.

The hub default where the hub can serve it (in the local HF cache, or the hub reachable),
else the first offline default present in the store. Every app, the CLI, the evaluation
harness and the Streamlit pages ask here, so they all pick the same model and can say why.
"""

from __future__ import annotations

from dataclasses import dataclass

from quintet.core import catalog, hub
from quintet.core.errors import ModelNotFoundError
from quintet.core.store import ModelStore


@dataclass(frozen=True)
class DefaultChoice:
    """The model picked for a task and a one-line reason a user can read."""

    name: str
    reason: str
    mode: str = "native"  # e.g. "prompted", "zero-shot by embedding similarity"


def _hub_available(entry: catalog.CatalogEntry | None) -> bool:
    if entry is None or entry.hub_id is None:
        return False
    return hub.is_cached(entry.hub_id, entry.revision) or hub.hub_reachable()


def default_model(task: str, store: ModelStore | None = None) -> DefaultChoice:
    """The model ``task`` uses by default here and now.

    Translation's hub default depends on the language pair: use
    ``quintet.apps.translation`` routing for it; here translation answers with its offline default
    unless the generic hub default is available.

    Raises:
        ModelNotFoundError: no hub and none of the task's offline defaults in the store.
    """
    defaults = catalog.task_defaults(task)
    hub_entry = catalog.get(defaults.hub_default)
    if _hub_available(hub_entry):
        return DefaultChoice(defaults.hub_default, f"hub default for {task}")
    store = store or ModelStore()
    for name in defaults.offline_defaults:
        entry = catalog.get(name)
        present = store.has(name) or (entry is not None and _hub_available(entry))
        if present:
            mode = defaults.mode_note.get(name, "native")
            return DefaultChoice(name, f"offline default for {task} (hub not reachable)", mode)
    wanted = ", ".join(defaults.offline_defaults)
    raise ModelNotFoundError(
        f"no model for {task}: the hub is out of reach and none of its offline defaults "
        f"({wanted}) is in the store ({store.models_dir}). Run `quintet models pull "
        f"smollm2-135m-instruct` / `quintet models pull minilm-l6`, or `quintet recipes run NAME`"
    )

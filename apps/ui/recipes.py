"""The background build of the task models, as the pages show it.

``quintet ui`` starts :mod:`quintet.apps.finetune.background`; Home and each task page with a recipe
call :func:`recipe_build_notice` under their title. While the builder runs it draws one line
("A better QA model is being trained in the background (minilm-l6-squad): 40% …") that
refreshes itself every few seconds, and when the page's task model lands it reruns the page,
whose model picker then preselects the new default (see
:func:`quintet.apps.ui.widgets.model_picker`).
Nothing is drawn, and nothing polls, when no builder runs.
"""

from __future__ import annotations

import streamlit as st

from quintet.apps.finetune import background
from quintet.apps.finetune.recipes import RECIPES
from quintet.core.store import ModelStore

REFRESH_S = 5.0


def task_recipes(task: str | None) -> list[str]:
    """The recipes that build a model for ``task`` (every recipe for None: Home)."""
    return [name for name, recipe in RECIPES.items() if task is None or recipe.task == task]


def recipe_build_notice(task: str | None = None, *, key: str) -> None:
    """Show the background build's progress; rerun the page when ``task``'s model lands.

    Args:
        task: the page's task (qa, classification, summarization); None on Home, which
            shows the build whatever it is for.
        key: a session-state key unique to the page.
    """
    store = ModelStore()
    names = task_recipes(task)
    for name in names:
        failed = background.failure(store, name)
        if failed is not None and not store.has(name):
            st.caption(
                f"The task model {name} could not be built in the background ({failed}); "
                f"it can be built from a terminal with `quintet recipes run {name}`."
            )
    missing = {name for name in names if not store.has(name)}
    if not missing or background.builder_status(store) is None:
        return
    st.session_state[f"{key}-missing"] = sorted(missing)

    @st.fragment(run_every=REFRESH_S)
    def poll() -> None:
        waiting = st.session_state.get(f"{key}-missing", [])
        landed = [name for name in waiting if store.has(name)]
        if landed:
            st.session_state[f"{key}-missing"] = [n for n in waiting if n not in landed]
            where = "this page uses it now" if task else "its page uses it now"
            st.toast(f"{', '.join(landed)} is ready: {where}.", icon="✅")
            st.rerun(scope="app")  # the picker's default is the new model from this run on
        status = background.builder_status(store)
        if status is not None:
            st.info(background.describe(status), icon=":material/model_training:")

    poll()

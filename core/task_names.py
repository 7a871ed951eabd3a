"""The task apps Quintet has: the one list of their names, and their titles on pages.

Everything that lists the tasks (the model catalog, ``quintet eval``, the evaluation
registry, the Streamlit pages, fine-tuning) reads it from here.
"""

from __future__ import annotations

TASK_TITLES: dict[str, str] = {
    "translation": "Translation",
    "summarization": "Summarization",
    "qa": "Question answering",
    "classification": "Classification",
    "chat": "Chat",
}
TASKS: tuple[str, ...] = tuple(TASK_TITLES)

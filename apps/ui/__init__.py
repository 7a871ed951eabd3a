"""Shared Streamlit widgets and the per-process model cache for the Quintet pages.

Read the module docstring of :mod:`quintet.apps.ui.widgets` for how a page uses them, and
:mod:`quintet.apps.ui.cache` for how models are shared safely between browser sessions.
"""

from quintet.apps.ui.cache import (
    SharedApp,
    cached_app,
    cached_generator,
    model_lock,
    waiting_for,
)
from quintet.apps.ui.widgets import (
    BatchInput,
    batch_upload,
    decode_controls,
    download_results,
    engine_picker,
    growing_text,
    guarded,
    model_choices,
    model_picker,
    parse_rows,
    run_in_batches,
    run_with_progress,
    show_error,
    show_timings,
    text_or_file_input,
)

__all__ = [
    "BatchInput",
    "SharedApp",
    "batch_upload",
    "cached_app",
    "cached_generator",
    "decode_controls",
    "engine_picker",
    "download_results",
    "growing_text",
    "guarded",
    "model_choices",
    "model_lock",
    "model_picker",
    "parse_rows",
    "run_in_batches",
    "run_with_progress",
    "show_error",
    "show_timings",
    "text_or_file_input",
    "waiting_for",
]

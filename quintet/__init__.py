"""Quintet: translation, summarization, extractive QA, classification and chat on one core.

The public API, importable from the top (each name is imported on first use, so
``import quintet`` stays light and does not import torch)::

    import quintet

    quintet.Translator("opus-mt-en-de").translate("Hello")
    quintet.Summarizer().summarize(text)
    quintet.QuestionAnswerer().answer("Who?", context)
    quintet.Classifier("minilm-l6-sst2").classify("A fine film.")
    quintet.ChatSession("smollm2-135m-instruct").send("Hi!")
    quintet.evaluate("classification", "minilm-l6-sst2", "data/classification/sst2/dev.tsv")
    quintet.finetune("classification", "minilm-l6", "train.csv", "my-model")
    quintet.load_model("smollm2-135m-instruct")

The layers live in sub-packages: :mod:`quintet.core` (models, store, decoding, training),
:mod:`quintet.evaluation` (the runner, statistics, reports) and :mod:`quintet.apps` (the
five task apps, the CLI, the server and the Streamlit pages).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# The one place the version is written: pyproject.toml reads it from here.
__version__ = "0.3.0"

if TYPE_CHECKING:
    from quintet.apps.chat import ChatSession as ChatSession
    from quintet.apps.classification import Classifier as Classifier
    from quintet.apps.qa import QuestionAnswerer as QuestionAnswerer
    from quintet.apps.summarization import Summarizer as Summarizer
    from quintet.apps.translation import Translator as Translator
    from quintet.core.errors import QuintetError as QuintetError
    from quintet.core.models import load as load_model
    from quintet.core.training.trainer import finetune as finetune
    from quintet.evaluation.harness import evaluate as evaluate

# Public name -> (module, attribute in that module).
_EXPORTS: dict[str, tuple[str, str]] = {
    "ChatSession": ("quintet.apps.chat", "ChatSession"),
    "Classifier": ("quintet.apps.classification", "Classifier"),
    "QuestionAnswerer": ("quintet.apps.qa", "QuestionAnswerer"),
    "QuintetError": ("quintet.core.errors", "QuintetError"),
    "Summarizer": ("quintet.apps.summarization", "Summarizer"),
    "Translator": ("quintet.apps.translation", "Translator"),
    "evaluate": ("quintet.evaluation.harness", "evaluate"),
    "finetune": ("quintet.core.training.trainer", "finetune"),
    "load_model": ("quintet.core.models", "load"),
}

__all__ = [
    "ChatSession",
    "Classifier",
    "QuestionAnswerer",
    "QuintetError",
    "Summarizer",
    "Translator",
    "__version__",
    "evaluate",
    "finetune",
    "load_model",
]


def __getattr__(name: str) -> Any:
    """Import a public name from its home module on first use (PEP 562)."""
    try:
        module, attribute = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module 'quintet' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})

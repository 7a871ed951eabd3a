"""Translation app: routed models, long documents, files.

The names below load on first use (PEP 562), so that importing a sub-module such as
``quintet.apps.translation.cli`` (for ``quintet --help``) does not import the app, and torch, with
it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from quintet.core.lazy import lazy_attributes

if TYPE_CHECKING:
    from quintet.apps.translation.api import TranslationResult, Translator
    from quintet.apps.translation.languages import LanguageError, language

_HOMES = {
    "LanguageError": "quintet.apps.translation.languages",
    "TranslationResult": "quintet.apps.translation.api",
    "Translator": "quintet.apps.translation.api",
    "language": "quintet.apps.translation.languages",
}

__all__ = ["LanguageError", "TranslationResult", "Translator", "language"]


__getattr__ = lazy_attributes(__name__, _HOMES)

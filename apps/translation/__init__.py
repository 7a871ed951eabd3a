"""Translation app: routed models, long documents, files.

The names below load on first use (PEP 562), so that importing a sub-module such as
``apps.translation.cli`` (for ``quintet --help``) does not import the app, and torch, with it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.lazy import lazy_attributes

if TYPE_CHECKING:
    from apps.translation.api import TranslationResult, Translator
    from apps.translation.languages import LanguageError, language

_HOMES = {
    "LanguageError": "apps.translation.languages",
    "TranslationResult": "apps.translation.api",
    "Translator": "apps.translation.api",
    "language": "apps.translation.languages",
}

__all__ = ["LanguageError", "TranslationResult", "Translator", "language"]


__getattr__ = lazy_attributes(__name__, _HOMES)

"""Translation app: routed models, long documents, files."""

from apps.translation.api import TranslationResult, Translator
from apps.translation.languages import LanguageError, language

__all__ = ["LanguageError", "TranslationResult", "Translator", "language"]

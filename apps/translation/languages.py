"""Language codes: ISO 639-1 (``de``) and FLORES-200 (``deu_Latn``), both ways.

Opus-MT models name pairs by ISO 639-1 codes, NLLB by FLORES-200 codes, M2M100 by ISO
codes; users may type either. :func:`language` accepts both and a few common names.
"""

from __future__ import annotations

import difflib
import functools
from dataclasses import dataclass

from quintet.core.errors import QuintetError


class LanguageError(QuintetError):
    """An unknown or unsupported language code."""


@dataclass(frozen=True)
class Language:
    iso: str  # ISO 639-1 (or 639-3 where there is no two-letter code)
    flores: str  # FLORES-200 code: language_Script
    name: str


_LANGUAGES = [
    Language("af", "afr_Latn", "Afrikaans"),
    Language("ar", "arb_Arab", "Arabic"),
    Language("bg", "bul_Cyrl", "Bulgarian"),
    Language("bn", "ben_Beng", "Bengali"),
    Language("ca", "cat_Latn", "Catalan"),
    Language("cs", "ces_Latn", "Czech"),
    Language("cy", "cym_Latn", "Welsh"),
    Language("da", "dan_Latn", "Danish"),
    Language("de", "deu_Latn", "German"),
    Language("el", "ell_Grek", "Greek"),
    Language("en", "eng_Latn", "English"),
    Language("es", "spa_Latn", "Spanish"),
    Language("et", "est_Latn", "Estonian"),
    Language("fa", "pes_Arab", "Persian"),
    Language("fi", "fin_Latn", "Finnish"),
    Language("fr", "fra_Latn", "French"),
    Language("ga", "gle_Latn", "Irish"),
    Language("gu", "guj_Gujr", "Gujarati"),
    Language("he", "heb_Hebr", "Hebrew"),
    Language("hi", "hin_Deva", "Hindi"),
    Language("hr", "hrv_Latn", "Croatian"),
    Language("hu", "hun_Latn", "Hungarian"),
    Language("id", "ind_Latn", "Indonesian"),
    Language("is", "isl_Latn", "Icelandic"),
    Language("it", "ita_Latn", "Italian"),
    Language("ja", "jpn_Jpan", "Japanese"),
    Language("ko", "kor_Hang", "Korean"),
    Language("lt", "lit_Latn", "Lithuanian"),
    Language("lv", "lvs_Latn", "Latvian"),
    Language("mr", "mar_Deva", "Marathi"),
    Language("ms", "zsm_Latn", "Malay"),
    Language("nl", "nld_Latn", "Dutch"),
    Language("no", "nob_Latn", "Norwegian"),
    Language("pl", "pol_Latn", "Polish"),
    Language("pt", "por_Latn", "Portuguese"),
    Language("ro", "ron_Latn", "Romanian"),
    Language("ru", "rus_Cyrl", "Russian"),
    Language("sk", "slk_Latn", "Slovak"),
    Language("sl", "slv_Latn", "Slovenian"),
    Language("sr", "srp_Cyrl", "Serbian"),
    Language("sv", "swe_Latn", "Swedish"),
    Language("sw", "swh_Latn", "Swahili"),
    Language("ta", "tam_Taml", "Tamil"),
    Language("te", "tel_Telu", "Telugu"),
    Language("th", "tha_Thai", "Thai"),
    Language("tr", "tur_Latn", "Turkish"),
    Language("uk", "ukr_Cyrl", "Ukrainian"),
    Language("ur", "urd_Arab", "Urdu"),
    Language("vi", "vie_Latn", "Vietnamese"),
    Language("zh", "zho_Hans", "Chinese"),
    Language("zh-hant", "zho_Hant", "Chinese (Traditional)"),
]

_BY_KEY: dict[str, Language] = {}
for _lang in _LANGUAGES:
    for _key in (_lang.iso, _lang.flores, _lang.name):
        _BY_KEY[_key.lower()] = _lang


def language(code: str) -> Language:
    """The language for an ISO 639-1 code, a FLORES-200 code or an English name.

    Raises:
        LanguageError: unknown code, with the closest known codes.
    """
    if not isinstance(code, str) or not code.strip():
        raise LanguageError("no language code given: use e.g. en, de, fra_Latn")
    found = _BY_KEY.get(code.strip().lower()) or _other_flores_language(code.strip())
    if found is None:
        close = difflib.get_close_matches(code.lower(), list(_BY_KEY), n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise LanguageError(
            f"unknown language code {code!r}: use ISO 639-1 (de) or FLORES-200 (deu_Latn).{hint}"
        )
    return found


def _other_flores_language(code: str) -> Language | None:
    """Any other FLORES-200 code NLLB-200 knows (``yor_Latn``), spelled as FLORES spells it.

    These have no ISO 639-1 code or English name here: the ISO field holds the ISO 639-3
    part, so routing finds no opus-mt model and goes to NLLB, which is what serves them.
    """
    if "_" not in code:
        return None
    flores = _nllb_codes().get(code.lower())
    return Language(flores.split("_")[0], flores, flores) if flores else None


@functools.cache
def _nllb_codes() -> dict[str, str]:
    """NLLB's own 202 language tokens by lower case; imported only when a code is not in
    the table, once."""
    try:
        from transformers.models.nllb.tokenization_nllb import FAIRSEQ_LANGUAGE_CODES
    except ImportError:  # pragma: no cover - an older or newer transformers layout
        return {}
    return {c.lower(): c for c in FAIRSEQ_LANGUAGE_CODES}


def all_languages() -> list[Language]:
    """Every language Quintet knows, by English name."""
    return sorted(_LANGUAGES, key=lambda lang: lang.name)

"""Which model translates a pair: opus-mt, NLLB, the prompted offline default, or yours.

The hub routes are tested offline by placing tiny models in an empty Hugging Face cache
under the real hub ids (as a download would leave them).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from quintet.apps.translation import Translator
from quintet.apps.translation.languages import LanguageError, language
from quintet.apps.translation.routing import choose
from quintet.core.testing import tiny_model_dir
from tests.apps.translation.conftest import put_in_hf_cache


def test_no_hub_routes_to_the_prompted_offline_default(no_hub: Path, real_store) -> None:
    route = choose(language("en"), language("de"))
    assert route.model == "smollm2-135m-instruct" and route.style == "prompted"
    assert "hub not reachable" in route.reason and "last resort" in route.reason


def test_cached_opus_mt_is_chosen_and_translates_offline(cached_hub: Path) -> None:
    put_in_hf_cache(cached_hub, "Helsinki-NLP/opus-mt-en-de", tiny_model_dir("marian"))
    translator = Translator()
    route = translator.route("en", "deu_Latn")
    assert (route.model, route.style) == ("opus-mt-en-de", "marian")
    result = translator.translate("The cat sits on the mat.", "en", "de", max_new_tokens=4)[0]
    assert result.model == "opus-mt-en-de" and result.style == "marian"
    assert result.text and result.route == "opus-mt model for en->de"


def test_pair_without_opus_mt_goes_to_cached_nllb(cached_hub: Path, tiny_nllb: Path) -> None:
    put_in_hf_cache(cached_hub, "Helsinki-NLP/opus-mt-en-de", tiny_model_dir("marian"))
    put_in_hf_cache(cached_hub, "facebook/nllb-200-distilled-600M", tiny_nllb)
    route = choose(language("de"), language("fr"))  # the catalog has no opus-mt-de-fr
    assert route.model == "nllb-200-distilled-600m" and route.style == "multilingual"
    assert "no opus-mt model" in route.reason
    result = Translator().translate("Die Katze.", "de", "fr", max_new_tokens=3)[0]
    assert result.model == "nllb-200-distilled-600m" and result.style == "multilingual"


def test_a_flores_only_language_goes_to_nllb(cached_hub: Path, tiny_nllb: Path) -> None:
    put_in_hf_cache(cached_hub, "facebook/nllb-200-distilled-600M", tiny_nllb)
    route = choose(language("en"), language("yor_Latn"))
    assert route.style == "multilingual" and "no opus-mt model" in route.reason


def test_pair_without_opus_mt_and_no_nllb_falls_back_to_prompting(no_hub: Path, real_store):
    put_in_hf_cache(no_hub, "Helsinki-NLP/opus-mt-en-de", tiny_model_dir("marian"))
    assert choose(language("en"), language("de")).style == "marian"
    assert choose(language("en"), language("it")).style == "prompted"


def test_explicit_marian_with_the_wrong_pair_is_refused(tmp_path: Path) -> None:
    named = tmp_path / "opus-mt-en-de"
    shutil.copytree(tiny_model_dir("marian"), named)
    translator = Translator(str(named))
    assert translator.translate("The cat.", "en", "de", max_new_tokens=2)[0].style == "seq2seq"
    with pytest.raises(LanguageError, match=r"translates en->de, not en->fr"):
        translator.translate("The cat.", "en", "fr")


def test_explicit_model_wins_over_routing(no_hub: Path) -> None:
    put_in_hf_cache(no_hub, "Helsinki-NLP/opus-mt-en-de", tiny_model_dir("marian"))
    path = str(tiny_model_dir("t5", kind="seq2seq"))
    route = Translator(path).route("en", "de")
    assert route.model == path and route.reason == "the model you chose"


def test_encoder_model_is_refused_with_what_to_use() -> None:
    translator = Translator(str(tiny_model_dir("bert", kind="encoder")))
    with pytest.raises(LanguageError, match="needs a seq2seq model"):
        translator.translate("The cat.", "en", "de")


def test_same_source_and_target_is_an_error() -> None:
    with pytest.raises(LanguageError, match="both English"):
        Translator(str(tiny_model_dir("marian"))).translate("Hi.", "en", "eng_Latn")

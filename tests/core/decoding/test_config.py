"""DecodeConfig: every impossible combination is a clear error where it is written."""

from __future__ import annotations

import pytest

from quintet.core.config import DecodeConfig
from quintet.core.errors import ConfigError


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"do_sample": True, "top_p": 1.5}, r"top_p must be in \(0, 1\]"),
        ({"do_sample": True, "temperature": -0.5}, "temperature must be > 0"),
        ({"do_sample": True, "temperature": 0.0}, "temperature must be > 0"),
        ({"do_sample": True, "top_k": -1}, "top_k must be >= 0"),
        ({"do_sample": True, "min_p": 1.0}, r"min_p must be in \[0, 1\)"),
        ({"max_new_tokens": 0}, "max_new_tokens must be at least 1"),
        ({"max_new_tokens": 5, "min_new_tokens": 6}, "min_new_tokens must be between"),
        ({"num_beams": 0}, "num_beams must be at least 1"),
        ({"num_beams": 2, "num_return_sequences": 3}, "cannot exceed num_beams"),
        ({"num_return_sequences": 2}, "greedy decoding returns one sequence"),
        ({"num_beams": 2, "do_sample": True}, "cannot be combined"),
        ({"temperature": 0.7}, "only apply with do_sample=True"),
        ({"repetition_penalty": 0}, "repetition_penalty must be > 0"),
        ({"no_repeat_ngram_size": -1}, "no_repeat_ngram_size must be >= 0"),
        ({"stop_strings": [""]}, "stop_strings must be non-empty"),
        ({"stop_token_ids": [-3]}, "stop_token_ids must be non-negative"),
        ({"max_new_tokens": "lots"}, r"max_new_tokens must be a number \(got 'lots'\)"),
        ({"num_beams": 2.5}, r"num_beams must be a whole number \(got 2.5\)"),
        ({"do_sample": "yes"}, "do_sample must be true or false"),
        ({"seed": "x"}, "seed must be a number"),
        ({"do_sample": True, "temperature": float("nan")}, r"temperature must be a finite"),
        ({"do_sample": True, "temperature": float("inf")}, r"temperature must be a finite"),
        ({"do_sample": True, "top_p": float("nan")}, r"top_p must be a finite"),
        ({"do_sample": True, "min_p": float("nan")}, r"min_p must be a finite"),
        ({"num_beams": 2, "length_penalty": float("-inf")}, "length_penalty must be a finite"),
        ({"repetition_penalty": float("nan")}, "repetition_penalty must be a finite"),
        ({"max_new_tokens": float("inf")}, r"max_new_tokens must be a whole number \(got inf\)"),
    ],
)
def test_invalid_settings(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        DecodeConfig(**kwargs)


def test_several_problems_are_reported_together() -> None:
    with pytest.raises(ConfigError) as info:
        DecodeConfig(do_sample=True, top_p=2.0, temperature=-1)
    assert "top_p" in str(info.value) and "temperature" in str(info.value)


def test_strategies_and_streamability() -> None:
    assert DecodeConfig().strategy == "greedy"
    assert DecodeConfig(do_sample=True).strategy == "sample"
    assert DecodeConfig(num_beams=4).strategy == "beam"
    DecodeConfig(do_sample=True).check_streamable()
    with pytest.raises(ConfigError, match="streaming cannot use beam search"):
        DecodeConfig(num_beams=4).check_streamable()


def test_overrides() -> None:
    base = DecodeConfig(max_new_tokens=10)
    assert DecodeConfig.from_overrides(base, num_beams=3).num_beams == 3
    assert DecodeConfig.from_overrides(base, num_beams=3).max_new_tokens == 10
    with pytest.raises(ConfigError, match="unknown decoding option.*beams"):
        DecodeConfig.from_overrides(base, beams=3)
    assert DecodeConfig(stop_strings=["a"]).stop_strings == ("a",)


def test_nan_typed_on_the_command_line_is_refused() -> None:
    from quintet.apps.eval_cli import parse_pairs

    typed = parse_pairs(["temperature=NaN", "do_sample=true"], "--decode")  # JSON reads NaN
    with pytest.raises(ConfigError, match=r"temperature must be a finite number \(got nan\)"):
        DecodeConfig.from_overrides(None, **typed)


def test_whole_number_floats_become_ints() -> None:
    from quintet.apps.eval_cli import parse_pairs

    typed = parse_pairs(["num_beams=2.0", "max_new_tokens=1e3", "seed=7.0"], "--decode")
    config = DecodeConfig.from_overrides(None, **typed)
    assert (config.num_beams, config.max_new_tokens, config.seed) == (2, 1000, 7)
    assert all(type(v) is int for v in (config.num_beams, config.max_new_tokens, config.seed))

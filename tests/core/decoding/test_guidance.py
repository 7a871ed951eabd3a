"""DecodeConfig's constraint and lookup fields, and their mapping onto the engine's
settings (plain data: no engine needed)."""

from __future__ import annotations

import json
import re

import pytest

from quintet.core.config import DecodeConfig
from quintet.core.decoding import guidance
from quintet.core.errors import ConfigError


def test_each_constraint_maps_to_one_engine_guidance() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    kind, data = guidance.guidance(DecodeConfig(json_schema=schema))
    assert kind == "json_schema"
    assert json.loads(data) == {**schema, "x-guidance": guidance.JSON_LAYOUT}
    own = {**schema, "x-guidance": {"whitespace_flexible": True}}
    assert json.loads(guidance.guidance(DecodeConfig(json_schema=own))[1])["x-guidance"] == {
        **guidance.JSON_LAYOUT,
        "whitespace_flexible": True,
    }
    assert guidance.guidance(DecodeConfig(regex="[a-z]+")) == ("regex", "[a-z]+")
    kind, grammar = guidance.guidance(DecodeConfig(choices=["yes", 'say "hi"', "naïve\\x"]))
    assert kind == "lark_grammar"
    assert grammar == 'start: "yes" | "say \\"hi\\"" | "naïve\\\\x"'
    assert guidance.guidance(DecodeConfig()) is None
    assert not guidance.is_constrained(DecodeConfig())


def test_regex_digit_classes_become_ascii() -> None:
    for pattern, expected in [
        (r"\d{3}-\d+", "[0-9]{3}-[0-9]+"),
        (r"[\d_]+", "[0-9_]+"),
        (r"\D", "[^0-9]"),
        (r"\\d", r"\\d"),  # an escaped backslash, then a plain d
        (r"[]\d]", "[]0-9]"),
        (r"\w+\.\d", r"\w+\.[0-9]"),
    ]:
        assert guidance.ascii_digits(pattern) == expected
        # Same language over ASCII, as Python reads both.
        assert bool(re.fullmatch(pattern, "123-45")) == bool(re.fullmatch(expected, "123-45"))


def test_schema_is_copied_frozen_and_hashable() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    config = DecodeConfig(json_schema=schema)
    schema["properties"]["a"]["type"] = "integer"
    assert config.json_schema["properties"]["a"]["type"] == "string"
    assert hash(config) == hash(DecodeConfig(json_schema={"type": "object"}))
    assert config != DecodeConfig(json_schema={"type": "object"})
    assert DecodeConfig(json_schema='{"type": "object"}').json_schema == {"type": "object"}
    assert DecodeConfig(choices=["a", "b"]).choices == ("a", "b")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"json_schema": {"type": "object"}, "regex": "a"}, "json_schema and regex exclude"),
        ({"regex": "a", "choices": ["a"]}, "regex and choices exclude"),
        ({"json_schema": "{not json"}, "json_schema is not valid JSON"),
        ({"json_schema": [1, 2]}, "json_schema must be a JSON object"),
        ({"regex": "(("}, "does not compile"),
        ({"regex": ""}, "regex is empty"),
        ({"choices": []}, "choices is empty"),
        ({"choices": ["a", ""]}, "non-empty strings"),
        ({"choices": ["a", "a"]}, "duplicates"),
        ({"choices": "yes"}, "choices must be a list of strings"),
        ({"regex": 5}, "regex must be a string"),
        ({"choices": ["a"], "num_beams": 2}, "beam search"),
        ({"lookup": 17}, "lookup must be between 0"),
        ({"lookup": -1}, "lookup must be between 0"),
        ({"lookup": 2, "num_beams": 2}, "lookup decoding and beam search"),
    ],
)
def test_bad_settings_are_one_line_errors(options: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)) as caught:
        DecodeConfig(**options)
    assert "\n" not in str(caught.value)


def test_lookup_maps_to_speculative_options() -> None:
    assert guidance.speculative_options(DecodeConfig()) == {}
    assert guidance.speculative_options(DecodeConfig(lookup=4)) == {
        "max_draft_tokens": 4,
        "ngram_size": guidance.LOOKUP_NGRAM_SIZE,
    }


def test_decode_flag_reads_a_schema_file(tmp_path) -> None:
    import argparse

    from quintet.apps.flags import add_decode_options, decode_from_args

    path = tmp_path / "schema.json"
    path.write_text('{"type": "object"}', encoding="utf-8")
    parser = argparse.ArgumentParser()
    add_decode_options(parser)
    args = parser.parse_args(["--decode", f"json_schema=@{path}", 'choices=["a"]'])
    decode = decode_from_args(args)
    assert DecodeConfig(json_schema=decode["json_schema"]).json_schema == {"type": "object"}
    assert decode["choices"] == ["a"]
    with pytest.raises(ConfigError, match="cannot read"):
        decode_from_args(parser.parse_args(["--decode", f"json_schema=@{tmp_path}/missing"]))

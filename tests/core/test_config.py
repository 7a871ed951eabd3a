"""ModelSpec validation: bad values fail where they are written."""

from __future__ import annotations

import pytest

from core.config import ModelSpec
from core.errors import ConfigError


def test_defaults_are_safe() -> None:
    spec = ModelSpec("smollm2-135m-instruct")
    assert spec.trust_remote_code is False
    assert spec.allow_pickle_weights is False
    assert (spec.device, spec.dtype, spec.quantize) == ("auto", "auto", None)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": ""}, "model name is empty"),
        ({"name": "x", "kind": "vision"}, "unknown model kind 'vision'"),
        ({"name": "x", "device": "tpu"}, "unknown device 'tpu'"),
        ({"name": "x", "dtype": "int4"}, "unknown dtype 'int4'"),
        ({"name": "x", "quantize": "int4"}, "unknown quantization 'int4'"),
        ({"name": "x", "quantize": "int8", "dtype": "float16"}, "float32"),
    ],
)
def test_bad_values_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ModelSpec(**kwargs)

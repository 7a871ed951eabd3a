"""``--ray`` on the batch-file commands (classify, translate, qa, summarize): the same output
files as the single-process run, on a local Ray cluster; and the flags' one-line errors."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import pytest

from quintet.apps.cli import main
from quintet.core.testing import CORPUS, tiny_model_dir


def _run(argv: list[str], capsys) -> str:
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 0, err
    return err


def test_classify_and_translate_files_on_ray_equal_local(
    ray_cluster, real_store, tmp_path: Path, capsys
) -> None:
    rows = tmp_path / "news.csv"
    with rows.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "text"])
        for i in range(150):  # three batches of 64; one empty text kept unlabelled
            writer.writerow([i, "" if i == 5 else f"{CORPUS[i % len(CORPUS)]} ({i})"])
    classify = ["classify", "--model", "minilm-l6", "--labels", "sports,business,science",
                "--input", str(rows)]  # fmt: skip
    _run([*classify, "--output", str(tmp_path / "local.csv")], capsys)
    err = _run([*classify, "--output", str(tmp_path / "ray.csv"), "--ray"], capsys)
    assert "150 rows classified" in err and "1 empty texts" in err
    assert (tmp_path / "ray.csv").read_bytes() == (tmp_path / "local.csv").read_bytes()

    lines = tmp_path / "in.txt"
    lines.write_text("\n".join(CORPUS[i % len(CORPUS)] if i % 9 else "" for i in range(150)))
    translate = ["translate", "--model", str(tiny_model_dir("marian")), "--src", "en",
                 "--tgt", "de", "--max-new-tokens", "4", "--input", str(lines), "-q"]  # fmt: skip
    _run([*translate, "--output", str(tmp_path / "local.txt")], capsys)
    err = _run([*translate, "--output", str(tmp_path / "ray.txt"), "--ray", "--workers", "2"],
               capsys)  # fmt: skip
    assert "150 lines translated" in err and "engine:" not in err  # no model in the driver
    assert (tmp_path / "ray.txt").read_text() == (tmp_path / "local.txt").read_text()


@pytest.mark.slow  # another actor pool on a busy 2-core CI runner: keep the fast suite short
def test_qa_file_on_ray_equals_local(ray_cluster, tmp_path: Path, capsys) -> None:
    model = str(tiny_model_dir("bert", kind="span"))
    questions = tmp_path / "q.jsonl"
    with questions.open("w") as handle:
        for i in range(40):
            context = " ".join(CORPUS[(i + k) % len(CORPUS)] for k in range(3))
            handle.write(json.dumps({"id": i, "question": "who is it?", "context": context}))
            handle.write("\n")
    qa = ["qa", "--model", model, "--input", str(questions)]
    _run([*qa, "--output", str(tmp_path / "local.jsonl")], capsys)
    err = _run([*qa, "--output", str(tmp_path / "ray.jsonl"), "--ray"], capsys)
    assert f"40 answers written to {tmp_path / 'ray.jsonl'}" in err
    assert (tmp_path / "ray.jsonl").read_text() == (tmp_path / "local.jsonl").read_text()


def _documents(path: Path, n: int) -> Path:
    with path.open("w") as handle:
        for i in range(n):
            text = " ".join(CORPUS[(i + k) % len(CORPUS)] for k in range(1 + i % 4))
            handle.write(json.dumps({"id": i, "text": text}) + "\n")
    return path


def test_summarize_a_jsonl_batch(tmp_path: Path, capsys) -> None:
    bart = str(tiny_model_dir("bart", kind="seq2seq"))
    docs = _documents(tmp_path / "docs.jsonl", 20)
    out = tmp_path / "out" / "summaries.jsonl"
    err = _run(["summarize", "-m", bart, "--max-length", "4", "--input", str(docs),
                "--output", str(out)], capsys)  # fmt: skip
    assert f"20 summaries written to {out}" in err
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    expected = [json.loads(line) for line in docs.read_text().splitlines()]
    assert [{k: r[k] for k in ("id", "text")} for r in rows] == expected
    assert all(isinstance(r["summary"], str) and r["summary"] for r in rows)
    assert main(["summarize", "-m", bart, "--input", str(docs)]) == 2
    assert "needs --output FILE.jsonl" in capsys.readouterr().err


@pytest.mark.slow  # another actor pool on a busy 2-core CI runner: keep the fast suite short
def test_summarize_batch_on_ray_equals_local(ray_cluster, tmp_path: Path, capsys) -> None:
    bart = str(tiny_model_dir("bart", kind="seq2seq"))
    docs = _documents(tmp_path / "docs.jsonl", 40)
    argv = ["summarize", "-m", bart, "--max-length", "4", "--input", str(docs)]
    _run([*argv, "--output", str(tmp_path / "local.jsonl")], capsys)
    _run([*argv, "--output", str(tmp_path / "ray.jsonl"), "--ray"], capsys)
    assert (tmp_path / "ray.jsonl").read_text() == (tmp_path / "local.jsonl").read_text()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["classify", "--input", "x.csv", "--output", "y.csv", "--workers", "2"],
         "--workers needs --ray"),
        (["translate", "--src", "en", "--tgt", "de", "--ray-address", "h:1", "hi"],
         "--ray-address needs --ray"),
        (["translate", "--src", "en", "--tgt", "de", "--ray", "hi"],
         "--ray translates files: give --input FILE --output FILE"),
        (["qa", "--question", "q", "--context", "c", "--ray"], "--ray answers files"),
        (["summarize", "--ray", "some text"], "--ray summarizes files"),
        (["eval", "classification", "--data", "d.tsv", "--ray", "--workers", "0"],
         "--workers must be at least 1"),
        (["eval", "classification", "--data", "d.tsv", "--ray", "--predictions", "p.txt"],
         "--ray runs a model; --predictions scores a file"),
    ],
)  # fmt: skip
def test_cluster_flag_errors_are_one_line(argv: list[str], message: str, capsys) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"error: {message}" in err and "Traceback" not in err


def test_ray_missing_says_how_to_install(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # what Python does without the package
    argv = ["classify", "--input", "x.csv", "--output", "y.csv", "--ray"]
    assert main(argv) == 2
    assert "error: Ray is not installed: pip install 'quintet[cluster]'" in capsys.readouterr().err

"""CSV batch classification (progress, resume, empty rows), ``quintet classify``, and a
classifier trained from a labelled CSV used by name right after."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import pytest

from quintet.apps.classification import Classifier
from quintet.apps.cli import main
from quintet.core.testing import CORPUS, tiny_model_dir


@pytest.fixture(scope="module")
def tiny() -> str:
    return str(tiny_model_dir("bert", kind="sequence-classification", labels=["neg", "pos"]))


def _reviews(path: Path, n: int) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "review"])
        for i in range(n):
            writer.writerow([i, "" if i == 3 else f"review number {i}, quite good"])
    return path


def test_csv_batch_with_progress_and_resume(tiny: str, tmp_path: Path) -> None:
    source = _reviews(tmp_path / "in.csv", 25)
    out = tmp_path / "out.csv"
    clf = Classifier(tiny)
    seen: list[tuple[int, int]] = []
    first = clf.classify_csv(source, out, "review", batch_size=10,
                             progress=lambda d, t: seen.append((d, t)))  # fmt: skip
    assert (first.rows, first.written, first.resumed, first.empty) == (25, 25, 0, 1)
    assert seen[0] == (0, 25) and seen[-1] == (25, 25)
    rows = list(csv.DictReader(out.open()))
    assert [r["id"] for r in rows] == [str(i) for i in range(25)]
    assert rows[3]["predicted_label"] == ""  # the empty review: kept, unlabelled
    for r in rows[:3]:
        assert r["predicted_label"] in ("neg", "pos")
        assert float(r["p_neg"]) + float(r["p_pos"]) == pytest.approx(1.0, abs=1e-5)
    # An interrupted run: keep 12 rows, run again, only the rest is classified.
    lines = out.read_text().splitlines(keepends=True)
    out.write_text("".join(lines[:13]))
    again = clf.classify_csv(source, out, "review", batch_size=10, progress=False)
    assert (again.resumed, again.written) == (12, 13)
    assert out.read_text().splitlines() == "".join(lines).splitlines()


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl"])
@pytest.mark.parametrize("cut", ["inside the last row", "after a newline inside a quoted field"])
def test_resume_drops_a_row_cut_mid_write(tiny: str, tmp_path: Path, suffix: str, cut: str) -> None:
    source = tmp_path / "in.csv"
    with source.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "review"])
        writer.writerows([i, f"review {i}\nsecond line" if i == 7 else f"review {i}"]
                         for i in range(30))  # fmt: skip
    out = tmp_path / f"out{suffix}"
    clf = Classifier(tiny)
    clf.classify_csv(source, out, "review", batch_size=8, progress=False)
    whole = out.read_bytes()
    # The output of a run killed while writing row 7 (the one with a line break; only CSV
    # keeps it raw, inside quotes: TSV writes a space and JSONL an escape, a plain cut there).
    row_7 = whole.index(b"review 7")
    cut_at = row_7 + (len(b"review 7\n") if cut.startswith("after") else 4)
    out.write_bytes(whole[:cut_at])
    again = clf.classify_csv(source, out, "review", batch_size=8, progress=False)
    assert again.resumed == 7 and again.written == 23
    assert out.read_bytes() == whole


def test_jsonl_output_and_a_missing_column(tiny: str, tmp_path: Path) -> None:
    source = _reviews(tmp_path / "in.csv", 4)
    clf = Classifier(tiny)
    out = tmp_path / "out.jsonl"
    clf.classify_csv(source, out, "review", progress=False)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 4 and rows[0]["predicted_label"] in ("neg", "pos")
    from quintet.core.data import DataError

    with pytest.raises(DataError, match="no column 'text'"):
        clf.classify_csv(source, out, "text", progress=False)


def test_cli_texts_file_and_errors(tiny: str, tmp_path: Path, capsys) -> None:
    assert main(["classify", "--model", tiny, "--json", "good", "bad"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["text"] for r in rows] == ["good", "bad"]
    source = _reviews(tmp_path / "in.csv", 5)
    out = tmp_path / "o.csv"
    argv = ["classify", "--model", tiny, "--input", str(source), "--text-column", "review",
            "--output", str(out)]  # fmt: skip
    assert main(argv) == 0 and len(list(csv.DictReader(out.open()))) == 5
    for bad, fragment in [
        (["classify", "--model", tiny], "exactly one of them"),
        (["classify", "--model", tiny, "--input", str(source)], "--output"),
        (["classify", "--model", tiny, "--labels", "a,b", "x"], "has its own labels"),
        (["classify", "--model", tiny, " "], "text 0 is empty"),
    ]:
        assert main(bad) == 2
        err = capsys.readouterr().err
        assert "error: " in err and fragment in err and "Traceback" not in err


def test_zero_shot_cli_on_real_minilm(real_store, capsys) -> None:
    argv = ["classify", "--model", "minilm-l6", "--labels", "sports,business",
            "Tennis star wins Wimbledon final", "Shares jump after record profit"]  # fmt: skip
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("sports") and lines[1].startswith("business")


def test_train_from_a_labelled_csv_then_use_it_by_name(tmp_path: Path, tmp_home, capsys) -> None:
    """`quintet finetune classification` -> Classifier("<name>") and `quintet classify`."""
    rng = random.Random(0)
    files = {"train": (tmp_path / "train.csv", 128), "dev": (tmp_path / "dev.csv", 32)}
    for path, rows in files.values():
        with path.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["text", "label"])
            for i in range(rows):
                writer.writerow([f"{rng.choice(CORPUS)} {'good' if i % 2 else 'bad'}",
                                 "pos" if i % 2 else "neg"])  # fmt: skip
    code = main(["finetune", "classification", "--model", str(tiny_model_dir("bert")),
                 "--data", str(files["train"][0]), "--validation", str(files["dev"][0]),
                 "--output", "my-sentiment", "--max-steps", "60", "--lr", "5e-3",
                 "--batch-size", "8", "--eval-every", "30"])  # fmt: skip
    assert code == 0
    clf = Classifier("my-sentiment")
    assert clf.mode == "classifier" and sorted(clf.label_set()) == ["neg", "pos"]
    texts = [f"{rng.choice(CORPUS)} good" for _ in range(5)] + [
        f"{rng.choice(CORPUS)} bad" for _ in range(5)
    ]
    assert [r.label for r in clf.classify(texts)] == ["pos"] * 5 + ["neg"] * 5
    capsys.readouterr()  # the trainer's validation lines
    assert main(["classify", "--model", "my-sentiment", "the film was good"]) == 0
    assert capsys.readouterr().out.startswith("pos")


def test_a_second_writer_of_the_same_output_is_one_line(tiny: str, tmp_path: Path) -> None:
    import subprocess
    import sys

    from quintet.core.locks import exclusive_output

    source = _reviews(tmp_path / "in.csv", 5)
    out = tmp_path / "out.csv"
    out.write_text("what the first run wrote so far\n")
    quintet = Path(sys.executable).with_name("quintet")
    command = [str(quintet), "classify", "--model", tiny, "--input", str(source),
               "--text-column", "review", "--output", str(out)]  # fmt: skip
    with exclusive_output(out):  # a run writing out.csv now
        done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert errors == [
        f"error: {out} is being written by another quintet run (it holds {out}.lock): wait "
        "for that run to finish, or write to another output"
    ]
    assert out.read_text() == "what the first run wrote so far\n"  # untouched
    assert subprocess.run(command, capture_output=True, timeout=300).returncode == 0

"""The shared evaluation runner: resume, early data errors, timing, per-category scores,
bootstrap intervals, scoring given predictions (SQuAD against the official script)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from quintet.apps.classification.harness import HARNESS as CLASSIFICATION
from quintet.apps.qa.harness import HARNESS as QA
from quintet.core.data import DataError
from quintet.core.testing import tiny_model_dir
from quintet.evaluation import bootstrap as boot
from quintet.evaluation import registry
from quintet.evaluation.harness import EvaluationError, _timing, evaluate
from quintet.evaluation.protocol import DataOptions, EvalItem, EvalSet, Prediction
from tests.core.test_metrics import official_evaluate

SST2 = "data/classification/sst2/dev.tsv"
SQUAD = "data/qa/squad_v1.1/dev-v1.1.articles-00-23.json"


class Recording:
    """The real classification harness, noting which item ids its predictor is asked for."""

    def __init__(self) -> None:
        self.inner = CLASSIFICATION
        self.task = "classification"
        self.primary_metric = self.inner.primary_metric
        self.higher_is_better = self.inner.higher_is_better
        self.predicted: list[str] = []
        self.opened = 0

    def read(self, data: str, options: DataOptions) -> EvalSet:
        return self.inner.read(data, options)

    def open(self, run: EvalSet, model: str | None, decode: dict[str, Any], options: DataOptions):
        self.opened += 1
        predictor = self.inner.open(run, model, decode, options)
        real_predict = predictor.predict

        def predict(items: Sequence[EvalItem]) -> list[Prediction]:
            self.predicted += [item.id for item in items]
            return real_predict(items)

        predictor.predict = predict
        return predictor

    def restore(self, run, settings):
        return self.inner.restore(run, settings)

    def score(self, run, items, predictions):
        return self.inner.score(run, items, predictions)


@pytest.fixture
def recording():
    harness = Recording()
    registry.register("recorded", harness)
    yield harness
    registry.unregister("recorded")


@pytest.fixture(scope="module")
def tiny_classifier() -> str:
    return str(tiny_model_dir("bert", kind="sequence-classification", labels=["0", "1"]))


class Killed(Exception):
    """Stands in for the process dying after some batches were written."""


def test_resume_after_a_kill_runs_only_the_missing_items(tmp_path, recording, tiny_classifier):
    args = dict(limit=40, batch_size=8, bootstrap=100, bootstrap_seconds=5)
    whole = evaluate("recorded", tiny_classifier, SST2, out=tmp_path / "whole", progress=False,
                     **args)  # fmt: skip
    assert recording.predicted == [str(i) for i in range(2, 42)]  # SST-2 ids are line numbers

    def die_after_two_batches(done: int, total: int) -> None:
        if done >= 16:
            raise Killed

    run = tmp_path / "run"
    recording.predicted.clear()
    with pytest.raises(Killed):
        evaluate("recorded", tiny_classifier, SST2, out=run, progress=die_after_two_batches,
                 **args)  # fmt: skip
    log = run / "predictions.jsonl"
    assert len(log.read_text().splitlines()) == 16
    # A kill in the middle of writing leaves half a line: the item it was writing runs again.
    with log.open("a") as f:
        f.write('{"id": "18", "prediction": "1", "ex')
    recording.predicted.clear()
    seen: list[int] = []
    resumed = evaluate("recorded", tiny_classifier, SST2, out=run,
                       progress=lambda done, total: seen.append(done), **args)  # fmt: skip
    assert recording.predicted == [str(i) for i in range(18, 42)]  # the 24 missing ones only
    assert seen == [16, 24, 32, 40]
    assert resumed.metrics == whole.metrics and resumed.intervals == whole.intervals
    final = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["id"] for r in final] == [str(i) for i in range(2, 42)]
    assert [r["prediction"] for r in final] == [
        json.loads(line)["prediction"]
        for line in (tmp_path / "whole" / "predictions.jsonl").read_text().splitlines()
    ]
    # Finished: running again predicts nothing and reports the same numbers.
    recording.predicted.clear()
    again = evaluate("recorded", tiny_classifier, SST2, out=run, progress=False, **args)
    assert recording.predicted == [] and again.metrics == whole.metrics


def test_a_folder_of_another_evaluation_is_refused_not_mixed(tmp_path, tiny_classifier):
    run = tmp_path / "run"
    evaluate("classification", tiny_classifier, SST2, out=run, limit=8, progress=False,
             bootstrap=0)  # fmt: skip
    before = (run / "predictions.jsonl").read_text()
    other_data = tmp_path / "other.tsv"
    other_data.write_text("sentence\tlabel\nfine film\t1\n")
    for change in (
        dict(data=str(other_data)),
        dict(options=DataOptions(extra={"label_map": "0=negative,1=positive"})),
        dict(decode={"max_new_tokens": 5}),
        dict(model="another-model"),  # refused before it is even looked up
    ):
        call = dict(model=tiny_classifier, data=SST2) | change
        with pytest.raises(EvaluationError, match="holds a different evaluation"):
            evaluate("classification", call.pop("model"), call.pop("data"), out=run, limit=8,
                     progress=False, bootstrap=0, **call)  # fmt: skip
    assert (run / "predictions.jsonl").read_text() == before
    # A predictions.jsonl that no run of ours wrote is not resumed either.
    stray = tmp_path / "stray"
    stray.mkdir()
    (stray / "predictions.jsonl").write_text('{"id": "2", "prediction": "1"}\n')
    with pytest.raises(EvaluationError, match="no run.json"):
        evaluate("classification", tiny_classifier, SST2, out=stray, limit=8, progress=False)


def test_data_edited_since_the_interrupted_run_is_not_resumed(tmp_path, tiny_classifier):
    data = tmp_path / "dev.tsv"
    rows = Path(SST2).read_text().splitlines()[:25]
    data.write_text("\n".join(rows) + "\n")

    def die(done: int, total: int) -> None:
        if done >= 8:
            raise Killed

    with pytest.raises(Killed):
        evaluate("classification", tiny_classifier, str(data), out=tmp_path / "run",
                 batch_size=8, progress=die)  # fmt: skip
    rows[3] = rows[3].rsplit("\t", 1)[0] + "\t" + str(1 - int(rows[3][-1]))  # a label fixed
    data.write_text("\n".join(rows) + "\n")
    with pytest.raises(EvaluationError, match="has changed since the run"):
        evaluate("classification", tiny_classifier, str(data), out=tmp_path / "run",
                 batch_size=8, progress=False)  # fmt: skip
    # A larger --limit on the same data is a resume, not a change.
    with pytest.raises(Killed):
        evaluate("classification", tiny_classifier, str(data), out=tmp_path / "run2", limit=10,
                 batch_size=8, progress=die)  # fmt: skip
    report = evaluate("classification", tiny_classifier, str(data), out=tmp_path / "run2",
                      batch_size=8, progress=False, bootstrap=0)  # fmt: skip
    assert report.n == 24


@pytest.mark.default_backend
def test_a_run_is_not_resumed_on_another_engine(tmp_path, tmp_home, tiny_classifier, monkeypatch):
    """Half a run on the reference engine, the rest on the int8 default: refused, since
    one report must not mix two engines' outputs; the same engine resumes."""
    data = tmp_path / "dev.tsv"
    data.write_text("\n".join(Path(SST2).read_text().splitlines()[:17]) + "\n")

    def die(done: int, total: int) -> None:
        if done >= 8:
            raise Killed

    monkeypatch.setenv("QUINTET_BACKEND", "transformers")
    with pytest.raises(Killed):
        evaluate("classification", tiny_classifier, str(data), out=tmp_path / "run",
                 batch_size=8, progress=die)  # fmt: skip
    monkeypatch.delenv("QUINTET_BACKEND")
    with pytest.raises(EvaluationError, match="decoded on transformers"):
        evaluate("classification", tiny_classifier, str(data), out=tmp_path / "run",
                 batch_size=8, progress=False)  # fmt: skip
    monkeypatch.setenv("QUINTET_BACKEND", "transformers")
    report = evaluate("classification", tiny_classifier, str(data), out=tmp_path / "run",
                      batch_size=8, progress=False, bootstrap=0)  # fmt: skip
    assert report.n == 16 and report.settings["backend"].startswith("transformers")


def test_a_bad_file_fails_before_any_model_work(tmp_path):
    bad = tmp_path / "bad.tsv"
    bad.write_text("sentence\tlabel\ngood film\t1\nno label column here\n")
    out = tmp_path / "run"
    # The model does not exist: had the runner opened it first, the error would say so.
    with pytest.raises(DataError, match=r"bad\.tsv:3"):
        evaluate("classification", "no-such-model", str(bad), out=out, progress=False)
    assert not out.exists()
    with pytest.raises(EvaluationError, match="--limit"):
        evaluate("classification", "no-such-model", SST2, limit=0, out=out, progress=False)


def test_per_category_scores_are_each_categorys_own_scores(tmp_path, tiny_classifier):
    report = evaluate("classification", tiny_classifier, SST2, limit=30, out=tmp_path / "r",
                      progress=False, bootstrap=50)  # fmt: skip
    records = [json.loads(x) for x in (tmp_path / "r/predictions.jsonl").read_text().splitlines()]
    assert set(report.per_category) == {"0", "1"}  # SST-2's category is the gold label
    for name, cat in report.per_category.items():
        mine = [r for r in records if r["category"] == name]
        assert cat["n"] == len(mine)
        correct = sum(r["prediction"] == name for r in mine)
        assert cat["accuracy"] == pytest.approx(100 * correct / len(mine))
    assert report.device.startswith("cpu") or report.device.startswith("cuda")
    assert report.settings["mode"] == "classifier"
    assert report.timing["predict_s"] > 0 and report.timing["examples_per_s"] > 0


def test_bootstrap_intervals_contain_the_point_estimate_and_say_how_many():
    run = QA.read(SQUAD, DataOptions())
    items = run.items[:400]
    predictions = [
        Prediction(item.id, item.references[0] if n % 3 else "something else")
        for n, item in enumerate(items)
    ]
    scores = QA.score(run, items, predictions)
    intervals, info = boot.bootstrap_intervals(
        boot.make_scorer(QA, run, items, predictions), len(items), resamples=300
    )
    assert info["resamples"] == 300 and info["confidence"] == 0.95
    for name in ("exact_match", "f1"):
        low, high = intervals[name]
        assert low < scores.metrics[name] < high
        assert high - low < 15  # 400 items: a few points either side, not the whole scale
    # The time cap stops early but never below the minimum that makes an interval.
    _, capped = boot.bootstrap_intervals(
        boot.make_scorer(QA, run, items, predictions), len(items), resamples=5000, max_seconds=0
    )
    assert capped["resamples"] == boot.MIN_RESAMPLES
    assert boot.bootstrap_intervals(lambda idx: {"x": 1.0}, 1)[0] == {}


def test_fast_resamplers_equal_rescoring():
    from sacrebleu.metrics import BLEU, CHRF, TER

    refs = Path("data/translation/wmt17_sample/en-de/newstest2017.de").read_text().splitlines()
    refs = refs[:120]
    hyps = [" ".join(line.split()[::2]) if n % 2 else line.upper() for n, line in enumerate(refs)]
    score = boot.sacrebleu_resampler({"bleu": BLEU(), "chrf": CHRF(), "ter": TER()}, hyps, [refs])
    for idx in np.random.default_rng(1).integers(0, len(refs), size=(3, len(refs))):
        fast = score(idx.tolist())
        sample_h, sample_r = [hyps[i] for i in idx], [[refs[i] for i in idx]]
        assert fast["bleu"] == BLEU().corpus_score(sample_h, sample_r).score
        assert fast["chrf"] == CHRF().corpus_score(sample_h, sample_r).score
        assert fast["ter"] == TER().corpus_score(sample_h, sample_r).score
    mean = boot.mean_resampler([{"f1": 10.0}, {"f1": 50.0}], ["f1"])
    assert mean([0, 1, 1]) == {"f1": pytest.approx(110 / 3)}


def test_per_item_means_are_resampled_without_rescoring_and_give_the_same_intervals():
    run = QA.read(SQUAD, DataOptions())
    items = run.items[:300]
    predictions = [Prediction(i.id, i.references[0] if n % 4 else "no") for n, i in
                   enumerate(items)]  # fmt: skip

    def rescore(idx):
        return QA.score(run, [items[i] for i in idx], [predictions[i] for i in idx]).metrics

    fast = boot.make_scorer(QA, run, items, predictions)
    assert fast is not rescore and fast.__qualname__.startswith("mean_resampler")
    slow_iv, _ = boot.bootstrap_intervals(rescore, len(items), resamples=60)
    fast_iv, _ = boot.bootstrap_intervals(fast, len(items), resamples=60)
    for name in ("exact_match", "f1"):
        assert fast_iv[name] == pytest.approx(slow_iv[name], abs=1e-9)
    # Classification's macro-F1 and ECE are not per-item means: it is rescored.
    cls_run = CLASSIFICATION.read(SST2, DataOptions())
    cls_items = cls_run.items[:50]
    cls_preds = [Prediction(i.id, "1") for i in cls_items]
    scorer = boot.make_scorer(CLASSIFICATION, cls_run, cls_items, cls_preds)
    assert scorer.__qualname__.startswith("make_scorer")


@pytest.mark.parametrize("pair", ["en-de", "en-zh"])
def test_translation_resamples_come_from_sacrebleu_statistics_and_equal_rescoring(pair):
    from quintet.apps.translation.harness import HARNESS as MT

    folder = Path("data/translation/wmt17_sample") / pair
    refs = (folder / f"newstest2017.{pair[3:]}",)
    run = MT.read("", DataOptions(source_file=str(folder / "newstest2017.en"),
                                    reference_files=tuple(map(str, refs))))  # fmt: skip
    items = run.items[:150]
    predictions = [Prediction(i.id, " ".join(i.references[0].split()[::2]) if n % 2 else
                              i.references[0][: len(i.references[0]) // 2])
                   for n, i in enumerate(items)]  # fmt: skip
    scores = MT.score(run, items, predictions)
    fast = boot.make_scorer(MT, run, items, predictions, scores)
    assert fast.__qualname__.startswith("sacrebleu_resampler")
    for idx in np.random.default_rng(3).integers(0, len(items), size=(3, len(items))).tolist():
        again = MT.score(run, [items[i] for i in idx], [predictions[i] for i in idx]).metrics
        assert fast(idx) == again  # exactly, BLEU, chrF and TER
    # Signatures it cannot rebuild exactly: rescoring, never an approximation.
    scores.signatures["bleu"] = scores.signatures["bleu"].replace("tok:", "tok:x")
    assert boot.make_scorer(MT, run, items, predictions, scores).__qualname__.startswith(
        "make_scorer"
    )


def test_paired_bootstrap_skips_metrics_a_resample_cannot_compute():
    def a(idx):
        return {"x": 1.0, "y": float("nan")}

    def b(idx):
        return {"x": 2.0, "y": 1.0}

    result = boot.paired_bootstrap(a, b, 10, ["x", "y"], resamples=30)
    assert set(result) == {"x"} and result["x"]["delta"] == 1.0 and result["x"]["p_value"] < 0.1


def test_scoring_given_squad_predictions_equals_the_official_script(tmp_path):
    dataset = json.loads(Path(SQUAD).read_text(encoding="utf-8"))["data"]
    items = QA.read(SQUAD, DataOptions()).items
    answers = {}
    for n, item in enumerate(items):  # exact, upper-cased, partial, empty and wrong answers
        gold = item.references[n % len(item.references)]
        answers[item.id] = [gold, gold.upper() + ".", " ".join(gold.split()[1:]), "", "x"][n % 5]
    path = tmp_path / "predictions.json"  # the official {question id: answer} format
    path.write_text(json.dumps(answers))
    report = evaluate("qa", data=SQUAD, predictions_file=str(path), out=tmp_path / "run",
                      progress=False, bootstrap=0)  # fmt: skip
    official = official_evaluate(dataset, answers)
    assert report.n == len(items) == 5696
    for name in ("exact_match", "f1"):
        assert report.metrics[name] == pytest.approx(official[name], abs=1e-9)
    assert report.model == "predictions:predictions.json" and report.device == ""
    # The same answers as JSONL lines with id / prediction give the same numbers.
    jsonl = tmp_path / "answers.jsonl"
    jsonl.write_text("".join(json.dumps({"id": k, "prediction": v}) + "\n"
                             for k, v in answers.items()))  # fmt: skip
    again = evaluate("qa", data=SQUAD, predictions_file=str(jsonl), out=tmp_path / "run2",
                     progress=False, bootstrap=0)  # fmt: skip
    assert again.metrics == report.metrics


def test_given_predictions_must_line_up(tmp_path):
    text = tmp_path / "preds.txt"
    text.write_text("1\n0\n")
    with pytest.raises(DataError, match="2 lines but the data has 872 examples"):
        evaluate("classification", data=SST2, predictions_file=str(text), out=tmp_path / "a",
                 progress=False)  # fmt: skip
    jsonl = tmp_path / "preds.jsonl"
    jsonl.write_text('{"id": "2", "prediction": "1"}\nnot json\n')
    with pytest.raises(DataError, match=r"preds\.jsonl:2"):
        evaluate("classification", data=SST2, predictions_file=str(jsonl), out=tmp_path / "b",
                 progress=False)  # fmt: skip
    jsonl.write_text('{"id": "2", "prediction": "1"}\n')
    with pytest.raises(DataError, match="no prediction for 1 item"):
        evaluate("classification", data=SST2, limit=2, predictions_file=str(jsonl),
                 out=tmp_path / "c", progress=False)  # fmt: skip


def test_timing_counts_generated_tokens_when_predictions_carry_them():
    predictions = [Prediction(str(i), "x", {"num_tokens": 10}) for i in range(4)]
    timing = _timing(predictions, predict_s=2.0, total_s=3.0)
    assert timing == {"total_s": 3.0, "predict_s": 2.0, "examples_per_s": 2.0,
                      "generated_tokens": 40, "tokens_per_s": 20.0}  # fmt: skip
    assert "tokens_per_s" not in _timing([Prediction("1", "x")], 1.0, 1.0)


def test_a_killed_quintet_eval_process_resumes_to_the_uninterrupted_result(real_store, tmp_path):
    """SIGKILL a real ``quintet eval`` mid-run, then run the same command again."""
    import os
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "run"
    command = [sys.executable, "-m", "quintet.apps.cli", "eval", "classification",
               "--model", "minilm-l6",
               "--data", SST2, "--limit", "40", "--batch-size", "1", "--bootstrap", "50",
               "--option", "label_map=0=negative,1=positive", "--out", str(out)]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(Path.cwd())}
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env=env)  # fmt: skip
    log = out / "predictions.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if log.is_file() and len(log.read_bytes().splitlines()) >= 3:
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.02)
    assert process.wait(timeout=60) == -signal.SIGKILL, "the run ended before it could be killed"
    kept = len(log.read_bytes().splitlines())
    assert 3 <= kept < 40 and not (out / "report.json").exists()

    # Resumed with larger batches: the batch size is not part of a run's identity.
    command[command.index("--batch-size") + 1] = "16"
    resumed = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    report = json.loads((out / "report.json").read_text())
    whole = evaluate("classification", "minilm-l6", SST2, limit=40, batch_size=16,
                     out=tmp_path / "whole", progress=False, bootstrap=50,
                     options=DataOptions(extra={"label_map": "0=negative,1=positive"}))  # fmt: skip
    assert report["n"] == 40
    assert report["metrics"] == pytest.approx(whole.metrics)
    ids = [json.loads(line)["id"] for line in log.read_text().splitlines()]
    assert len(ids) == len(set(ids)) == 40

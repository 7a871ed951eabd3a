"""One evaluation's settings (EvalRun): passed down whole, the engine included, with no
process-wide switches (environment variables) flipped on the way."""

from __future__ import annotations

import os
import types
from dataclasses import replace
from pathlib import Path

import pytest

from quintet.core.testing import tiny_model_dir
from quintet.evaluation import registry
from quintet.evaluation.datasets import _datasets_offline
from quintet.evaluation.harness import evaluate, run_evaluation
from quintet.evaluation.protocol import DataOptions
from quintet.evaluation.run import EvalRun, EvaluationError

SST2 = "data/classification/sst2/dev.tsv"


@pytest.fixture(scope="module")
def tiny_classifier() -> str:
    return str(tiny_model_dir("bert", kind="sequence-classification", labels=["0", "1"]))


@pytest.mark.default_backend
def test_the_backend_reaches_the_app_without_the_environment(tmp_path, tiny_classifier) -> None:
    """``backend=`` picks the engine of the run's models; QUINTET_BACKEND stays unset."""
    assert "QUINTET_BACKEND" not in os.environ
    run = EvalRun("classification", tiny_classifier, SST2, backend="transformers", limit=8,
                  bootstrap=0, progress=False, out=tmp_path / "run")  # fmt: skip
    report = run_evaluation(run)
    assert report.settings["backend"].startswith("transformers")
    assert "QUINTET_BACKEND" not in os.environ
    # The default choice is another engine (int8 ONNX Runtime for an encoder): the backend
    # really was the run's setting, not the default.
    default = evaluate("classification", tiny_classifier, SST2, limit=8, bootstrap=0,
                       progress=False, out=tmp_path / "default")  # fmt: skip
    assert not default.settings["backend"].startswith("transformers")


def test_a_plugin_harness_without_backend_opens_as_before(tmp_path, tiny_classifier) -> None:
    """A harness whose ``open`` takes no ``backend`` runs on ``auto`` and refuses a named
    engine with one line (the engine would otherwise be silently ignored)."""
    from quintet.apps.classification.harness import HARNESS

    class Old:
        task, primary_metric = "old-classification", HARNESS.primary_metric
        higher_is_better = HARNESS.higher_is_better

        def read(self, data, options):
            return HARNESS.read(data, options)

        def open(self, run, model, decode, options):
            return HARNESS.open(run, model, decode, options)

        def score(self, run, items, predictions):
            return HARNESS.score(run, items, predictions)

    registry.register("old-classification", Old())
    try:
        report = evaluate("old-classification", tiny_classifier, SST2, limit=4, bootstrap=0,
                          progress=False, out=tmp_path / "old")  # fmt: skip
        assert report.n == 4
        with pytest.raises(EvaluationError, match="cannot choose an engine"):
            evaluate("old-classification", tiny_classifier, SST2, limit=4, bootstrap=0,
                     progress=False, out=tmp_path / "named", backend="transformers")  # fmt: skip
    finally:
        registry.unregister("old-classification")


def test_settings_are_checked_before_anything_is_read(tmp_path) -> None:
    """Neither the file nor the model exists: the setting's error comes first."""
    base = EvalRun("classification", "no-such-model", "no-such-file.tsv", out=tmp_path / "r")
    for changed, message in [
        ({"limit": 0}, "--limit must be at least 1"),
        ({"batch_size": 0}, "--batch-size must be at least 1"),
        ({"bootstrap": -1}, "--bootstrap must be 0"),
        ({"backend": "fastest"}, "unknown backend 'fastest'"),
    ]:
        with pytest.raises(EvaluationError, match=message):
            run_evaluation(replace(base, **changed))
    with pytest.raises(TypeError):
        evaluate("classification", "m", SST2, batchsize=8)  # a typo is no silent default


def test_the_default_folder_and_the_data_name() -> None:
    run = EvalRun("translation", "opus-mt-en-de", options=DataOptions(source_file="a/src.en"))
    assert run.dataset == "a/src.en"
    folder = run.out_dir()
    assert folder.name.startswith("translation-opus-mt-en-de-src.en-")
    scored = EvalRun("qa", data="dev.json", predictions_file="out/preds.jsonl", out="x")
    assert scored.out_dir() == Path("x")
    assert EvalRun("qa", decode=None, options=None).decode == {}


def test_offline_hub_datasets_leave_the_environment_alone(monkeypatch) -> None:
    """The offline switch is the datasets module's, for one load only."""
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    fake = types.SimpleNamespace(config=types.SimpleNamespace(HF_DATASETS_OFFLINE=False))
    with _datasets_offline(fake):
        assert fake.config.HF_DATASETS_OFFLINE is True
        assert "HF_DATASETS_OFFLINE" not in os.environ
    assert fake.config.HF_DATASETS_OFFLINE is False
    with pytest.raises(RuntimeError), _datasets_offline(fake):
        raise RuntimeError("load failed")
    assert fake.config.HF_DATASETS_OFFLINE is False

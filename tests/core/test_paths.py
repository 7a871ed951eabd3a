"""The shipped data sets are found through the package, or where QUINTET_DATA says."""

from __future__ import annotations

from pathlib import Path

import pytest

from quintet.core.paths import DataNotFoundError, data_path, data_root, shipped_or_given
from quintet.evaluation.mt_bench import load_judge_prompts


def test_the_checkout_data_is_found_beside_the_package(monkeypatch) -> None:
    monkeypatch.delenv("QUINTET_DATA", raising=False)
    assert (data_root() / "README.md").is_file()
    sst2 = data_path("data/classification/sst2/dev.tsv")  # README spelling
    assert sst2 == data_path("classification/sst2/dev.tsv") and sst2.is_file()


def test_quintet_data_moves_every_lookup(tmp_path: Path, monkeypatch) -> None:
    prompts = tmp_path / "chat" / "mt_bench" / "judge_prompts.jsonl"
    prompts.parent.mkdir(parents=True)
    prompts.write_text('{"name": "single-v1", "prompt_template": "x"}\n', encoding="utf-8")
    monkeypatch.setenv("QUINTET_DATA", str(tmp_path))
    assert data_root() == tmp_path
    assert list(load_judge_prompts()) == ["single-v1"]  # MT-Bench reads the configured copy
    with pytest.raises(DataNotFoundError, match=r"sst2/dev.tsv not found: set QUINTET_DATA"):
        data_path("classification/sst2/dev.tsv")


def test_a_recipe_without_its_data_says_how_to_provide_it(tmp_path: Path, monkeypatch) -> None:
    from quintet.apps.finetune.recipes import RECIPES, run_recipe
    from quintet.core.errors import QuintetError

    monkeypatch.setenv("QUINTET_DATA", str(tmp_path))
    name = next(iter(RECIPES))
    with pytest.raises(QuintetError, match="set QUINTET_DATA to a copy of its data/ folder"):
        run_recipe(name)


def test_shipped_data_is_found_from_any_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    shipped = shipped_or_given("data/classification/sst2/dev.tsv")
    assert Path(shipped).is_file() and Path(shipped).is_absolute()
    # A file of that name here wins; other paths are left as given.
    (tmp_path / "data" / "classification" / "sst2").mkdir(parents=True)
    (tmp_path / "data" / "classification" / "sst2" / "dev.tsv").write_text("mine")
    assert (
        shipped_or_given("data/classification/sst2/dev.tsv") == "data/classification/sst2/dev.tsv"
    )
    assert shipped_or_given("data/no/such.tsv") == "data/no/such.tsv"
    assert shipped_or_given("elsewhere.tsv") == "elsewhere.tsv"

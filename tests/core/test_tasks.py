"""Each task's spec is found by name through its entry point; core names no task."""

from __future__ import annotations

import ast
import csv
import importlib
import json
import subprocess
import sys
import tomllib
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from quintet.core import tasks
from quintet.core.config import TrainConfig
from quintet.core.errors import ConfigError
from quintet.core.tasks import FieldNames, Recipe, TaskSpec, TrainingTask, get_task

ROOT = Path(__file__).resolve().parents[2]
APPS = ("translation", "summarization", "qa", "classification", "chat")


def test_every_app_declares_its_spec_and_the_installed_entry_point_loads_it() -> None:
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"]
    points = declared[tasks.ENTRY_POINT_GROUP]
    installed = {point.name: point for point in entry_points(group=tasks.ENTRY_POINT_GROUP)}
    assert set(points) == set(installed) == set(APPS)
    assert tasks.task_names() == APPS  # listing order: the specs' own
    for name in APPS:
        assert points[name] == f"quintet.apps.{name}.spec:SPEC" == installed[name].value
        spec = get_task(name)
        assert spec is importlib.import_module(f"quintet.apps.{name}.spec").SPEC
        assert isinstance(spec, TaskSpec) and spec.name == name and spec.kinds
        assert spec.training is not None  # every task app can be fine-tuned
    assert tasks.TASK_TITLES["qa"] == "Question answering"


def test_aliases_and_specs_resolve_to_the_task() -> None:
    assert get_task("classify").name == "classification"
    assert get_task("translate").name == "translation"
    assert get_task("summarize").name == "summarization"
    qa = get_task("qa")
    assert get_task(qa) is qa


def test_an_unknown_task_is_one_line_naming_the_real_ones() -> None:
    with pytest.raises(ConfigError) as error:
        get_task("poetry")
    message = str(error.value)
    assert message == (
        "unknown task 'poetry': choose one of translation, summarization, qa, classification, chat"
    )


def test_each_recipe_is_listed_by_its_task_and_in_the_catalog() -> None:
    from quintet.apps.finetune.recipes import RECIPES
    from quintet.core import catalog

    assert set(RECIPES) == {"minilm-l6-sst2", "minilm-l6-squad", "smollm2-135m-samsum"}
    for recipe in RECIPES.values():
        assert recipe in get_task(recipe.task).recipes
        entry = catalog.get(recipe.name)
        assert entry is not None and entry.source == "recipe"
        assert (entry.location, entry.kind, entry.tasks) == (
            recipe.base,
            recipe.kind,
            recipe.serves,
        )


def test_a_recipe_listed_under_another_task_is_refused() -> None:
    stray = Recipe(name="x", task="qa", base="minilm-l6", train="t.csv", validation=None,
                   config=TrainConfig(), description="", kind="span", serves=("qa",),
                   summary="", license="", size_mb=1)  # fmt: skip
    with pytest.raises(ConfigError, match="recipe x is for 'qa' but listed by the 'poetry' task"):
        tasks.register(TaskSpec(name="poetry", title="Poetry", kinds=("causal",), recipes=(stray,)))
    assert "poetry" not in tasks.task_names()


def test_reading_the_specs_imports_no_torch() -> None:
    code = (
        "import sys; from quintet.core.tasks import task_specs; from quintet.core import catalog; "
        "task_specs(); catalog.entries(); print('torch' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.strip() == "False", done.stderr


def test_core_branches_on_no_task_name() -> None:
    """No comparison in core/ has a task's name as an operand (``task == "qa"``,
    ``task in ("summarization", "translation")``); docstrings and data tables may name them."""
    names = set(tasks.task_names())
    found = []
    for path in sorted((ROOT / "core").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Compare):
                continue
            for operand in (node.left, *node.comparators):
                constants = (
                    operand.elts
                    if isinstance(operand, ast.Tuple | ast.List | ast.Set)
                    else [operand]
                )
                if any(isinstance(c, ast.Constant) and c.value in names for c in constants):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not found, found


def _words_csv(path: Path, n: int = 48) -> Path:
    """Sentences labelled by the word they end with."""
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["sentence", "word"])
        for i in range(n):
            word = "good" if i % 2 else "bad"
            writer.writerow([f"the film was {word}", word])
    return path


def test_a_task_core_has_never_heard_of_fine_tunes_from_its_spec(tmp_path: Path) -> None:
    """A plugin's task, registered at run time, trains through core's engine: core reads the
    spec (reader, head, labels), not the task's name."""
    from quintet.core import data
    from quintet.core.store import ModelStore
    from quintet.core.testing import tiny_model_dir
    from quintet.core.training.trainer import finetune

    def read(path: str, fields: FieldNames, multi_label: bool) -> list:
        return data.read_classification(path, text_field="sentence", label_field="word")

    spec = TaskSpec(
        name="word-spotting", title="Word spotting", kinds=("sequence-classification",),
        aliases=("spot",),
        training=TrainingTask(read=read, kind="sequence-classification", labelled=True),
    )  # fmt: skip
    tasks.register(spec)
    try:
        store = ModelStore(tmp_path / "home")
        config = TrainConfig(max_steps=2, batch_size=8, eval_every=2, validation_fraction=0.25)
        result = finetune("spot", str(tiny_model_dir("bert")), _words_csv(tmp_path / "w.csv"),
                          "spotter", config, store=store, progress=False)  # fmt: skip
    finally:
        tasks.unregister("word-spotting")
    assert result.steps == 2
    assert result.model.manifest["task"] == "word-spotting"
    config_json = json.loads((Path(result.model.path) / "config.json").read_text())
    assert set(config_json["id2label"].values()) == {"bad", "good"}  # labels from the data
    with pytest.raises(ConfigError, match="unknown task 'spot'"):
        get_task("spot")


def test_the_server_and_the_pages_take_each_task_s_kinds_from_its_spec() -> None:
    from quintet.apps.server.models import endpoint_kinds
    from quintet.apps.ui.widgets import serving_kinds

    served = endpoint_kinds()
    for spec in tasks.task_specs():
        assert served[spec.route] == spec.kinds == serving_kinds(spec.name)
    # The OpenAI endpoints that are no task's, and /v1/models' order.
    assert list(served) == [
        "chat", "completions", "embeddings", "translate", "summarize", "qa", "classify",
    ]  # fmt: skip
    assert serving_kinds("embeddings") == served["embeddings"] == ("encoder",)
    assert serving_kinds("poetry") == ()


def test_the_catalog_reads_each_task_s_default_models_from_its_spec() -> None:
    from quintet.core import catalog
    from quintet.core.errors import ModelNotFoundError

    for spec in tasks.task_specs():
        assert catalog.task_defaults(spec.name) is spec.default_models
    assert catalog.task_defaults("embeddings") is catalog.EMBEDDING_DEFAULTS
    defaults = tasks.TaskDefaults(task="poetry", hub_default="x", offline_defaults=("minilm-l6",))
    tasks.register(TaskSpec(name="poetry", title="Poetry", kinds=("causal",)))
    try:
        with pytest.raises(ModelNotFoundError, match="task 'poetry' has no default models"):
            catalog.task_defaults("poetry")
        tasks.register(
            TaskSpec(name="poetry", title="Poetry", kinds=("causal",), default_models=defaults)
        )
        assert catalog.task_defaults("poetry") is defaults
        with pytest.raises(ConfigError, match="default models for 'poetry' listed by the 'odes'"):
            tasks.register(
                TaskSpec(name="odes", title="Odes", kinds=("causal",), default_models=defaults)
            )
    finally:
        tasks.unregister("poetry")
    assert "odes" not in tasks.task_names()


def test_each_shipped_training_set_is_in_the_data() -> None:
    from quintet.core.paths import data_path

    shipped = [s for spec in tasks.task_specs() if spec.training for s in spec.training.shipped]
    assert len(shipped) == 5
    for training_set in shipped:
        assert data_path(training_set.train).is_file()
        assert training_set.validation is None or data_path(training_set.validation).is_file()

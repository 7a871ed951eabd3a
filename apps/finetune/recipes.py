"""The recipes that build Quintet's offline task models from the packaged ones.

Each recipe (:class:`quintet.core.tasks.Recipe`) is one call of
:func:`quintet.core.training.trainer.finetune` on data shipped in ``data/``, plus the
evaluation its report needs. ``quintet recipes run NAME`` runs one; the result lands in the
store under the recipe's name, where the apps find it.

Recipes are task-level (each names a task, its shipped data and the evaluation its report
needs), so each task's spec lists its own (``apps/<task>/spec.py``); the catalog lists the
models they build from the same specs.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from quintet.core import paths
from quintet.core.errors import ModelNotFoundError, QuintetError
from quintet.core.store import ModelStore
from quintet.core.tasks import Recipe, recipes

__all__ = ["RECIPES", "Recipe", "get_recipe", "run_recipe"]


# Every task's recipes, by name: each task's spec lists its own (apps/<task>/spec.py).
RECIPES: dict[str, Recipe] = recipes()


def get_recipe(name: str) -> Recipe:
    """The recipe called ``name``, or a one-line error listing the real ones."""
    try:
        return RECIPES[name]
    except KeyError:
        raise ModelNotFoundError(
            f"unknown recipe {name!r}: choose one of {', '.join(RECIPES)}"
        ) from None


def run_recipe(
    name: str,
    *,
    data_root: Path | None = None,
    store: ModelStore | None = None,
    resume: bool = False,
    overrides: dict[str, Any] | None = None,
    extra_report: bool = True,
) -> dict[str, Any]:
    """Run a recipe end to end and return its report (also written to the run folder).

    ``extra_report=False`` skips the recipe's extra evaluation after training (SAMSum's
    ROUGE of the base and the new model: about 4 of its 10 minutes); the model and its
    validation figures are the same. The background builder skips it.
    """
    # Imported here: the engine pulls torch, which `quintet recipes list` does not need.
    from quintet.core.training.trainer import finetune

    recipe = get_recipe(name)
    if overrides:
        recipe = replace(recipe, config=replace(recipe.config, **overrides))
    data_root = data_root or paths.data_root()
    store = store or ModelStore()
    train = data_root / recipe.train
    if not train.is_file():
        raise QuintetError(
            f"recipe {name} needs {train}: run it from a Quintet checkout or set "
            f"{paths.DATA_ENV} to a copy of its data/ folder"
        )
    started = time.perf_counter()
    result = finetune(
        recipe.task,
        recipe.base,
        train,
        recipe.name,
        recipe.config,
        validation_data=data_root / recipe.validation if recipe.validation else None,
        fields=recipe.fields,
        resume=resume,
        store=store,
    )
    report: dict[str, Any] = {
        "recipe": name,
        "description": recipe.description,
        "base": recipe.base,
        "steps": result.steps,
        "training_seconds": result.seconds,
        "validation": result.validation,
        "config": asdict(recipe.config),
    }
    if recipe.report is not None and extra_report:
        report.update(recipe.report(recipe, result, data_root))
    report["total_seconds"] = time.perf_counter() - started
    out = store.home / "runs" / name / "report.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    return report

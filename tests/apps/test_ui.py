"""The shared widgets and the per-process model cache of the Streamlit suite."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from quintet.apps.ui import cached_app, model_lock, parse_rows
from quintet.core.decoding import Generator
from quintet.core.errors import QuintetError
from quintet.core.store import ModelStore


def widgets_script() -> None:
    import streamlit as st

    from quintet.apps.ui import decode_controls, model_picker, show_error
    from quintet.core.errors import QuintetError

    model = model_picker("chat", key="m")
    decode = decode_controls(key="d")
    st.write(f"model={model}")
    st.write(f"decode={sorted(decode.items())}")
    try:
        {}["missing"]
    except KeyError as exc:
        show_error(exc, "looking it up")
    show_error(QuintetError("no such model 'x': pull one on the Models page"))


def test_picker_and_decoding_controls(real_store: ModelStore, monkeypatch) -> None:
    monkeypatch.setenv("QUINTET_HOME", str(real_store.home))
    app = AppTest.from_function(widgets_script, default_timeout=60).run()
    assert not app.exception
    picker = app.selectbox(key="m")
    # The offline default is preselected and listed first, marked present.
    assert picker.value == "smollm2-135m-instruct"
    assert picker.options[0] == "✓ smollm2-135m-instruct (default)"
    assert app.caption[0].value.startswith("In store (542 MB); default: offline default")
    assert picker.options[-1].startswith("Other")
    assert "model=smollm2-135m-instruct" in app.markdown[0].value

    app.radio(key="d-strategy").set_value("beam search").run()
    assert "('num_beams', 4)" in app.markdown[1].value
    app.radio(key="d-strategy").set_value("sampling").run()
    assert "('do_sample', True)" in app.markdown[1].value

    picker.set_value("Other: a hub id or a local path…").run()
    app.text_input(key="m-other").input("/some/local/model").run()
    assert "model=/some/local/model" in app.markdown[0].value


def test_errors_are_readable_never_a_bare_traceback(real_store: ModelStore, monkeypatch) -> None:
    monkeypatch.setenv("QUINTET_HOME", str(real_store.home))
    app = AppTest.from_function(widgets_script, default_timeout=60).run()
    generic, user_error = (e.value for e in app.error)
    assert generic.startswith("Something went wrong while looking it up: KeyError")
    assert "Traceback" not in generic
    assert user_error == "no such model 'x': pull one on the Models page"
    # The details are there for a bug report, folded away.
    assert app.expander[0].label == "Details for a bug report"


def test_parse_rows() -> None:
    assert parse_rows("a.csv", "text,label\nhello,1\n") == [{"text": "hello", "label": "1"}]
    assert parse_rows("a.tsv", "text\tx\nhi\t2\n") == [{"text": "hi", "x": "2"}]
    assert parse_rows("a.txt", "one\n\ntwo\n") == [{"text": "one"}, {"text": "two"}]
    assert parse_rows("a.jsonl", '{"text": "x", "n": 1}\n') == [{"text": "x", "n": "1"}]
    with pytest.raises(QuintetError, match=r"a.jsonl:2: a list; expected one JSON object"):
        parse_rows("a.jsonl", '{"text": "x"}\n[1]\n')


def test_two_sessions_share_one_model_and_get_their_own_answers(
    real_store: ModelStore, monkeypatch
) -> None:
    monkeypatch.setenv("QUINTET_HOME", str(real_store.home))
    shared = cached_app(Generator, "smollm2-135m-instruct")
    assert cached_app(Generator, "smollm2-135m-instruct") is shared  # loaded once
    assert shared.lock is model_lock("smollm2-135m-instruct")
    prompts = [
        [{"role": "user", "content": "What is the capital of France?"}],
        [{"role": "user", "content": "Write one word: a colour of the sky."}],
    ]
    alone = [shared.complete(p, max_new_tokens=10).text for p in prompts]
    assert alone[0] != alone[1]

    together: dict[int, str] = {}
    start = threading.Barrier(2)

    def session(index: int) -> None:
        start.wait()  # both calls arrive at the same moment
        together[index] = shared.complete(prompts[index], max_new_tokens=10).text

    threads = [threading.Thread(target=session, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert together == {0: alone[0], 1: alone[1]}


def test_a_call_holds_the_model_lock(tmp_path: Path) -> None:
    class Probe:
        def __init__(self, model: str) -> None:
            self.model_name = model

        def busy(self) -> bool:
            # Another thread cannot take the lock while this call runs.
            result: list[bool] = []
            other = threading.Thread(
                target=lambda: result.append(model_lock(self.model_name).acquire(blocking=False))
            )
            other.start()
            other.join()
            return not result[0]

    shared = cached_app(Probe, f"probe-{tmp_path.name}")
    assert shared.busy() is True
    assert shared.app.busy() is False  # the same call without the lock


def test_a_single_item_gets_no_bar_frozen_at_zero() -> None:
    from quintet.apps.ui.widgets import progress_text

    assert progress_text("Answering", 0, 1, 5.0) is None  # the spinner's clock instead
    assert progress_text("Answering", 0, 0, 5.0) is None
    assert progress_text("Translating", 1, 4, 10.0) == "Translating: 1/4 (10 s, about 30 s left)"


def progress_script() -> None:
    import streamlit as st

    from quintet.apps.ui import run_in_batches, run_with_progress

    result, _ = run_in_batches(lambda chunk: [x * 2 for x in chunk], [21], label="Doubling")
    st.write(f"single={result}")
    result, _ = run_with_progress(lambda progress: progress(3, 3) or "ok", label="Three")
    st.write(f"several={result}")


def growing_text_script() -> None:
    import streamlit as st

    from quintet.apps.ui.widgets import GrowingText

    box = GrowingText(every_s=0)  # what growing_text() yields, while the model writes
    box("Hallo")
    box("Hallo Welt")
    if st.session_state.get("finished"):
        box.clear()  # what leaving the block does
        st.text("final")


def test_growing_text_shows_the_text_so_far_and_goes_when_done() -> None:
    app = AppTest.from_function(growing_text_script, default_timeout=30).run()
    assert [t.value for t in app.text] == ["Hallo Welt"]
    assert [c.value for c in app.caption] == ["Generating…"]
    app.session_state["finished"] = True
    app.run()
    assert [t.value for t in app.text] == ["final"] and not app.caption


def test_run_helpers_return_their_results_and_leave_no_bar() -> None:
    app = AppTest.from_function(progress_script, default_timeout=30).run()
    assert not app.exception
    assert [m.value for m in app.markdown] == ["single=[42]", "several=ok"]
    assert not app.get("progress")

"""The Chat page, headless with AppTest, on the real SmolLM2 (a few tokens): a streamed reply
with its timings, history kept across reruns, system prompt, reset, save."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

PAGE = str(Path(__file__).resolve().parents[3] / "apps" / "chat" / "page.py")


def _page() -> AppTest:
    app = AppTest.from_file(PAGE, default_timeout=180).run()
    assert not app.exception, app.exception
    app.number_input(key="chat-decode-max").set_value(8).run()
    return app


def test_chat_streams_keeps_history_and_resets(real_store) -> None:
    app = _page()
    app.text_area(key="chat-system").set_value("You are a geography teacher.").run()
    app.chat_input(key="chat-input").set_value("What is the capital of France?").run()
    assert not app.exception and not app.error, (app.exception, app.error)
    messages = app.chat_message
    assert [m.name for m in messages] == ["user", "assistant"]
    assert messages[0].markdown[0].value == "What is the capital of France?"
    session = app.session_state["chat-session"]
    reply = session.messages[-1]["content"]
    assert reply and session.messages[0] == {
        "role": "system",
        "content": "You are a geography teacher.",
    }
    captions = [c.value for c in messages[1].caption]
    assert any("tokens/s" in c and "first token after" in c for c in captions)

    # A second turn: the first one is still shown, from the session's history.
    app.chat_input(key="chat-input").set_value("And of Italy?").run()
    assert not app.exception
    assert [m.name for m in app.chat_message] == ["user", "assistant"] * 2
    assert app.chat_message[1].markdown[0].value == reply
    saved = json.loads(app.session_state["chat-session"].to_json())
    assert [m["role"] for m in saved["messages"]] == ["system", "user", "assistant"] * 1 + [
        "user",
        "assistant",
    ]

    app.button(key="chat-reset").click().run()
    assert not app.exception
    assert len(app.chat_message) == 0
    assert app.session_state["chat-session"].messages[0]["role"] == "system"


def test_empty_history_page_and_context_window_setting(real_store) -> None:
    app = _page()
    assert len(app.chat_message) == 0 and not app.error
    # A tiny window: an over-long message is refused with a readable error, not a traceback.
    app.number_input(key="chat-window").set_value(256).run()
    app.chat_input(key="chat-input").set_value("word " * 400).run()
    assert not app.exception
    assert any("more than the" in e.value and "fit" in e.value for e in app.error)
    assert app.session_state["chat-session"].messages == []


def test_load_an_uploaded_conversation_and_continue_it(real_store) -> None:
    saved = {
        "model": "smollm2-135m-instruct",
        "messages": [
            {"role": "system", "content": "You answer in one word."},
            {"role": "user", "content": "Capital of France?"},
            {"role": "assistant", "content": "Paris."},
        ],
    }
    app = _page()
    app.file_uploader(key="chat-upload").upload(
        "conversation.json", json.dumps(saved).encode(), "application/json"
    ).run()
    assert not app.exception and not app.error, (app.exception, app.error)
    assert [m.name for m in app.chat_message] == ["user", "assistant"]
    assert app.chat_message[1].markdown[0].value == "Paris."
    assert app.text_area(key="chat-system").value == "You answer in one word."
    app.chat_input(key="chat-input").set_value("And of Italy?").run()  # it continues
    messages = app.session_state["chat-session"].messages
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user", "assistant"]
    assert messages[2]["content"] == "Paris."  # a rerun does not load the same upload again


def test_a_broken_upload_is_a_readable_error(real_store) -> None:
    app = _page()
    app.file_uploader(key="chat-upload").upload("c.json", b"{not json", "application/json").run()
    assert not app.exception
    assert app.error and "JSON" in app.error[0].value


def test_stop_keeps_the_text_written_so_far(real_store) -> None:
    """Stop reruns the page while a reply streams; the page cancels the abandoned stream and
    keeps its partial text, marked stopped."""
    app = _page()
    app.chat_input(key="chat-input").set_value("Hi").run()
    session = app.session_state["chat-session"]
    stream = session.stream("Tell me a long story about a dragon.", max_new_tokens=64)
    shown = "".join(delta for _, delta in zip(range(3), stream, strict=False))
    assert shown
    # Clicking Stop (enabled in the run that writes a reply) reruns the page mid-stream.
    # AppTest cannot click during a run, so a plain rerun stands in for the click here; the
    # real click is tests/apps/test_browser.py::test_chat_stop_marks_the_reply_stopped_at_once.
    app.run()
    assert not app.exception and not app.error
    assert session.streaming is None and session.messages[-1]["role"] == "assistant"
    kept = session.messages[-1]["content"]
    assert kept.startswith(shown.strip()) and len(kept.split()) < 64
    assert any("stopped" in c.value for c in app.chat_message[-1].caption)


def test_a_window_smaller_than_the_reply_is_refused_in_page_terms(real_store) -> None:
    app = _page()
    app.number_input(key="chat-window").set_value(1).run()
    app.chat_input(key="chat-input").set_value("Hello").run()
    assert not app.exception
    assert [e.value for e in app.error] == [
        "The context window (1 tokens) must be larger than Max new tokens (8): the reply alone "
        "takes that much. Raise the window in the sidebar, lower Max new tokens, or set the "
        "window to 0 for the model's own."
    ]
    assert app.session_state["chat-session"].messages == []  # nothing was sent


def test_stop_is_clickable_only_while_a_reply_is_written(real_store) -> None:
    app = _page()
    assert app.button(key="chat-stop").disabled  # nothing runs
    app.chat_input(key="chat-input").set_value("Hi").run()
    assert not app.exception and not app.error
    # The reply is written: the page redrew itself, Stop is off without another action, and
    # the reply keeps its caption.
    assert app.button(key="chat-stop").disabled
    assert app.chat_message[-1].markdown[0].value and app.chat_message[-1].caption
    # A message refused for the window never starts a reply: nothing to stop either.
    app.number_input(key="chat-window").set_value(1).run()
    app.chat_input(key="chat-input").set_value("Hello").run()
    assert app.error and app.button(key="chat-stop").disabled


def test_the_caption_reports_the_wait_for_the_model(real_store) -> None:
    """Another session holds the model for 2 s: the caption says the user waited, and counts
    the first token from sending (it said "first token after 0.37 s" after a 29 s wait)."""
    import threading
    import time

    from quintet.apps.ui import model_lock

    app = _page()
    app.chat_input(key="chat-input").set_value("Hi").run()  # the model is loaded now
    lock, held = model_lock("smollm2-135m-instruct"), threading.Event()

    def other_session() -> None:
        with lock:
            held.set()
            time.sleep(2.0)

    threading.Thread(target=other_session).start()
    held.wait(10)
    app.chat_input(key="chat-input").set_value("Hello again").run()
    assert not app.exception and not app.error
    [caption] = [c.value for c in app.chat_message[-1].caption]
    waited = float(caption.split("waited ")[1].split(" s")[0])
    first = float(caption.split("first token after ")[1].split(" s")[0])
    assert 1.5 <= waited <= first, caption


def test_a_question_stopped_while_waiting_stays_with_a_notice(real_store) -> None:
    """Stop while "Waiting..." interrupts the run before the question reaches the history;
    the next run keeps it on the page, says it was not sent, and the model never sees it.
    (AppTest cannot click during a run: the run that waited leaves the question pending, as
    the interrupted run does; the browser walk clicks for real.)"""
    app = _page()
    app.chat_input(key="chat-input").set_value("Hi").run()
    app.session_state["chat-pending"] = "What should I see in Lisbon?"
    app.run()
    assert not app.exception and not app.error
    last = app.chat_message[-1]
    assert last.name == "user" and last.markdown[0].value == "What should I see in Lisbon?"
    assert last.info[0].value.startswith("Stopped while waiting for the model: this question "
                                         "was not sent")  # fmt: skip
    session = app.session_state["chat-session"]
    assert "Lisbon" not in json.dumps(session.messages)  # not sent, not saved
    app.run()  # still there on the next rerun, in its place
    assert app.chat_message[-1].markdown[0].value == "What should I see in Lisbon?"
    app.button(key="chat-reset").click().run()
    assert len(app.chat_message) == 0


@pytest.mark.default_backend
def test_the_page_starts_on_the_measured_chat_decoding_and_says_so(real_store) -> None:
    """Greedy alone loops on the packaged model: the page starts with repetition penalty 1.1
    (apps/chat/settings.py has the measurement) and says so under the controls."""
    from quintet.apps.ui.cache import clear

    clear()  # a generator other tests built on the pinned transformers engine
    app = _page()
    assert app.radio(key="chat-decode-strategy").value == "greedy"
    assert app.slider(key="chat-decode-rep").value == 1.1
    assert any(c.value.startswith("Default: greedy with repetition penalty 1.1")
               for c in app.sidebar.caption)  # fmt: skip
    app.chat_input(key="chat-input").set_value("Hi").run()
    assert not app.exception and not app.error
    reply = app.session_state["chat-session"].last_reply
    assert reply.backend == "onnxruntime-genai"  # its scheduler honours the penalty
    app.slider(key="chat-decode-rep").set_value(1.0).run()
    app.chat_input(key="chat-input").set_value("Hi again").run()
    assert app.session_state["chat-session"].last_reply.backend == "onnxruntime-genai"

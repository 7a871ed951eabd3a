"""ChatSession on the real SmolLM2-135M-Instruct (few tokens): turns, streaming, cancel,
context window (drop / summarize), edit / undo / retry, save and load."""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path

import pytest

from quintet.apps.chat import ChatError, ChatSession
from quintet.apps.chat.context import SUMMARY_PREFIX
from quintet.core.decoding import Generator
from quintet.core.decoding.prompts import InputTooLongError, encode
from quintet.core.errors import ConfigError
from quintet.core.models import load
from quintet.core.store import ModelStore

MODEL = "smollm2-135m-instruct"


@pytest.fixture(scope="module")
def generator(real_store: ModelStore) -> Generator:
    # One model for the module: every session below shares its weights.
    return Generator(load(MODEL), batch_size=1)


def session(generator: Generator, **options) -> ChatSession:
    return ChatSession(generator, **{"max_new_tokens": 8, **options})


def test_multi_turn_keeps_history_and_renders_it_with_the_template(generator) -> None:
    chat = session(generator, system_prompt="You are a helpful assistant.")
    first = chat.send("What is the capital of France?", max_new_tokens=12)
    assert "Paris" in first.text
    assert first.finish_reason in ("stop", "length") and first.num_tokens > 0
    assert first.time_to_first_token_s is not None and first.tokens_per_s > 0
    second = chat.send("Repeat the city name only.")
    roles = [m["role"] for m in chat.messages]
    assert roles == ["system", "user", "assistant", "user", "assistant"]
    assert chat.messages[2]["content"] == first.text
    assert chat.messages[4]["content"] == second.text
    # The second turn's prompt was the whole chat in the model's ChatML template.
    ids = encode(chat.loaded, chat.messages[:4])
    text = chat.loaded.tokenizer.decode(ids)
    assert text.count("<|im_start|>") == 5 and text.endswith("<|im_start|>assistant\n")
    assert second.prompt_tokens == len(ids)


def test_stream_deltas_join_to_the_reply_in_history(generator) -> None:
    chat = session(generator, max_new_tokens=12)
    stream = chat.stream("Name three colours.")
    deltas = list(stream)
    assert len(deltas) > 1
    assert "".join(deltas) == stream.result.text == chat.messages[-1]["content"]
    assert stream.result.finish_reason in ("stop", "length")
    assert stream.result.time_to_first_token_s is not None


def test_cancel_stops_and_keeps_the_partial_reply(generator) -> None:
    chat = session(generator, max_new_tokens=200)
    stream = chat.stream("Write a long story about a dragon.")
    shown = []
    for delta in stream:
        shown.append(delta)
        if len(shown) == 3:
            stream.cancel()
    reply = stream.result
    assert reply.finish_reason == "cancelled" and reply.cancelled
    assert reply.text == "".join(shown) and reply.text
    assert reply.num_tokens < 30  # it stopped, long before 200 tokens
    assert chat.messages[-1] == {"role": "assistant", "content": reply.text}
    # The session is usable again after a cancelled stream.
    assert chat.send("Thanks.").text


def test_cancel_from_another_thread_and_abandoned_streams(generator) -> None:
    chat = session(generator, max_new_tokens=200)
    stream = chat.stream("Count from one to one hundred in words.")
    timer = threading.Timer(0.5, stream.cancel)
    timer.start()
    text = "".join(stream)
    timer.join()
    assert stream.result.cancelled and stream.result.text == text
    # A consumer that stops reading (breaks) ends the turn as cancelled too.
    stream = chat.stream("Count again.")
    for _ in stream:
        break
    del _
    stream_iter_closed = stream.result  # closing happened at the break
    assert stream_iter_closed.cancelled
    assert [m["role"] for m in chat.messages] == ["user", "assistant"] * 2


def test_stream_in_progress_blocks_a_second_message(generator) -> None:
    chat = session(generator)
    stream = chat.stream("Hello!")
    with pytest.raises(ChatError, match="still streaming"):
        chat.send("Another")
    stream.result  # noqa: B018 - finishes the stream
    assert chat.send("Another").text is not None


def test_empty_message_and_bad_options_are_clear_errors(generator) -> None:
    chat = session(generator)
    with pytest.raises(ChatError, match="empty message"):
        chat.send("   ")
    with pytest.raises(ConfigError, match="unknown decoding option"):
        ChatSession(generator, max_tokens=5)
    with pytest.raises(ConfigError, match="context_strategy"):
        ChatSession(generator, context_strategy="truncate")
    with pytest.raises(ConfigError, match="beam"):
        chat.stream("Hi", num_beams=2)
    assert chat.messages == []  # nothing half-added by the failures


def test_encoder_model_is_refused(real_store) -> None:
    with pytest.raises(ChatError, match="decoder-only"):
        ChatSession("minilm-l6")


def _long_turns(chat: ChatSession, n: int) -> None:
    for i in range(n):
        chat._turns += [
            {"role": "user", "content": f"Tell me fact number {i} about the sea, in detail."},
            {"role": "assistant", "content": f"Fact {i}: the sea is deep and salty. " * 6},
        ]


def test_window_overflow_drops_oldest_turns_and_keeps_the_system_prompt(generator) -> None:
    chat = session(generator, system_prompt="You are a sailor.", max_context_tokens=300)
    _long_turns(chat, 6)
    reply = chat.send("Which fact was first?")
    assert reply.context_notice.startswith("Context window full: dropped the")
    dropped = chat.hidden_messages
    assert dropped >= 2 and dropped % 2 == 0  # whole user/assistant pairs
    seen = chat.context_messages
    assert seen[0] == {"role": "system", "content": "You are a sailor."}
    assert seen[1] == chat.messages[1 + dropped]  # the oldest ones went first
    assert seen[-1]["content"] == reply.text and seen[-2]["content"] == "Which fact was first?"
    # What the model saw fit the window with room for the reply.
    assert reply.prompt_tokens + 8 <= 300
    assert len(encode(chat.loaded, seen[:-1])) == reply.prompt_tokens
    # The whole conversation is still there for the user and the saved file.
    assert len(chat.messages) == 1 + 12 + 2
    # Next turn: no more dropping needed when it fits, and no notice.
    chat._turns = chat._turns[:-2]
    assert chat.send("Which fact was first?").context_notice == ""


def test_message_too_long_alone_is_refused_not_truncated(generator) -> None:
    chat = session(generator, system_prompt="Be brief.", max_context_tokens=120)
    chat.send("Hi")
    before = chat.messages
    with pytest.raises(InputTooLongError, match=r"tokens .* more than the 112 that fit"):
        chat.send("word " * 200)
    assert chat.messages == before and chat.hidden_messages == 0


def test_max_new_tokens_over_the_window_is_refused_without_a_negative_budget(generator) -> None:
    chat = session(generator, max_new_tokens=10**9, max_context_tokens=120)
    with pytest.raises(InputTooLongError) as info:
        chat.send("Hi")
    message = str(info.value)
    assert "max_new_tokens 1000000000 leaves no room" in message
    assert "lower max_new_tokens below 120" in message
    assert not re.search(r"-\d", message)  # no negative budget
    assert chat.messages == []


def test_summarize_strategy_replaces_old_turns_with_a_summary(generator) -> None:
    chat = session(
        generator,
        system_prompt="You are a sailor.",
        context_strategy="summarize",
        max_context_tokens=400,
    )
    _long_turns(chat, 6)
    reply = chat.send("Which fact was first?")
    assert "summarized the" in reply.context_notice
    assert chat.summary  # written by the model
    system = chat.context_messages[0]
    assert system["role"] == "system"
    assert system["content"].startswith("You are a sailor.")
    assert SUMMARY_PREFIX + chat.summary in system["content"]
    assert reply.prompt_tokens + 8 <= 400
    # The summary and the model's view survive a save / load.
    again = ChatSession.load(chat.to_json(), generator, max_context_tokens=400)
    assert again.summary == chat.summary and again.hidden_messages == chat.hidden_messages
    assert again.context_messages == chat.context_messages


def test_edit_undo_retry_reset(generator) -> None:
    chat = session(generator, system_prompt="You are terse.")
    chat.send("Say hello.")
    chat.edit(0, "You are very polite.")
    assert chat.system_prompt == "You are very polite."
    chat.edit(1, "Say goodbye.")
    assert chat.messages[1] == {"role": "user", "content": "Say goodbye."}
    with pytest.raises(ChatError, match="no message 3"):
        chat.edit(3, "x")
    again = chat.retry()
    assert [m["role"] for m in chat.messages] == ["system", "user", "assistant"]
    assert chat.messages[-1]["content"] == again.text
    assert chat.undo() == "Say goodbye."
    assert [m["role"] for m in chat.messages] == ["system"]
    with pytest.raises(ChatError, match="nothing to retry"):
        chat.retry()
    chat.send("Hi")
    chat.reset()
    assert chat.messages == [{"role": "system", "content": "You are very polite."}]


def test_save_load_round_trip_and_continue(generator, tmp_path: Path) -> None:
    chat = session(generator, system_prompt="You are a pirate.")
    chat.send("Hello there!")
    path = tmp_path / "chat.json"
    chat.save(path)
    data = json.loads(path.read_text())
    assert data["model"] == MODEL and data["messages"] == chat.messages
    loaded = ChatSession.load(path, generator, max_new_tokens=8)
    assert loaded.messages == chat.messages and loaded.system_prompt == "You are a pirate."
    loaded.send("And goodbye.")
    assert len(loaded.messages) == 5
    # Loading by the saved model name works too (the store's SmolLM2).
    assert ChatSession.load(path).model_name == MODEL
    # An atomic save leaves no temporary file behind and replaces the old content whole.
    loaded.save(path)
    assert [p.name for p in tmp_path.iterdir()] == ["chat.json"]
    assert len(json.loads(path.read_text())["messages"]) == 5


def test_failed_save_keeps_the_previous_file(generator, tmp_path: Path) -> None:
    chat = session(generator)
    chat.send("Hi")
    path = tmp_path / "chat.json"
    chat.save(path)
    before = path.read_text()
    chat._turns.append({"role": "user", "content": "\ud800"})  # not encodable: write fails
    with pytest.raises(UnicodeEncodeError):
        chat.save(path)
    assert path.read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["chat.json"]


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("{not json", r"not JSON \(.* at line 1"),
        ('{"turns": []}', 'no "messages" field'),
        ('{"messages": {"role": "user"}}', "or a list of messages, got dict"),
        ('{"messages": [{"role": "bot", "content": "hi"}]}', "message 0 has role 'bot'"),
        ('{"messages": [{"role": "user", "content": 3}]}', r"message 0 \(user\) content is int"),
        (
            '[{"role": "user", "content": "a"}, {"role": "system", "content": "b"}]',
            "message 1 is a system message; only the first may be",
        ),
        ('{"messages": [], "context_start": -1}', '"context_start" must be a count'),
    ],
)
def test_malformed_files_name_the_problem(tmp_path: Path, content: str, problem: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(ChatError, match=problem) as info:
        ChatSession.load(path)
    if "not JSON" in problem or "messages" in problem:
        assert str(path) in str(info.value)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ChatError, match="no such conversation file"):
        ChatSession.load(tmp_path / "absent.json")


def test_a_reply_read_by_two_threads_ends_for_both(real_store) -> None:
    """A page run stopped mid-reply closes its reading while the next run finishes the reply:
    the stream's one end marker must not leave the second reader waiting forever."""
    import threading

    from quintet.apps.chat import ChatSession

    session = ChatSession("smollm2-135m-instruct")
    stream = session.stream("Tell me a long story about a dragon.", max_new_tokens=64)
    first = iter(stream)
    next(first)
    stream.cancel()
    results = []

    def old_run() -> None:  # the interrupted run's generator is closed: it drains the end
        first.close()

    def new_run() -> None:  # the next run finishes the reply meanwhile
        results.append(stream.result)

    readers = [threading.Thread(target=f, daemon=True) for f in (old_run, new_run)]
    for reader in readers:
        reader.start()
    for reader in readers:
        reader.join(30)
    assert not any(reader.is_alive() for reader in readers), "a reader waits forever"
    [result] = results
    assert result.cancelled and session.streaming is None
    assert session.messages[-1]["content"] == result.text

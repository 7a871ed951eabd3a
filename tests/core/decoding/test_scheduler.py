"""The continuous-batching scheduler on the real SmolLM2 int8 onnxruntime-genai conversion:
requests join and leave between steps, keep their own settings, cancel frees a slot, one
request's error fails only it, greedy output equals the single-request path, chat turns
reuse the KV cache, and the server's streams overlap in time."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from quintet.apps.chat import ChatSession
from quintet.core.config import DecodeConfig
from quintet.core.decoding import Generator
from quintet.core.decoding.prompts import encode
from quintet.core.decoding.scheduler import Job, Scheduler
from quintet.core.errors import ConfigError
from quintet.core.models import Loaded, load
from quintet.core.store import ModelStore
from tests.apps.server.conftest import start_server, stop_server

pytestmark = pytest.mark.default_backend
NAME = "smollm2-135m-instruct"
CHATS = [
    [{"role": "user", "content": "Name three colours."}],
    [{"role": "user", "content": "Tell me one fact about the moon, in one sentence."}],
    [{"role": "user", "content": "Write a haiku about rain."}],
]


@pytest.fixture(scope="module")
def engine_home(tmp_path_factory: pytest.TempPathFactory, real_store: ModelStore) -> Iterator[Path]:
    """A temporary store holding SmolLM2 (linked from the real one) and, once built here,
    its int8 conversion."""
    home = tmp_path_factory.mktemp("scheduler-home")
    (home / "models").mkdir()
    (home / "models" / NAME).symlink_to(real_store.path(NAME), target_is_directory=True)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("QUINTET_HOME", str(home))
        yield home


@pytest.fixture(autouse=True)
def _module_home(engine_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUINTET_HOME", str(engine_home))


@pytest.fixture
def smollm2(engine_home: Path) -> Loaded:
    return load(NAME)


@pytest.fixture
def generator(smollm2: Loaded) -> Generator:
    return Generator(smollm2, "onnxruntime-genai")


def _drain(sink: queue.Queue, count: int) -> list[tuple[int, str, object]]:
    """Events until ``count`` jobs have ended."""
    events, ended = [], 0
    while ended < count:
        event = sink.get(timeout=120)
        events.append(event)
        ended += event[1] != "token"
    return events


def _ids(generator: Generator, chat) -> list[int]:
    return encode(generator.loaded, chat)


def test_requests_join_and_leave_between_steps(generator: Generator) -> None:
    scheduler: Scheduler = generator.backend.scheduler
    sink: queue.Queue = queue.Queue()
    limits = [4, 12, 24]
    for row, (chat, limit) in enumerate(zip(CHATS, limits, strict=True)):
        scheduler.submit(_ids(generator, chat), DecodeConfig(max_new_tokens=limit), sink, row=row)
    events = []
    while not any(kind == "end" and row == 0 for row, kind, _ in events):
        events.append(sink.get(timeout=120))
    # The shortest has ended: a request submitted now joins the two still running.
    scheduler.submit(_ids(generator, CHATS[0]), DecodeConfig(max_new_tokens=4), sink, row=3)
    events += _drain(sink, 3)
    ends = [row for row, kind, _ in events if kind == "end"]
    assert ends[0] == 0 and ends[-1] == 2  # each left when it was done
    first_of_late = next(i for i, (row, _, _) in enumerate(events) if row == 3)
    assert first_of_late < events.index(next(e for e in events if e[:2] == (2, "end")))
    counts = {row: sum(1 for r, k, _ in events if r == row and k == "token") for row in range(4)}
    assert counts == {0: 4, 1: 12, 2: 24, 3: 4}
    assert scheduler.stats()["mean_batch"] > 1


def test_cancel_frees_the_slot_at_once(smollm2: Loaded) -> None:
    generator = Generator(smollm2, "onnxruntime-genai", max_batch_size=1, lanes=1)
    scheduler: Scheduler = generator.backend.scheduler
    assert scheduler.settings.max_batch_size == 1 and scheduler.settings.lanes == 1
    sink: queue.Queue = queue.Queue()
    long = DecodeConfig(max_new_tokens=500, min_new_tokens=500)
    first: Job = scheduler.submit(_ids(generator, CHATS[1]), long, sink, row=0)
    scheduler.submit(_ids(generator, CHATS[0]), DecodeConfig(max_new_tokens=3), sink, row=1)
    assert sink.get(timeout=60)[0] == 0  # the first runs, the second waits
    assert scheduler.stats()["waiting"] == 1
    first.cancel()
    events = _drain(sink, 2)
    ended = [(row, value.reason) for row, kind, value in events if kind == "end"]
    assert ended[0] == (0, "cancelled") and ended[1] == (1, "length")
    assert sum(1 for row, kind, _ in events if row == 0 and kind == "token") < 100
    assert scheduler.stats()["running"] == 0


def test_each_request_keeps_its_settings_in_one_batch(generator: Generator) -> None:
    plain = generator.complete(CHATS[1], max_new_tokens=30)
    cut = plain.text.split()[3]
    configs = [
        DecodeConfig(max_new_tokens=7),
        DecodeConfig(max_new_tokens=30, stop_strings=(cut,)),
        DecodeConfig(max_new_tokens=20, do_sample=True, temperature=0.8, top_k=40),
    ]
    results: dict[int, object] = {}

    def run(index: int) -> None:
        results[index] = generator.complete(CHATS[1], configs[index])

    scheduler: Scheduler = generator.backend.scheduler
    steps = scheduler.stats()["steps"]
    threads = [threading.Thread(target=run, args=(i,)) for i in range(3)]
    with scheduler.hold():  # three users at once, however slowly their threads start
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 60
        while scheduler.stats()["waiting"] < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
    for thread in threads:
        thread.join()
    assert results[0].num_tokens == 7 and results[0].finish_reason == "length"
    assert results[1].finish_reason == "stop" and cut not in results[1].text
    assert plain.text.startswith(results[1].text)
    assert results[0].token_ids == plain.token_ids[:7]
    assert 0 < results[2].num_tokens <= 20 and results[2].backend == "onnxruntime-genai"
    stats = generator.backend.scheduler.stats()
    # Together: fewer steps than the three outputs' tokens one after another.
    tokens = sum(r.num_tokens for r in results.values())
    assert stats["steps"] - steps < tokens


def test_one_requests_error_fails_only_that_request(generator: Generator) -> None:
    scheduler: Scheduler = generator.backend.scheduler
    sink: queue.Queue = queue.Queue()
    scheduler.submit(_ids(generator, CHATS[0]), DecodeConfig(max_new_tokens=8), sink, row=0)
    # A setting the engine refuses when the turn begins (DecodeConfig itself would refuse
    # it first: set past its checks to reach the engine's).
    bad = DecodeConfig(max_new_tokens=8, do_sample=True)
    object.__setattr__(bad, "temperature", float("nan"))
    scheduler.submit(_ids(generator, CHATS[1]), bad, sink, row=1)
    scheduler.submit(_ids(generator, CHATS[2]), DecodeConfig(max_new_tokens=8), sink, row=2)
    events = _drain(sink, 3)
    outcome = {row: kind for row, kind, _ in events if kind != "token"}
    assert outcome == {0: "end", 1: "error", 2: "end"}
    error = next(value for row, kind, value in events if kind == "error")
    assert isinstance(error, ConfigError) and "rejected" in str(error)
    with pytest.raises(ConfigError, match="outside the vocabulary"):
        scheduler.submit([1, 10**6], DecodeConfig(max_new_tokens=2), sink)
    assert generator.complete(CHATS[0], max_new_tokens=8).num_tokens == 8  # still serving


def test_greedy_output_equals_the_single_request_path(generator: Generator) -> None:
    backend = generator.backend
    config = DecodeConfig(max_new_tokens=40)
    prompts = [_ids(generator, chat) for chat in CHATS]
    with backend._alone:
        alone = [backend._decode_alone([p], config, None)[0].token_ids for p in prompts]
    scheduled = [generator.complete(chat, config) for chat in CHATS]
    assert [r.token_ids for r in scheduled] == alone
    assert {r.backend for r in scheduled} == {"onnxruntime-genai"}
    streamed = generator.stream(CHATS[2], config)
    assert streamed.text == scheduled[2].text


def test_chat_turns_reuse_the_kv_cache_and_rewind(generator: Generator) -> None:
    chat = ChatSession(generator, max_new_tokens=16)
    first = chat.send("Hi! What is your name?")
    assert chat._kv.reused_tokens == 0
    chat.send("And what can you do?")
    # The second turn took at least the first turn's prompt from the cache (its reply too
    # when the reply re-tokenizes as generated; here it was cut at 16 tokens).
    assert chat._kv.reused_tokens >= len(_ids(generator, chat.context_messages[:1])) - 4
    # Undo and retry rewinds to the first turn's end and gives the same reply again.
    second = chat.retry()
    again = chat.retry()
    assert again.text == second.text
    assert chat._kv.reused_tokens > 0
    assert chat.messages[1]["content"] == first.text


def test_dropping_the_model_closes_its_scheduler(smollm2: Loaded, engine_home: Path) -> None:
    generator = Generator(smollm2, "onnxruntime-genai")
    scheduler = generator.backend.scheduler
    smollm2.close()  # what the model cache does when it drops the model
    assert not scheduler._thread.is_alive()
    with pytest.raises(Exception, match="closed"):
        scheduler.submit([1, 2, 3], DecodeConfig(max_new_tokens=2), queue.Queue())
    # The generator gets a fresh scheduler on its next request.
    assert generator.complete(CHATS[0], max_new_tokens=3).num_tokens == 3


def test_server_streams_overlap_in_time(engine_home: Path, generator: Generator, tmp_path) -> None:
    del generator  # built first, so the conversion exists before the server starts
    server = start_server(
        engine_home, tmp_path / "server.log", "--models", NAME, "--backend", "onnxruntime-genai"
    )
    try:
        times: dict[int, list[float]] = {}
        started = time.perf_counter()

        def stream(index: int) -> None:
            body = {"model": NAME, "messages": CHATS[index], "max_tokens": 48,
                    "temperature": 0, "stream": True}  # fmt: skip
            stamps = times.setdefault(index, [])
            with httpx.stream(
                "POST", f"{server.url}/v1/chat/completions", json=body,
                headers=server.headers(), timeout=120,
            ) as response:  # fmt: skip
                assert response.status_code == 200
                for line in response.iter_lines():
                    if line.startswith("data: {") and '"content"' in line:
                        stamps.append(time.perf_counter() - started)

        threads = [threading.Thread(target=stream, args=(i,)) for i in range(2)]
        threads[0].start()
        time.sleep(0.3)
        threads[1].start()
        for thread in threads:
            thread.join()
        assert times[0] and times[1]
        # The second stream's first token came before the first stream ended.
        assert times[1][0] < times[0][-1]
        metrics = httpx.get(f"{server.url}/metrics", headers=server.headers()).text
        assert "quintet_scheduler_running" in metrics
        assert "quintet_scheduler_mean_batch" in metrics
    finally:
        stop_server(server)


def _scheduler_with(smollm2: Loaded, monkeypatch: pytest.MonkeyPatch, settings: str) -> Generator:
    monkeypatch.setenv("QUINTET_SCHEDULER", settings)
    return Generator(smollm2, "onnxruntime-genai")


def test_a_young_batch_reforms_to_take_waiting_requests(
    smollm2: Loaded, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One engine: without re-forming, a request arriving after the batch started would
    # wait for its whole 120 tokens.
    generator = _scheduler_with(smollm2, monkeypatch, "lanes=1,max_batch_size=4")
    scheduler: Scheduler = generator.backend.scheduler
    sink: queue.Queue = queue.Queue()
    long = DecodeConfig(max_new_tokens=120, min_new_tokens=120)
    prompt = _ids(generator, CHATS[1])
    scheduler.submit(prompt, long, sink, row=0)
    assert sink.get(timeout=60)[:2] == (0, "token")
    for row in (1, 2):
        scheduler.submit(_ids(generator, CHATS[0]), DecodeConfig(max_new_tokens=6), sink, row=row)
    events = _drain(sink, 3)
    late_first = min(i for i, (row, _, _) in enumerate(events) if row in (1, 2))
    long_end = next(i for i, (row, kind, _) in enumerate(events) if (row, kind) == (0, "end"))
    assert late_first < long_end - 60  # they started while the long one had far to go
    counts = {row: sum(1 for r, k, _ in events if r == row and k == "token") for row in range(3)}
    assert counts == {0: 119, 1: 6, 2: 6}  # the long one's first token came before
    end = events[long_end][2]
    assert end.reason == "length" and end.prompt_tokens == len(prompt)
    assert scheduler.stats()["regroups"] == 1


def test_no_regroup_when_it_is_turned_off(smollm2: Loaded, monkeypatch: pytest.MonkeyPatch) -> None:
    generator = _scheduler_with(smollm2, monkeypatch, "lanes=1,max_batch_size=4,regroup_tokens=0")
    scheduler: Scheduler = generator.backend.scheduler
    sink: queue.Queue = queue.Queue()
    scheduler.submit(_ids(generator, CHATS[1]), DecodeConfig(max_new_tokens=40), sink, row=0)
    assert sink.get(timeout=60)[:2] == (0, "token")
    scheduler.submit(_ids(generator, CHATS[0]), DecodeConfig(max_new_tokens=4), sink, row=1)
    events = _drain(sink, 2)
    ends = [row for row, kind, _ in events if kind == "end"]
    assert ends == [0, 1]  # the late one waited for the batch to end
    assert scheduler.stats()["regroups"] == 0


def test_a_follow_up_request_reuses_the_kept_prefix(generator: Generator) -> None:
    scheduler: Scheduler = generator.backend.scheduler
    chat = [{"role": "user", "content": "Name one planet."}]
    first = generator.complete(chat, max_new_tokens=12)
    before = scheduler.stats()["reused_prompt_tokens"]
    follow_up = [
        *chat,
        {"role": "assistant", "content": first.text},
        {"role": "user", "content": "And one more?"},
    ]
    second = generator.complete(follow_up, max_new_tokens=12)
    assert second.num_tokens > 0 and second.text
    # The first request's prompt (and its reply, when it re-tokenizes as generated) came
    # from the kept KV cache, not from a new prefill.
    assert scheduler.stats()["reused_prompt_tokens"] - before >= len(_ids(generator, chat))


def test_constrained_requests_batch_with_others(generator: Generator) -> None:
    import json

    import jsonschema

    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "year": {"type": "integer"}},
        "required": ["city", "year"],
    }
    scheduler: Scheduler = generator.backend.scheduler
    steps, requests = scheduler.steps, scheduler.step_requests
    configs = [
        DecodeConfig(max_new_tokens=60, json_schema=schema),
        DecodeConfig(max_new_tokens=8, choices=("yes", "no")),
        DecodeConfig(max_new_tokens=40),
    ]
    prompts = [_ids(generator, chat) for chat in CHATS]
    sink: queue.Queue = queue.Queue()
    # Three requests arriving at once (none starts before the others are queued: from
    # threads, a grammar's compile time or a slow machine could space them apart).
    with scheduler.hold():
        for row, (prompt, config) in enumerate(zip(prompts, configs, strict=True)):
            scheduler.submit(prompt, config, sink, row=row)
    events = _drain(sink, 3)
    assert all(kind != "error" for _, kind, _ in events)
    texts = [
        generator.loaded.tokenizer.decode(
            [value for r, kind, value in events if r == row and kind == "token"],
            skip_special_tokens=True,
        )
        for row in range(3)
    ]
    jsonschema.validate(json.loads(texts[0]), schema)
    assert texts[1] in ("yes", "no")
    assert (scheduler.step_requests - requests) / (scheduler.steps - steps) > 1


def test_repetition_penalty_counts_the_prompt_and_the_output_as_transformers_does(
    generator: Generator,
) -> None:
    # A penalty this strong leaves no token free to come back: not one of the prompt's
    # (transformers penalises those too) and none twice, on both of the engine's paths.
    chat = [{"role": "user", "content": "Repeat after me: the cat, the cat, the cat."}]
    prompt = _ids(generator, chat)
    config = DecodeConfig(max_new_tokens=20, repetition_penalty=100.0)
    plain = generator.complete(chat, max_new_tokens=20)
    assert len(set(plain.token_ids)) < len(plain.token_ids)  # unpenalised, it repeats
    backend = generator.backend
    scheduled = backend._decode_scheduled([prompt], config, None)[0].token_ids
    with backend._alone:
        alone = backend._decode_alone([prompt], config, None)[0].token_ids
    for tokens in (scheduled, alone):
        assert len(tokens) == 20
        assert len(set(tokens)) == len(tokens) and not set(tokens) & set(prompt)
    assert generator.complete(chat, config).backend == "onnxruntime-genai"


def test_many_requests_with_one_setting_decode_as_a_wide_batch(generator: Generator) -> None:
    scheduler: Scheduler = generator.backend.scheduler
    before = scheduler.stats()["wide_batches"]
    sink: queue.Queue = queue.Queue()
    busy = scheduler.submit(_ids(generator, CHATS[1]), DecodeConfig(max_new_tokens=40), sink, row=0)
    assert sink.get(timeout=60)[:2] == (0, "token")  # the scheduler is busy with it
    jobs = [
        scheduler.submit(
            _ids(generator, CHATS[row % 3]), DecodeConfig(max_new_tokens=6 + row), sink, row=row
        )
        for row in range(1, 13)
    ]
    jobs[0].cancel()  # row 1 leaves the batch (or the queue) at once
    events = _drain(sink, 13)
    ends = {row: value for row, kind, value in events if kind == "end"}
    assert ends[1].reason == "cancelled" and busy.done
    counts = {row: sum(1 for r, k, _ in events if r == row and k == "token") for row in ends}
    for row in range(2, 13):  # each its own length (or its end token), in one batch
        assert ends[row].reason in ("length", "eos")
        assert 0 < counts[row] <= 6 + row
        assert ends[row].reason == "eos" or counts[row] == 6 + row
    assert scheduler.stats()["wide_batches"] == before + 1
    assert scheduler.stats()["running"] == 0


def test_requests_like_a_running_wide_batch_wait_for_it(generator: Generator) -> None:
    # Started on lanes next to the wide batch, they would slow it down and trickle in
    # small batches under load: they wait until no more of it run than of them wait.
    scheduler: Scheduler = generator.backend.scheduler
    sink: queue.Queue = queue.Queue()
    other = DecodeConfig(max_new_tokens=60, repetition_penalty=1.05)
    scheduler.submit(_ids(generator, CHATS[1]), other, sink, row=0)
    assert sink.get(timeout=60)[:2] == (0, "token")  # busy: the next ones gather
    before = scheduler.stats()["wide_batches"]
    config = DecodeConfig(max_new_tokens=24)
    for row in range(1, 9):
        scheduler.submit(_ids(generator, CHATS[row % 3]), config, sink, row=row)
    events = []
    while not any(row > 0 and kind == "token" for row, kind, _ in events):
        events.append(sink.get(timeout=60))
    assert scheduler.stats()["wide_batches"] == before + 1
    for row in (9, 10):
        scheduler.submit(_ids(generator, CHATS[row % 3]), config, sink, row=row)
    events += _drain(sink, 11 - sum(kind != "token" for _, kind, _ in events))
    late = min(i for i, (row, kind, _) in enumerate(events) if row >= 9 and kind == "token")
    wide_ended = sum(1 for row, kind, _ in events[:late] if 1 <= row <= 8 and kind == "end")
    assert wide_ended >= 6  # at most as many still running as were waiting
    assert all(kind != "error" for _, kind, _ in events)

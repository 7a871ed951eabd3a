"""Many users at once on the continuous-batching scheduler (`make bench`).

On SmolLM2-135M-Instruct (onnxruntime-genai int8, the default engine on CPU), greedy, 64
new tokens, the same Alpaca instructions throughout:

* one user alone, in this process: today's single-request generator path against the
  scheduler (tokens/s and time to first token, alternating, median of the repeats);
* against a real `quintet serve` on 127.0.0.1: 16 concurrent clients non-streamed, the
  same 16 streamed (aggregate tokens/s, first-token and latency p50/p95, errors), and 16
  streamed clients with 16 different settings (temperature, max_tokens, stop strings),
  with the scheduler's batch occupancy from /metrics; then one 6-turn conversation sent as
  6 requests with the whole history (first token per turn, prompt tokens from a kept cache);
* a 6-turn chat (``ChatSession.stream``, 96 tokens a turn) in this process: time to first
  token of turn 6 against turn 1, and how many prompt tokens came from the KV cache.

Usage: ``python -m benchmarks.concurrency [--clients 16] [--out results.json]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from pathlib import Path

import httpx

from benchmarks.server_load import ALPACA, REQUEST_TIMEOUT_S, free_port, stop_server

MODEL = "smollm2-135m-instruct"
TOKENS = 64


def prompts(count: int) -> list[str]:
    found = [d["instruction"] for d in json.loads(ALPACA.read_text()) if not d.get("input")]
    return [found[i % len(found)] for i in range(count)]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else 0.0


# One user alone ---------------------------------------------------------------------------


def one_user(repeats: int) -> dict:
    """Today's single-request path (one og.Generator) against the scheduler, alternating."""
    from quintet.core.config import DecodeConfig
    from quintet.core.decoding import Generator
    from quintet.core.decoding.prompts import encode

    generator = Generator(MODEL, "onnxruntime-genai")
    backend = generator.backend
    config = DecodeConfig(max_new_tokens=TOKENS, min_new_tokens=TOKENS)
    ids = encode(generator.loaded, [{"role": "user", "content": prompts(1)[0]}])
    rows: dict[str, list[tuple[float, float]]] = {"generator": [], "scheduler": []}
    for _ in range(repeats):
        for name in rows:
            started = time.perf_counter()
            if name == "generator":
                with backend._alone:
                    raw = backend._decode_alone([ids], config, None)[0]
            else:
                raw = backend._decode_scheduled([ids], config, None)[0]
            total = time.perf_counter() - started
            rows[name].append((len(raw.token_ids) / total, raw.first_token_time - started))
    return {
        name: {
            "tokens_per_s": statistics.median(r[0] for r in runs),
            "first_token_s": statistics.median(r[1] for r in runs),
        }
        for name, runs in rows.items()
    }


# Server -------------------------------------------------------------------------------------


def start(port: int, log: Path):
    """The server under test: the benchmark's one model."""
    from benchmarks.server_load import start_server

    return start_server(port, log, "--models", MODEL)


async def one_request(http: httpx.AsyncClient, url: str, body: dict) -> dict:
    """One chat completion: tokens, latency, first-token time (streamed), error."""
    started = time.perf_counter()
    first = None
    try:
        if not body.get("stream"):
            response = await http.post(url, json=body)
            if response.status_code != 200:
                return {"error": True, "latency": time.perf_counter() - started}
            tokens = response.json()["usage"]["completion_tokens"]
            return {"error": False, "tokens": tokens, "latency": time.perf_counter() - started}
        tokens = 0
        async with http.stream("POST", url, json=body) as response:
            if response.status_code != 200:
                return {"error": True, "latency": time.perf_counter() - started}
            async for line in response.aiter_lines():
                if not line.startswith("data: {"):
                    continue
                event = json.loads(line[6:])
                if "error" in event:
                    return {"error": True, "latency": time.perf_counter() - started}
                if event.get("usage"):
                    tokens = event["usage"]["completion_tokens"]
                choices = event.get("choices") or [{}]
                if choices[0].get("delta", {}).get("content") and first is None:
                    first = time.perf_counter() - started
        latency = time.perf_counter() - started
        return {"error": False, "tokens": tokens, "latency": latency, "first": first}
    except httpx.HTTPError:
        return {"error": True, "latency": time.perf_counter() - started}


async def burst(base: str, bodies: list[dict]) -> dict:
    """All ``bodies`` at once; aggregate tokens/s, latency and first-token percentiles."""
    url = f"{base}/v1/chat/completions"
    async with httpx.AsyncClient(timeout=REQUEST_TIMEOUT_S) as http:
        started = time.perf_counter()
        done = await asyncio.gather(*(one_request(http, url, b) for b in bodies))
        wall = time.perf_counter() - started
    ok = [d for d in done if not d["error"]]
    firsts = [d["first"] for d in ok if d.get("first") is not None]
    latencies = [d["latency"] for d in ok]
    return {
        "requests": len(bodies),
        "errors": len(done) - len(ok),
        "tokens": sum(d["tokens"] for d in ok),
        "wall_s": wall,
        "tokens_per_s": sum(d["tokens"] for d in ok) / wall,
        "latency_p50_s": percentile(latencies, 0.5),
        "latency_p95_s": percentile(latencies, 0.95),
        "first_token_p50_s": percentile(firsts, 0.5) if firsts else None,
        "first_token_p95_s": percentile(firsts, 0.95) if firsts else None,
    }


COUNTERS = (
    "quintet_scheduler_steps_total",
    "quintet_scheduler_mean_batch",
    "quintet_scheduler_regroups_total",
    "quintet_scheduler_reused_prompt_tokens_total",
)


def scheduler_counters(base: str) -> dict[str, float]:
    text = httpx.get(f"{base}/metrics", timeout=10).text
    found = {}
    for line in text.splitlines():
        for name in COUNTERS:
            if line.startswith(name + "{"):
                found[name] = float(line.rsplit(" ", 1)[1])
    return found


def memory_mb(pid: int) -> dict[str, float]:
    """The server's resident memory now and at its peak (Linux), in MB."""
    found = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                found[key] = int(value.split()[0]) / 1024
    except OSError:
        pass
    return found


def server_runs(clients: int, log: Path) -> dict:
    port = free_port()
    process = start(port, log)
    base = f"http://127.0.0.1:{port}"
    try:
        texts = prompts(clients)

        def body(text: str, **extra) -> dict:
            return {"model": MODEL, "messages": [{"role": "user", "content": text}],
                    "max_tokens": TOKENS, "temperature": 0, **extra}  # fmt: skip

        asyncio.run(burst(base, [body(texts[0])]))  # warm-up
        runs = {}
        runs["non_streamed"] = asyncio.run(burst(base, [body(t) for t in texts]))
        streamed = [body(t, stream=True, stream_options={"include_usage": True}) for t in texts]
        runs["streamed"] = asyncio.run(burst(base, streamed))
        varied = []
        for i, text in enumerate(texts):
            settings = {"temperature": [0, 0.7, 1.0, 1.3][i % 4], "max_tokens": 16 + 8 * i}
            if i % 3 == 0:
                settings["stop"] = ["\n\n", "."][i % 2]
            varied.append(
                {**body(text, stream=True, stream_options={"include_usage": True}), **settings}
            )
        before = scheduler_counters(base)
        runs["varied_settings"] = asyncio.run(burst(base, varied))
        after = scheduler_counters(base)
        runs["varied_settings"]["scheduler_mean_batch_overall"] = after.get(
            "quintet_scheduler_mean_batch"
        )
        runs["varied_settings"]["scheduler_steps"] = after.get(
            "quintet_scheduler_steps_total", 0
        ) - before.get("quintet_scheduler_steps_total", 0)
        runs["varied_settings"]["regroups"] = after.get(
            "quintet_scheduler_regroups_total", 0
        ) - before.get("quintet_scheduler_regroups_total", 0)
        runs["conversation"] = asyncio.run(conversation(base, body, 6))
        runs["server_memory_mb"] = memory_mb(process.pid)
        return runs
    finally:
        stop_server(process)


async def conversation(base: str, body, turns: int) -> list[dict]:
    """One conversation sent as ``turns`` streamed requests, each with the whole history (as
    OpenAI clients do): first-token time per turn and prompt tokens from a kept cache."""
    url = f"{base}/v1/chat/completions"
    messages: list[dict] = []
    found = []
    async with httpx.AsyncClient(timeout=REQUEST_TIMEOUT_S) as http:
        for text in prompts(turns):
            messages.append({"role": "user", "content": text})
            request = body(text, stream=True, max_tokens=96)
            request["messages"] = list(messages)
            reused = scheduler_counters(base).get("quintet_scheduler_reused_prompt_tokens_total", 0)
            started = time.perf_counter()
            first, reply = None, []
            async with http.stream("POST", url, json=request) as response:
                async for line in response.aiter_lines():
                    if not line.startswith("data: {"):
                        continue
                    delta = json.loads(line[6:])["choices"][0].get("delta", {}).get("content")
                    if delta:
                        first = first if first is not None else time.perf_counter() - started
                        reply.append(delta)
            messages.append({"role": "assistant", "content": "".join(reply)})
            now = scheduler_counters(base).get("quintet_scheduler_reused_prompt_tokens_total", 0)
            found.append({"first_token_s": first, "cached_prompt_tokens": now - reused})
    return found


# Chat turns ---------------------------------------------------------------------------------


def chat_turns(turns: int) -> list[dict]:
    from quintet.apps.chat import ChatSession

    session = ChatSession(MODEL, max_new_tokens=96)
    found = []
    for text in prompts(turns):
        started = time.perf_counter()
        stream = session.stream(text)
        first = None
        for _ in stream:
            if first is None:
                first = time.perf_counter() - started
        reply = stream.result
        found.append(
            {
                "first_token_s": first,
                "prompt_tokens": reply.prompt_tokens,
                "cached_prompt_tokens": session._kv.reused_tokens if session._kv else 0,
            }
        )
    return found


def describe(results: dict) -> str:
    lines = [f"# Concurrency (SmolLM2 int8, onnxruntime-genai, {TOKENS} tokens, greedy)"]
    alone = results["one_user"]
    for name, row in alone.items():
        lines.append(
            f"one user, {name:<10} {row['tokens_per_s']:7.1f} tokens/s  "
            f"first token {row['first_token_s'] * 1000:6.0f} ms"
        )
    for name, run in results["server"].items():
        if name == "server_memory_mb":
            lines.append(f"server memory: {run}")
            continue
        if name == "conversation":
            for index, turn in enumerate(run, 1):
                lines.append(
                    f"HTTP conversation turn {index}: first token "
                    f"{turn['first_token_s'] * 1000:6.0f} ms, "
                    f"{turn['cached_prompt_tokens']:.0f} prompt tokens from a kept cache"
                )
            lines.append(
                "HTTP conversation turn 6 / turn 1 first token: "
                f"x{run[-1]['first_token_s'] / run[0]['first_token_s']:.2f}"
            )
            continue
        first = (
            f"first token p50 {run['first_token_p50_s']:.2f} s p95 {run['first_token_p95_s']:.2f} s"
            if run.get("first_token_p50_s") is not None
            else ""
        )
        lines.append(
            f"{results['clients']} clients {name:<16} {run['tokens_per_s']:7.1f} tokens/s  "
            f"latency p50 {run['latency_p50_s']:.2f} s p95 {run['latency_p95_s']:.2f} s  "
            f"{first}  errors {run['errors']}"
        )
    server = results["server"]
    lines.append(
        "streamed / non-streamed tokens/s: "
        f"x{server['streamed']['tokens_per_s'] / server['non_streamed']['tokens_per_s']:.2f}; "
        "streamed first-token p95 / latency p95: "
        f"x{server['streamed']['first_token_p95_s'] / server['streamed']['latency_p95_s']:.2f}"
    )
    lines.append(
        f"varied settings: mean requests per engine step (whole run) "
        f"{server['varied_settings']['scheduler_mean_batch_overall']:.2f}, "
        f"batches re-formed {server['varied_settings']['regroups']:.0f}"
    )
    chat = results["chat"]
    for index, turn in enumerate(chat, 1):
        lines.append(
            f"chat turn {index}: first token {turn['first_token_s'] * 1000:6.0f} ms, prompt "
            f"{turn['prompt_tokens']} tokens, {turn['cached_prompt_tokens']} from the cache"
        )
    lines.append(
        f"chat turn {len(chat)} / turn 1 first token: "
        f"x{chat[-1]['first_token_s'] / chat[0]['first_token_s']:.2f}"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, help="also write the results as JSON here")
    args = parser.parse_args(argv)
    results: dict = {"date": time.strftime("%Y-%m-%d"), "clients": args.clients}
    results["one_user"] = one_user(args.repeats)
    log = Path(args.out.with_suffix(".server.log") if args.out else "concurrency-server.log")
    results["server"] = server_runs(args.clients, log)
    results["chat"] = chat_turns(6)
    print(describe(results))
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""A bounded loopback load test of `quintet serve` (`make bench`).

32 concurrent clients send 10 chat completions each (64 new tokens, greedy, varied Alpaca
instructions) and then 50 zero-shot classifications each (one SST-2 sentence, minilm-l6),
against a real server on 127.0.0.1 started for the run. The same load runs twice: with the
defaults (chat requests decode together on the model's scheduler, classifications arriving
within the 10 ms window as one batch) and with batching off (one scheduler slot, no
window: one request at a time), so the batching gain is a ratio in the same run.
Reported: throughput, p50/p95 latency, errors (non-200) and lost responses (no answer at
all). Every request has a timeout; the server is stopped at the end.

Usage: ``python -m benchmarks.server_load [--clients 32] [--chat 10] [--classify 50]
[--out results.json]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
ALPACA = ROOT / "data" / "chat" / "alpaca_demo" / "alpaca_en_demo.json"
SST2 = ROOT / "data" / "classification" / "sst2" / "dev.tsv"
REQUEST_TIMEOUT_S = 300.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(
    port: int, log: Path, *flags: str, env: dict[str, str] | None = None
) -> subprocess.Popen:
    """``quintet serve`` on ``port`` with ``flags`` (and ``env`` added to the environment),
    on the default engines, once ready."""
    env = {**{k: v for k, v in os.environ.items() if k != "QUINTET_BACKEND"}, **(env or {})}
    command = [sys.executable, "-m", "quintet.apps.cli", "serve", "--port", str(port),
               "--log-level", "warning", *flags]  # fmt: skip
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited: see {log}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=2).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    process.kill()
    raise RuntimeError(f"the server was not ready in 300 s: see {log}")


def stop_server(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


async def run_clients(url: str, bodies: list[list[dict]]) -> dict:
    """Each client sends its bodies one after another; all clients at once."""
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    lost = 0
    tokens = 0

    async def client(mine: list[dict], http: httpx.AsyncClient) -> None:
        nonlocal lost, tokens
        for body in mine:
            started = time.perf_counter()
            try:
                response = await http.post(url, json=body)
            except httpx.HTTPError:
                lost += 1
                continue
            latencies.append(time.perf_counter() - started)
            statuses[str(response.status_code)] = statuses.get(str(response.status_code), 0) + 1
            if response.status_code == 200 and "usage" in response.json():
                tokens += response.json()["usage"]["completion_tokens"]

    limits = httpx.Limits(max_connections=len(bodies))
    async with httpx.AsyncClient(timeout=REQUEST_TIMEOUT_S, limits=limits) as http:
        started = time.perf_counter()
        await asyncio.gather(*(client(mine, http) for mine in bodies))
        seconds = time.perf_counter() - started
    done = sum(statuses.values())
    ordered = sorted(latencies)
    return {
        "requests": sum(len(b) for b in bodies),
        "seconds": seconds,
        "requests_per_s": done / seconds,
        "tokens_per_s": tokens / seconds,
        "p50_s": statistics.median(ordered) if ordered else None,
        "p95_s": ordered[int(0.95 * (len(ordered) - 1))] if ordered else None,
        "errors": done - statuses.get("200", 0),
        "lost": lost,
        "statuses": statuses,
    }


def workloads(clients: int, chat: int, classify: int) -> tuple[list, list]:
    prompts = [d["instruction"] for d in json.loads(ALPACA.read_text()) if not d.get("input")]
    sentences = [line.split("\t")[0] for line in SST2.read_text().splitlines()[1:]]
    chat_bodies = [
        [
            {
                "model": "smollm2-135m-instruct",
                "messages": [{"role": "user", "content": prompts[(c * chat + i) % len(prompts)]}],
                "max_tokens": 64,
                "temperature": 0,
            }
            for i in range(chat)
        ]
        for c in range(clients)
    ]
    classify_bodies = [
        [
            {
                "model": "minilm-l6",
                "texts": [sentences[(c * classify + i) % len(sentences)]],
                "labels": ["negative", "positive"],
            }
            for i in range(classify)
        ]
        for c in range(clients)
    ]
    return chat_bodies, classify_bodies


def describe(label: str, kind: str, r: dict) -> str:
    return (
        f"{label:<34} {kind:<9} {r['requests']:>5} requests  {r['requests_per_s']:7.1f}/s "
        f"{r['tokens_per_s']:7.1f} tokens/s  p50 {r['p50_s']:.2f} s  p95 {r['p95_s']:.2f} s  "
        f"errors {r['errors']}  lost {r['lost']}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--chat", type=int, default=10, help="chat requests per client")
    parser.add_argument("--classify", type=int, default=50, help="classify requests per client")
    parser.add_argument("--out", type=Path, help="also write the results as JSON here")
    args = parser.parse_args(argv)
    chat_bodies, classify_bodies = workloads(args.clients, args.chat, args.classify)
    results: dict = {"date": time.strftime("%Y-%m-%d"), "clients": args.clients, "runs": {}}
    print(f"# Server load test ({os.cpu_count()} CPUs, {args.clients} clients)", flush=True)
    # The default engine batches on its scheduler whatever the server's window; one slot on
    # one lane is the same server decoding one request at a time.
    modes = (
        ("batching (scheduler, defaults)", "", 10.0),
        ("one at a time", "max_batch_size=1,lanes=1,regroup_tokens=0,wide_batch_size=0", 0.0),
    )
    for label, scheduler, window in modes:
        port = free_port()
        server = start_server(
            port, Path(f"/tmp/quintet-load-{port}.log"), "--batch-window-ms", str(window),
            env={"QUINTET_SCHEDULER": scheduler},
        )  # fmt: skip
        try:
            base = f"http://127.0.0.1:{port}/v1"
            run = {
                "chat": asyncio.run(run_clients(f"{base}/chat/completions", chat_bodies)),
                "classify": asyncio.run(run_clients(f"{base}/classify", classify_bodies)),
            }
        finally:
            stop_server(server)
        results["runs"][label] = run
        for kind, r in run.items():
            print(describe(label, kind, r), flush=True)
    batched, single = results["runs"].values()
    gain = batched["chat"]["tokens_per_s"] / single["chat"]["tokens_per_s"]
    results["chat_batching_gain"] = gain
    print(f"chat throughput, batching vs one at a time: x{gain:.2f}")
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""File translation memory: peak memory does not grow with the file (`make bench`).

``Translator.translate_file`` promises bounded memory on large inputs (100k lines). This
translates a small file (the baseline) and a file ten times larger, each in its own process,
with a tiny random Marian model and one new token per line (the model's speed is not what is
measured: the streaming is), and reports the larger run's peak resident memory as a ratio of
the smaller one's. A ratio near 1.0 means memory is bounded; reading the whole file, or
keeping every result, would show as a ratio well above 1 (each line's result object and
text cost far more than the ~100 bytes of its input).

Usage: ``python -m benchmarks.file_translation [--lines 100000] [--out results.json]``.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FLORES_EN = ROOT / "data" / "translation" / "flores200_dev" / "eng_Latn.dev"
RESULT_PREFIX = "BENCH-RESULT "


def write_input(path: Path, lines: int) -> None:
    """``lines`` real English sentences (FLORES dev, repeated), a blank line every 50."""
    sentences = FLORES_EN.read_text(encoding="utf-8").splitlines()
    with path.open("w", encoding="utf-8") as f:
        for i in range(lines):
            f.write("\n" if i % 50 == 49 else sentences[i % len(sentences)] + "\n")


def worker(input_path: str, output_path: str) -> dict:
    """Translate the file in this process; peak RSS and time."""
    from quintet.apps.translation import Translator
    from quintet.core.testing import tiny_model_dir

    translator = Translator(str(tiny_model_dir("marian")))
    translator.translate("Warm up.", "en", "de", max_new_tokens=1)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    info = translator.translate_file(
        input_path, output_path, "en", "de", progress=False, max_new_tokens=1
    )
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return {
        "lines": info["lines"],
        "seconds": seconds,
        "peak_rss_mib": peak / 1024,
        "rss_growth_mib": (peak - before) / 1024,
    }


def run(lines: int, tmp: Path) -> dict:
    source, target = tmp / f"in-{lines}.txt", tmp / f"out-{lines}.txt"
    write_input(source, lines)
    command = [sys.executable, "-m", "benchmarks.file_translation", "--worker", str(source),
               str(target)]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, check=False)
    for line in done.stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            result = json.loads(line[len(RESULT_PREFIX) :])
            written = sum(1 for _ in target.open(encoding="utf-8"))
            result["output_lines"] = written
            return result
    raise RuntimeError(f"worker failed:\n{done.stderr[-3000:]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=100_000, help="the large file's lines")
    parser.add_argument("--out", help="write the results as JSON here")
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(RESULT_PREFIX + json.dumps(worker(*args.worker)), flush=True)
        return 0
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        small = run(args.lines // 10, tmp)
        large = run(args.lines, tmp)
    ratio = large["peak_rss_mib"] / small["peak_rss_mib"]
    print("File translation (tiny Marian, 1 new token per line, chunks of 64 lines)")
    print(f"{'lines':>8} {'seconds':>9} {'lines/s':>9} {'peak RSS MiB':>13} {'growth MiB':>11}")
    for r in (small, large):
        assert r["output_lines"] == r["lines"], r  # every line translated, one per line
        print(f"{r['lines']:>8} {r['seconds']:>9.1f} {r['lines'] / r['seconds']:>9.0f} "
              f"{r['peak_rss_mib']:>13.1f} {r['rss_growth_mib']:>11.1f}")  # fmt: skip
    print(
        f"peak memory, {args.lines} lines vs {args.lines // 10}: x{ratio:.3f} "
        "(bounded: close to 1.0)"
    )
    if args.out:
        Path(args.out).write_text(
            json.dumps({"small": small, "large": large, "peak_ratio": ratio}, indent=2) + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

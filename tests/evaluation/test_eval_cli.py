"""``quintet eval``: scores equal the sacrebleu command line on WMT17, options, errors.

The fidelity tests score "system outputs" made from the WMT17 references by dropping and
swapping words (a real output would do as well: what is tested is that ``quintet eval``
and the ``sacrebleu`` command line give the same numbers on the same files).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from quintet.apps.cli import main
from quintet.apps.eval_cli import parse_pairs
from quintet.core.errors import ConfigError

WMT17 = Path("data/translation/wmt17_sample")
SACREBLEU_CLI = Path(sys.executable).with_name("sacrebleu")


def system_output(refs: list[str], seed: int) -> list[str]:
    """A degraded 'translation': words dropped and swapped, differently per line."""
    out = []
    for n, line in enumerate(refs):
        words = [w for k, w in enumerate(line.split()) if (k + n + seed) % 4 != 1]
        if n % 3 == seed % 3 and len(words) > 3:
            words[1], words[2] = words[2], words[1]
        out.append(" ".join(words))
    return out


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def lines_of(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").removesuffix("\n").split("\n")


def sacrebleu_cli(refs: list[Path], hyp: Path, *args: str) -> dict[str, dict]:
    if not SACREBLEU_CLI.exists():
        pytest.skip("sacrebleu command line not installed next to this Python")
    command = [str(SACREBLEU_CLI), *map(str, refs), "-i", str(hyp), "-f", "json", "-w", "10"]
    out = subprocess.run([*command, *args], capture_output=True, text=True, check=True).stdout
    parsed = json.loads(out, parse_float=str)  # keep the printed digits
    names = {"BLEU": "bleu", "chrF2": "chrf", "TER": "ter"}
    return {names[r["name"]]: r for r in (parsed if isinstance(parsed, list) else [parsed])}


def quintet_eval(*args: str) -> dict:
    assert main(["eval", *args, "--bootstrap", "0"]) == 0
    out = Path(args[args.index("--out") + 1])
    return json.loads((out / "report.json").read_text(encoding="utf-8"))


def test_bleu_chrf_ter_equal_the_sacrebleu_command_line_on_wmt17(tmp_path, capsys):
    src, ref = WMT17 / "en-de/newstest2017.en", WMT17 / "en-de/newstest2017.de"
    hyp = write_lines(tmp_path / "system.de", system_output(lines_of(ref), seed=0))
    report = quintet_eval("translation", "--source", str(src), "--reference", str(ref),
                          "--predictions", str(hyp), "--out", str(tmp_path / "run"))  # fmt: skip
    cli = sacrebleu_cli([ref], hyp, "-m", "bleu", "chrf", "ter", "-l", "en-de")
    assert report["n"] == 500
    for name in ("bleu", "chrf", "ter"):
        assert f"{report['metrics'][name]:.10f}" == cli[name]["score"], name
        assert report["signatures"][name] == cli[name]["signature"], name
    assert 20 < report["metrics"]["bleu"] < 60  # a real mix of matches, not a trivial case
    printed = capsys.readouterr().out
    assert f"bleu {report['metrics']['bleu']:.2f}" in " ".join(printed.split())
    assert "report.html" in printed


def test_two_references_and_chinese_equal_the_command_line(tmp_path):
    src, ref = WMT17 / "en-zh/newstest2017.en", WMT17 / "en-zh/newstest2017.zh"
    refs = lines_of(ref)
    second = write_lines(tmp_path / "second.zh", [r[: max(1, len(r) * 3 // 4)] for r in refs])
    hyp = write_lines(tmp_path / "system.zh", [r[::2] + r[1::4] for r in refs])
    report = quintet_eval("translation", "--source", str(src), "--reference", str(ref),
                          str(second), "--predictions", str(hyp), "--out",
                          str(tmp_path / "run"))  # fmt: skip
    cli = sacrebleu_cli([ref, second], hyp, "-m", "bleu", "chrf", "ter", "-l", "en-zh")
    for name in ("bleu", "chrf", "ter"):
        assert f"{report['metrics'][name]:.10f}" == cli[name]["score"], name
        assert report["signatures"][name] == cli[name]["signature"], name
    assert "tok:zh" in report["signatures"]["bleu"] and "nrefs:2" in report["signatures"]["bleu"]


def test_trailing_whitespace_and_unicode_line_separators_read_like_the_command_line(tmp_path):
    src, ref = WMT17 / "en-de/newstest2017.en", WMT17 / "en-de/newstest2017.de"
    hyps = system_output(lines_of(ref), seed=1)
    # A U+2028 inside a line is not a line break for sacrebleu; trailing blanks are stripped.
    hyps = [h.replace(" ", "\u2028", 1) if n % 50 == 0 else h + "  " for n, h in enumerate(hyps)]
    hyp = write_lines(tmp_path / "system.de", hyps)
    report = quintet_eval("translation", "--source", str(src), "--reference", str(ref),
                          "--predictions", str(hyp), "--out", str(tmp_path / "run"))  # fmt: skip
    cli = sacrebleu_cli([ref], hyp, "-m", "bleu", "chrf", "ter", "-l", "en-de")
    for name in ("bleu", "chrf", "ter"):
        assert f"{report['metrics'][name]:.10f}" == cli[name]["score"], name


def test_default_run_folder_is_printed_first_and_holds_the_report(tmp_home, capsys):
    ref = WMT17 / "en-de/newstest2017.de"
    hyp = write_lines(tmp_home.parent / "sys.de", system_output(lines_of(ref), seed=2))
    code = main(["eval", "translation", "--source", str(WMT17 / "en-de/newstest2017.en"),
                 "--reference", str(ref), "--predictions", str(hyp), "--limit", "50",
                 "--bootstrap", "30"])  # fmt: skip
    assert code == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("writing to ")
    folder = Path(lines[0].removeprefix("writing to "))
    assert folder.parent == tmp_home / "eval"
    assert folder.name.startswith("translation-sys-newstest2017.en-")
    report = json.loads((folder / "report.json").read_text())
    assert report["n"] == 50 and report["bootstrap"]["resamples"] == 30
    assert any("95% CI [" in line for line in lines)


def test_decode_and_option_values_are_json_where_they_can_be():
    parsed = parse_pairs(
        ["num_beams=4", "temperature=0.7", "do_sample=true", "stop=[\"\\n\"]", "style=brief",
         "labels=a,b", "empty="],
        "--decode",
    )  # fmt: skip
    assert parsed == {"num_beams": 4, "temperature": 0.7, "do_sample": True, "stop": ["\n"],
                      "style": "brief", "labels": "a,b", "empty": ""}  # fmt: skip
    with pytest.raises(ConfigError, match="expected key=value"):
        parse_pairs(["num_beams"], "--decode")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["eval", "qa"], "give --data FILE"),
        (["eval", "compare", "only-one"], "two or more runs"),
        (["eval", "classification", "--data", "x.tsv", "--model", "m", "--predictions", "p"],
         "not both"),
        (["eval", "classification", "--data", "data/classification/nope.tsv"], "nope.tsv"),
        (["eval", "classification", "--data", "data/classification/sst2/dev.tsv", "--limit",
          "0", "--out", "unused"], "--limit must be at least 1"),
        (["eval", "classification", "--data", "data/classification/sst2/dev.tsv", "--bootstrap",
          "-5", "--out", "unused"], "--bootstrap must be 0 (no intervals) or a positive"),
        (["eval", "compare", "run-a", "run-b", "--bootstrap", "-5"], "--bootstrap must be 0"),
    ],
)  # fmt: skip
def test_user_errors_are_one_line_and_exit_2(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and "\n" not in err


def test_hf_data_fails_at_once_and_clearly_offline(no_hub, tmp_home, capsys):
    started = time.perf_counter()
    assert main(["eval", "classification", "--data", "hf:glue:sst2:validation"]) == 2
    assert time.perf_counter() - started < 15
    err = capsys.readouterr().err
    assert "hf:glue:sst2:validation" in err and "hub cannot be reached" in err
    assert main(["eval", "classification", "--data", "hf:glue"]) == 2
    assert "expected hf:NAME:SPLIT" in capsys.readouterr().err


def test_hf_data_uses_its_local_copy_without_the_hub(no_hub, tmp_home, tmp_path):
    from quintet.evaluation.datasets import local_path

    copy = local_path("hf:glue:sst2:validation")
    copy.parent.mkdir(parents=True)
    rows = [{"sentence": "a fine film", "label": 1, "idx": 0},
            {"sentence": "a dull film", "label": 0, "idx": 1}]  # fmt: skip
    copy.write_text("".join(json.dumps(r) + "\n" for r in rows))
    preds = write_lines(tmp_path / "p.txt", ["1", "1"])
    report = quintet_eval("classification", "--data", "hf:glue:sst2:validation",
                          "--predictions", str(preds), "--out", str(tmp_path / "run"))  # fmt: skip
    assert report["n"] == 2 and report["metrics"]["accuracy"] == 50.0
    assert report["dataset"] == "hf:glue:sst2:validation"


def test_a_real_generative_run_records_decoding_tokens_and_speed(real_store, tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["eval", "summarization", "--model", "smollm2-135m-instruct", "--data",
                 "data/summarization/samsum/val.csv", "--limit", "2", "--batch-size", "2",
                 "--decode", "max_new_tokens=12", "--out", str(out),
                 "--bootstrap", "20"])  # fmt: skip
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    assert report["model"] == "smollm2-135m-instruct" and report["decode"] == {"max_new_tokens": 12}
    records = [json.loads(x) for x in (out / "predictions.jsonl").read_text().splitlines()]
    from quintet.core.models import load

    tokenizer = load("smollm2-135m-instruct").tokenizer
    for record in records:  # the decode option reached the model: short summaries
        assert 0 < len(tokenizer(record["prediction"], add_special_tokens=False)["input_ids"]) <= 12
    timing = report["timing"]
    assert timing["generated_tokens"] == sum(r["extra"]["num_tokens"] for r in records)
    assert timing["tokens_per_s"] > 0 and timing["total_s"] >= timing["predict_s"] > 0
    assert "tokens/s" in capsys.readouterr().out


def test_a_second_run_into_the_same_out_folder_is_one_line(tmp_path, capsys):
    from quintet.core.locks import exclusive_output

    out = tmp_path / "run"
    argv = ["eval", "classification", "--data", "data/classification/sst2/dev.tsv",
            "--model", "tiny", "--limit", "2", "--out", str(out)]  # fmt: skip
    with exclusive_output(out):  # a run writing there now
        assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        f"error: {out} is being written by another quintet run (it holds {out}.lock): wait "
        "for that run to finish, or write to another output"
    )
    assert not out.exists()

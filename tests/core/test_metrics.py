"""The metrics equal the reference tools on real data.

SQuAD against the official evaluate-v1.1.py (its functions are copied below), sacreBLEU
against its command line, ROUGE against rouge-score used directly; classification metrics and
ECE against hand-computed cases. The real data comes from the shared reference folder
(``../shared/data``, or ``$QUINTET_SHARED_DATA``), else from the copies the project ships
in ``data/``; those tests skip where neither has the file.
"""

from __future__ import annotations

import json
import os
import re
import string
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from quintet.core.metrics import (
    MetricError,
    accuracy,
    bleu,
    chrf,
    expected_calibration_error,
    macro_f1,
    normalize_answer,
    per_class,
    rouge_scores,
    rouge_signature,
    split_sentences,
    squad_exact_match,
    squad_f1,
    squad_scores,
    ter,
)

SHARED = Path(
    os.environ.get("QUINTET_SHARED_DATA", Path(__file__).resolve().parents[3] / "shared" / "data")
)
SQUAD = SHARED / "qa/squad_v1.1/dev-v1.1.articles-00-23.json"
WMT = SHARED / "translation/wmt_newstest"
SAMSUM = SHARED / "summarization/samsum/val.csv"
CNNDM = SHARED / "summarization/cnn_dailymail/test_subset_summeval100.jsonl"
XSUM = SHARED / "summarization/xsum/test_subset_a500.jsonl"
SACREBLEU_CLI = Path(sys.executable).with_name("sacrebleu")


PROJECT_DATA = Path(__file__).resolve().parents[2] / "data"


def need(path: Path) -> Path:
    """The shared reference file, else the project's copy in data/; skip if neither exists."""
    if path.exists():
        return path
    copy = PROJECT_DATA / path.relative_to(SHARED)
    if copy.exists():
        return copy
    pytest.skip(f"reference data {path} not available")


# ----------------------------------------------------------------- official SQuAD v1.1
# Copied verbatim (modulo formatting) from the official evaluate-v1.1.py.


def official_normalize_answer(s):
    """Lower text and remove punctuation, articles and extra whitespace."""

    def remove_articles(text):
        return re.sub(r"\b(a|an|the)\b", " ", text)

    def white_space_fix(text):
        return " ".join(text.split())

    def remove_punc(text):
        exclude = set(string.punctuation)
        return "".join(ch for ch in text if ch not in exclude)

    def lower(text):
        return text.lower()

    return white_space_fix(remove_articles(remove_punc(lower(s))))


def official_f1_score(prediction, ground_truth):
    prediction_tokens = official_normalize_answer(prediction).split()
    ground_truth_tokens = official_normalize_answer(ground_truth).split()
    common = Counter(prediction_tokens) & Counter(ground_truth_tokens)
    num_same = sum(common.values())
    if num_same == 0:
        return 0
    precision = 1.0 * num_same / len(prediction_tokens)
    recall = 1.0 * num_same / len(ground_truth_tokens)
    f1 = (2 * precision * recall) / (precision + recall)
    return f1


def official_exact_match_score(prediction, ground_truth):
    return official_normalize_answer(prediction) == official_normalize_answer(ground_truth)


def official_metric_max_over_ground_truths(metric_fn, prediction, ground_truths):
    scores_for_ground_truths = []
    for ground_truth in ground_truths:
        score = metric_fn(prediction, ground_truth)
        scores_for_ground_truths.append(score)
    return max(scores_for_ground_truths)


def official_evaluate(dataset, predictions):
    f1 = exact_match = total = 0
    for article in dataset:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                total += 1
                if qa["id"] not in predictions:
                    continue  # the official script prints "Unanswered question ..." here
                ground_truths = list(map(lambda x: x["text"], qa["answers"]))
                prediction = predictions[qa["id"]]
                exact_match += official_metric_max_over_ground_truths(
                    official_exact_match_score, prediction, ground_truths
                )
                f1 += official_metric_max_over_ground_truths(
                    official_f1_score, prediction, ground_truths
                )
    exact_match = 100.0 * exact_match / total
    f1 = 100.0 * f1 / total
    return {"exact_match": exact_match, "f1": f1}


@pytest.fixture(scope="module")
def squad():
    """(dataset, golds, fake predictions) on the real SQuAD v1.1 dev articles."""
    dataset = json.loads(need(SQUAD).read_text(encoding="utf-8"))["data"]
    golds: dict[str, list[str]] = {}
    predictions: dict[str, str] = {}
    i = 0
    for article in dataset:
        for paragraph in article["paragraphs"]:
            context = paragraph["context"]
            for qa in paragraph["qas"]:
                golds[qa["id"]] = [a["text"] for a in qa["answers"]]
                first = qa["answers"][0]
                if i % 7 == 0:
                    prediction = ""
                elif i % 2 == 0:
                    prediction = first["text"]
                else:  # a shifted, partial answer: drop its first word, run on into the context
                    start = first["answer_start"]
                    span = context[start : start + len(first["text"]) + 12 * (i % 3)]
                    prediction = " ".join(span.split()[1:])
                if i % 3 == 0 and i % 7:
                    prediction = prediction.upper() + " ."  # normalization must undo this
                predictions[qa["id"]] = prediction
                i += 1
    return dataset, golds, predictions


def test_squad_scores_equal_the_official_script(squad):
    dataset, golds, predictions = squad
    assert len(golds) > 1000  # 5696 in the shared file
    ours = squad_scores(predictions, golds)
    official = official_evaluate(dataset, predictions)
    assert ours.keys() == official.keys()
    for key in ours:
        assert abs(ours[key] - official[key]) < 1e-9, key
    assert 20 < ours["exact_match"] < ours["f1"] < 90  # a non-trivial mix


def test_squad_unanswered_questions_score_zero_like_the_official_script(squad):
    dataset, golds, predictions = squad
    some = {qid: p for n, (qid, p) in enumerate(predictions.items()) if n % 11}
    some["not-a-question"] = "ignored"
    ours = squad_scores(some, golds)
    official = official_evaluate(dataset, some)
    for key in ours:
        assert abs(ours[key] - official[key]) < 1e-9, key


def test_squad_per_question_metrics_equal_the_official_functions(squad):
    _, golds, predictions = squad
    for qid in list(golds)[:800]:
        prediction, answers = predictions[qid], golds[qid]
        assert normalize_answer(prediction) == official_normalize_answer(prediction)
        assert squad_exact_match(prediction, answers) == float(
            official_metric_max_over_ground_truths(official_exact_match_score, prediction, answers)
        )
        assert squad_f1(prediction, answers) == official_metric_max_over_ground_truths(
            official_f1_score, prediction, answers
        )


def test_squad_hand_cases_and_v2_no_answer():
    assert normalize_answer("  The Eiffel-Tower, an icon! ") == "eiffeltower icon"
    assert squad_exact_match("Denver Broncos.", ["the Denver Broncos"]) == 1.0
    assert squad_f1("Denver", ["Denver Broncos", "Carolina"]) == pytest.approx(2 / 3)
    assert squad_f1("", ["Denver"]) == 0.0
    # v2: no gold answers -> the right prediction is "" (or anything normalizing to "")
    assert squad_exact_match("", []) == 1.0 == squad_f1("", [])
    assert squad_exact_match("The.", []) == 1.0
    assert squad_exact_match("Denver", []) == 0.0 == squad_f1("Denver", [])
    scores = squad_scores({"a": "", "b": "x", "c": "Denver"}, {"a": [], "b": [], "c": ["Denver"]})
    assert scores == {"exact_match": pytest.approx(200 / 3), "f1": pytest.approx(200 / 3)}
    with pytest.raises(MetricError):
        squad_f1("x", "Denver")  # a string, not a list of golds
    with pytest.raises(MetricError):
        squad_scores({}, {})


# ---------------------------------------------------------------------------- sacreBLEU


def drop_every(n: int, line: str) -> str:
    return " ".join(w for i, w in enumerate(line.split(), start=1) if i % n)


def sacrebleu_cli(tmp_path: Path, refs: list[Path], hyps: list[str], *args: str) -> list[dict]:
    if not SACREBLEU_CLI.exists():
        pytest.skip("sacrebleu command line not installed next to this Python")
    hyp_file = tmp_path / "hyp.txt"
    hyp_file.write_text("".join(h + "\n" for h in hyps), encoding="utf-8")
    out = subprocess.run(
        [str(SACREBLEU_CLI), *map(str, refs), "-i", str(hyp_file), "-f", "json", "-w", "10"]
        + list(args),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    parsed = json.loads(out, parse_float=str)  # keep the printed digits
    return parsed if isinstance(parsed, list) else [parsed]


def read_lines(path: Path) -> list[str]:
    # split on "\n" only, as the sacrebleu command line reads files (not on U+2028 etc.)
    return need(path).read_text(encoding="utf-8").removesuffix("\n").split("\n")


def test_bleu_chrf_ter_equal_the_sacrebleu_command_line(tmp_path):
    refs = read_lines(WMT / "en-de/newstest2014.de")
    assert len(refs) >= 1000  # 3003 in the shared file
    refs = refs[:1000]  # the first 1000 segments keep the test quick
    ref_path = tmp_path / "ref.de"
    ref_path.write_text("".join(r + "\n" for r in refs), encoding="utf-8")
    hyps = [drop_every(5, line) for line in refs]
    cli = sacrebleu_cli(tmp_path, [ref_path], hyps, "-m", "bleu", "chrf", "ter")
    ours = [bleu(hyps, [refs]), chrf(hyps, [refs]), ter(hyps, [refs])]
    for (score, signature), expected in zip(ours, cli, strict=True):
        assert f"{score:.10f}" == expected["score"], expected["name"]
        assert signature == expected["signature"]
    assert 40 < ours[0][0] < 70


def test_two_reference_streams_and_chinese_equal_the_command_line(tmp_path):
    refs = read_lines(WMT / "en-zh/newstest2017.zh")[:1000]
    ref_path = tmp_path / "ref.zh"
    ref_path.write_text("".join(r + "\n" for r in refs), encoding="utf-8")
    second = tmp_path / "ref2.zh"
    refs2 = [line[: max(1, len(line) * 3 // 4)] for line in refs]  # a second, shorter stream
    second.write_text("".join(r + "\n" for r in refs2), encoding="utf-8")
    hyps = [line[::2] + line[1::4] for line in refs]  # characters dropped and re-ordered
    cli = sacrebleu_cli(tmp_path, [ref_path, second], hyps, "-m", "bleu", "chrf", "-l", "en-zh")
    ours = [bleu(hyps, [refs, refs2], trg_lang="zh"), chrf(hyps, [refs, refs2])]
    for (score, signature), expected in zip(ours, cli, strict=True):
        assert f"{score:.10f}" == expected["score"], expected["name"]
        assert signature == expected["signature"]
    assert "tok:zh" in ours[0][1] and "nrefs:2" in ours[0][1]


def test_sacrebleu_is_corpus_level_and_checks_its_inputs():
    hyps = ["the cat sat on the mat", "a dog"]
    refs = ["the cat sat on the mat", "the dog barked loudly"]
    corpus, _ = bleu(hyps, [refs])
    per_sentence = [bleu([h], [[r]])[0] for h, r in zip(hyps, refs, strict=True)]
    assert corpus != pytest.approx(sum(per_sentence) / 2)
    with pytest.raises(MetricError, match="reference streams"):
        bleu(hyps, refs)  # a bare list of references, not a list of streams
    with pytest.raises(MetricError, match="stream 1 has 1 references for 2 hypotheses"):
        chrf(hyps, [refs[:1]])
    with pytest.raises(MetricError):
        ter([], [[]])


# -------------------------------------------------------------------------------- ROUGE


@pytest.fixture(scope="module")
def direct_scorer():
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL", "rougeLsum"], use_stemmer=True)


def direct_mean(scorer, pairs, key):
    return 100.0 * sum(scorer.score(ref, pred)[key].fmeasure for ref, pred in pairs) / len(pairs)


def test_rouge_equals_rouge_score_on_samsum(direct_scorer):
    import csv

    with open(need(SAMSUM), encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))[:200]
    refs = [row["summary"] for row in rows]
    # a deterministic "system": the dialogue's first two turns without speaker names
    preds = [
        " ".join(turn.split(":", 1)[-1].strip() for turn in row["dialogue"].splitlines()[:2])
        for row in rows
    ]
    ours = rouge_scores(preds, refs)
    pairs = list(zip(refs, preds, strict=True))
    for key in ("rouge1", "rouge2", "rougeL"):  # independent of any sentence splitting
        assert ours[key] == pytest.approx(direct_mean(direct_scorer, pairs, key), abs=1e-9)
    split_pairs = [(split_sentences(r), split_sentences(p)) for r, p in pairs]
    assert ours["rougeLsum"] == pytest.approx(
        direct_mean(direct_scorer, split_pairs, "rougeLsum"), abs=1e-9
    )
    assert 5 < ours["rouge1"] < 60


def test_rouge_lsum_uses_existing_newlines_on_xsum(direct_scorer):
    rows = [json.loads(line) for line in read_lines(XSUM)[:100]]
    # references with newlines (the documents' first three lines), predictions the summaries
    refs = ["\n".join(row["document"].split("\n")[:3]) for row in rows]
    preds = ["\n".join(split_sentences(row["summary"]).split("\n")) for row in rows]
    assert all("\n" in r for r in refs[:10])
    ours = rouge_scores(preds, refs)
    expected = direct_mean(direct_scorer, list(zip(refs, preds, strict=True)), "rougeLsum")
    assert ours["rougeLsum"] == pytest.approx(expected, abs=1e-9)


def test_rouge_multi_reference_equals_score_multi_on_cnndm(direct_scorer):
    rows = [json.loads(line) for line in read_lines(CNNDM)[:10]]
    preds = [split_sentences(" ".join(row["article"].split(" . ")[:3]) + " .") for row in rows]
    refs = [
        [split_sentences(r) for r in [row["highlights"], *row["additional_references"]]]
        for row in rows
    ]
    ours = rouge_scores(preds, refs)
    for key in ("rouge1", "rouge2", "rougeL", "rougeLsum"):
        expected = (
            100.0
            * sum(
                direct_scorer.score_multi(r, p)[key].fmeasure
                for r, p in zip(refs, preds, strict=True)
            )
            / len(preds)
        )
        assert ours[key] == pytest.approx(expected, abs=1e-9), key
    single = rouge_scores(preds, [r[0] for r in refs])
    assert all(ours[k] >= single[k] for k in ours)


def test_split_sentences_and_signature():
    assert split_sentences("He left. She stayed! Why? 3 more.") == (
        "He left.\nShe stayed!\nWhy?\n3 more."
    )
    assert split_sentences('She said "go." Then left.') == 'She said "go."\nThen left.'
    assert split_sentences("version 2.6 is out. ok") == "version 2.6 is out. ok"  # lower case
    assert split_sentences("kept\nas is. Here") == "kept\nas is. Here"
    signature = rouge_signature()
    assert "rouge-score 0.1.2" in signature and "stemmer:porter" in signature
    with pytest.raises(MetricError):
        rouge_scores(["a"], [])


# ----------------------------------------------------------------------- classification


def test_classification_metrics_hand_computed():
    golds = ["a", "a", "a", "b", "b", "c"]
    preds = ["a", "a", "b", "b", "c", "c"]
    assert accuracy(preds, golds) == pytest.approx(400 / 6)
    table = per_class(preds, golds)
    assert list(table) == ["a", "b", "c"]
    assert table["a"] == pytest.approx(
        {"precision": 100.0, "recall": 200 / 3, "f1": 80.0, "support": 3}
    )
    assert table["b"] == pytest.approx(
        {"precision": 50.0, "recall": 50.0, "f1": 50.0, "support": 2}
    )
    assert table["c"] == pytest.approx(
        {"precision": 50.0, "recall": 100.0, "f1": 200 / 3, "support": 1}
    )
    assert macro_f1(preds, golds) == pytest.approx((80 + 50 + 200 / 3) / 3)


def test_classification_zero_division_is_zero_like_sklearn():
    golds = ["pos", "pos", "neg"]
    preds = ["pos", "odd", "pos"]  # "odd" never gold, "neg" never predicted
    table = per_class(preds, golds)
    assert table["neg"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert table["odd"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert table["pos"]["f1"] == pytest.approx(100 * 2 * 1 / (2 + 2))
    assert macro_f1(preds, golds) == pytest.approx(50 / 3)
    # explicit labels: unseen labels count with 0, unlisted ones are left out
    assert macro_f1(preds, golds, labels=["pos", "neg", "other"]) == pytest.approx(50 / 3)
    assert macro_f1(["x"], ["x"], labels=["x"]) == 100.0
    with pytest.raises(MetricError, match="2 predictions but 3 golds"):
        accuracy(preds[:2], golds)
    with pytest.raises(MetricError):
        macro_f1([], [])


def test_expected_calibration_error_hand_computed():
    # bins of width 0.1; a confidence on an edge belongs to the bin below it, 0 to the first
    confidences = [0.0, 0.1, 0.3, 0.35, 0.8, 0.8, 0.8, 0.8, 1.0, 1.0]
    correct = [False, True, False, True, True, True, True, False, True, True]
    # bin 0: {0.0 wrong, 0.1 right}: acc .5 conf .05 -> .45 * 2/10
    # bin 2: {0.3 wrong}: .3 * 1/10;  bin 3: {0.35 right}: .65 * 1/10
    # bin 7: {0.8 x4, 3 right}: |.75 - .8| * 4/10;  bin 9: {1.0 x2 right}: 0
    expected = 0.45 * 0.2 + 0.3 * 0.1 + 0.65 * 0.1 + 0.05 * 0.4
    assert expected_calibration_error(confidences, correct) == pytest.approx(expected, abs=1e-12)
    assert expected_calibration_error([1.0, 1.0], [True, True]) == 0.0
    assert expected_calibration_error([0.7, 0.7], [True, False], bins=1) == pytest.approx(0.2)
    with pytest.raises(MetricError, match="probability"):
        expected_calibration_error([1.2], [True])

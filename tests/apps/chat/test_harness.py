"""Chat harness: MT-Bench and Alpaca readers on the shipped files, the response statistics,
reference scores equal to sacreBLEU / rouge-score, judge prompts and rating parsing, and
tiny real runs (SmolLM2, a few tokens) of both modes through the runner."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import sacrebleu
import torch

from quintet.apps.chat.harness import HARNESS
from quintet.core.data import DataError
from quintet.evaluation import mt_bench
from quintet.evaluation.harness import evaluate
from quintet.evaluation.protocol import DataOptions, EvalItem, Prediction

ROOT = Path(__file__).resolve().parents[3]
MT_BENCH = str(ROOT / "data/chat/mt_bench/question.jsonl")
ALPACA = str(ROOT / "data/chat/alpaca_demo/alpaca_en_demo.json")


def test_reads_mt_bench_with_reference_answers() -> None:
    run = HARNESS.read(MT_BENCH, DataOptions())
    items = run.items
    assert run.mode == "mt-bench" and run.primary_metric == "ref_chrf"
    assert len(items) == 80
    assert all(len(i.inputs["turns"]) == 2 for i in items)
    by_category: dict[str, int] = {}
    for item in items:
        by_category[item.category] = by_category.get(item.category, 0) + 1
    assert by_category == dict.fromkeys(
        ["writing", "roleplay", "reasoning", "math", "coding", "extraction", "stem", "humanities"],
        10,
    )
    with_refs = [i for i in items if i.references]
    assert len(with_refs) == 30
    assert {i.category for i in with_refs} == {"math", "reasoning", "coding"}
    q115 = next(i for i in items if i.id == "115")
    assert len(q115.references) == 2 and "38" in q115.references[0]


def test_reads_alpaca_heldout_and_messages_jsonl(tmp_path: Path) -> None:
    run = HARNESS.read(ALPACA, DataOptions(extra={"split": "heldout"}))
    items = run.items
    assert run.mode == "perplexity" and run.primary_metric == "perplexity"
    assert len(items) == 100  # the last 10% of the 999 examples
    everything = HARNESS.read(ALPACA, DataOptions()).items
    assert [i.id for i in everything[-100:]] == [i.id for i in items]
    assert items[0].inputs["messages"][-1]["role"] == "assistant"
    path = tmp_path / "chats.jsonl"
    rows = [
        {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hey"}]},
        {"messages": [{"role": "user", "content": "No answer here"}]},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    [item] = HARNESS.read(str(path), DataOptions()).items  # the chat without a reply is not scored
    assert item.references == "Hey"
    with pytest.raises(DataError, match="split='train'"):
        HARNESS.read(ALPACA, DataOptions(extra={"split": "train"}))
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"messages": [{"role": "robot", "content": "x"}]}\n')
    with pytest.raises(DataError, match="bad.jsonl"):
        HARNESS.read(str(bad), DataOptions())


def _item(qid: str, category: str, refs: list[str]) -> EvalItem:
    return EvalItem(qid, {"turns": ["q1", "q2"]}, refs, category)


def test_mt_bench_scores_are_the_reference_tools_and_documented_rates() -> None:
    run = HARNESS.read(MT_BENCH, DataOptions())  # MT-Bench mode
    loop = "the cat sat on the mat " * 10
    items = [
        _item("1", "math", ["So x = 38.", "Then 1,200 people."]),
        _item("2", "writing", []),
        _item("3", "coding", ["def f(): return 1", "It returns 1."]),
    ]
    predictions = [
        Prediction("1", ["I think x is 38", "about 12 people"], {"finish_reasons": ["stop"] * 2}),
        Prediction("2", ["I'm sorry, I cannot help with that.", ""], {}),
        Prediction("3", [loop, "def f(): return 1"], {"finish_reasons": ["length", "stop"]}),
    ]
    scores = HARNESS.score(run, items, predictions)
    m = scores.metrics
    assert m["empty_rate"] == pytest.approx(100 / 6)
    assert m["refusal_rate"] == pytest.approx(100 / 6)
    assert m["repetition_rate"] == pytest.approx(100 / 6)
    assert m["length_cut_rate"] == pytest.approx(25.0)
    assert m["math_answer_match"] == 50.0  # 38 == 38, 12 != 1200
    hyps = ["I think x is 38", "about 12 people", loop, "def f(): return 1"]
    refs = ["So x = 38.", "Then 1,200 people.", "def f(): return 1", "It returns 1."]
    assert m["ref_chrf"] == pytest.approx(sacrebleu.corpus_chrf(hyps, [refs]).score)
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    expected = [scorer.score(r, h)["rougeL"].fmeasure for h, r in zip(hyps, refs, strict=True)]
    assert m["ref_rougeL"] == pytest.approx(100 * sum(expected) / 4)
    assert "ref_chrf" not in scores.per_item[1] and "ref_chrf" in scores.per_item[0]
    assert "judge_score" not in m


def test_judge_scores_overall_and_per_category_from_given_predictions(tmp_path: Path) -> None:
    """A run scored from a predictions file with judge ratings: the mean rating overall and
    per category, unparsed ratings counted as failures, the judge named."""
    items = HARNESS.read(MT_BENCH, DataOptions()).items[:12]  # ten writing, two roleplay questions
    ratings = [[float(1 + i % 10), None if i % 3 == 0 else 5.0] for i in range(12)]
    path = tmp_path / "judged.jsonl"
    with path.open("w") as f:
        for item, pair in zip(items, ratings, strict=True):
            judge = {"model": "some-judge", "ratings": pair, "judgments": ["..", ".."]}
            row = {"id": item.id, "prediction": ["an answer", "another"], "extra": {"judge": judge}}
            f.write(json.dumps(row) + "\n")
    report = evaluate(
        "chat", None, MT_BENCH, limit=12, predictions_file=str(path), out=tmp_path / "run",
        bootstrap=0, progress=False,
    )  # fmt: skip
    parsed = [x for pair in ratings for x in pair if x is not None]
    assert report.metrics["judge_score"] == pytest.approx(sum(parsed) / len(parsed))
    assert report.metrics["judge_parse_failures"] == pytest.approx(100 * 4 / 24)
    assert "judge: some-judge" in report.signatures["judge_score"]
    assert set(report.per_category) == {"writing", "roleplay"}
    roleplay = [x for pair in ratings[10:] for x in pair if x is not None]
    assert report.per_category["roleplay"]["judge_score"] == pytest.approx(
        sum(roleplay) / len(roleplay)
    )
    assert report.per_category["roleplay"]["n"] == 2


@pytest.mark.parametrize(
    ("decode", "options", "message"),
    [
        ({"beams": 2}, {}, "unknown decoding option"),
        ({}, {"judge": "smollm2-135m-instruct", "judge_max_new_tokens": "lots"}, "positive whole"),
    ],
)
def test_bad_decode_and_judge_options_are_config_errors(
    real_store, tmp_path: Path, decode, options, message
) -> None:
    from quintet.core.errors import ConfigError

    with pytest.raises(ConfigError, match=message):
        evaluate(
            "chat", "smollm2-135m-instruct", MT_BENCH, limit=1, out=tmp_path / "run",
            decode=decode, options=DataOptions(extra=options), bootstrap=0, progress=False,
        )  # fmt: skip


def test_refusal_and_repetition_rules() -> None:
    assert mt_bench.is_refusal("  I'm sorry, but I can't do that.")
    assert mt_bench.is_refusal("As an AI language model, I have no feelings.")
    assert not mt_bench.is_refusal("Sorry to hear that! Here is a plan: ...")
    assert not mt_bench.is_refusal("The answer is 4. I cannot stress this enough.")
    assert mt_bench.is_repetitive("a b c d " * 10)
    assert not mt_bench.is_repetitive("a b c d " * 4)  # under 20 words: not judged
    assert not mt_bench.is_repetitive(" ".join(f"w{i}" for i in range(50)))


@pytest.mark.parametrize(
    ("judgment", "rating"),
    [
        ("The answer is helpful. Rating: [[8]]", 8.0),
        ("Rating: [[7.5]]", 7.5),
        ("I would give it [6] overall", 6.0),  # FastChat's fallback pattern
        ("Rating: [[7]] ... later [[3]]", 7.0),  # the first rating, as FastChat
        ("Rating: 9/10", None),
        ("Rating: [[0]]", None),  # out of the 1-10 scale
        ("Rating: [[12]]", None),
        ("", None),
    ],
)
def test_judge_rating_parsing(judgment: str, rating: float | None) -> None:
    assert mt_bench.parse_rating(judgment) == rating


def test_judge_prompts_follow_fastchat() -> None:
    prompts = mt_bench.load_judge_prompts(MT_BENCH)
    questions, answers, refs = ["Q one?", "Q two?"], ["A one.", "A two."], ["R one.", "R two."]
    first = mt_bench.judge_messages(prompts, "writing", questions, answers, None, 1)
    assert first[0] == {"role": "system", "content": prompts["single-v1"]["system_prompt"]}
    assert "Q one?" in first[1]["content"] and "A one." in first[1]["content"]
    assert "Q two?" not in first[1]["content"] and "[[rating]]" in first[1]["content"]
    second = mt_bench.judge_messages(prompts, "math", questions, answers, refs, 2)
    assert second[0]["content"] == prompts["single-math-v1-multi-turn"]["system_prompt"]
    body = second[1]["content"]
    for text in [*questions, *answers, *refs]:
        assert text in body
    # Math without reference answers falls back to the general prompt, as FastChat would.
    plain = mt_bench.judge_messages(prompts, "math", questions, answers, None, 1)
    assert plain[0]["content"] == prompts["single-v1"]["system_prompt"]


def test_tiny_mt_bench_run_with_a_self_judge(real_store, tmp_path: Path) -> None:
    report = evaluate(
        "chat",
        "smollm2-135m-instruct",
        MT_BENCH,
        limit=2,
        out=tmp_path / "run",
        decode={"max_new_tokens": 6},
        options=DataOptions(extra={"judge": "smollm2-135m-instruct", "judge_max_new_tokens": 24}),
        bootstrap=0,
        progress=False,
    )
    assert report.n == 2 and report.settings["judge"] == "smollm2-135m-instruct"
    rows = [json.loads(line) for line in (tmp_path / "run/predictions.jsonl").open()]
    assert all(len(r["prediction"]) == 2 and all(r["prediction"]) for r in rows)
    for row in rows:
        assert row["extra"]["response_tokens"] == [6, 6] or "stop" in row["extra"]["finish_reasons"]
        judged = row["extra"]["judge"]
        assert judged["model"] == "smollm2-135m-instruct" and len(judged["judgments"]) == 2
    # The report's judge figures are the ratings parsed from the judgments it kept.
    ratings = [mt_bench.parse_rating(j) for r in rows for j in r["extra"]["judge"]["judgments"]]
    assert ratings == [x for r in rows for x in r["extra"]["judge"]["ratings"]]
    parsed = [x for x in ratings if x is not None]
    failures = 100.0 * (len(ratings) - len(parsed)) / len(ratings)
    assert report.metrics["judge_parse_failures"] == pytest.approx(failures)
    if parsed:
        assert report.metrics["judge_score"] == pytest.approx(sum(parsed) / len(parsed))
    else:
        assert "judge_score" not in report.metrics
    assert "judge: smollm2-135m-instruct" in report.signatures["judge_score"]
    assert report.metrics["mean_response_tokens"] <= 6
    assert report.timing["tokens_per_s"] > 0
    assert report.metrics["first_token_s"] > 0
    assert (tmp_path / "run/report.html").is_file()


def test_tiny_perplexity_run_equals_the_models_own_loss(real_store, tmp_path: Path) -> None:
    report = evaluate(
        "chat",
        "smollm2-135m-instruct",
        ALPACA,
        limit=2,
        out=tmp_path / "ppl",
        options=DataOptions(extra={"split": "heldout"}),
        bootstrap=0,
        progress=False,
    )
    ppl = report.metrics["perplexity"]
    assert 1 < ppl < 100
    # Independently: transformers' own shifted cross-entropy on the assistant-only labels.
    from quintet.core.models import load
    from quintet.core.training.features import causal_sft_features

    loaded = load("smollm2-135m-instruct")
    items = HARNESS.read(ALPACA, DataOptions(extra={"split": "heldout"})).items[:2]
    from quintet.core.examples import ChatExample

    chats = [ChatExample(tuple(i.inputs["messages"])) for i in items]
    features, _ = causal_sft_features(loaded.tokenizer, chats, max_length=8192)
    total, count = 0.0, 0
    for f in features:
        labels = torch.tensor([f["labels"]])
        with torch.inference_mode():
            out = loaded.model(input_ids=torch.tensor([f["input_ids"]]), labels=labels)
        n = int((labels[0, 1:] != -100).sum())
        total, count = total + float(out.loss) * n, count + n
    assert ppl == pytest.approx(math.exp(total / count), rel=1e-4)


def test_bootstrap_resampler_equals_rescoring() -> None:
    run = HARNESS.read(MT_BENCH, DataOptions())
    items = [
        _item("1", "math", ["So x = 38.", "Then 1,200 people."]),
        _item("2", "writing", []),
        _item("3", "coding", ["def f(): return 1", "It returns 1."]),
        _item("4", "reasoning", ["Second place.", "Last place."]),
    ]
    judge = {"model": "j", "ratings": [7.0, None]}
    predictions = [
        Prediction("1", ["x is 38", "12"], {"response_tokens": [3, 1], "judge": judge}),
        Prediction("2", ["I cannot.", ""], {"response_tokens": [3, 0], "judge": judge}),
        Prediction("3", ["def f(): return 2", "ok"], {"finish_reasons": ["length", "stop"]}),
        Prediction("4", ["Second.", "First place!"], {"time_to_first_token_s": [0.5, 1.5]}),
    ]
    scorer = HARNESS.resampler(run, items, predictions)
    whole = HARNESS.score(run, items, predictions).metrics
    assert scorer([0, 1, 2, 3]) == pytest.approx(whole)
    for indices in ([0, 0, 2, 3], [1, 1, 1, 3], [2, 3, 3, 0]):
        again = HARNESS.score(run, [items[i] for i in indices], [predictions[i] for i in indices])
        assert scorer(indices) == pytest.approx(again.metrics)

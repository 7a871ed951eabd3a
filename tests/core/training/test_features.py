"""Examples -> model inputs (and QA logits -> answers) on tiny and real tokenizers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import AutoModelForQuestionAnswering, AutoTokenizer

from quintet.core.decoding.prompts import DEFAULT_CHAT_TEMPLATE
from quintet.core.errors import ConfigError, QuintetError
from quintet.core.examples import Answer, ChatExample, ClassificationExample, PairExample, QAExample
from quintet.core.models import load
from quintet.core.store import ModelStore
from quintet.core.testing import tiny_model_dir
from quintet.core.training.features import (
    IGNORE_INDEX,
    FeatureError,
    SpanAnswer,
    best_spans,
    causal_sft_features,
    classification_features,
    collate,
    seq2seq_features,
    span_features,
)

# SQuAD v1.1 dev, the first paragraph of "Super_Bowl_50" and its first question.
SUPER_BOWL = (
    "Super Bowl 50 was an American football game to determine the champion of the National "
    "Football League (NFL) for the 2015 season. The American Football Conference (AFC) champion "
    "Denver Broncos defeated the National Football Conference (NFC) champion Carolina Panthers "
    "24\u201310 to earn their third Super Bowl title. The game was played on February 7, 2016, at "
    "Levi's Stadium in the San Francisco Bay Area at Santa Clara, California. As this was the "
    '50th Super Bowl, the league emphasized the "golden anniversary" with various gold-themed '
    "initiatives, as well as temporarily suspending the tradition of naming each Super Bowl game "
    'with Roman numerals (under which the game would have been known as "Super Bowl L"), so that '
    "the logo could prominently feature the Arabic numerals 50."
)
SUPER_BOWL_QUESTION = "Which NFL team represented the AFC at Super Bowl 50?"
SUPER_BOWL_ANSWER = Answer("Denver Broncos", 177)
LABELS = {"negative": 0, "neutral": 1, "positive": 2}


@pytest.fixture(scope="module")
def minilm(real_store: ModelStore):
    return load("minilm-l6").tokenizer


@pytest.fixture(scope="module")
def smollm(real_store: ModelStore):
    return load("smollm2-135m-instruct").tokenizer


def tiny(family: str, **kwargs):
    return AutoTokenizer.from_pretrained(tiny_model_dir(family, **kwargs))


def squad(context: str = SUPER_BOWL, answers=(SUPER_BOWL_ANSWER,), **kwargs) -> QAExample:
    question = kwargs.pop("question", SUPER_BOWL_QUESTION)
    return QAExample("56be4db0acb8001400a502ec", question, context, tuple(answers), **kwargs)


def labelled(features):
    return [f for f in features if (f["start_positions"], f["end_positions"]) != (0, 0)]


def answer_tokens(tokenizer, feature) -> str:
    ids = feature["input_ids"][feature["start_positions"] : feature["end_positions"] + 1]
    return tokenizer.decode(ids)


def peaked_logits(features, feature_number, start, end, *, cls_logit=0.0):
    """Flat random-ish logits, with a clear peak on [start, end] in one feature."""
    rng = np.random.default_rng(0)
    width = max(len(f["input_ids"]) for f in features)
    starts = rng.normal(0, 0.1, (len(features), width))
    ends = rng.normal(0, 0.1, (len(features), width))
    starts[:, 0] = ends[:, 0] = cls_logit
    starts[feature_number, start] = ends[feature_number, end] = 8.0
    return starts, ends


def runs(ids, labels):
    """The contiguous runs of label-unmasked token ids."""
    out, current = [], []
    for token, label in zip(ids, labels, strict=True):
        if label == IGNORE_INDEX:
            if current:
                out.append(current)
            current = []
        else:
            assert label == token
            current.append(token)
    return out + ([current] if current else [])


# --------------------------------------------------------------------------------------------
# Classification
# --------------------------------------------------------------------------------------------


def test_classification_on_tiny_bert() -> None:
    tokenizer = tiny("bert")
    examples = [
        ClassificationExample("The film was long, but the story was good.", ("positive",)),
        ClassificationExample("The service was terrible.", ("negative",)),
    ]
    features = classification_features(tokenizer, examples, LABELS)
    assert [f["labels"] for f in features] == [2, 0]
    assert [f["_example_index"] for f in features] == [0, 1]
    for feature, example in zip(features, examples, strict=True):
        n = len(feature["input_ids"])
        assert len(feature["attention_mask"]) == len(feature["token_type_ids"]) == n
        assert tokenizer.decode(feature["input_ids"], skip_special_tokens=True) == (
            example.text.lower()
        )
    short = classification_features(tokenizer, examples, LABELS, max_length=6)
    assert [len(f["input_ids"]) for f in short] == [6, 6]
    assert short[0]["input_ids"][-1] == tokenizer.sep_token_id


def test_classification_on_minilm_multi_hot_and_errors(minilm) -> None:
    examples = [
        ClassificationExample("Good acting, bad plot.", ("positive", "negative")),
        ClassificationExample("Nothing to say.", ()),
    ]
    features = classification_features(minilm, examples, LABELS, multi_label=True)
    assert features[0]["labels"] == [1.0, 0.0, 1.0]
    assert features[1]["labels"] == [0.0, 0.0, 0.0]
    assert minilm.decode(features[0]["input_ids"]) == "[CLS] good acting, bad plot. [SEP]"
    assert "token_type_ids" in features[0]
    long_text = ClassificationExample("word " * 600, ("neutral",))
    [long] = classification_features(minilm, [long_text], LABELS)
    assert len(long["input_ids"]) == 256 and long["labels"] == 1
    with pytest.raises(FeatureError, match="exactly one"):
        classification_features(minilm, examples[:1], LABELS)
    unknown = ClassificationExample("x", ("angry",), source="train.csv:7")
    with pytest.raises(FeatureError, match=r"train\.csv:7.*angry"):
        classification_features(minilm, [unknown], LABELS)


# --------------------------------------------------------------------------------------------
# Extractive QA
# --------------------------------------------------------------------------------------------


def test_span_labels_decode_to_the_squad_answer(minilm) -> None:
    assert SUPER_BOWL[177 : 177 + len("Denver Broncos")] == "Denver Broncos"
    [whole] = span_features(minilm, [squad()])
    assert answer_tokens(minilm, whole) == "denver broncos"
    assert whole["_offsets"][0] is None and whole["_offsets"][1] is None  # CLS, question
    windows = span_features(minilm, [squad()], max_length=64, doc_stride=16)
    assert len(windows) > 3
    hits = labelled(windows)
    assert hits and len(hits) < len(windows)
    for feature in hits:
        assert answer_tokens(minilm, feature) == "denver broncos"
        assert feature["_offsets"][feature["start_positions"]][0] == 177


def test_long_context_labels_only_the_window_with_the_answer(minilm) -> None:
    context = " ".join([SUPER_BOWL] * 6)
    start = 5 * (len(SUPER_BOWL) + 1) + 177  # the answer in the last copy only
    example = squad(context, (Answer("Denver Broncos", start),))
    features = span_features(minilm, [example])
    assert len(features) >= 4
    assert {f["_example_index"] for f in features} == {0}
    hits = labelled(features)
    assert 1 <= len(hits) <= 2  # windows overlap, so two may hold the answer whole
    for feature in hits:
        assert answer_tokens(minilm, feature) == "denver broncos"
        assert feature["_offsets"][feature["start_positions"]] == (start, start + 6)
    assert features[0] not in hits  # the first window has an earlier "Denver Broncos" only


def test_best_spans_finds_the_answer_across_windows(minilm) -> None:
    context = " ".join([SUPER_BOWL] * 3)
    start = 2 * (len(SUPER_BOWL) + 1) + 177
    examples = [squad(context, (Answer("Denver Broncos", start),)), squad()]
    features = span_features(minilm, examples, max_length=128, doc_stride=32)
    number = next(i for i, f in enumerate(features) if f in labelled(features))
    target = features[number]
    starts, ends = peaked_logits(
        features, number, target["start_positions"], target["end_positions"]
    )
    # Torch tensors as a model returns them, with the batch's right padding.
    answers = best_spans(examples, features, torch.tensor(starts), torch.tensor(ends), top_k=3)
    best = answers[0][0]
    assert (best.text, best.start, best.end) == ("Denver Broncos", start, start + 14)
    assert context[best.start : best.end] == best.text
    assert best.score == pytest.approx(16.0, abs=0.5)
    assert len(answers[0]) == 3
    assert best.probability > 0.99
    assert sum(a.probability for a in answers[0]) <= 1.0 + 1e-9
    for answer in answers[1]:  # flat logits: some span, but always a real one
        assert SUPER_BOWL[answer.start : answer.end] == answer.text != ""


def test_offsets_survive_unicode_context(minilm) -> None:
    context = (
        "Nach dem Kaffee im Café Odéon \u2615 in Zürich, das für seine naïve Einrichtung "
        "bekannt ist, zog Einstein 1914 nach Berlin."
    )
    answer = Answer("Berlin", context.index("Berlin"))
    example = squad(context, (answer,), question="Wohin zog Einstein 1914?")
    [feature] = span_features(minilm, [example])
    assert answer_tokens(minilm, feature) == "berlin"
    for span in feature["_offsets"]:
        if span is not None:
            assert 0 <= span[0] < span[1] <= len(context)
    zurich = context.index("Zürich")
    first = next(i for i, s in enumerate(feature["_offsets"]) if s and s[0] == zurich)
    last = next(i for i, s in enumerate(feature["_offsets"]) if s and s[1] == zurich + 6)
    starts, ends = peaked_logits([feature], 0, first, last)
    [[best]] = best_spans([example], [feature], starts, ends)
    assert (best.text, best.start, best.end) == ("Zürich", zurich, zurich + 6)
    starts, ends = peaked_logits([feature], 0, feature["start_positions"], feature["end_positions"])
    [[best]] = best_spans([example], [feature], starts, ends)
    assert best.text == "Berlin" and context[best.start : best.end] == "Berlin"


def test_empty_context_and_null_threshold(minilm) -> None:
    empty = QAExample("e", "Who won?", "   ", ())
    unanswerable = squad(answers=())
    features = span_features(minilm, [empty, unanswerable])
    assert all((f["start_positions"], f["end_positions"]) == (0, 0) for f in features)
    starts, ends = peaked_logits(features, 1, 40, 41, cls_logit=12.0)
    answers = best_spans([empty, unanswerable], features, starts, ends, null_threshold=0.0)
    assert answers[0] == [SpanAnswer("", 0, 0, 0.0, 1.0)]
    assert (answers[1][0].text, answers[1][0].start, answers[1][0].end) == ("", 0, 0)
    assert answers[1][0].score == pytest.approx(24.0)
    assert answers[1][0].probability > 0.99
    # Without a threshold the null answer is never given.
    plain = best_spans([empty, unanswerable], features, starts, ends)
    assert plain[1][0].text != ""
    # A threshold above the margin keeps the span.
    lenient = best_spans([empty, unanswerable], features, starts, ends, null_threshold=20)
    assert lenient[1][0].text == plain[1][0].text


def test_long_question_is_cut_and_bad_settings_refused(minilm) -> None:
    question = "Which team, " + "after a very long and winding season, " * 40 + "won?"
    features = span_features(minilm, [squad(question=question)], max_length=128, doc_stride=32)
    for feature in features:
        question_tokens = feature["token_type_ids"].count(0)
        assert question_tokens <= 64 + 2  # half of max_length, plus CLS and SEP
        assert any(span is not None for span in feature["_offsets"])
    assert any(answer_tokens(minilm, f) == "denver broncos" for f in labelled(features))
    with pytest.raises(ConfigError, match="doc_stride"):
        span_features(minilm, [squad()], max_length=128, doc_stride=64)
    with pytest.raises(FeatureError, match="fast tokenizer"):
        span_features(tiny("marian"), [squad()])
    with pytest.raises(FeatureError, match="not at character"):
        span_features(minilm, [squad(answers=(Answer("Denver Broncos", 10),))])


# --------------------------------------------------------------------------------------------
# Causal SFT
# --------------------------------------------------------------------------------------------

MULTI_TURN = ChatExample(
    (
        {"role": "system", "content": "You answer in one short sentence."},
        {"role": "user", "content": "What is the capital of France?"},
        {"role": "assistant", "content": "Paris is the capital of France."},
        {"role": "user", "content": "And of Germany?"},
        {"role": "assistant", "content": "Berlin is the capital of Germany."},
    )
)


def test_sft_labels_only_assistant_turns_smollm(smollm) -> None:
    features, skipped = causal_sft_features(smollm, [MULTI_TURN])
    assert skipped == 0
    [feature] = features
    ids, labels = feature["input_ids"], feature["labels"]
    assert ids == smollm.apply_chat_template(
        list(MULTI_TURN.messages), tokenize=True, return_dict=False
    )
    assert [smollm.decode(run) for run in runs(ids, labels)] == [
        "Paris is the capital of France.<|im_end|>",
        "Berlin is the capital of Germany.<|im_end|>",
    ]
    masked = smollm.decode([t for t, label in zip(ids, labels, strict=True) if label < 0])
    assert "You answer in one short sentence." in masked
    assert "What is the capital of France?" in masked and "And of Germany?" in masked
    # SmolLM2's template adds a default system prompt when there is none: masked too.
    single = ChatExample(MULTI_TURN.messages[1:3])
    [feature], _ = causal_sft_features(smollm, [single])
    assert "SmolLM" in smollm.decode(feature["input_ids"])
    assert [smollm.decode(r) for r in runs(feature["input_ids"], feature["labels"])] == [
        "Paris is the capital of France.<|im_end|>"
    ]


def test_sft_on_tiny_llama_and_default_template() -> None:
    tokenizer = tiny("llama")
    [feature], _ = causal_sft_features(tokenizer, [MULTI_TURN])
    assert feature["input_ids"].count(tokenizer.bos_token_id) == 1
    assert feature["attention_mask"] == [1] * len(feature["input_ids"])
    assert [tokenizer.decode(r) for r in runs(feature["input_ids"], feature["labels"])] == [
        "Paris is the capital of France.<|im_end|>",
        "Berlin is the capital of Germany.<|im_end|>",
    ]
    tokenizer.chat_template = None  # a fresh tokenizer object: no template -> ChatML default
    [plain], _ = causal_sft_features(tokenizer, [MULTI_TURN])
    assert plain["input_ids"][0] != tokenizer.bos_token_id
    assert plain["input_ids"] == feature["input_ids"][1:]


def test_sft_truncation_skips_and_template_errors(smollm) -> None:
    [full], _ = causal_sft_features(smollm, [MULTI_TURN])
    first_answer = full["labels"].index(next(x for x in full["labels"] if x != IGNORE_INDEX))
    long_chat = ChatExample(
        ({"role": "user", "content": "Tell me a story. " * 200},)
        + ({"role": "assistant", "content": "Once upon a time."},),
        source="chats.jsonl:3",
    )
    cut = first_answer + 3
    features, skipped = causal_sft_features(
        smollm, [MULTI_TURN, long_chat, MULTI_TURN], max_length=cut
    )
    assert skipped == 1
    assert [f["_example_index"] for f in features] == [0, 2]
    assert all(len(f["input_ids"]) == cut == len(f["labels"]) for f in features)
    assert features[0]["labels"][-3:] == full["input_ids"][first_answer:cut]

    appending = "{% for m in messages %}{{ m['content'] }}\n{% endfor %}{{ messages | length }}"
    with pytest.raises(FeatureError, match="chat_template"):
        causal_sft_features(smollm, [MULTI_TURN], chat_template=appending)
    no_answer = ChatExample(({"role": "user", "content": "Hi"},), source="chats.jsonl:9")
    with pytest.raises(QuintetError, match=r"chats\.jsonl:9.*no assistant"):
        causal_sft_features(smollm, [no_answer])
    assert causal_sft_features(smollm, [MULTI_TURN], chat_template=DEFAULT_CHAT_TEMPLATE)[0]


# --------------------------------------------------------------------------------------------
# Seq2seq
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("family", "prefix"), [("t5", "summarize: "), ("marian", ""), ("bart", "")]
)
def test_seq2seq_labels_decode_to_the_target(family: str, prefix: str) -> None:
    tokenizer = tiny(family, kind="seq2seq")
    pairs = [
        PairExample("The cat sits on the mat.", ("Die Katze sitzt auf der Matte.",)),
        PairExample("Where is the nearest train station?", ("Wo ist der nächste Bahnhof?",)),
    ]
    features = seq2seq_features(tokenizer, pairs, prefix=prefix)
    for feature, pair in zip(features, pairs, strict=True):
        assert tokenizer.decode(feature["labels"], skip_special_tokens=True) == pair.target
        assert feature["labels"][-1] == tokenizer.eos_token_id
        expected = tokenizer(prefix + pair.source_text)["input_ids"]
        assert feature["input_ids"] == expected
        assert feature["attention_mask"] == [1] * len(expected)
        # The tiny vocabularies lack ":", so compare the words only.
        source = tokenizer.decode(feature["input_ids"], skip_special_tokens=True)
        assert source.split()[-2:] == pair.source_text.split()[-2:]
        assert source.startswith(prefix.rstrip(": "))
    short = seq2seq_features(tokenizer, pairs, max_source_length=4, max_target_length=3)
    assert all(len(f["input_ids"]) == 4 and len(f["labels"]) == 3 for f in short)


# --------------------------------------------------------------------------------------------
# Collate
# --------------------------------------------------------------------------------------------


def test_collate_pads_and_keeps_per_example_values() -> None:
    features = [
        {"input_ids": [5, 6, 7], "attention_mask": [1, 1, 1], "labels": [5, 6, 7], "_x": "a"},
        {"input_ids": [8], "attention_mask": [1], "labels": [-100], "_x": "b"},
    ]
    right = collate(features, pad_id=9)
    assert set(right) == {"input_ids", "attention_mask", "labels"}
    assert right["input_ids"].tolist() == [[5, 6, 7], [8, 9, 9]]
    assert right["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert right["labels"].tolist() == [[5, 6, 7], [-100, -100, -100]]
    left = collate(features, pad_id=9, padding_side="left")
    assert left["input_ids"].tolist() == [[5, 6, 7], [9, 9, 8]]
    assert left["attention_mask"].tolist() == [[1, 1, 1], [0, 0, 1]]

    hot = collate(
        [
            {"input_ids": [1, 2], "token_type_ids": [0, 0], "labels": [1.0, 0.0, 1.0]},
            {"input_ids": [1], "token_type_ids": [1], "labels": [0.0, 0.0, 0.0]},
        ],
        pad_id=0,
    )
    assert hot["labels"].dtype == torch.float32 and hot["labels"].shape == (2, 3)
    assert hot["token_type_ids"].tolist() == [[0, 0], [1, 0]]
    scalar = collate(
        [
            {"input_ids": [1, 2], "labels": 2, "start_positions": 1, "end_positions": 1},
            {"input_ids": [1], "labels": 0, "start_positions": 0, "end_positions": 0},
        ],
        pad_id=0,
    )
    assert scalar["labels"].dtype == torch.long and scalar["labels"].tolist() == [2, 0]
    assert scalar["start_positions"].tolist() == [1, 0]
    with pytest.raises(ConfigError):
        collate([], pad_id=0)


def test_span_features_collate_into_a_model_batch(minilm) -> None:
    features = span_features(minilm, [squad(), squad(answers=())], max_length=96, doc_stride=24)
    batch = collate(features, minilm.pad_token_id)
    assert batch["input_ids"].shape[0] == len(features)
    assert set(batch) == {
        "input_ids",
        "attention_mask",
        "token_type_ids",
        "start_positions",
        "end_positions",
    }


def test_tiny_bert_span_model_round_trip() -> None:
    path = tiny_model_dir("bert", kind="span")
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForQuestionAnswering.from_pretrained(path).eval()
    context = "The cat sits on the mat. " * 30 + "Paris is the capital of France."
    example = squad(context, (Answer("Paris", context.index("Paris")),), question="Where?")
    features = span_features(tokenizer, [example], max_length=64, doc_stride=16)
    assert len(features) > 1 and labelled(features)
    batch = collate(features, tokenizer.pad_token_id)
    with torch.no_grad():
        out = model(**batch)
    assert torch.isfinite(out.loss)
    [answers] = best_spans([example], features, out.start_logits, out.end_logits, top_k=2)
    assert 1 <= len(answers) <= 2
    for answer in answers:
        assert context[answer.start : answer.end] == answer.text

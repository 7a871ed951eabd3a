"""The same input gets the same answer whatever else is in its batch, on every default engine.

For each default engine and task, a row's output alone == in a batch of 16 mixed rows ==
after a resumed file run, to the last digit (scores) or byte (text):

- classification and embeddings on MiniLM-L6, ONNX Runtime int8 (the CPU default for
  encoders): ``classify`` and ``classify --input`` cut and resumed;
- extractive QA on the CTranslate2 int8 span encoder (the CPU default for BERT span models);
- translation on a tiny Marian model through CTranslate2 int8 (the CPU default for seq2seq)
  and transformers: ``translate`` and a file translation cut mid-chunk and resumed;
- greedy generation on SmolLM2 through onnxruntime-genai int8 (the CPU default for causal
  models).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from quintet.core.testing import CORPUS, tiny_model_dir

# Mixed rows: short and long, repeated words, punctuation, one text of several windows.
TEXTS = [
    "A wonderful, moving film.",
    "ok",
    "The striker scored twice in the final match of the season.",
    "Terrible acting and a dull plot; I left early.",
    "Stocks fell sharply after the earnings report. " * 3,
    "What a waste of two hours!!!",
    "The recipe needs flour, eggs, milk and a pinch of salt.",
    "Rain again today.",
    "I would watch it again tomorrow, and the day after.",
    "The central bank raised interest rates by half a point.",
    "meh",
    "An astonishing debut: funny, sad and true. " * 2,
    "The referee was the worst player on the pitch.",
    "Quarterly revenue beat every estimate.",
    "Nothing happens for ninety minutes, then nothing happens again.",
    "word " * 700,  # several windows of the model's 512 tokens
]
LABELS = ["positive", "negative", "sports", "business"]

pytestmark = pytest.mark.default_backend  # the engines auto picks, not the torch reference


def _alone_and_batch(run, rows):
    """``run`` on each row alone, and on all of them at once."""
    return [run([row])[0] for row in rows], run(rows)


# Classification and embeddings: ONNX Runtime int8 ---------------------------------------


@pytest.fixture
def classifier(real_store):
    from quintet.apps.classification import Classifier

    clf = Classifier("minilm-l6", labels=LABELS)
    assert clf.backend_choice.name == "onnxruntime"
    return clf


def test_classification_scores_do_not_depend_on_the_batch(classifier) -> None:
    alone, batch = _alone_and_batch(classifier.probabilities, TEXTS)
    # Exactly equal, every digit; shuffled batches and other batch sizes too.
    assert np.array_equal(np.stack(alone), batch)
    order = np.random.default_rng(0).permutation(len(TEXTS))
    shuffled = classifier.probabilities([TEXTS[i] for i in order])
    assert np.array_equal(shuffled, batch[order])
    classifier.batch_size = 3
    try:
        assert np.array_equal(classifier.probabilities(TEXTS), batch)
    finally:
        classifier.batch_size = 32


def test_embeddings_do_not_depend_on_the_batch(classifier) -> None:
    from quintet.apps.classification.zero_shot import embed

    alone = [embed(classifier.loaded, [text])[0] for text in TEXTS]
    batch = embed(classifier.loaded, TEXTS)
    assert all(bool((a == b).all()) for a, b in zip(alone, batch, strict=True))


def test_a_resumed_classification_file_equals_an_uninterrupted_run(classifier, tmp_path) -> None:
    source = tmp_path / "in.csv"
    with source.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "text"])
        writer.writerows((i, TEXTS[(i * 7) % len(TEXTS)]) for i in range(40))
    out = tmp_path / "out.csv"
    classifier.classify_csv(source, out, "text", batch_size=16, progress=False)
    whole = out.read_bytes()
    # Cut after 11 rows (not at a batch boundary): the rest is classified in other batches.
    lines = whole.splitlines(keepends=True)
    out.write_bytes(b"".join(lines[:12]))
    again = classifier.classify_csv(source, out, "text", batch_size=16, progress=False)
    assert again.resumed == 11
    assert out.read_bytes() == whole


def test_windows_of_a_long_text_go_through_the_encoder_in_bounded_parts(classifier) -> None:
    from dataclasses import replace

    from quintet.core.models import ROWS_PER_PASS

    engine = classifier.loaded.encoder
    seen: list[int] = []

    def recording(**batch):
        seen.append(len(batch["input_ids"]))
        return engine(**batch)

    long_text = "word " * 20_000  # ~45 windows
    expected = classifier.probabilities([long_text])
    loaded = classifier.loaded
    classifier.loaded = replace(loaded, encoder=recording)
    try:
        assert np.array_equal(classifier.probabilities([long_text]), expected)
    finally:
        classifier.loaded = loaded
    assert sum(seen) > ROWS_PER_PASS and max(seen) <= ROWS_PER_PASS


# Extractive QA: the CTranslate2 int8 span encoder ----------------------------------------


def test_qa_answers_do_not_depend_on_the_batch() -> None:
    from quintet.apps.qa import QuestionAnswerer

    qa = QuestionAnswerer(str(tiny_model_dir("bert", kind="span")), batch_size=16)
    assert qa.backend_choice.name == "ctranslate2"
    pairs = [
        (f"what is {CORPUS[i % len(CORPUS)].split()[0]}?", " ".join(TEXTS[i:] + TEXTS[:i]))
        for i in range(16)
    ]
    alone, batch = _alone_and_batch(qa.answer_many, pairs)
    key = [[(a.text, a.start, a.score) for a in answers] for answers in batch]
    assert [[(a.text, a.start, a.score) for a in answers] for answers in alone] == key


# Translation: CTranslate2 (the seq2seq default) and transformers -------------------------


@pytest.fixture(params=["auto", "transformers"])
def marian(request):
    from quintet.apps.translation import Translator

    translator = Translator(str(tiny_model_dir("marian")), backend=request.param)
    expected = "ctranslate2" if request.param == "auto" else "transformers"
    assert translator.describe("en", "de")["backend"].startswith(expected)
    return translator


def _sources() -> list[str]:
    # Pieces of many lengths: a per-call length cap made the longest piece of a chunk decide
    # every other piece's cap (the tiny model never stops before its cap).
    return [(CORPUS[i % len(CORPUS)] + " ") * (1 + i % 3) if i % 7 else "" for i in range(150)]


def test_translations_do_not_depend_on_the_batch(marian) -> None:
    texts = [t for t in _sources() if t][:16]
    alone, batch = _alone_and_batch(lambda rows: marian.translate(rows, "en", "de"), texts)
    assert [r.text for r in alone] == [r.text for r in batch]


def test_a_resumed_file_translation_is_byte_identical(marian, tmp_path: Path) -> None:
    source = tmp_path / "in.txt"
    source.write_text("\n".join(_sources()) + "\n", encoding="utf-8")
    whole = tmp_path / "whole.txt"
    marian.translate_file(str(source), str(whole), "en", "de", progress=False)
    # Cut after 99 lines, inside the second 64-line chunk: the resumed run's chunks start
    # at line 99, so every later line is translated among other lines than before.
    part = tmp_path / "part.txt"
    part.write_bytes(b"".join(whole.read_bytes().splitlines(keepends=True)[:99]))
    info = marian.translate_file(str(source), str(part), "en", "de", progress=False)
    assert info["resumed_from"] == 99
    assert part.read_bytes() == whole.read_bytes()


# Generation: onnxruntime-genai int8 (the causal default on CPU) --------------------------

QUESTIONS = [
    "What is the capital of France?",
    "Write a haiku about rain.",
    "2+2=?",
    "Name three fruits.",
    "Explain gravity in one sentence.",
    "Translate 'good morning' to Spanish.",
    "Who wrote Hamlet?",
    "List the days of the week.",
    "What colour is the sky on a clear day and why?",
    "hi",
    "Give me a synonym for happy.",
    "What is 12 times 12?",
    "Describe a cat.",
    "Tell me a joke about computers.",
    "How many legs does a spider have?",
    "Summarise the plot of Cinderella in two sentences.",
]


@pytest.mark.slow
def test_greedy_generation_does_not_depend_on_the_batch(real_store) -> None:
    from quintet.core.decoding import Generator

    generator = Generator("smollm2-135m-instruct", batch_size=16)
    assert generator.backend_choice.name == "onnxruntime-genai"
    chats = [[{"role": "user", "content": q}] for q in QUESTIONS]
    alone, batch = _alone_and_batch(
        lambda rows: generator.generate(rows, max_new_tokens=24, progress=False), chats
    )
    assert [r.token_ids for r in alone] == [r.token_ids for r in batch]


# Evaluation: a run resumed after a cut (quintet eval ... --out DIR) --------------------


class Killed(Exception):
    """Stands in for the process dying after some batches were written."""


def test_a_resumed_evaluation_equals_an_uninterrupted_run(real_store, tmp_path: Path) -> None:
    import json

    from quintet.evaluation.harness import evaluate
    from quintet.evaluation.protocol import DataOptions

    args = dict(
        data="data/classification/sst2/dev.tsv", limit=60, bootstrap=50, progress=False,
        options=DataOptions(extra={"label_map": "0=negative,1=positive"}),
    )  # fmt: skip
    whole = evaluate("classification", "minilm-l6", out=tmp_path / "whole", batch_size=16, **args)

    def die_after_two_batches(done: int, total: int) -> None:
        if done >= 32:
            raise Killed

    run = tmp_path / "run"
    with pytest.raises(Killed):
        evaluate("classification", "minilm-l6", out=run, batch_size=16,
                 **{**args, "progress": die_after_two_batches})  # fmt: skip
    # Resumed in other batches (of 7): every later item is scored beside other items.
    resumed = evaluate("classification", "minilm-l6", out=run, batch_size=7, **args)
    assert resumed.metrics == whole.metrics

    def predictions(folder: Path) -> list[dict]:
        rows = [
            json.loads(line) for line in (folder / "predictions.jsonl").read_text().splitlines()
        ]
        return [{k: v for k, v in row.items() if "second" not in k} for row in rows]

    assert predictions(run) == predictions(tmp_path / "whole")

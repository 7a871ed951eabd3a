"""Translation harness: the shipped FLORES/WMT files and JSONL/TSV read as they are, languages
inferred from file and folder names, sacreBLEU scores and per-item chrF, a tiny end-to-end run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sacrebleu

from quintet.apps.translation.harness import HARNESS, _infer_code
from quintet.apps.translation.languages import LanguageError
from quintet.core.data import DataError
from quintet.core.testing import tiny_model_dir
from quintet.evaluation.harness import evaluate
from quintet.evaluation.protocol import DataOptions, Prediction

FLORES = Path("data/translation/flores200_dev")
WMT = Path("data/translation/wmt17_sample")


def test_flores_folder_with_iso_or_flores_codes() -> None:
    run = HARNESS.read(str(FLORES), DataOptions(src="en", tgt="deu_Latn"))
    items = run.items
    eng = (FLORES / "eng_Latn.dev").read_text(encoding="utf-8").splitlines()
    deu = (FLORES / "deu_Latn.dev").read_text(encoding="utf-8").splitlines()
    assert len(items) == 997 == len(eng)
    assert items[5].inputs["text"] == eng[5] and items[5].references == [deu[5]]
    assert (run.src, run.tgt) == ("en", "de")
    with pytest.raises(DataError, match="needs --src and --tgt"):
        HARNESS.read(str(FLORES), DataOptions())
    with pytest.raises(DataError, match="no ita_Latn.dev"):
        HARNESS.read(str(FLORES), DataOptions(src="en", tgt="it"))


def test_wmt_pair_folder_infers_languages_from_its_name() -> None:
    run = HARNESS.read(str(WMT / "en-de"), DataOptions())
    items = run.items
    assert len(items) == 500 and (run.src, run.tgt) == ("en", "de")
    first = (WMT / "en-de" / "newstest2017.de").read_text(encoding="utf-8").splitlines()[0]
    assert items[0].references == [first]


def test_plain_files_infer_languages_from_their_names() -> None:
    options = DataOptions(
        source_file=str(FLORES / "fra_Latn.dev"), reference_files=(str(FLORES / "eng_Latn.dev"),)
    )
    run = HARNESS.read("", options)
    items = run.items
    assert len(items) == 997 and (run.src, run.tgt) == ("fr", "en")
    zh = DataOptions(
        source_file=str(WMT / "en-zh" / "newstest2017.en"),
        reference_files=(str(WMT / "en-zh" / "newstest2017.zh"),),
    )
    run = HARNESS.read("", zh)
    assert len(run.items) == 200 and (run.src, run.tgt) == ("en", "zh")
    assert _infer_code("notes.txt") is None and _infer_code("x.dev") is None
    assert _infer_code("a/eng_Latn.devtest") == "eng_Latn"


def test_several_references_and_unnamed_files(tmp_path: Path) -> None:
    src, ref1, ref2 = (tmp_path / n for n in ("src.txt", "ref1.txt", "ref2.txt"))
    src.write_text("a\nb\n")
    ref1.write_text("A\nB\n")
    ref2.write_text("AA\nBB\n")
    options = DataOptions(source_file=str(src), reference_files=(str(ref1), str(ref2)))
    with pytest.raises(DataError, match="pass --src and --tgt"):
        HARNESS.read("", options)
    items = HARNESS.read("", DataOptions(**{**options.__dict__, "src": "en", "tgt": "de"})).items
    assert [i.references for i in items] == [["A", "AA"], ["B", "BB"]]
    with pytest.raises(LanguageError, match="'klingon'"):
        HARNESS.read("", DataOptions(**{**options.__dict__, "src": "en", "tgt": "klingon"}))


def test_jsonl_and_tsv_with_default_and_chosen_fields(tmp_path: Path) -> None:
    jsonl = tmp_path / "pairs.jsonl"
    jsonl.write_text(json.dumps({"source": "Hello.", "reference": "Hallo."}) + "\n")
    [item] = HARNESS.read(str(jsonl), DataOptions(src="en", tgt="de")).items
    assert item.inputs == {"text": "Hello."} and item.references == ["Hallo."]
    tsv = tmp_path / "pairs.tsv"
    tsv.write_text("en\tde\nHello.\tHallo.\n")
    [item] = HARNESS.read(
        str(tsv), DataOptions(src="en", tgt="de", text_field="en", target_field="de")
    ).items
    assert item.references == ["Hallo."]


def test_scores_equal_sacrebleu_and_per_item_chrf() -> None:
    run = HARNESS.read(str(WMT / "en-de"), DataOptions())
    items = run.items[:50]
    hyps = [" ".join(i.references[0].split()[:-2]) for i in items]  # degraded references
    scores = HARNESS.score(
        run, items, [Prediction(i.id, h) for i, h in zip(items, hyps, strict=True)]
    )
    refs = [[i.references[0] for i in items]]
    assert scores.metrics["bleu"] == pytest.approx(sacrebleu.corpus_bleu(hyps, refs).score)
    assert scores.metrics["chrf"] == pytest.approx(sacrebleu.corpus_chrf(hyps, refs).score)
    assert scores.metrics["ter"] == pytest.approx(sacrebleu.corpus_ter(hyps, refs).score)
    assert scores.signatures["bleu"].startswith("nrefs:1|case:mixed")
    assert len(scores.per_item) == 50
    assert scores.per_item[3]["chrf"] == pytest.approx(
        sacrebleu.sentence_chrf(hyps[3], [items[3].references[0]]).score
    )


def test_tiny_marian_end_to_end_on_flores(tmp_path: Path) -> None:
    report = evaluate(
        "translation",
        str(tiny_model_dir("marian")),
        str(FLORES),
        limit=6,
        out=tmp_path / "run",
        decode={"max_new_tokens": 4},
        options=DataOptions(src="en", tgt="de"),
        bootstrap=20,
        progress=False,
    )
    assert report.n == 6 and set(report.metrics) >= {"bleu", "chrf", "ter"}
    assert report.settings["src"] == "en" and report.settings["style"] == "seq2seq"
    lines = (tmp_path / "run" / "predictions.jsonl").read_text().splitlines()
    assert len(lines) == 6 and json.loads(lines[0])["prediction"]


def test_an_evaluation_counts_each_example_as_it_finishes(tmp_path: Path) -> None:
    """Five sentences are one batch: the count rises 1 by 1, not from 0 straight to 5."""
    seen: list[tuple[int, int]] = []
    evaluate(
        "translation",
        str(tiny_model_dir("marian")),
        str(FLORES),
        limit=5,
        out=tmp_path / "run",
        decode={"max_new_tokens": 6, "num_beams": 1},
        options=DataOptions(src="en", tgt="de"),
        bootstrap=0,
        batch_size=16,
        progress=lambda done, total: seen.append((done, total)),
    )
    counts = [done for done, _ in seen]
    assert list(dict.fromkeys(counts)) == [0, 1, 2, 3, 4, 5] and counts == sorted(counts)
    assert {total for _, total in seen} == {5}

"""The data readers on real files and on broken ones.

Real-data tests copy small slices of the shared reference data (``../shared/data`` or
``$QUINTET_SHARED_DATA``, else the copies the project ships in ``data/``) into ``tmp_path`` in
the same format, and skip where neither has the file; the bad-input tests write their own
files.
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

import pytest

from quintet.core.data import (
    DataError,
    read_chats,
    read_classification,
    read_pairs,
    read_parallel,
    read_qa,
    read_records,
    split_by_group,
    split_items,
)
from quintet.core.errors import QuintetError
from quintet.core.examples import Answer

SHARED = Path(
    os.environ.get("QUINTET_SHARED_DATA", Path(__file__).resolve().parents[3] / "shared" / "data")
)


PROJECT_DATA = Path(__file__).resolve().parents[2] / "data"


def shared(relative: str, *, whole: bool = False) -> Path:
    """A reference file: from the shared folder, else the copy the project ships in data/.

    ``whole``: only the complete shared file will do (the project may ship a subset).
    """
    for root in (SHARED,) if whole else (SHARED, PROJECT_DATA):
        if (root / relative).exists():
            return root / relative
    pytest.skip(f"reference data {relative} not available")


def head(relative: str, lines: int, dest: Path) -> Path:
    """Copy the first ``lines`` lines of a shared file, byte for byte."""
    data = shared(relative).read_bytes()
    dest.write_bytes(b"".join(data.splitlines(keepends=True)[:lines]))
    return dest


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def error_of(call, *args, **kwargs) -> str:
    with pytest.raises(DataError) as info:
        call(*args, **kwargs)
    assert isinstance(info.value, QuintetError)
    return str(info.value)


# ------------------------------------------------------------------ real data: classification


def test_sst2_tsv(tmp_path):
    path = head("classification/sst2/dev.tsv", 51, tmp_path / "dev.tsv")
    examples = read_classification(path, label_set={"0", "1"})
    assert len(examples) == 50
    first = examples[0]
    assert first.text == "it 's a charming and often affecting journey . "  # GLUE's trailing space
    assert first.labels == ("1",)
    assert first.source == f"{path}:2" and first.id == "2"
    assert examples[1].labels == ("0",)
    assert {e.labels[0] for e in examples} == {"0", "1"}


def test_trec_label_file_latin1(tmp_path):
    path = head("classification/trec/train_5500.label", 70, tmp_path / "train.label")
    coarse = read_classification(path)
    assert len(coarse) == 70
    assert coarse[0].text == "How did serfdom develop in and then leave Russia ?"
    assert coarse[0].labels == ("DESC",)
    assert "sister\u00f0city" in coarse[65].text  # the Latin-1 0xF0 byte on line 66
    fine = read_classification(path, label_field="fine")
    assert fine[0].labels == ("DESC:manner",) and fine[1].labels == ("ENTY:cremat",)
    coarse_set = {"ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"}
    assert {e.labels[0] for e in read_classification(path, label_set=coarse_set)} <= coarse_set
    message = error_of(read_classification, path, label_set={"DESC"})
    assert message.startswith(f"{path}:2: unknown label 'ENTY'")


def test_ag_news_headerless_csv(tmp_path):
    path = head("classification/ag_news/test_half_a.csv", 20, tmp_path / "test.csv")
    examples = read_classification(path, label_set={"1", "2", "3", "4"})
    assert len(examples) == 20
    assert examples[0].text == (
        "Fears for T N pension after talks. Unions representing workers at Turner   Newall say "
        "they are 'disappointed' after talks with stricken parent firm Federal Mogul."
    )
    assert examples[0].labels == ("3",) and examples[0].source == f"{path}:1"
    # the same rows under Kaggle's header read the same
    with_header = tmp_path / "kaggle.csv"
    with_header.write_bytes(b'"Class Index","Title","Description"\n' + path.read_bytes())
    assert [(e.text, e.labels) for e in read_classification(with_header)] == [
        (e.text, e.labels) for e in examples
    ]


# ----------------------------------------------------------------------- real data: pairs


def test_samsum_csv_multiline_fields(tmp_path):
    text = shared("summarization/samsum/val.csv").read_bytes().decode("utf-8")  # keeps CRLF
    reader = csv.reader(io.StringIO(text))
    starts = []
    for _ in range(6):  # header + 5 dialogues (each spans several lines)
        starts.append(reader.line_num + 1)
        next(reader)
    path = write(tmp_path / "val.csv", "\n".join(text.split("\n")[: reader.line_num]) + "\n")
    examples = read_pairs(path)
    assert len(examples) == 5
    first = examples[0]
    assert first.id == "13817023"
    assert first.source_text.startswith("A: Hi Tom, are you busy tomorrow’s afternoon?\r\nB: ")
    assert first.target.startswith("A will go to the animal shelter tomorrow")
    assert [e.source for e in examples] == [f"{path}:{line}" for line in starts[1:]]


def test_xsum_jsonl(tmp_path):
    path = head("summarization/xsum/test_subset_a500.jsonl", 5, tmp_path / "xsum.jsonl")
    examples = read_pairs(path)
    assert len(examples) == 5
    assert examples[0].source_text.startswith("The owners said their planned £80m development")
    assert examples[0].targets == (
        "Proposals for an indoor water park and a hotel at West Midland Safari Park have been "
        "approved by councillors.",
    )
    assert examples[0].id == str(json.loads(path.read_text().split("\n")[0])["id"])


def test_cnndm_highlights_and_extra_references(tmp_path):
    path = head(
        "summarization/cnn_dailymail/test_subset_summeval100.jsonl", 3, tmp_path / "c.jsonl"
    )
    plain = read_pairs(path)
    assert plain[0].id.startswith("dm-test-") and len(plain[0].targets) == 1
    assert plain[0].target.startswith("Andros Townsend an 83rd minute sub")  # kept as is
    multi = read_pairs(path, target_field=["highlights", "additional_references"])
    assert len(multi[0].targets) == 11 and multi[0].targets[0] == plain[0].target
    only_extra = read_pairs(path, "article", "additional_references")
    assert len(only_extra[0].targets) == 10


def test_wmt_parallel(tmp_path):
    src = head("translation/wmt_newstest/en-de/newstest2014.en", 20, tmp_path / "nt.en")
    ref = head("translation/wmt_newstest/en-de/newstest2014.de", 20, tmp_path / "nt.de")
    examples = read_parallel(src, [ref])
    assert len(examples) == 20
    assert examples[0].source_text == "Gutach: Increased safety for pedestrians"
    assert examples[0].targets == ("Gutach: Noch mehr Sicherheit für Fußgänger",)
    assert examples[19].source == f"{src}:20" and examples[19].id == "20"
    two = read_parallel(src, [ref, ref])
    assert two[3].targets == (examples[3].target, examples[3].target)


# -------------------------------------------------------------------------- real data: QA


@pytest.fixture(scope="module")
def squad_articles():
    doc = json.loads(shared("qa/squad_v1.1/dev-v1.1.articles-00-23.json").read_text("utf-8"))
    second = dict(doc["data"][1])
    second["paragraphs"] = second["paragraphs"][:2]
    return [doc["data"][0], second]


def test_squad_json(tmp_path, squad_articles):
    path = tmp_path / "squad.json"
    path.write_text(json.dumps({"version": "1.1", "data": squad_articles}), encoding="utf-8")
    examples = read_qa(path)
    n_first = sum(len(p["qas"]) for p in squad_articles[0]["paragraphs"])
    n_all = n_first + sum(len(p["qas"]) for p in squad_articles[1]["paragraphs"])
    assert len(examples) == n_all
    first = examples[0]
    assert first.id == "56be4db0acb8001400a502ec" and first.title == "Super_Bowl_50"
    assert first.question == "Which NFL team represented the AFC at Super Bowl 50?"
    assert first.answers[0] == Answer(text="Denver Broncos", start=177)
    assert len(first.answers) == 3  # duplicates kept, as the official evaluation sees them
    assert first.source == f"{path}:qid=56be4db0acb8001400a502ec"
    for ex in examples:
        for answer in ex.answers:
            assert ex.context[answer.start : answer.start + len(answer.text)] == answer.text
    assert {ex.title for ex in examples[n_first:]} == {squad_articles[1]["title"]}


def test_squad_as_jsonl_in_both_answer_shapes(tmp_path, squad_articles):
    rows = []
    for paragraph in squad_articles[0]["paragraphs"][:3]:
        for qa in paragraph["qas"]:
            rows.append(
                {
                    "id": qa["id"],
                    "title": "Super_Bowl_50",
                    "context": paragraph["context"],
                    "question": qa["question"],
                    "answers": {
                        "text": [a["text"] for a in qa["answers"]],
                        "answer_start": [a["answer_start"] for a in qa["answers"]],
                    },
                }
            )
    hf = write(tmp_path / "hf.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    for row in rows:
        answers = row["answers"]
        row["answers"] = [
            {"text": t, "answer_start": s}
            for t, s in zip(answers["text"], answers["answer_start"], strict=True)
        ]
    listed = write(tmp_path / "list.jsonl", "\n".join(json.dumps(r) for r in rows))
    squad_json = tmp_path / "squad.json"
    squad_json.write_text(json.dumps({"data": squad_articles}), encoding="utf-8")
    expected = [
        (e.id, e.question, e.context, e.answers, e.title) for e in read_qa(squad_json)[: len(rows)]
    ]
    for path in (hf, listed):
        examples = read_qa(path)
        assert [(e.id, e.question, e.context, e.answers, e.title) for e in examples] == expected
        assert examples[2].source == f"{path}:3"


def test_squad_v2_no_answer(tmp_path):
    context = "Quintet reads data files."
    doc = {
        "version": "v2.0",
        "data": [
            {
                "title": "T",
                "paragraphs": [
                    {
                        "context": context,
                        "qas": [
                            {"id": "a", "question": "What reads?", "is_impossible": False,
                             "answers": [{"text": "Quintet", "answer_start": 0}]},
                            {"id": "b", "question": "Who wrote it?", "is_impossible": True,
                             "answers": [], "plausible_answers": [
                                 {"text": "Quintet", "answer_start": 0}]},
                        ],
                    }
                ],
            }
        ],
    }  # fmt: skip
    path = write(tmp_path / "v2.json", json.dumps(doc))
    a, b = read_qa(path)
    assert a.answers == (Answer("Quintet", 0),) and b.answers == ()
    jsonl = write(
        tmp_path / "v2.jsonl",
        json.dumps({"context": context, "question": "Who?", "answers": []}) + "\n",
    )
    assert read_qa(jsonl)[0].answers == ()


# ------------------------------------------------------------------------ real data: chat


def test_alpaca_json(tmp_path):
    items = json.loads(shared("chat/alpaca_demo/alpaca_en_demo.json").read_text("utf-8"))[:6]
    path = write(tmp_path / "alpaca.json", json.dumps(items, indent=2, ensure_ascii=False))
    examples = read_chats(path)
    assert len(examples) == 6
    assert examples[0].messages[0] == {
        "role": "user",
        "content": "Describe a process of making crepes.",
    }
    assert examples[0].messages[1]["role"] == "assistant"
    assert examples[0].messages[1]["content"] == items[0]["output"]
    with_input = examples[5]
    assert items[5]["input"]
    assert with_input.messages[0]["content"] == items[5]["instruction"] + "\n\n" + items[5]["input"]
    # each item's line is where its "{" is
    lines = path.read_text().split("\n")
    for ex in examples:
        line = int(ex.source.rsplit(":", 1)[1])
        assert lines[line - 1].strip() == "{"


def test_mt_bench_questions(tmp_path):
    rows = shared("chat/mt_bench/question.jsonl").read_text("utf-8").split("\n")
    with_reference = next(r for r in rows if '"reference"' in r)
    path = write(tmp_path / "question.jsonl", "\n".join([*rows[:3], with_reference]) + "\n")
    examples = read_chats(path)
    first = examples[0]
    assert first.id == "81" and first.category == "writing"
    assert [m["role"] for m in first.messages] == ["user", "user"]
    assert first.extra["turns"][0].startswith("Compose an engaging travel blog post")
    assert "reference" not in first.extra and "reference" in examples[3].extra


def test_messages_jsonl(tmp_path):
    rows = [
        {"id": "x", "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello."}]},
        {"messages": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}],
         "category": "math"},
    ]  # fmt: skip
    path = write(tmp_path / "chat.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n\n")
    a, b = read_chats(path)
    assert a.id == "x" and a.messages[0] == {"role": "system", "content": "Be brief."}
    assert b.id == "2" and b.category == "math" and b.source == f"{path}:2"


def test_whole_real_files_read():
    """Every shared file of each format reads completely, with the documented counts."""
    counts = {
        ("classification/sst2/dev.tsv", read_classification): 872,
        ("classification/trec/train_5500.label", read_classification): 5452,
        ("classification/ag_news/test_half_a.csv", read_classification): 3800,
        ("summarization/samsum/val.csv", read_pairs): 818,
        ("summarization/xsum/test_subset_a500.jsonl", read_pairs): 500,
        ("summarization/cnn_dailymail/test_subset_summeval100.jsonl", read_pairs): 100,
        ("qa/squad_v1.1/dev-v1.1.articles-00-23.json", read_qa): 5696,
        ("chat/alpaca_demo/alpaca_en_demo.json", read_chats): 999,
        ("chat/mt_bench/question.jsonl", read_chats): 80,
    }
    for (relative, reader), count in counts.items():
        assert len(reader(shared(relative, whole=True))) == count, relative


# ------------------------------------------------------------------------- read_records


def test_records_of_each_format(tmp_path):
    assert read_records(write(tmp_path / "a.jsonl", '{"a": 1}\n\n{"a": 2}\n')) == [
        (1, {"a": 1}),
        (3, {"a": 2}),
    ]
    assert read_records(write(tmp_path / "a.json", '[\n {"a": 1},\n\n {"a": 2}\n]\n')) == [
        (2, {"a": 1}),
        (4, {"a": 2}),
    ]
    assert read_records(write(tmp_path / "empty.json", "[]")) == []
    csv_text = 'text,label\n"a, ""quoted""\nsecond line",x\nplain,y\n'
    assert read_records(write(tmp_path / "a.csv", csv_text)) == [
        (2, {"text": 'a, "quoted"\nsecond line', "label": "x"}),
        (4, {"text": "plain", "label": "y"}),
    ]
    tsv = write(tmp_path / "a.tsv", 'sentence\tlabel\nhe said "hi , there\t1\n"odd\t0\n')
    assert read_records(tsv) == [
        (2, {"sentence": 'he said "hi , there', "label": "1"}),
        (3, {"sentence": '"odd', "label": "0"}),
    ]
    # format= overrides the extension
    assert read_records(write(tmp_path / "data.txt", '{"a": 1}\n'), format="jsonl") == [
        (1, {"a": 1})
    ]
    bom = tmp_path / "bom.csv"
    bom.write_bytes("\ufefftext,label\nx,y\n".encode())
    assert read_records(bom) == [(2, {"text": "x", "label": "y"})]


def test_bad_json_line_names_its_line(tmp_path):
    path = write(tmp_path / "x.jsonl", '{"text": "a"}\n{"text": "b"}\n{"text": oops}\n')
    message = error_of(read_records, path)
    assert message.startswith(f"{path}:3: not valid JSON")
    assert "one JSON object per line" in message
    path = write(tmp_path / "y.jsonl", '{"text": "a"}\n[1, 2]\n')
    assert error_of(read_records, path).startswith(f"{path}:2: a list; expected one JSON object")


def test_json_that_is_not_a_list_of_objects(tmp_path):
    path = write(tmp_path / "x.json", '{"data": []}')
    assert error_of(read_records, path) == f"{path}:0: an object; expected a JSON list of objects"
    path = write(tmp_path / "y.json", '[\n {"a": 1},\n "b"\n]')
    assert error_of(read_records, path).startswith(f"{path}:3: item 2 is a string")
    path = write(tmp_path / "z.json", '[\n {"a": 1},\n {"a": }\n]')
    assert error_of(read_records, path).startswith(f"{path}:3: not valid JSON")
    path = write(tmp_path / "lines.json", '{"a": 1}\n{"a": 2}\n')  # JSONL named .json
    assert error_of(read_records, path).startswith(f"{path}:2: not valid JSON (Extra data)")
    path = write(tmp_path / "trail.json", '[{"a": 1}] x')
    assert "extra data after the list" in error_of(read_records, path)


def test_wrong_content_for_the_extension(tmp_path):
    csv_as_jsonl = write(tmp_path / "x.jsonl", "text,label\nhello,1\n")
    assert error_of(read_records, csv_as_jsonl).startswith(f"{csv_as_jsonl}:1: not valid JSON")
    binary = tmp_path / "x.csv"
    binary.write_bytes(b"PK\x03\x04\x00\x00binary\n")
    assert error_of(read_records, binary) == (
        f"{binary}:1: binary data (NUL byte); expected a CSV text file"
    )
    latin = tmp_path / "l.csv"
    latin.write_bytes(b"text,label\nok,1\ncaf\xe9,1\n")
    assert error_of(read_records, latin).startswith(f"{latin}:3: not UTF-8 text (byte 0xe9)")
    ragged = write(tmp_path / "r.csv", "text,label\na,1\nb,1,extra\n")
    assert error_of(read_records, ragged) == (
        f"{ragged}:3: 3 fields; expected 2 as in the header (text, label)"
    )
    assert error_of(read_records, write(tmp_path / "e.csv", "")).endswith(
        "expected a CSV header row"
    )
    assert "unknown extension '.txt'" in error_of(read_records, write(tmp_path / "a.txt", "x"))
    missing = tmp_path / "nope.jsonl"
    assert error_of(read_records, missing) == (
        f"{missing}:0: no such file; expected an existing JSONL file"
    )


# -------------------------------------------------------------- classification: bad input


def test_classification_errors(tmp_path):
    path = write(tmp_path / "x.csv", "sentence,label\ngood,1\n,0\n")
    assert error_of(read_classification, path) == f"{path}:3: empty text in field 'sentence'"
    path = write(
        tmp_path / "nolabel.jsonl", '{"text": "a", "label": 1}\n{"text": "b", "label": ""}\n'
    )
    assert error_of(read_classification, path) == f"{path}:2: missing label in field 'label'"
    path = write(tmp_path / "nofield.jsonl", '{"text": "a", "label": 1}\n{"text": "b"}\n')
    assert error_of(read_classification, path).startswith(f"{path}:2: missing field 'label'")
    path = write(tmp_path / "fields.csv", "body,stars\nnice,5\n")
    message = error_of(read_classification, path)
    assert message.startswith(f"{path}:2: no text field")
    assert "(or pass text_field=)" in message
    assert read_classification(path, "body", "stars")[0].labels == ("5",)
    assert error_of(read_classification, path, "body", "nope").startswith(
        f"{path}:2: no field 'nope' for the label"
    )
    path = write(tmp_path / "u.tsv", "sentence\tlabel\nfine\t1\nbad\t2\n")
    assert error_of(read_classification, path, label_set=["0", "1"]) == (
        f"{path}:3: unknown label '2' in field 'label'; expected one of 0, 1"
    )
    path = write(tmp_path / "bad.label", "DESC:manner How ?\nno label here\n")
    assert error_of(read_classification, path).startswith(f"{path}:2: not a TREC line")


def test_classification_multi_label_ids_and_duplicates(tmp_path):
    rows = [
        {"id": "q1", "text": "a", "labels": ["x", "y"]},
        {"id": "q1", "text": "b", "labels": "y|z"},
        {"id": 7, "text": 3, "labels": ["x"]},
    ]
    path = write(tmp_path / "m.jsonl", "\n".join(json.dumps(r) for r in rows))
    examples = read_classification(path, multi_label=True, label_set={"x", "y", "z"})
    assert [e.labels for e in examples] == [("x", "y"), ("y", "z"), ("x",)]
    assert [e.id for e in examples] == ["q1", "q1", "7"]  # duplicate ids are fine
    assert examples[2].text == "3"
    assert "pass multi_label=True" in error_of(read_classification, path)
    assert error_of(read_classification, path, multi_label=True, label_set={"x", "y"}).startswith(
        f"{path}:2: unknown label 'z'"
    )


# --------------------------------------------------------------------- QA: bad input


def test_qa_answer_offset_wrong(tmp_path):
    good = {
        "context": "Paris is in France.",
        "question": "Where?",
        "answers": {"text": ["France"], "answer_start": [12]},
    }
    bad = {
        "context": "Paris is in France.",
        "question": "Where?",
        "answers": [{"text": "France", "answer_start": 11}],
    }
    path = write(tmp_path / "qa.jsonl", json.dumps(good) + "\n" + json.dumps(bad) + "\n")
    message = error_of(read_qa, path)
    assert message.startswith(f"{path}:2: answer 'France' does not match the context")
    assert "' Franc'" in message  # what the context has at that offset
    doc = {"data": [{"title": "T", "paragraphs": [{"context": good["context"], "qas": [
        {"id": "q-1", "question": "Where?", "answers": [{"text": "France", "answer_start": 12}]},
        {"id": "q-2", "question": "Where?", "answers": [{"text": "Franc", "answer_start": 0}]},
    ]}]}]}  # fmt: skip
    path = write(tmp_path / "squad.json", json.dumps(doc))
    assert error_of(read_qa, path).startswith(f"{path}:qid=q-2: answer 'Franc' does not match")


def test_qa_missing_and_malformed_fields(tmp_path):
    path = write(tmp_path / "q.jsonl", json.dumps({"context": "c", "question": "q"}) + "\n")
    assert error_of(read_qa, path).startswith(f"{path}:1: missing field 'answers'")
    row = {"context": "c", "question": " ", "answers": []}
    path = write(tmp_path / "e.jsonl", json.dumps(row) + "\n")
    assert error_of(read_qa, path) == f"{path}:1: empty text in field 'question'"
    row = {"context": "abc", "question": "q", "answers": {"text": ["a"], "answer_start": []}}
    path = write(tmp_path / "n.jsonl", json.dumps(row) + "\n")
    assert "1 texts and 0 answer_start" in error_of(read_qa, path)
    path = write(tmp_path / "s.json", json.dumps({"version": "1.1"}))
    assert error_of(read_qa, path).startswith(f'{path}:0: no "data" list')


# ------------------------------------------------------------------ pairs: bad input


def test_pairs_errors(tmp_path):
    path = write(tmp_path / "p.jsonl", '{"document": "d", "summary": ["s1", "s2"]}\n')
    assert read_pairs(path)[0].targets == ("s1", "s2")
    path = write(tmp_path / "q.jsonl", '{"document": "d", "summary": "s"}\n{"document": "d"}\n')
    assert error_of(read_pairs, path).startswith(f"{path}:2: missing field 'summary'")
    path = write(tmp_path / "r.jsonl", '{"document": "d", "summary": []}\n')
    assert "empty list" in error_of(read_pairs, path)
    path = write(tmp_path / "s.jsonl", '{"body": "d", "summary": "s"}\n')
    assert error_of(read_pairs, path).startswith(f"{path}:1: no source field")


def test_parallel_files_of_different_length(tmp_path):
    src = write(tmp_path / "a.en", "one\ntwo\nthree\n")
    ref = write(tmp_path / "a.de", "eins\nzwei\n")
    assert error_of(read_parallel, src, [ref]) == (
        f"{src}:0: 3 lines but {ref} has 2; expected line-aligned files with the same number "
        "of lines"
    )
    crlf = tmp_path / "b.en"
    crlf.write_bytes(b"one\r\ntwo\r\n")
    assert [e.source_text for e in read_parallel(crlf, ref)] == ["one", "two"]
    blank = write(tmp_path / "c.en", "one\n\n")
    assert (
        error_of(read_parallel, blank, ref)
        == f"{blank}:2: empty line; expected one segment per line"
    )


# -------------------------------------------------------------------- chats: bad input


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        ({"messages": [{"role": "bot", "content": "x"}]}, "message 1 has role 'bot'"),
        (
            {"messages": [{"role": "user", "content": "x"}, {"role": "system", "content": "y"}]},
            "message 2 is a system message",
        ),
        ({"messages": [{"role": "user", "content": ["x"]}]}, "content is a list"),
        ({"messages": [{"role": "assistant", "content": "x"}]}, "no user message"),
        ({"messages": []}, "expected a non-empty list"),
        ({"instruction": "do", "output": ""}, "empty text in field 'output'"),
        ({"question_id": 1, "turns": []}, "field 'turns' is a list"),
        ({"prompt": "x"}, "unknown chat record"),
    ],
)
def test_chat_errors(tmp_path, record, expected):
    path = write(tmp_path / "c.jsonl", '{"messages": [{"role": "user", "content": "ok"}]}\n')
    path.write_text(path.read_text() + json.dumps(record) + "\n")
    message = error_of(read_chats, path)
    assert message.startswith(f"{path}:2: ") and expected in message


# ----------------------------------------------------------------------------- splitting


def test_split_by_group_keeps_groups_whole_and_is_deterministic():
    items = [(g, i) for g in "abcdefghij" for i in range(ord(g) % 5 + 1)]
    train, val = split_by_group(items, lambda x: x[0], 0.25, seed=3)
    assert {g for g, _ in train}.isdisjoint({g for g, _ in val})
    assert sorted(train + val) == sorted(items)
    assert abs(len(val) - 0.25 * len(items)) <= 3
    assert (train, val) == split_by_group(items, lambda x: x[0], 0.25, seed=3)
    assert [x for x in items if x in val] == val  # original order kept
    seeds = {tuple(split_by_group(items, lambda x: x[0], 0.25, seed=s)[1]) for s in range(5)}
    assert len(seeds) > 1
    # both sides non-empty even for extreme fractions
    assert all(split_by_group(items, lambda x: x[0], f) for f in (0.01, 0.99))
    two = [("a", 1), ("b", 1), ("b", 2)]
    for fraction in (0.01, 0.5, 0.99):
        train, val = split_by_group(two, lambda x: x[0], fraction)
        assert train and val


def test_split_by_group_on_squad_articles(tmp_path, squad_articles):
    path = write(tmp_path / "squad.json", json.dumps({"data": squad_articles}))
    examples = read_qa(path)
    train, val = split_by_group(examples, lambda e: e.title, 0.1)
    assert {e.title for e in train}.isdisjoint({e.title for e in val})
    one = [e for e in examples if e.title == "Super_Bowl_50"]
    message = error_of(split_by_group, one, lambda e: e.title, 0.1)
    assert message.startswith(f"{path}:0: 1 group(s) among {len(one)} items")


def test_split_items():
    items = list(range(10))
    train, val = split_items(items, 0.2, seed=0)
    assert len(train) == 8 and len(val) == 2 and sorted(train + val) == items
    assert (train, val) == split_items(items, 0.2, seed=0)
    assert split_items(items, 0.01)[1] and split_items(items, 0.99)[0]
    assert error_of(split_items, [1], 0.5).startswith("<data>:0: 1 item(s)")
    assert "validation_fraction 1.5" in error_of(split_items, items, 1.5)

"""Tests for core.testing: tiny offline models with working tokenizers for every family."""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
import transformers
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForCausalLM,
    AutoModelForQuestionAnswering,
    AutoModelForSeq2SeqLM,
    AutoModelForSequenceClassification,
    AutoTokenizer,
)

from quintet.core import testing
from quintet.core.testing import (
    CORPUS,
    DEFAULT_LABELS,
    FAMILIES,
    KINDS,
    build_tiny_model,
    tiny_model_dir,
)

# MarianTokenizer warns on every load that sacremoses is not installed; that is expected here.
pytestmark = pytest.mark.filterwarnings("ignore:Recommended:UserWarning")

# Every (family, kind) pair the module supports, with the class it must load as.
VARIANTS: dict[tuple[str, str], tuple[type, str]] = {
    ("marian", "seq2seq"): (AutoModelForSeq2SeqLM, "MarianMTModel"),
    ("t5", "seq2seq"): (AutoModelForSeq2SeqLM, "T5ForConditionalGeneration"),
    ("bart", "seq2seq"): (AutoModelForSeq2SeqLM, "BartForConditionalGeneration"),
    ("bert", "encoder"): (AutoModel, "BertModel"),
    ("bert", "span"): (AutoModelForQuestionAnswering, "BertForQuestionAnswering"),
    ("bert", "sequence-classification"): (
        AutoModelForSequenceClassification,
        "BertForSequenceClassification",
    ),
    ("distilbert", "encoder"): (AutoModel, "DistilBertModel"),
    ("distilbert", "span"): (AutoModelForQuestionAnswering, "DistilBertForQuestionAnswering"),
    ("distilbert", "sequence-classification"): (
        AutoModelForSequenceClassification,
        "DistilBertForSequenceClassification",
    ),
    ("llama", "causal"): (AutoModelForCausalLM, "LlamaForCausalLM"),
}
GENERATIVE = [("marian", "seq2seq"), ("t5", "seq2seq"), ("bart", "seq2seq"), ("llama", "causal")]
ENCODERS = [(family, kind) for family, kind in VARIANTS if family in ("bert", "distilbert")]
LOWERCASING = {"bert", "distilbert"}


def _ids(pair: tuple[str, str]) -> str:
    return "-".join(pair)


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Point the tiny-model cache at a fresh folder for this module (no stale builds)."""
    with pytest.MonkeyPatch.context() as patch:
        root = tmp_path_factory.mktemp("tiny-cache")
        patch.setenv("QUINTET_TINY_DIR", str(root))
        yield root


@pytest.fixture
def fresh_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty cache folder for tests that observe building."""
    monkeypatch.setenv("QUINTET_TINY_DIR", str(tmp_path))
    return tmp_path


def _model_inputs(tokenizer, *args, **kwargs) -> dict[str, torch.Tensor]:
    """Tokenise to tensors, keeping only what the model accepts (drops offset_mapping)."""
    encoded = tokenizer(*args, return_tensors="pt", **kwargs)
    return {name: encoded[name] for name in tokenizer.model_input_names if name in encoded}


def test_public_constants() -> None:
    assert FAMILIES == ("marian", "t5", "bart", "bert", "distilbert", "llama")
    assert set(KINDS) == {kind for _, kind in VARIANTS}
    assert {family for family, _ in VARIANTS} == set(FAMILIES)
    assert 40 <= len(CORPUS) <= 80


@pytest.mark.parametrize("variant", list(VARIANTS), ids=_ids)
def test_build_writes_loadable_safetensors_model(variant: tuple[str, str], tmp_path: Path) -> None:
    family, kind = variant
    auto_class, architecture = VARIANTS[variant]

    directory = build_tiny_model(family, tmp_path / "model", kind=kind)

    assert directory == tmp_path / "model"
    assert (directory / "model.safetensors").is_file()
    assert not (directory / "pytorch_model.bin").exists()
    config = AutoConfig.from_pretrained(directory)
    assert config.model_type == family
    assert AutoTokenizer.from_pretrained(directory) is not None
    model = auto_class.from_pretrained(directory)
    assert type(model).__name__ == architecture
    # Tiny means tiny: well under a million parameters.
    assert sum(p.numel() for p in model.parameters()) < 1_000_000


@pytest.mark.parametrize("family", FAMILIES)
def test_default_kind_is_the_first_supported(family: str, cache_dir: Path) -> None:
    expected = {"marian": "seq2seq", "t5": "seq2seq", "bart": "seq2seq", "llama": "causal"}
    path = tiny_model_dir(family)
    assert path == tiny_model_dir(family, kind=expected.get(family, "encoder"))


@pytest.mark.parametrize("family", FAMILIES)
def test_tokenizer_round_trips_the_corpus(family: str, cache_dir: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir(family))
    for sentence in CORPUS:
        ids = tokenizer(sentence)["input_ids"]
        assert tokenizer.unk_token_id not in ids or tokenizer.unk_token_id is None
        decoded = tokenizer.decode(ids, skip_special_tokens=True)
        assert decoded == (sentence.lower() if family in LOWERCASING else sentence)


@pytest.mark.parametrize("variant", GENERATIVE, ids=_ids)
def test_generate_produces_text(variant: tuple[str, str], cache_dir: Path) -> None:
    family, kind = variant
    auto_class, _ = VARIANTS[variant]
    path = tiny_model_dir(family, kind=kind)
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = auto_class.from_pretrained(path)
    inputs = _model_inputs(tokenizer, list(CORPUS[:2]), padding=True)

    with torch.no_grad():
        output = model.generate(**inputs, max_new_tokens=5, do_sample=False)

    prompt_length = 0 if model.config.is_encoder_decoder else inputs["input_ids"].shape[1]
    new_tokens = output[:, prompt_length:]
    # Seq2seq outputs start with the decoder start token.
    assert 1 <= new_tokens.shape[1] <= 5 + int(model.config.is_encoder_decoder)
    texts = tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
    assert len(texts) == 2
    # Special tokens are demoted at build time, so greedy decoding yields visible text.
    assert all(isinstance(text, str) and text for text in texts)


def test_seq2seq_special_token_ids(cache_dir: Path) -> None:
    expected_start = {"marian": "<pad>", "t5": "<pad>", "bart": "</s>"}
    for family, start_token in expected_start.items():
        path = tiny_model_dir(family)
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModelForSeq2SeqLM.from_pretrained(path)
        assert model.config.decoder_start_token_id == tokenizer.convert_tokens_to_ids(start_token)
        assert model.config.pad_token_id == tokenizer.pad_token_id
        assert model.generation_config.eos_token_id == tokenizer.eos_token_id
        assert model.config.vocab_size >= len(tokenizer)


def test_llama_chat_template(cache_dir: Path) -> None:
    path = tiny_model_dir("llama")
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path)
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Where is the cat?"},
    ]

    prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert prompt == (
        "<s><|im_start|>system\nBe brief.<|im_end|>\n"
        "<|im_start|>user\nWhere is the cat?<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    no_prompt = tokenizer.apply_chat_template(messages, tokenize=False)
    assert not no_prompt.endswith("<|im_start|>assistant\n")

    inputs = tokenizer.apply_chat_template(
        messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    ids = inputs["input_ids"][0].tolist()
    # One BOS, and the ChatML markers are single special tokens.
    assert ids.count(tokenizer.bos_token_id) == 1
    assert ids.count(tokenizer.convert_tokens_to_ids("<|im_start|>")) == 3
    with torch.no_grad():
        output = model.generate(**inputs, max_new_tokens=5, do_sample=False)
    reply = tokenizer.decode(output[0, len(ids) :], skip_special_tokens=True)
    assert isinstance(reply, str)
    im_end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert model.generation_config.eos_token_id == [tokenizer.eos_token_id, im_end]


def test_llama_tokenizer_is_fast_byte_level_and_left_padded(cache_dir: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir("llama"))
    assert tokenizer.is_fast
    assert tokenizer.padding_side == "left"
    assert tokenizer.pad_token_id is not None and tokenizer.pad_token != tokenizer.eos_token
    # Byte-level BPE encodes text outside the corpus alphabet without <unk>.
    text = "Ωmega 東京 ✓"
    ids = tokenizer(text)["input_ids"]
    assert ids[0] == tokenizer.bos_token_id
    assert tokenizer.decode(ids, skip_special_tokens=True) == text


@pytest.mark.parametrize("variant", ENCODERS, ids=_ids)
def test_encoder_forward_shapes(variant: tuple[str, str], cache_dir: Path) -> None:
    family, kind = variant
    auto_class, _ = VARIANTS[variant]
    path = tiny_model_dir(family, kind=kind)
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = auto_class.from_pretrained(path).eval()
    inputs = _model_inputs(tokenizer, list(CORPUS[:3]), padding=True)
    batch, length = inputs["input_ids"].shape

    with torch.no_grad():
        output = model(**inputs)

    if kind == "encoder":
        assert output.last_hidden_state.shape == (batch, length, model.config.hidden_size)
    elif kind == "span":
        assert output.start_logits.shape == (batch, length)
        assert output.end_logits.shape == (batch, length)
    else:
        assert output.logits.shape == (batch, len(DEFAULT_LABELS))
        assert model.config.id2label == dict(enumerate(DEFAULT_LABELS))


@pytest.mark.parametrize("variant", [*ENCODERS, ("llama", "causal")], ids=_ids)
def test_accepts_512_token_inputs(variant: tuple[str, str], cache_dir: Path) -> None:
    family, kind = variant
    auto_class, _ = VARIANTS[variant]
    path = tiny_model_dir(family, kind=kind)
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = auto_class.from_pretrained(path).eval()
    inputs = _model_inputs(tokenizer, " ".join(CORPUS * 3), truncation=True, max_length=512)
    assert inputs["input_ids"].shape[1] == 512
    with torch.no_grad():
        model(**inputs)


@pytest.mark.parametrize("family", ["bert", "distilbert"])
def test_classification_uses_requested_labels(family: str, cache_dir: Path) -> None:
    labels = ["negative", "neutral", "positive"]
    path = tiny_model_dir(family, kind="sequence-classification", labels=labels)
    assert path != tiny_model_dir(family, kind="sequence-classification")

    config = AutoConfig.from_pretrained(path)
    assert config.id2label == {0: "negative", 1: "neutral", 2: "positive"}
    assert config.label2id == {"negative": 0, "neutral": 1, "positive": 2}
    model = AutoModelForSequenceClassification.from_pretrained(path)
    tokenizer = AutoTokenizer.from_pretrained(path)
    with torch.no_grad():
        logits = model(**_model_inputs(tokenizer, CORPUS[0])).logits
    assert logits.shape == (1, 3)


@pytest.mark.parametrize("family", ["bert", "distilbert"])
def test_fast_tokenizer_returns_offsets_for_qa(family: str, cache_dir: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir(family, kind="span"))
    assert tokenizer.is_fast
    question, context = "Where is the cat?", "The cat sits on the mat."

    encoded = tokenizer(question, context, return_offsets_mapping=True)

    offsets = encoded["offset_mapping"]
    assert len(offsets) == len(encoded["input_ids"])
    sequence_ids = encoded.sequence_ids()
    context_tokens = [i for i, sid in enumerate(sequence_ids) if sid == 1]
    assert context_tokens
    for i in context_tokens:
        start, end = offsets[i]
        piece = tokenizer.convert_ids_to_tokens(encoded["input_ids"][i]).removeprefix("##")
        assert context[start:end].lower() == piece
    # Special tokens map to empty spans.
    assert tuple(offsets[0]) == (0, 0)


def test_tiny_model_dir_builds_once(fresh_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple] = []
    real_build = testing.build_tiny_model

    def counting_build(*args, **kwargs):
        calls.append(args)
        return real_build(*args, **kwargs)

    monkeypatch.setattr(testing, "build_tiny_model", counting_build)

    first = tiny_model_dir("distilbert", kind="span")
    second = tiny_model_dir("distilbert", kind="span")

    assert first == second
    assert first.parent == fresh_cache
    assert len(calls) == 1
    # Nothing but the finished model is left in the cache folder.
    assert [p.name for p in fresh_cache.iterdir()] == [first.name]
    assert tiny_model_dir("distilbert", kind="encoder") != first
    assert len(calls) == 2


def test_tiny_model_dir_uses_the_winner_when_it_loses_the_race(
    fresh_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_build = testing.build_tiny_model
    target = fresh_cache / testing._cache_key("bert", "encoder", ())

    def build_while_another_process_wins(family, directory, **kwargs):
        # Another process finishes first and renames its copy into place.
        real_build(family, target, **kwargs)
        (target / "winner").touch()
        return real_build(family, directory, **kwargs)

    monkeypatch.setattr(testing, "build_tiny_model", build_while_another_process_wins)

    path = tiny_model_dir("bert")

    assert path == target
    assert (path / "winner").exists()
    # The loser's staging copy was removed.
    assert [p.name for p in fresh_cache.iterdir()] == [target.name]


def test_tiny_model_dir_is_safe_for_concurrent_callers(fresh_cache: Path) -> None:
    barrier = threading.Barrier(3)
    results: list[Path] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            barrier.wait()
            results.append(tiny_model_dir("t5"))
        except BaseException as error:  # reported below, in the test's thread
            errors.append(error)

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert not errors
    assert len(set(results)) == 1
    assert [p.name for p in fresh_cache.iterdir()] == [results[0].name]
    AutoModelForSeq2SeqLM.from_pretrained(results[0])


def test_default_cache_location(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("QUINTET_TINY_DIR", raising=False)
    expected = Path(tempfile.gettempdir()) / f"quintet-tiny-{transformers.__version__}"
    assert testing._cache_root() == expected


def test_same_seed_gives_identical_weights(tmp_path: Path) -> None:
    first = build_tiny_model("bert", tmp_path / "a", seed=3)
    second = build_tiny_model("bert", tmp_path / "b", seed=3)
    other = build_tiny_model("bert", tmp_path / "c", seed=4)

    weights = [(d / "model.safetensors").read_bytes() for d in (first, second, other)]
    assert weights[0] == weights[1]
    assert weights[0] != weights[2]
    # The tokenizer is deterministic too.
    assert (first / "tokenizer.json").read_bytes() == (second / "tokenizer.json").read_bytes()


def test_build_does_not_disturb_the_global_torch_seed(tmp_path: Path) -> None:
    torch.manual_seed(1234)
    expected = torch.rand(3)
    torch.manual_seed(1234)
    build_tiny_model("distilbert", tmp_path)
    assert torch.equal(torch.rand(3), expected)


def test_unknown_family_raises(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"'gpt9'.*marian, t5, bart, bert, distilbert, llama"):
        build_tiny_model("gpt9", tmp_path)
    with pytest.raises(ValueError, match="'gpt9'"):
        tiny_model_dir("gpt9")


@pytest.mark.parametrize(
    ("family", "kind"), [("t5", "causal"), ("llama", "seq2seq"), ("bert", "x")]
)
def test_unsupported_kind_raises(family: str, kind: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=rf"'{kind}'.*valid kinds"):
        build_tiny_model(family, tmp_path, kind=kind)


def test_labels_outside_classification_raise(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="labels"):
        build_tiny_model("bert", tmp_path, kind="span", labels=["a", "b"])
    with pytest.raises(ValueError, match="unique"):
        build_tiny_model("bert", tmp_path, kind="sequence-classification", labels=["a", "a"])

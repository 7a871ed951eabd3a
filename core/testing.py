"""Tiny random models with working tokenizers, built offline, for fast tests.

Every architecture family Quintet supports gets a model that is a few hundred kilobytes on disk:
random weights, two layers, a hidden size of 32-64 and a real tokenizer trained in-process on a
small embedded English/German/French corpus. Nothing is downloaded, so tests run without network
access or a Hugging Face cache.

Typical use in a test::

    from quintet.core.testing import tiny_model_dir

    path = tiny_model_dir("bert", kind="span")
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForQuestionAnswering.from_pretrained(path)

`tiny_model_dir` builds each variant once per machine and caches it on disk; `build_tiny_model`
writes a fresh copy into a directory of the caller's choosing.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import sentencepiece
import torch
import transformers
from tokenizers import (
    Tokenizer,
    decoders,
    models,
    normalizers,
    pre_tokenizers,
    processors,
    trainers,
)
from transformers import (
    AutoModel,
    AutoModelForCausalLM,
    AutoModelForQuestionAnswering,
    AutoModelForSeq2SeqLM,
    AutoModelForSequenceClassification,
    BartConfig,
    BartTokenizer,
    BertConfig,
    BertTokenizer,
    DistilBertConfig,
    DistilBertTokenizer,
    GenerationConfig,
    LlamaConfig,
    MarianConfig,
    MarianTokenizer,
    PreTrainedConfig,
    PreTrainedTokenizerBase,
    T5Config,
    T5Tokenizer,
    TokenizersBackend,
)
from transformers.utils import logging as hf_logging

__all__ = [
    "CORPUS",
    "DEFAULT_LABELS",
    "FAMILIES",
    "KINDS",
    "build_tiny_model",
    "tiny_model_dir",
]

FAMILIES: tuple[str, ...] = ("marian", "t5", "bart", "bert", "distilbert", "llama")
KINDS: tuple[str, ...] = ("seq2seq", "causal", "span", "sequence-classification", "encoder")

# The kinds each family can be built as; the first one is the default.
_FAMILY_KINDS: dict[str, tuple[str, ...]] = {
    "marian": ("seq2seq",),
    "t5": ("seq2seq",),
    "bart": ("seq2seq",),
    "bert": ("encoder", "span", "sequence-classification"),
    "distilbert": ("encoder", "span", "sequence-classification"),
    "llama": ("causal",),
}

DEFAULT_LABELS: tuple[str, ...] = ("negative", "positive")

# Bump when the files written by build_tiny_model change, so that stale cache entries written by
# an older version of this module are not picked up by tiny_model_dir.
_CACHE_FORMAT = 1

# Plain sentences (no apostrophes, hyphens or quotes) so that every tokenizer, including the
# lower-casing WordPiece one, can reproduce them exactly after an encode/decode round trip.
CORPUS: tuple[str, ...] = (
    # English
    "The cat sits on the mat.",
    "A small dog runs in the park every morning.",
    "We are going to the market to buy fresh bread.",
    "The weather is nice today, so we walk to school.",
    "My brother reads a book about the history of Europe.",
    "Where is the nearest train station?",
    "She drinks a cup of tea with milk and sugar.",
    "The children play football after lunch.",
    "This model translates short sentences between languages.",
    "Please close the window because it is cold.",
    "The river flows slowly through the old city.",
    "He works in a large office near the harbour.",
    "Can you help me find my keys?",
    "The teacher explains the lesson very clearly.",
    "Our neighbours have a beautiful garden with many flowers.",
    "I would like a table for two people, please.",
    "The meeting starts at nine in the morning.",
    "Paris is the capital of France.",
    "Berlin is a large city in Germany.",
    "The film was long, but the story was good.",
    "Birds sing in the trees when the sun rises.",
    "This product is excellent and I love it.",
    "The service was terrible and the food was cold.",
    "Who wrote this letter to the newspaper?",
    "The answer to the question is in the second paragraph.",
    # German
    "Die Katze sitzt auf der Matte.",
    "Ein kleiner Hund läuft jeden Morgen im Park.",
    "Wir gehen auf den Markt, um frisches Brot zu kaufen.",
    "Das Wetter ist heute schön, also gehen wir zu Fuß zur Schule.",
    "Mein Bruder liest ein Buch über die Geschichte Europas.",
    "Wo ist der nächste Bahnhof?",
    "Sie trinkt eine Tasse Tee mit Milch und Zucker.",
    "Die Kinder spielen nach dem Mittagessen Fußball.",
    "Bitte schließe das Fenster, weil es kalt ist.",
    "Der Fluss fließt langsam durch die alte Stadt.",
    "Er arbeitet in einem großen Büro in der Nähe des Hafens.",
    "Kannst du mir helfen, meine Schlüssel zu finden?",
    "Der Lehrer erklärt die Lektion sehr deutlich.",
    "Unsere Nachbarn haben einen schönen Garten mit vielen Blumen.",
    "Ich möchte einen Tisch für zwei Personen, bitte.",
    "Die Besprechung beginnt um neun Uhr morgens.",
    "Berlin ist eine große Stadt in Deutschland.",
    "Der Film war lang, aber die Geschichte war gut.",
    "Die Vögel singen in den Bäumen, wenn die Sonne aufgeht.",
    "Dieses Produkt ist ausgezeichnet und ich liebe es.",
    # French
    "Le chat est assis sur le tapis.",
    "Un petit chien court dans le parc tous les matins.",
    "Nous allons au marché pour acheter du pain frais.",
    "Il fait beau ce matin, alors nous marchons vers la gare.",
    "Mon frère lit un livre sur les rois de France.",
    "Où est la gare la plus proche?",
    "Elle boit une tasse de thé avec du lait et du sucre.",
    "Les enfants jouent au football après le déjeuner.",
    "Fermez la fenêtre, car il fait froid.",
    "La rivière coule lentement à travers la vieille ville.",
    "Il travaille dans un grand bureau près du port.",
    "Où sont mes clés?",
    "Le professeur explique la leçon très clairement.",
    "Nos voisins ont un beau jardin avec beaucoup de fleurs.",
    "Je voudrais une table pour deux personnes.",
    "La réunion commence à neuf heures du matin.",
    "Paris est la capitale de la France.",
    "Le film était long, mais le récit était bon.",
    "Les oiseaux chantent dans les arbres quand le soleil se lève.",
    "Ce produit est excellent et très utile.",
)

# ChatML, as used by many instruction-tuned decoder models. `bos_token` is emitted by the template
# (not by the tokenizer's post-processor) so tokenising the rendered prompt with
# add_special_tokens=False gives exactly one BOS.
_CHATML_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

# Shared tiny sizes. Encoders and llama get 512 positions so tests can feed long-ish inputs.
_HIDDEN = 32
_FFN = 64
_LAYERS = 2
_HEADS = 2
_MAX_POSITIONS = 512


# --------------------------------------------------------------------------------------------
# Tokenizers
# --------------------------------------------------------------------------------------------


def _train_sentencepiece(vocab_size: int, **ids: int) -> sentencepiece.SentencePieceProcessor:
    """Train a unigram sentencepiece model on CORPUS in memory and return a processor for it.

    `ids` sets the special-piece ids (pad_id, unk_id, bos_id, eos_id; -1 disables a piece).
    """
    buffer = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(CORPUS),
        model_writer=buffer,
        model_type="unigram",
        vocab_size=vocab_size,
        # The corpus is tiny: let the trainer shrink the vocabulary instead of failing.
        hard_vocab_limit=False,
        # Keep every character (umlauts, accents) so the round trip never hits <unk>.
        character_coverage=1.0,
        # One thread makes the training deterministic.
        num_threads=1,
        minloglevel=2,
        **ids,
    )
    processor = sentencepiece.SentencePieceProcessor()
    processor.LoadFromSerializedProto(buffer.getvalue())
    return processor


def _train_byte_level_bpe(vocab_size: int, special_tokens: Sequence[str]) -> Tokenizer:
    """Train a GPT-2 style byte-level BPE tokenizer on CORPUS (special tokens get ids 0..n-1)."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(special_tokens),
        # Seed all 256 byte symbols so any input text can be encoded, not just corpus characters.
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(CORPUS, trainer=trainer)
    return tokenizer


def _bpe_vocab_and_merges(tokenizer: Tokenizer) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Extract the vocabulary and merge list of a trained BPE tokenizer."""
    model = json.loads(tokenizer.to_str())["model"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model["merges"]]
    return dict(model["vocab"]), merges


def _marian_tokenizer(directory: Path) -> MarianTokenizer:
    """A MarianTokenizer with a shared source/target sentencepiece model.

    Marian keeps its own vocab.json (independent of the sentencepiece ids) with the Helsinki-NLP
    layout: </s> = 0, <unk> = 1, the pieces, and <pad> last.
    """
    processor = _train_sentencepiece(600, unk_id=0, bos_id=-1, eos_id=-1, pad_id=-1)
    spm_bytes = processor.serialized_model_proto()
    for name in ("source.spm", "target.spm"):
        (directory / name).write_bytes(spm_bytes)
    pieces = [
        processor.id_to_piece(i)
        for i in range(processor.get_piece_size())
        if not (processor.is_unknown(i) or processor.is_control(i))
    ]
    vocab = {"</s>": 0, "<unk>": 1}
    for piece in pieces:
        vocab.setdefault(piece, len(vocab))
    vocab["<pad>"] = len(vocab)
    (directory / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False, indent=1))
    return MarianTokenizer(
        source_spm=str(directory / "source.spm"),
        target_spm=str(directory / "target.spm"),
        vocab=str(directory / "vocab.json"),
        source_lang="en",
        target_lang="de",
        model_max_length=_MAX_POSITIONS,
    )


def _t5_tokenizer(directory: Path) -> T5Tokenizer:
    """A T5 tokenizer from a sentencepiece unigram model with T5's id layout.

    T5 expects <pad> = 0, </s> = 1, <unk> = 2 and no BOS; the sentinel <extra_id_N> tokens are
    appended after the trained pieces.
    """
    del directory  # T5Tokenizer (tokenizers backend) is saved as tokenizer.json; no files needed.
    processor = _train_sentencepiece(600, pad_id=0, eos_id=1, unk_id=2, bos_id=-1)
    vocab = [
        (processor.id_to_piece(i), processor.get_score(i))
        for i in range(processor.get_piece_size())
    ]
    return T5Tokenizer(vocab=vocab, extra_ids=4, model_max_length=_MAX_POSITIONS)


def _bart_tokenizer(directory: Path) -> BartTokenizer:
    """A BART (RoBERTa-style byte-level BPE) tokenizer with <s>=0, <pad>=1, </s>=2, <unk>=3."""
    del directory
    trained = _train_byte_level_bpe(800, ["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
    vocab, merges = _bpe_vocab_and_merges(trained)
    return BartTokenizer(vocab=vocab, merges=merges, model_max_length=_MAX_POSITIONS)


def _wordpiece_vocab() -> dict[str, int]:
    """Train a lower-casing WordPiece vocabulary with [PAD]=0, [UNK]=1, [CLS]=2, [SEP]=3, [MASK]=4.

    tokenizers' WordPieceTrainer is not deterministic (the ids of "##" pieces, and with them
    merge tie-breaks, depend on hash-map order), so train a plain BPE on the same normalised,
    pre-tokenised words -- which is deterministic -- and offer each learnt piece both word-initially
    and as a "##" continuation. WordPiece's greedy longest-match then segments any corpus word.
    """
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tokenizer = Tokenizer(models.BPE(unk_token="[UNK]"))
    # Must match the normalisation BertTokenizer applies at load time; accents are kept so German
    # and French text survives the round trip.
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True, strip_accents=False)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=specials, show_progress=False)
    tokenizer.train_from_iterator(CORPUS, trainer=trainer)
    pieces = sorted(tokenizer.get_vocab().items(), key=lambda item: item[1])
    vocab = {token: i for i, token in enumerate(specials)}
    for piece, _ in pieces:
        if piece not in specials:
            vocab.setdefault(piece, len(vocab))
            vocab.setdefault(f"##{piece}", len(vocab))
    return vocab


def _bert_tokenizer(directory: Path) -> BertTokenizer:
    """A fast, lower-casing BERT WordPiece tokenizer (supports return_offsets_mapping)."""
    del directory
    return BertTokenizer(
        vocab=_wordpiece_vocab(),
        do_lower_case=True,
        strip_accents=False,
        model_max_length=_MAX_POSITIONS,
    )


def _distilbert_tokenizer(directory: Path) -> DistilBertTokenizer:
    """Same WordPiece vocabulary as BERT, under DistilBERT's tokenizer class."""
    del directory
    return DistilBertTokenizer(
        vocab=_wordpiece_vocab(),
        do_lower_case=True,
        strip_accents=False,
        model_max_length=_MAX_POSITIONS,
    )


def _llama_tokenizer(directory: Path) -> TokenizersBackend:
    """A byte-level BPE tokenizer with ChatML tokens and a ChatML chat template.

    Saved as the generic TokenizersBackend class: transformers 5's LlamaTokenizer rebuilds a
    sentencepiece-style (Metaspace) pipeline around the vocabulary on load, which would break a
    byte-level vocabulary, whereas TokenizersBackend loads tokenizer.json verbatim.
    """
    del directory
    specials = ["<pad>", "<s>", "</s>", "<|im_start|>", "<|im_end|>"]
    tokenizer = _train_byte_level_bpe(800, specials)
    bos_id = tokenizer.token_to_id("<s>")
    # Prepend BOS like Llama does; trim_offsets keeps the leading space out of word offsets.
    tokenizer.post_processor = processors.Sequence(
        [
            processors.ByteLevel(trim_offsets=True),
            processors.TemplateProcessing(
                single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", bos_id)]
            ),
        ]
    )
    return TokenizersBackend(
        tokenizer_object=tokenizer,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        additional_special_tokens=["<|im_start|>", "<|im_end|>"],
        chat_template=_CHATML_TEMPLATE,
        model_max_length=_MAX_POSITIONS,
        padding_side="left",
        clean_up_tokenization_spaces=False,
    )


_TOKENIZER_BUILDERS: dict[str, Callable[[Path], PreTrainedTokenizerBase]] = {
    "marian": _marian_tokenizer,
    "t5": _t5_tokenizer,
    "bart": _bart_tokenizer,
    "bert": _bert_tokenizer,
    "distilbert": _distilbert_tokenizer,
    "llama": _llama_tokenizer,
}


# --------------------------------------------------------------------------------------------
# Configs
# --------------------------------------------------------------------------------------------


def _marian_config(tokenizer: PreTrainedTokenizerBase) -> PreTrainedConfig:
    # Marian starts decoding from <pad>, like the Helsinki-NLP checkpoints.
    pad_id = tokenizer.pad_token_id
    return MarianConfig(
        vocab_size=len(tokenizer),
        d_model=_HIDDEN,
        encoder_layers=_LAYERS,
        decoder_layers=_LAYERS,
        encoder_attention_heads=_HEADS,
        decoder_attention_heads=_HEADS,
        encoder_ffn_dim=_FFN,
        decoder_ffn_dim=_FFN,
        max_position_embeddings=_MAX_POSITIONS,
        pad_token_id=pad_id,
        eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=pad_id,
        forced_eos_token_id=tokenizer.eos_token_id,
    )


def _t5_config(tokenizer: PreTrainedTokenizerBase) -> PreTrainedConfig:
    config = T5Config(
        vocab_size=len(tokenizer),
        d_model=_HIDDEN,
        d_kv=_HIDDEN // _HEADS,
        d_ff=_FFN,
        num_layers=_LAYERS,
        num_decoder_layers=_LAYERS,
        num_heads=_HEADS,
        relative_attention_num_buckets=8,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    # T5 starts decoding from <pad>.
    config.decoder_start_token_id = tokenizer.pad_token_id
    return config


def _bart_config(tokenizer: PreTrainedTokenizerBase) -> PreTrainedConfig:
    # BART decodes starting from </s>, then <s>.
    return BartConfig(
        vocab_size=len(tokenizer),
        d_model=_HIDDEN,
        encoder_layers=_LAYERS,
        decoder_layers=_LAYERS,
        encoder_attention_heads=_HEADS,
        decoder_attention_heads=_HEADS,
        encoder_ffn_dim=_FFN,
        decoder_ffn_dim=_FFN,
        max_position_embeddings=_MAX_POSITIONS,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.eos_token_id,
        forced_eos_token_id=tokenizer.eos_token_id,
    )


def _bert_config(tokenizer: PreTrainedTokenizerBase) -> PreTrainedConfig:
    return BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=_HIDDEN,
        num_hidden_layers=_LAYERS,
        num_attention_heads=_HEADS,
        intermediate_size=_FFN,
        max_position_embeddings=_MAX_POSITIONS,
        pad_token_id=tokenizer.pad_token_id,
    )


def _distilbert_config(tokenizer: PreTrainedTokenizerBase) -> PreTrainedConfig:
    return DistilBertConfig(
        vocab_size=len(tokenizer),
        dim=_HIDDEN,
        hidden_dim=_FFN,
        n_layers=_LAYERS,
        n_heads=_HEADS,
        max_position_embeddings=_MAX_POSITIONS,
        pad_token_id=tokenizer.pad_token_id,
    )


def _llama_config(tokenizer: PreTrainedTokenizerBase) -> PreTrainedConfig:
    return LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=_HIDDEN,
        intermediate_size=_FFN,
        num_hidden_layers=_LAYERS,
        num_attention_heads=_HEADS * 2,
        # Grouped-query attention, like current Llama checkpoints.
        num_key_value_heads=_HEADS,
        max_position_embeddings=_MAX_POSITIONS,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )


_CONFIG_BUILDERS: dict[str, Callable[[PreTrainedTokenizerBase], PreTrainedConfig]] = {
    "marian": _marian_config,
    "t5": _t5_config,
    "bart": _bart_config,
    "bert": _bert_config,
    "distilbert": _distilbert_config,
    "llama": _llama_config,
}

_AUTO_MODELS = {
    "seq2seq": AutoModelForSeq2SeqLM,
    "causal": AutoModelForCausalLM,
    "span": AutoModelForQuestionAnswering,
    "sequence-classification": AutoModelForSequenceClassification,
    "encoder": AutoModel,
}


def _generation_config(
    family: str, config: PreTrainedConfig, tokenizer: PreTrainedTokenizerBase
) -> GenerationConfig:
    """Generation defaults so `model.generate` works out of the box (greedy, short)."""
    eos: int | list[int] = config.eos_token_id
    if family == "llama":
        # Chat replies end with <|im_end|>; plain completions with </s>.
        eos = [tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids("<|im_end|>")]
    # No max_length here: callers pass max_new_tokens, and transformers warns when both are set.
    return GenerationConfig(
        bos_token_id=getattr(config, "bos_token_id", None),
        eos_token_id=eos,
        pad_token_id=config.pad_token_id,
        decoder_start_token_id=getattr(config, "decoder_start_token_id", None),
        forced_eos_token_id=getattr(config, "forced_eos_token_id", None),
    )


def _demote_special_tokens(model: torch.nn.Module, tokenizer: PreTrainedTokenizerBase) -> None:
    """Make greedy decoding produce ordinary text instead of stopping or padding at once.

    Random weights often make </s> or <pad> the argmax at every step, so `generate` returns empty
    strings and tests of decoding code check nothing. Zeroing those rows of the output projection
    pins their logits at 0 while some ordinary token almost surely scores higher. (Where the
    projection is tied to the input embeddings this also zeroes their input vectors, which is
    harmless for a random model.)
    """
    ids = set(tokenizer.all_special_ids)
    if tokenizer.unk_token_id is not None:
        ids.add(tokenizer.unk_token_id)
    output = model.get_output_embeddings()
    with torch.no_grad():
        output.weight[sorted(ids)] = 0.0


@contextmanager
def _quiet() -> Iterator[None]:
    """Silence the noise a build makes that says nothing about the build itself.

    That is the "Writing model shards" progress bar of save_pretrained and MarianTokenizer's
    "pip install sacremoses" recommendation. The progress-bar switch is global, so restore it.
    """
    bars_were_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Recommended: pip install sacremoses")
            yield
    finally:
        if bars_were_enabled:
            hf_logging.enable_progress_bar()


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def _resolve(
    family: str, kind: str | None, labels: Sequence[str] | None
) -> tuple[str, tuple[str, ...]]:
    """Validate family/kind/labels and fill in defaults; returns (kind, labels)."""
    if family not in _FAMILY_KINDS:
        raise ValueError(f"Unknown model family {family!r}; valid families: {', '.join(FAMILIES)}")
    valid = _FAMILY_KINDS[family]
    if kind is None:
        kind = valid[0]
    if kind not in valid:
        raise ValueError(
            f"Unknown kind {kind!r} for family {family!r}; valid kinds: {', '.join(valid)}"
        )
    if kind != "sequence-classification":
        if labels is not None:
            raise ValueError(f"labels only apply to kind 'sequence-classification', not {kind!r}")
        return kind, ()
    labels = tuple(DEFAULT_LABELS if labels is None else labels)
    if not labels or len(set(labels)) != len(labels):
        raise ValueError(f"labels must be non-empty and unique, got {list(labels)!r}")
    return kind, labels


def build_tiny_model(
    family: str,
    directory: str | Path,
    *,
    kind: str | None = None,
    labels: Sequence[str] | None = None,
    seed: int = 0,
) -> Path:
    """Write a tiny random model and its tokenizer into `directory` and return the directory.

    The directory can be loaded offline with AutoConfig / AutoTokenizer / AutoModelFor...
    `.from_pretrained(directory)`; weights are stored as safetensors.

    Args:
        family: one of FAMILIES.
        directory: where to write; created if missing.
        kind: "seq2seq" for marian/t5/bart, "causal" for llama, and "encoder" (default), "span" or
            "sequence-classification" for bert/distilbert. None picks the family's default.
        labels: class names for "sequence-classification" (default DEFAULT_LABELS).
        seed: torch seed for the random weights.

    Raises:
        ValueError: for an unknown family or a kind the family does not support.
    """
    kind, labels = _resolve(family, kind, labels)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)

    with _quiet():
        tokenizer = _TOKENIZER_BUILDERS[family](directory)
        config = _CONFIG_BUILDERS[family](tokenizer)
        if labels:
            config.id2label = dict(enumerate(labels))
            config.label2id = {label: i for i, label in enumerate(labels)}

        # from_config draws the random weights from torch's global generator: fork it so the
        # seed does not leak into the caller's random state.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = _AUTO_MODELS[kind].from_config(config)
        model.eval()
        if kind in ("seq2seq", "causal"):
            _demote_special_tokens(model, tokenizer)
            model.generation_config = _generation_config(family, config, tokenizer)

        model.save_pretrained(directory)
        tokenizer.save_pretrained(directory)
    return directory


def _cache_root() -> Path:
    """The tiny-model cache folder: $QUINTET_TINY_DIR or <tmp>/quintet-tiny-<transformers ver>."""
    override = os.environ.get("QUINTET_TINY_DIR")
    if override:
        return Path(override)
    return Path(tempfile.gettempdir()) / f"quintet-tiny-{transformers.__version__}"


def _cache_key(family: str, kind: str, labels: tuple[str, ...]) -> str:
    """The cache entry name for a variant, e.g. "bert-span-v1"."""
    key = f"{family}-{kind}-v{_CACHE_FORMAT}"
    if labels:
        # Labels can be arbitrary strings: hash them into a filesystem-safe suffix.
        digest = hashlib.sha1(json.dumps(list(labels)).encode("utf-8")).hexdigest()[:12]
        key += f"-{digest}"
    return key


def tiny_model_dir(
    family: str,
    *,
    kind: str | None = None,
    labels: Sequence[str] | None = None,
) -> Path:
    """Return a cached tiny model directory for `family`/`kind`/`labels`, building it on first use.

    The cache lives in $QUINTET_TINY_DIR if set, else in
    `tempfile.gettempdir()/quintet-tiny-<transformers version>`. Safe for concurrent callers
    (pytest-xdist workers, separate processes): each builds into a private temporary directory next
    to the target and renames it into place atomically; a caller that loses the race discards its
    copy and uses the winner's. Callers must treat the returned directory as read-only.
    """
    kind, labels = _resolve(family, kind, labels)
    root = _cache_root()
    target = root / _cache_key(family, kind, labels)
    # A directory at `target` only ever appears through the atomic rename below, so its existence
    # means it is complete.
    if target.is_dir():
        return target

    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=root))
    try:
        build_tiny_model(family, staging, kind=kind, labels=labels or None)
        try:
            os.rename(staging, target)
        except OSError as error:
            # POSIX reports a non-empty existing target as ENOTEMPTY or EEXIST; Windows raises
            # FileExistsError (EEXIST) for any existing target. Either way another caller won.
            if error.errno not in (errno.ENOTEMPTY, errno.EEXIST) or not target.is_dir():
                raise
    finally:
        # After a successful rename `staging` no longer exists; otherwise drop our copy.
        shutil.rmtree(staging, ignore_errors=True)
    return target

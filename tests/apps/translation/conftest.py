"""Fixtures for the translation tests: a tiny NLLB model and hub-cache helpers."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from quintet.core.testing import CORPUS

# A few FLORES-200 codes: the tiny NLLB knows only these, so other languages are unsupported.
TINY_NLLB_LANGUAGES = ["eng_Latn", "deu_Latn", "fra_Latn"]


def build_tiny_nllb(directory: Path) -> Path:
    """A random two-layer M2M100 model with an NLLB tokenizer over the test corpus words."""
    from transformers import (
        GenerationConfig,
        M2M100Config,
        M2M100ForConditionalGeneration,
        NllbTokenizer,
    )

    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
    for word in sorted({w for line in CORPUS for w in line.split()}):
        vocab.setdefault("▁" + word, len(vocab))
    tokenizer = NllbTokenizer(vocab=vocab, merges=[], additional_special_tokens=TINY_NLLB_LANGUAGES)
    config = M2M100Config(
        vocab_size=len(tokenizer),
        d_model=32,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        max_position_embeddings=256,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        decoder_start_token_id=2,
        architectures=["M2M100ForConditionalGeneration"],
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = M2M100ForConditionalGeneration(config).eval()
    model.generation_config = GenerationConfig(
        decoder_start_token_id=2, eos_token_id=2, pad_token_id=1, bos_token_id=0
    )
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


@pytest.fixture(scope="session")
def tiny_nllb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_nllb(tmp_path_factory.mktemp("tiny-nllb"))


def put_in_hf_cache(cache: Path, repo_id: str, model_dir: Path) -> None:
    """Place ``model_dir`` in a Hugging Face cache as ``repo_id`` (as a download would)."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    commit = "0123456789abcdef0123456789abcdef01234567"
    shutil.copytree(model_dir, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)


@pytest.fixture
def cached_hub(no_hub: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``no_hub``'s empty HF cache, with huggingface_hub told it is offline.

    Without it, transformers 5's adapter lookup (``find_adapter_config_file``) ignores
    ``local_files_only`` and retries the closed hub port for ~25 s per load of a cached
    model. Quintet's own routing still sees "hub not reachable" (the port is closed).
    """
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    return no_hub

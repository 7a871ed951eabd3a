"""Extractive QA (span) models on a CTranslate2 int8 encoder.

CTranslate2 converts the BERT or DistilBERT body of a span model (its converter knows
``BertModel`` and ``DistilBertModel``); the span head, one ``Linear(hidden, 2)``, is kept
next to it as ``span_head.safetensors`` and applied to the encoder's last hidden states.
:class:`Ct2SpanEncoder` is called like the torch model (``engine(**batch)``) and returns
``start_logits`` / ``end_logits``, so the QA code does not change.

Why it exists: int8 quantizes the activations too. ONNX Runtime's dynamic int8 takes one
scale per activation tensor and cost extractive QA 2.3 F1; CTranslate2 takes one per row
(per token), a finer grid. In float32 it reproduces torch's logits (tests).
"""

from __future__ import annotations

import gc
import shutil
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch

from quintet.core.decoding.conversions import (
    base_name,
    first_line,
    get_or_build,
    open_conversion,
    source_folder,
)
from quintet.core.devices import keeping_torch_threads
from quintet.core.errors import ConfigError, ModelLoadError
from quintet.core.model_cache import fingerprint
from quintet.core.models import Loaded
from quintet.core.store import ModelStore

CTRANSLATE2 = "ctranslate2"
QUANTIZATIONS: tuple[str, ...] = ("int8", "float32")
# model_type -> (the body's attribute on the span model, whether it takes token types)
_BODIES: dict[str, tuple[str, bool]] = {"bert": ("bert", True), "distilbert": ("distilbert", False)}
HEAD_FILE = "span_head.safetensors"


def store_name(loaded: Loaded, quantization: str = "int8") -> str:
    """The store name of the conversion: ``<base>-ct2enc-<quantization>``."""
    return f"{base_name(loaded)}-ct2enc-{quantization}"


def supports(loaded: Loaded) -> bool:
    """Whether this engine can run ``loaded``: a BERT or DistilBERT span model on the CPU."""
    return (
        loaded.kind == "span"
        and loaded.device.type == "cpu"
        and getattr(loaded.config, "model_type", None) in _BODIES
    )


def _check(loaded: Loaded, quantization: str) -> None:
    if quantization not in QUANTIZATIONS:
        raise ConfigError(
            f"unknown {CTRANSLATE2} encoder quantization {quantization!r}: "
            f"choose one of {QUANTIZATIONS}"
        )
    if not supports(loaded):
        raise ModelLoadError(
            f"the {CTRANSLATE2} encoder engine runs BERT and DistilBERT span (extractive QA) "
            f"models on the CPU; {loaded.name} is a {loaded.kind} "
            f"{getattr(loaded.config, 'model_type', '?')} model on {loaded.device.type}"
        )


def convert_span_model(
    loaded: Loaded,
    quantization: str = "int8",
    store: ModelStore | None = None,
    rebuild: bool = False,
) -> Path:
    """Convert a span model's encoder to CTranslate2 (and keep its head), once, into the store
    (again with ``rebuild``: a stored copy did not load).

    Raises:
        ConfigError: an unknown quantization.
        ModelLoadError: not a BERT/DistilBERT span model, or the conversion fails.
        StoreError: the store cannot be written.
    """
    _check(loaded, quantization)
    try:
        import ctranslate2
    except ImportError:
        raise ModelLoadError(
            f"the {CTRANSLATE2} package is missing: pip install 'quintet[fast]'"
        ) from None

    return get_or_build(
        loaded,
        store_name(loaded, quantization),
        CTRANSLATE2,
        {
            "quantization": quantization,
            "part": "encoder+span head",
            "ctranslate2_version": ctranslate2.__version__,
        },  # fmt: skip
        lambda folder: _convert_into(loaded, quantization, folder),
        required_file="model.bin",
        store=store,
        rebuild=rebuild,
    )


def _convert_into(loaded: Loaded, quantization: str, folder: Path) -> None:
    from safetensors.torch import save_file

    from quintet.core.decoding.ct2_backend import CompatibleConverter

    # The converter loads the body class (BertModel) from the span model's folder: the
    # body's weights load, the span head is not part of it (saved below). BERT's pooler is
    # not in a span checkpoint and gets fresh values; nothing here reads the pooler.
    converter = CompatibleConverter(source_folder(loaded))
    out = folder / "ctranslate2"
    gc.freeze()  # see core.decoding.ct2_backend: the converter's gc.collect() calls
    try:
        converter.convert(str(out), quantization=quantization, force=True)
    except (ValueError, KeyError, AttributeError, TypeError, NotImplementedError) as exc:
        raise ModelLoadError(
            f"{CTRANSLATE2} cannot convert {loaded.name}: {first_line(exc)}"
        ) from None
    finally:
        gc.unfreeze()
    for item in out.iterdir():
        shutil.move(str(item), str(folder / item.name))
    out.rmdir()
    head = loaded.model.qa_outputs
    save_file(
        {"weight": head.weight.detach().float().contiguous(),
         "bias": head.bias.detach().float().contiguous()},
        str(folder / HEAD_FILE),
    )  # fmt: skip


class Ct2SpanEncoder:
    """A CTranslate2 encoder plus the span head, answering like ``...ForQuestionAnswering``.

    The loaded encoder, its head and its replica threads hang on the model they were
    converted from (``Loaded.attachment``, versioned by the conversion's fingerprint), shared
    by every caller with the same conversion and threads, and closed when the model cache
    drops that model; this object finds them there on each call, so it runs again (loaded
    anew) after an eviction.

    Args:
        loaded: a BERT or DistilBERT span model (its conversion is built on first use).
        quantization: ``int8`` (default) or ``float32``.
        store: where conversions live (default: ``$QUINTET_HOME``).
        threads: replicas, one thread each (default: torch's thread count).
        rows_per_call: most rows one replica encodes at once; larger batches are cut into
            parts of this size, spread over the replicas.
    """

    name = CTRANSLATE2

    def __init__(
        self,
        loaded: Loaded,
        quantization: str = "int8",
        store: ModelStore | None = None,
        threads: int | None = None,
        rows_per_call: int = 4,
    ) -> None:
        self.loaded = loaded
        self.quantization = quantization
        # One single-threaded replica per core, each given a share of the batch's rows: on 2
        # cores that ran 1.4x one replica on 2 threads (int8 matrix products of 32 rows do
        # not split well across threads; whole rows do). Parts of at most 4 rows: on 500
        # SQuAD questions (windows of up to 384 tokens) that ran 1.4x parts of 16 rows in the
        # same run (2026-12-06; 8 rows 1.3x), the activations of a small part staying in cache.
        self.threads = threads or torch.get_num_threads()
        self.rows_per_call = rows_per_call
        open_conversion(  # the conversion checks the package too
            lambda rebuild: convert_span_model(loaded, quantization, store, rebuild),
            self._open,
            CTRANSLATE2,
        )
        self.token_types = _BODIES[loaded.config.model_type][1]

    def _open(self, folder: Path) -> _Ct2Engine:
        """The model's engine on the conversion in ``folder`` (ModelLoadError if it cannot
        load): a conversion with another fingerprint gets an engine of its own."""
        self.path = folder
        self._conversion = fingerprint(folder)
        return self._engine()

    def _engine(self) -> _Ct2Engine:
        return self.loaded.attachment(
            ("ctranslate2-encoder", str(self.path), self.quantization, self.threads),
            lambda: _Ct2Engine(self.path, self.quantization, self.threads),
            version=self._conversion,
        )

    def __call__(self, **batch: torch.Tensor) -> SimpleNamespace:
        ids = batch["input_ids"].detach().cpu().to(torch.int32)
        mask = batch.get("attention_mask")
        if mask is None:
            lengths = torch.full((ids.shape[0],), ids.shape[1], dtype=torch.int32)
        else:
            mask = mask.detach().cpu().bool()
            lengths = mask.sum(dim=1).to(torch.int32)
            # The engine masks by length, so the padding must all be on the right.
            if not torch.equal(mask, torch.arange(ids.shape[1])[None, :] < lengths[:, None]):
                raise ConfigError(f"the {CTRANSLATE2} encoder needs right-padded batches")
        types = batch.get("token_type_ids") if self.token_types else None
        types = None if types is None else types.detach().cpu()
        size = max(1, min(self.rows_per_call, -(-ids.shape[0] // self.threads)))
        parts = [slice(start, start + size) for start in range(0, ids.shape[0], size)]
        # An engine closed between finding it and running it (its model was dropped from
        # the cache meanwhile) answers None: the next lookup loads it again.
        for _ in range(2):
            engine = self._engine()
            hidden = engine.encode(ids, lengths, types, parts)
            if hidden is not None:
                logits = hidden @ engine.weight.T + engine.bias
                return SimpleNamespace(
                    start_logits=logits[..., 0].contiguous(),
                    end_logits=logits[..., 1].contiguous(),
                )
        raise ModelLoadError(f"the {CTRANSLATE2} encoder of {self.loaded.name} keeps closing")


class _Ct2Engine:
    """A loaded CTranslate2 encoder, its span head and its replica threads, attached to
    the model they were converted from."""

    def __init__(self, folder: Path, quantization: str, threads: int) -> None:
        import ctranslate2
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            with keeping_torch_threads():
                self.encoder: Any = ctranslate2.Encoder(
                    str(folder), device="cpu", compute_type=quantization,
                    inter_threads=threads, intra_threads=1,
                )  # fmt: skip
            head = load_file(str(folder / HEAD_FILE))
        except (RuntimeError, ValueError, OSError, SafetensorError) as exc:
            raise ModelLoadError(f"{CTRANSLATE2} cannot load {folder}: {first_line(exc)}") from None
        self.weight, self.bias = head["weight"], head["bias"]
        self._lock = threading.Lock()  # one batch at a time: each takes every replica
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="quintet-ct2enc")

    def close(self) -> None:
        """Let the engine and its threads go (its model left the cache); a batch in
        progress ends first."""
        with self._lock:
            self.encoder = None
            self._pool.shutdown(wait=False)

    def encode(
        self,
        ids: torch.Tensor,
        lengths: torch.Tensor,
        types: torch.Tensor | None,
        parts: list[slice],
    ) -> torch.Tensor | None:
        """The last hidden states of the rows, ``parts`` spread over the replicas, padded
        back to the batch's width (None once closed)."""
        import ctranslate2

        width = ids.shape[1]

        def rows(part: slice) -> torch.Tensor:
            options: dict[str, Any] = {}
            if types is not None:
                options["token_type_ids"] = types[part].tolist()
            output = self.encoder.forward_batch(
                ctranslate2.StorageView.from_array(ids[part].numpy()),
                ctranslate2.StorageView.from_array(lengths[part].numpy()),
                **options,
            )
            hidden = torch.from_numpy(np.array(output.last_hidden_state))  # a copy: ours
            # The engine may trim the padding to the part's longest row: pad back.
            return torch.nn.functional.pad(hidden, (0, 0, 0, width - hidden.shape[1]))

        with self._lock:
            if self.encoder is None:
                return None
            return torch.cat(list(self._pool.map(rows, parts)))

"""Fast forward passes for encoder models: classification, extractive QA, embeddings.

``encoder_engine(loaded)`` returns what runs ``loaded``'s forward pass, chosen like the
decoding engines (``backend="auto"``): on CPU an ONNX Runtime copy of the model (exported
once into the store as ``<base>-onnx-<precision>``) for classifiers and sentence encoders,
a CTranslate2 int8 encoder (``<base>-ct2enc-int8``, :mod:`quintet.core.ct2_encoder`) for BERT and
DistilBERT span (extractive QA) models, the torch model elsewhere (see
:data:`AUTO_PRECISION` for why). The engine is called exactly as the torch model is,
``engine(**batch)``, and returns the same output fields (``logits``, ``start_logits`` /
``end_logits``, ``last_hidden_state``) as torch tensors, so task code does not change.
The loaded engine belongs to the model it was converted from, as the decoding engines do
(``Loaded.attachment``): closed when the model cache drops it; :func:`follow` moves a holder
onto a model rebuilt on disk.

Measured on a 2-core CPU (MiniLM-L6, SST-2 dev, batch 32): ONNX Runtime int8 ~2.5x torch
fp32, torch dynamic int8 ~2x, ONNX Runtime fp32 ~1.1x; length-sorted batches (the apps
sort) add ~1.6x on top. ``QUINTET_BACKEND=transformers`` pins the torch model here too.

Every engine that ``auto`` picks here is batch-invariant: a row's outputs depend on that row
and the settings only, not on the other rows of its batch (:class:`OnnxEncoder` runs rows one
at a time; CTranslate2 quantizes activations per row and masks by length).
"""

from __future__ import annotations

import contextlib
import importlib.util
import inspect
import logging
import threading
import warnings
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch

from quintet.core.config import backend_from_env
from quintet.core.decoding.conversions import base_name, first_line, get_or_build, open_conversion
from quintet.core.decoding.engines import ENV_BACKEND, BackendChoice
from quintet.core.errors import ConfigError, ModelLoadError
from quintet.core.model_cache import fingerprint
from quintet.core.models import Loaded, current
from quintet.core.store import ModelStore

log = logging.getLogger(__name__)

ONNX_RUNTIME = "onnxruntime"
CTRANSLATE2 = "ctranslate2"  # span models only (core/ct2_encoder.py)
ENCODER_BACKENDS: tuple[str, ...] = ("auto", "transformers", ONNX_RUNTIME, CTRANSLATE2)
OUTPUTS: dict[str, tuple[str, ...]] = {
    "sequence-classification": ("logits",),
    "span": ("start_logits", "end_logits"),
    "encoder": ("last_hidden_state",),
}


# int8: dynamic quantization, int8 weights per output channel and activations per tensor
# (fast at any length). int8-block32: MatMulNBits, int8 weights in blocks of 32 and the
# activations quantized per block as well (accuracy level 4), a finer grid that keeps span
# scores; on short inputs it is slower. fp32: the plain export.
PRECISIONS: tuple[str, ...] = ("int8", "int8-block32", "fp32")
QUANTIZATION: dict[str, str] = {
    "int8": "int8-dynamic-per-channel-matmul",
    "int8-block32": "int8-matmulnbits-block32-symmetric-accuracy4",
    "fp32": "none",
}
# What auto runs each kind in on CPU, from the quality gates against fp32 on the same items
# (paired bootstrap) and benchmarks/encoders.py (2 threads, quiet machine). Classifiers and
# sentence encoders: int8 kept SST-2 dev accuracy (+0.2 [-0.5, +0.9]) at 3.9x plain torch.
# Span (extractive QA) models do not run on ONNX Runtime: int8 cost 1.7-2.3 F1 on the SQuAD
# held-out articles (1,168 questions); int8-block32 kept F1 (-0.1 [-0.4, +0.3]) but ran only
# 1.1x torch's speed at 2.5x its memory, and the fp32 graph was no faster than torch. BERT and
# DistilBERT span models run on CTranslate2 int8 instead (core/ct2_encoder.py): -0.86 F1
# [-1.45, -0.30] at 2.0x torch (one replica per core); others stay on torch.
AUTO_PRECISION: dict[str, str] = {"sequence-classification": "int8", "encoder": "int8"}
# The precision a caller naming the ONNX Runtime engine gets for a span model: the one that
# kept the answers.
NAMED_PRECISION: dict[str, str] = {**AUTO_PRECISION, "span": "int8-block32"}


def store_name(loaded: Loaded, precision: str = "int8") -> str:
    """The store name of the ONNX copy: ``<base>-onnx-<precision>``."""
    return f"{base_name(loaded)}-onnx-{precision}"


def _input_names(loaded: Loaded) -> list[str]:
    """The tokenizer's outputs that the model's forward takes, in its order."""
    accepted = inspect.signature(loaded.model.forward).parameters
    produced = set(getattr(loaded.tokenizer, "model_input_names", ["input_ids"]))
    return [name for name in accepted if name in produced]


class _ByName(torch.nn.Module):
    """The model called with its inputs by name and its outputs as a tuple, for the
    exporter (positional order differs between families' forward signatures)."""

    def __init__(self, model: torch.nn.Module, inputs: list[str], outputs: list[str]) -> None:
        super().__init__()
        self.model, self.inputs, self.outputs = model, inputs, outputs

    def forward(self, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
        result = self.model(**dict(zip(self.inputs, tensors, strict=True)))
        return tuple(getattr(result, name) for name in self.outputs)


def _export(loaded: Loaded, folder: Path, precision: str = "int8") -> None:
    """torch -> ONNX (dynamic batch and length) -> int8 weights, into ``folder``."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    names = _input_names(loaded)
    sample = loaded.tokenizer(
        ["a short text", "a second, slightly longer text to pad against"],
        padding=True,
        return_tensors="pt",
    )
    args = tuple(sample[name].to(loaded.model.device) for name in names)
    outputs = list(OUTPUTS[loaded.kind])
    axes = {name: {0: "batch", 1: "tokens"} for name in names}
    axes |= {name: {0: "batch"} | ({1: "tokens"} if name != "logits" else {}) for name in outputs}
    plain = folder / ("model.onnx" if precision == "fp32" else "model-fp32.onnx")
    # The exporter and the quantizer both talk a lot (tracer warnings, a pre-processing
    # tip through the root logger): none of it is for the user.
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
            warnings.simplefilter("ignore")
            # eval() first: the exporter restores the mode it found, and a new module is
            # in training mode; that would switch the shared model's dropout on.
            torch.onnx.export(
                _ByName(loaded.model, names, outputs).eval(),
                args,
                str(plain),
                input_names=names,
                output_names=outputs,
                dynamic_axes=axes,
                opset_version=17,
                dynamo=False,
            )
            if precision == "fp32":
                return
            if precision == "int8-block32":
                _quantize_blockwise(plain, folder / "model.onnx")
                return
            quantize_dynamic(
                str(plain),
                str(folder / "model.onnx"),
                weight_type=QuantType.QInt8,
                # Per-channel scales on the matrix products only (embeddings stay float):
                # on MiniLM sentence embeddings the mean cosine to fp32 goes from 0.957
                # (per-tensor, everything) to 0.992, at the same speed.
                op_types_to_quantize=["MatMul"],
                per_channel=True,
                extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
            )
    except Exception as exc:  # noqa: BLE001 - exporter failures are many and unrelated
        raise ModelLoadError(
            f"{ONNX_RUNTIME} cannot convert {loaded.name}: {first_line(exc)}"
        ) from None
    finally:
        loaded.model.eval()
        root.setLevel(level)
        if precision != "fp32":
            with contextlib.suppress(FileNotFoundError):
                plain.unlink()


def _quantize_blockwise(source: Path, target: Path) -> None:
    """int8 weights in blocks of 32 along the input dimension (MatMulNBits), symmetric, with
    int8 compute on activations quantized per block (accuracy level 4)."""
    import onnx

    # The module calls logging.basicConfig(level=INFO) on import, which would print every
    # library's INFO lines for the rest of the process; with a handler on the root logger
    # basicConfig does nothing.
    root = logging.getLogger()
    guard = logging.NullHandler()
    root.addHandler(guard)
    try:
        from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer
    finally:
        root.removeHandler(guard)
    quantizer = MatMulNBitsQuantizer(
        onnx.load(str(source)), bits=8, block_size=32, is_symmetric=True, accuracy_level=4
    )
    quantizer.process()
    quantizer.model.save_model_to_file(str(target), use_external_data_format=False)


def convert_to_onnx(
    loaded: Loaded, precision: str = "int8", store: ModelStore | None = None, rebuild: bool = False
) -> Path:
    """Export ``loaded`` (an encoder, classifier or span model) to ONNX, once.

    ``int8`` quantizes the weights of every matrix product per channel, ``int8-block32``
    in blocks of 32 (see :data:`PRECISIONS`); ``fp32`` keeps them (the export alone: tests
    check it reproduces torch). ``rebuild``: export again even if a stored copy looks right
    (it did not load).

    Raises:
        ModelLoadError: not an encoder-kind model, or the export fails.
        StoreError: the store cannot be written.
    """
    if loaded.kind not in OUTPUTS:
        raise ModelLoadError(
            f"{loaded.name} is a {loaded.kind} model: the {ONNX_RUNTIME} encoder engine runs "
            f"{', '.join(OUTPUTS)} models"
        )
    if precision not in PRECISIONS:
        raise ConfigError(f"unknown precision {precision!r}: choose one of {PRECISIONS}")
    import onnxruntime

    quantization = QUANTIZATION[precision]
    return get_or_build(
        loaded,
        store_name(loaded, precision),
        ONNX_RUNTIME,
        {
            "quantization": quantization,
            "inputs": _input_names(loaded),
            "outputs": list(OUTPUTS[loaded.kind]),
            "onnxruntime_version": onnxruntime.__version__,
            "torch_version": torch.__version__,
        },
        lambda folder: _export(loaded, folder, precision),
        required_file="model.onnx",
        store=store,
        rebuild=rebuild,
    )


class TorchEncoder:
    """The reference: the torch model's own forward pass."""

    name = "transformers"

    def __init__(self, loaded: Loaded) -> None:
        self.model = loaded.model

    def __call__(self, **batch: torch.Tensor) -> Any:
        return self.model(**batch)


class OnnxEncoder:
    """An ONNX Runtime session (int8 weights by default) that answers like the torch model.

    The session hangs on the model it was converted from (``Loaded.attachment``, versioned by
    the conversion's fingerprint), shared by every caller with the same conversion and
    threads, and closed when the model cache drops that model; this object finds it there
    on each call, so it runs again (loaded anew) after an eviction.

    Batch-invariant: each row runs on its own, without padding, so its output is a function
    of that row and the settings only. The int8 graph quantizes activations dynamically,
    one scale per activation tensor: run as one batch, a row's scores moved with the other
    rows' values (and with the padding), so a text scored 0.695 alone and 0.671 beside two
    others, and a resumed file got other labels than an uninterrupted run. Rows one at a
    time cost ~10% more CPU time on SST-2 sentences (one thread, 2026-12-07), and bound a
    long text's memory to one window at a time (a 200,000-character text: 6.4 GB -> 0.8 GB).

    Args:
        loaded: the model (its conversion is built on first use).
        precision: ``int8`` or ``fp32``.
        store: where conversions live (default: ``$QUINTET_HOME``).
        threads: intra-op threads (default: torch's thread count).
    """

    name = ONNX_RUNTIME

    def __init__(
        self,
        loaded: Loaded,
        precision: str = "int8",
        store: ModelStore | None = None,
        threads: int | None = None,
    ) -> None:
        if loaded.device.type != "cpu":
            raise ModelLoadError(f"the {ONNX_RUNTIME} encoder engine runs on the CPU only")
        self.loaded = loaded
        self.threads = threads or torch.get_num_threads()
        session = open_conversion(
            lambda rebuild: convert_to_onnx(loaded, precision, store, rebuild),
            self._open,
            ONNX_RUNTIME,
        )
        self.inputs = [i.name for i in session.session.get_inputs()]
        self.outputs = list(OUTPUTS[loaded.kind])

    def _open(self, folder: Path) -> _OnnxSession:
        """The model's session on the conversion in ``folder`` (ModelLoadError if it cannot
        load): a conversion with another fingerprint gets a session of its own."""
        self.path = folder
        self._conversion = fingerprint(folder)
        return self._session()

    def _session(self) -> _OnnxSession:
        return self.loaded.attachment(
            (ONNX_RUNTIME, str(self.path), self.threads),
            lambda: _OnnxSession(self.path, self.threads),
            version=self._conversion,
        )

    def __call__(self, **batch: torch.Tensor) -> SimpleNamespace:
        """Each row on its own, without its padding (see the class doc); outputs with a
        token axis are padded back to the batch's width with zeros."""
        missing = [name for name in self.inputs if name not in batch]
        if missing:
            raise ConfigError(f"the {ONNX_RUNTIME} encoder needs inputs {missing}")
        feed = {name: batch[name].detach().cpu().numpy() for name in self.inputs}
        mask = batch.get("attention_mask")
        keep = None if mask is None else mask.detach().cpu().bool()
        # A session closed between finding it and running it (its model was dropped from
        # the cache meanwhile) answers None: the next lookup loads it again.
        for _ in range(2):
            found = self._session().run(feed, keep, self.outputs)
            if found is not None:
                return found
        raise ModelLoadError(f"the {ONNX_RUNTIME} session of {self.loaded.name} keeps closing")


class _OnnxSession:
    """One ONNX Runtime session and the lock its runs take, attached to its model."""

    def __init__(self, folder: Path, threads: int) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            self.session: Any = onnxruntime.InferenceSession(
                str(folder / "model.onnx"), options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own error types
            raise ModelLoadError(
                f"{ONNX_RUNTIME} cannot load {folder}: {first_line(exc)}"
            ) from None
        # One run at a time per session is not required by ONNX Runtime, but two runs would
        # each get the full thread pool and fight over the cores.
        self._lock = threading.Lock()

    def close(self) -> None:
        """Let the session go (its model left the cache); a run in progress ends first."""
        with self._lock:
            self.session = None

    def run(
        self, feed: dict[str, np.ndarray], keep: torch.Tensor | None, outputs: list[str]
    ) -> SimpleNamespace | None:
        """The outputs of every row run alone (None once closed)."""
        rows, width = next(iter(feed.values())).shape[:2]
        if keep is None:
            keep = torch.ones(rows, width, dtype=torch.bool)
        found: dict[str, list[np.ndarray]] = {name: [] for name in outputs}
        with self._lock:
            if self.session is None:
                return None
            for row in range(rows):
                tokens = keep[row].numpy()
                alone = {name: value[row : row + 1, tokens] for name, value in feed.items()}
                for name, value in zip(outputs, self.session.run(outputs, alone),
                                       strict=True):  # fmt: skip
                    if value.ndim > 1 and name != "logits":  # a token axis: pad it back
                        full = np.zeros((1, width, *value.shape[2:]), dtype=value.dtype)
                        full[:, tokens] = value
                        value = full
                    found[name].append(value)
        return SimpleNamespace(
            **{name: torch.from_numpy(np.concatenate(v)) for name, v in found.items()}
        )


def preferred(loaded: Loaded) -> BackendChoice:
    """What ``auto`` picks for an encoder-kind model, before checking it is installed."""
    if loaded.device.type != "cpu" or loaded.spec.quantize is not None:
        return BackendChoice("transformers", f"the reference engine on {loaded.device.type}")
    if loaded.kind == "span":
        if _ct2_runs(loaded):
            return BackendChoice(CTRANSLATE2, "int8 (activations per row), the fastest span "
                                 "engine on CPU within 1 F1 of fp32")  # fmt: skip
        return BackendChoice(
            "transformers", "ONNX int8 cost extractive QA 2.3 F1; block-wise int8 is no faster"
        )
    if loaded.kind in AUTO_PRECISION:
        precision = AUTO_PRECISION[loaded.kind]
        return BackendChoice(ONNX_RUNTIME, f"{precision}, the fastest encoder engine on CPU "
                             "that keeps fp32 quality")  # fmt: skip
    return BackendChoice("transformers", f"the reference engine on {loaded.device.type}")


def encoder_backend(backend: str, loaded: Loaded) -> str:
    """The encoder engine that a run-wide engine choice asks of ``loaded``.

    One ``--backend`` names the engine of every model a command runs (``quintet eval``: the
    app's and a judge's), as ``$QUINTET_BACKEND`` does, but encoders have engines of their
    own: ``transformers`` pins torch, ``ctranslate2`` a span model's CTranslate2 engine
    where it runs; any other choice (a decoder engine) leaves the encoder on ``auto``.
    """
    if backend == "transformers":
        return backend
    if backend == CTRANSLATE2 and _ct2_runs(loaded):
        return CTRANSLATE2
    return "auto"


def encoder_engine(loaded: Loaded, backend: str = "auto") -> tuple[Any, BackendChoice]:
    """The forward pass to run ``loaded`` with, and which engine it is and why.

    ``auto`` picks :func:`preferred` unless ``$QUINTET_BACKEND`` is ``transformers``, and
    falls back to the torch model with one logged line when ONNX Runtime is missing or
    the export fails. A named backend must work.
    """
    if backend not in ENCODER_BACKENDS:
        raise ConfigError(
            f"unknown encoder backend {backend!r}: choose one of {', '.join(ENCODER_BACKENDS)}"
        )
    if backend == "transformers":
        return TorchEncoder(loaded), BackendChoice("transformers", "chosen by the caller")
    if backend == CTRANSLATE2:
        from quintet.core.ct2_encoder import Ct2SpanEncoder

        return Ct2SpanEncoder(loaded, "int8"), BackendChoice(
            CTRANSLATE2, "int8, chosen by the caller"
        )
    if backend == ONNX_RUNTIME:
        precision = NAMED_PRECISION.get(loaded.kind, "int8")
        engine = OnnxEncoder(loaded, precision)
        return engine, BackendChoice(ONNX_RUNTIME, f"{precision}, chosen by the caller")
    pinned = backend_from_env()
    if pinned == "transformers":
        return TorchEncoder(loaded), BackendChoice("transformers", f"set by {ENV_BACKEND}")
    if pinned == CTRANSLATE2 and _ct2_runs(loaded):  # `--backend ctranslate2` on a span model
        engine, _ = encoder_engine(loaded, CTRANSLATE2)
        return engine, BackendChoice(CTRANSLATE2, f"int8, set by {ENV_BACKEND}")
    choice = preferred(loaded)
    if choice.name == "transformers":
        return TorchEncoder(loaded), choice
    if choice.name == CTRANSLATE2:
        from quintet.core.ct2_encoder import Ct2SpanEncoder

        try:
            return Ct2SpanEncoder(loaded, "int8"), choice
        except ModelLoadError as exc:
            log.warning("%s: running %s on torch", exc, loaded.name)
            return TorchEncoder(loaded), BackendChoice("transformers", f"fallback: {exc}")
    if importlib.util.find_spec("onnxruntime") is None:
        log.warning("the onnxruntime package is missing (pip install 'quintet[fast]'): "
                    "running %s on torch", loaded.name)  # fmt: skip
        return TorchEncoder(loaded), BackendChoice("transformers", "onnxruntime is not installed")
    try:
        return OnnxEncoder(loaded, AUTO_PRECISION[loaded.kind]), choice
    except ModelLoadError as exc:
        log.warning("%s: running %s on torch", exc, loaded.name)
        return TorchEncoder(loaded), BackendChoice("transformers", f"fallback: {exc}")


def with_engine(loaded: Loaded, backend: str = "auto") -> tuple[Loaded, BackendChoice]:
    """A copy of ``loaded`` whose forward pass (:meth:`Loaded.forward`) runs on its encoder
    engine (:func:`encoder_engine`), and which engine it is and why.

    The copy shares the model's weights, lock and attachments: the engine it runs (an ONNX
    Runtime session, a CTranslate2 encoder) lives on the cached model, not on the copy.
    """
    engine, choice = encoder_engine(loaded, backend)
    return replace(loaded, encoder=engine), choice


def follow(loaded: Loaded, backend: str = "auto") -> tuple[Loaded, BackendChoice | None] | None:
    """``loaded``'s model as it is on disk now (:func:`quintet.core.models.current`); None
    while that is ``loaded`` itself.

    A long-lived holder of an encoder-kind model (a QA or classification object, a server)
    calls this before each call: a model rebuilt in place (or whose weights changed) is
    loaded again, with an engine converted from its new weights (``backend`` as
    :func:`encoder_engine` takes it) when ``loaded`` ran on one, else none (choice None);
    the old weights' engines close with them. An evicted model with unchanged files keeps
    its copy, whose engine is loaded again on use.
    """
    fresh = current(loaded)
    if fresh is loaded:
        return None
    if loaded.encoder is None:
        return fresh, None
    return with_engine(fresh, backend)


def _ct2_runs(loaded: Loaded) -> bool:
    from quintet.core.ct2_encoder import supports

    return supports(loaded)

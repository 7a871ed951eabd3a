"""Models shared by every browser session of one Streamlit process.

Loading a model takes seconds and hundreds of MB, so an app object (a ``Translator``, a
``Summarizer`` ...) is built once per process with ``st.cache_resource`` and shared by all
sessions. Sharing needs one rule: **a model runs one request at a time**. Tokenizers
(Rust "already borrowed" errors) and generation state are not safe under concurrent
calls, so two sessions calling at once could crash or, worse, mix outputs.

How the lock works
------------------
* The lock lives on the loaded model itself (:attr:`quintet.core.models.Loaded.lock`), and the
  model cache (:func:`quintet.core.models.load`) gives every app the same ``Loaded``: a
  ``Summarizer``, a ``Translator`` routed to SmolLM2, a chat session, an evaluation job
  and the server on ``smollm2-135m-instruct`` all take one lock. The generator and the
  encoder apps take it on every call, so serialisation does not depend on the page.
* :func:`model_lock` is that lock for a model name (once the model is loaded; before, a
  per-name lock held by this process's Streamlit resource cache).
* :func:`cached_app` returns a :class:`SharedApp`: calling any method through it (``app.
  translate(...)``) holds the model's lock for the whole call, so a multi-step call
  (map-reduce summaries) is not interleaved with another session's. Attributes that are
  not methods are read directly.
* A stream is written by a worker thread that holds the lock while it generates; never
  hold the lock while consuming one. :meth:`SharedApp.using` and :func:`waiting_for` wait
  until the model is free, showing "waiting for another session" meanwhile, so a waiting
  user sees why nothing happens yet: ``with app.using(): st.write_stream(stream)``.
* Per-session state never goes in the cache: a chat page keeps its ``ChatSession`` in
  ``st.session_state`` built on the shared :func:`cached_generator`, and streams under
  ``waiting_for(name)``.

Example:
    >>> from apps.summarization import Summarizer
    >>> app = cached_app(Summarizer, "smollm2-135m-instruct")     # doctest: +SKIP
    >>> app.summarize(["A long text ..."], max_length=60)          # doctest: +SKIP
"""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Generic, TypeVar

import streamlit as st

from quintet.core.decoding import Generator
from quintet.core.models import Loaded, cached_models

T = TypeVar("T")


@st.cache_resource(show_spinner=False)
def _name_locks() -> dict[str, threading.RLock]:
    # Locks for names no loaded model carries (an app whose model is not loaded yet, or
    # that runs none); held by Streamlit's process-wide resource cache, not a global.
    return {}


@st.cache_resource(show_spinner=False)
def _name_locks_guard() -> threading.Lock:
    return threading.Lock()


def model_lock(name: str | None) -> threading.RLock:
    """The process-wide lock of model ``name``: the loaded model's own lock
    (:attr:`quintet.core.models.Loaded.lock`) once it is loaded, else one lock per name (None
    shares one). Re-entrant, so an app method that calls another does not deadlock.
    """
    for loaded in cached_models():
        if name is not None and name in (loaded.name, loaded.spec.name):
            return loaded.lock
    key = name or "<default>"
    with _name_locks_guard():
        return _name_locks().setdefault(key, threading.RLock())


@contextmanager
def waiting_for(name: str | None, message: str | None = None) -> Iterator[None]:
    """Wait until model ``name`` is free; while another session uses it, say so on the page.

    The lock is not held through the block: the calls inside take it themselves, and a
    stream's worker thread needs it while the page consumes the stream.
    """
    _wait_free(model_lock(name), name, message)
    yield


def _wait_free(lock: Any, name: str | None, message: str | None) -> None:
    if lock.acquire(blocking=False):
        lock.release()
        return
    note = st.info(message or f"Waiting: another session is using {name or 'this model'}…")
    with lock:
        pass
    note.empty()


class SharedApp(Generic[T]):
    """An app object shared between sessions; its method calls hold the model's lock.

    ``shared.app`` is the app itself (for code that manages the lock on its own).
    """

    def __init__(self, app: T, lock_name: str, lock: Any = None) -> None:
        self.app = app
        self.lock_name = lock_name
        self.lock = lock if lock is not None else model_lock(lock_name)

    def __getattr__(self, attribute: str) -> Any:
        value = getattr(self.app, attribute)
        if not callable(value):
            return value

        @functools.wraps(value)
        def locked(*args: Any, **kwargs: Any) -> Any:
            with self.lock:
                return value(*args, **kwargs)

        return locked

    @contextmanager
    def using(self, message: str | None = None) -> Iterator[None]:
        """Context manager that waits for the model to be free (with a waiting note); for
        consuming streams, whose worker thread takes the lock itself."""
        _wait_free(self.lock, self.lock_name, message)
        yield

    def __repr__(self) -> str:
        return f"SharedApp({self.app!r}, lock={self.lock_name!r})"


def _loaded_of(app: Any) -> Loaded | None:
    """The one model an app runs (``app.loaded`` or ``app.generator.loaded``), if any."""
    for holder in (app, getattr(app, "generator", None)):
        loaded = getattr(holder, "loaded", None) if holder is not None else None
        if isinstance(loaded, Loaded):
            return loaded
    return None


def _lock_name(app: Any, model: str | None, cls: type) -> str:
    # The resolved model name where the app knows it (apps on the task default resolve
    # None to a name), so every app on the same weights shares one lock.
    for attribute in ("model_name",):
        try:
            value = getattr(app, attribute)
        except Exception:  # noqa: BLE001 - a property may need a loaded model; fall back
            continue
        if isinstance(value, str) and value:
            return value
    return model or f"<{cls.__module__}.{cls.__qualname__}>"


@st.cache_resource(show_spinner=False, max_entries=16)
def _build(cls_key: str, model: str | None, kwargs_key: str, _cls: type, _kwargs: dict) -> Any:
    app = _cls(model, **_kwargs)
    loaded = _loaded_of(app)
    return SharedApp(app, _lock_name(app, model, _cls), loaded.lock if loaded else None)


def cached_app(cls: Callable[..., T], model: str | None = None, **kwargs: Any) -> SharedApp[T]:
    """``cls(model, **kwargs)``, built once per process and shared by every session.

    Args:
        cls: an app class whose first argument is the model (Translator, Summarizer,
            QuestionAnswerer, Classifier ...).
        model: a model name, hub id or path; None: the app's default.
        kwargs: further constructor arguments (JSON-serialisable values: they are part of
            the cache key).

    Returns:
        A :class:`SharedApp`: ``app.method(...)`` runs under the model's lock.

    Raises:
        Whatever ``cls`` raises (a QuintetError for a bad model); failures are not cached.
    """
    cls_key = f"{cls.__module__}.{cls.__qualname__}"
    kwargs_key = json.dumps(kwargs, sort_keys=True, default=repr)
    with st.spinner(f"Loading {model or 'the default model'} (once per process)…"):
        return _build(cls_key, model, kwargs_key, cls, kwargs)


@st.cache_resource(show_spinner=False, max_entries=8)
def _generator(model: str, backend: str) -> Generator:
    # The chat page streams one reply at a time: batch_size=1 tells auto this is interactive
    # work (on CUDA it stays on transformers, which streams, rather than starting vLLM).
    return Generator(model, backend, batch_size=1)


def cached_generator(model: str, backend: str = "auto") -> Generator:
    """The shared :class:`quintet.core.decoding.Generator` of ``model`` (built once per process).

    Use it under ``model_lock(model)``; e.g. ``ChatSession(cached_generator(name))`` in
    ``st.session_state`` keeps the history per session and the weights shared. On
    onnxruntime-genai (auto's choice on CPU) its calls go through the model's scheduler and
    take the lock only to tokenize, so several sessions' replies generate together (and
    :func:`waiting_for` does not wait for another session's reply).
    """
    with st.spinner(f"Loading {model} (once per process)…"):
        return _generator(model, backend)


def clear() -> None:
    """Forget every shared app and generator (the Models page calls it after a delete)."""
    _build.clear()
    _generator.clear()

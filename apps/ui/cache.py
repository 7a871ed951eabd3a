"""Models shared by every browser session of one Streamlit process.

Loading a model takes seconds and hundreds of MB, so an app object (a ``Translator``, a
``Summarizer`` ...) is built once per process with ``st.cache_resource`` and shared by all
sessions. Sharing needs one rule: **a model runs one request at a time**. Tokenizers
(Rust "already borrowed" errors) and generation state are not safe under concurrent
calls, so two sessions calling at once could crash or, worse, mix outputs.

How the lock works
------------------
* Every model name has one process-wide lock (:func:`model_lock`), whichever app class
  uses it: a ``Summarizer`` and a chat session on ``smollm2-135m-instruct`` share it.
* :func:`cached_app` returns a :class:`SharedApp`: calling any method through it (``app.
  translate(...)``) holds the model's lock for the whole call. Attributes that are not
  methods are read directly.
* A call that returns a stream is consumed after the method returned, so hold the lock
  around the consumption yourself: ``with app.using(): st.write_stream(stream)``.
* :meth:`SharedApp.using` and :func:`waiting_for` show "waiting for another session" while
  the lock is busy, so a waiting user sees why nothing happens yet.
* Per-session state never goes in the cache: a chat page keeps its ``ChatSession`` in
  ``st.session_state`` built on the shared :func:`cached_generator`, and streams under
  ``with model_lock(name)`` / ``waiting_for(name)``.

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

from core.decoding import Generator

T = TypeVar("T")

_locks: dict[str, threading.RLock] = {}
_locks_guard = threading.Lock()


def model_lock(name: str | None) -> threading.RLock:
    """The process-wide lock of model ``name`` (one per name; None shares one lock).

    Re-entrant, so an app method that calls another of its methods does not deadlock.
    """
    key = name or "<default>"
    with _locks_guard:
        return _locks.setdefault(key, threading.RLock())


@contextmanager
def waiting_for(name: str | None, message: str | None = None) -> Iterator[None]:
    """Hold model ``name``'s lock; while another session holds it, say so on the page."""
    lock = model_lock(name)
    if lock.acquire(blocking=False):
        try:
            yield
        finally:
            lock.release()
        return
    note = st.info(message or f"Waiting: another session is using {name or 'this model'}…")
    lock.acquire()
    note.empty()
    try:
        yield
    finally:
        lock.release()


class SharedApp(Generic[T]):
    """An app object shared between sessions; its method calls hold the model's lock.

    ``shared.app`` is the app itself (for code that manages the lock on its own).
    """

    def __init__(self, app: T, lock_name: str) -> None:
        self.app = app
        self.lock_name = lock_name
        self.lock = model_lock(lock_name)

    def __getattr__(self, attribute: str) -> Any:
        value = getattr(self.app, attribute)
        if not callable(value):
            return value

        @functools.wraps(value)
        def locked(*args: Any, **kwargs: Any) -> Any:
            with self.lock:
                return value(*args, **kwargs)

        return locked

    def using(self, message: str | None = None) -> Any:
        """Context manager holding the lock (with a waiting note); for streams."""
        return waiting_for(self.lock_name, message)

    def __repr__(self) -> str:
        return f"SharedApp({self.app!r}, lock={self.lock_name!r})"


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
    return SharedApp(app, _lock_name(app, model, _cls))


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
    """The shared :class:`core.decoding.Generator` of ``model`` (built once per process).

    Use it under ``model_lock(model)``; e.g. ``ChatSession(cached_generator(name))`` in
    ``st.session_state`` keeps the history per session and the weights shared.
    """
    with st.spinner(f"Loading {model} (once per process)…"):
        return _generator(model, backend)


def clear() -> None:
    """Forget every shared app and generator (the Models page calls it after a delete)."""
    _build.clear()
    _generator.clear()

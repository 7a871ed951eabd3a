"""The errors Quintet raises for bad input.

Every error a user can cause derives from :class:`QuintetError`. Its message is one
readable line that names the bad input and says what to do instead; the CLI and the
Streamlit pages print that line and never a traceback.
"""

from __future__ import annotations


class QuintetError(Exception):
    """Base class for user-facing errors: the message is meant to be shown as is."""


class ModelNotFoundError(QuintetError):
    """A model name, hub id or path does not name any model we can find."""


class UnknownModelError(ModelNotFoundError):
    """A name that is no directory, store model, catalog name or hub id; ``name`` is it."""

    def __init__(self, message: str, name: str) -> None:
        super().__init__(message)
        self.name = name

    def __reduce__(self) -> tuple:
        # Errors travel between processes (Ray workers, the background builder): pickle
        # calls cls(*args), which would miss ``name``.
        return (type(self), (str(self), self.name))


class OfflineError(QuintetError):
    """A hub model is needed but the hub cannot be reached and the model is not cached."""


class ModelLoadError(QuintetError):
    """A model was found but cannot be loaded (not a model, corrupt, unsafe, wrong kind)."""


class StoreError(QuintetError):
    """The local model store cannot be written (permissions, disk space) or is inconsistent."""


class ChecksumError(QuintetError):
    """A downloaded or extracted file does not match its pinned sha256."""


class ConfigError(QuintetError, ValueError):
    """A configuration value is invalid (bad dtype, impossible combination, ...)."""


class OutputInUseError(QuintetError):
    """Another run is writing the same output file or folder right now."""

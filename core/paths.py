"""Where Quintet's shipped data sets are: one function instead of paths relative to each
module's source file.

The data sets (``data/``: FLORES, SAMSum, SQuAD, SST-2 ... and MT-Bench's judge prompts)
are found, in this order,

1. in ``$QUINTET_DATA`` (a folder laid out like the repository's ``data/``), so an
   installed wheel, a container or a shared disk can point at a copy;
2. next to the installed ``core`` package, where a source checkout or an editable install
   has them (``importlib.resources`` locates the package, wherever it is installed).

A missing data set is a one-line :class:`~core.errors.DataNotFoundError` that says which
file and how to provide it.
"""

from __future__ import annotations

import os
from importlib.resources import files
from pathlib import Path

from core.errors import QuintetError

DATA_ENV = "QUINTET_DATA"


class DataNotFoundError(QuintetError):
    """A shipped data set is not where Quintet looks for it."""


def data_root() -> Path:
    """The folder holding the shipped data sets (``$QUINTET_DATA``, else the checkout's
    ``data/`` beside the package)."""
    configured = os.environ.get(DATA_ENV)
    if configured:
        return Path(configured).expanduser()
    return Path(str(files("core"))).parent / "data"


def data_path(relative: str | os.PathLike, *, must_exist: bool = True) -> Path:
    """A shipped data file or folder: ``data_path("qa/squad_v1.1/dev.json")`` (a leading
    ``data/`` is accepted, as the README writes them)."""
    parts = Path(relative).parts
    if parts and parts[0] == "data":
        parts = parts[1:]
    path = data_root().joinpath(*parts)
    if must_exist and not path.exists():
        raise DataNotFoundError(
            f"{path} not found: set {DATA_ENV} to a copy of Quintet's data/ folder "
            "(it ships with the source repository, not the wheel)"
        )
    return path

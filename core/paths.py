"""Where Quintet's shipped data sets are: one function instead of paths relative to each
module's source file.

The data sets (``data/``: FLORES, SAMSum, SQuAD, SST-2 ... and MT-Bench's judge prompts)
are found, in this order,

1. in ``$QUINTET_DATA`` (a folder laid out like the repository's ``data/``), so an
   installed wheel, a container or a shared disk can point at a copy;
2. in the installed ``quintet.data`` package (the wheel ships them; in a checkout it is the
   repository's ``data/`` folder), located by ``importlib.resources`` wherever it is.

A missing data set is a one-line :class:`~quintet.core.errors.DataNotFoundError` that says which
file and how to provide it.
"""

from __future__ import annotations

import os
from importlib.resources import files
from pathlib import Path

from quintet.core.errors import QuintetError

DATA_ENV = "QUINTET_DATA"
REPORTS_ENV = "QUINTET_EXAMPLE_REPORTS"


class DataNotFoundError(QuintetError):
    """A shipped data set is not where Quintet looks for it."""


def data_root() -> Path:
    """The folder holding the shipped data sets (``$QUINTET_DATA``, else the installed
    ``quintet.data`` package)."""
    configured = os.environ.get(DATA_ENV)
    if configured:
        return Path(configured).expanduser()
    return Path(str(files("quintet.data")))


def example_reports_root() -> Path | None:
    """The committed example evaluation reports, or None where there are none.

    They are documentation (``docs/reports/`` in the source repository), not package data:
    ``$QUINTET_EXAMPLE_REPORTS`` names a copy; a checkout (editable install) finds its own.
    """
    configured = os.environ.get(REPORTS_ENV)
    if configured:
        return Path(configured).expanduser()
    checkout = Path(str(files("quintet.core"))).parent / "docs" / "reports"
    return checkout if checkout.is_dir() else None


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
            "(the wheel and the source repository ship it)"
        )
    return path


def shipped_or_given(path: str) -> str:
    """``path`` as the user gave it, or the shipped copy when it names one that is not here.

    ``data/classification/sst2/dev.tsv`` (as the docs write them) then works from any working
    directory and from an installed wheel; a file of that name in the working directory
    still wins.
    """
    if Path(path).exists() or not Path(path).parts or Path(path).parts[0] != "data":
        return path
    shipped = data_path(path, must_exist=False)
    return str(shipped) if shipped.exists() else path

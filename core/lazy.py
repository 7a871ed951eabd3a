"""Names a package exports but imports only on first use (PEP 562 module ``__getattr__``).

The app packages use it so that importing one of their sub-modules (``quintet.apps.qa.cli`` for
``quintet --help``) does not import the app, and torch with it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_attributes(package: str, homes: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package`` that imports each name from its home module
    (``homes``: name -> module) when it is first asked for."""

    def __getattr__(name: str) -> Any:
        if name not in homes:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(homes[name]), name)

    return __getattr__

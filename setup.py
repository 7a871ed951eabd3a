"""Maps the repository's layer folders into the one ``quintet`` import namespace.

The checkout keeps ``core/``, ``apps/``, ``evaluation/`` and ``data/`` at the top; installed,
they are ``quintet.core``, ``quintet.apps``, ``quintet.evaluation`` and ``quintet.data``, and
nothing else lands at the top of site-packages. Everything else is in pyproject.toml; this
file only lists the packages, which pyproject.toml cannot compute under a mapping.
"""

from setuptools import find_namespace_packages, setup

FOLDERS = {"core": "core", "apps": "apps", "evaluation": "evaluation", "data": "data"}
SKIP = ["*__pycache__*"]


def subpackages(folder: str) -> list[str]:
    """``quintet.<folder>`` and every folder below it (page and data folders have no
    ``__init__.py``: namespace discovery finds them too)."""
    found = find_namespace_packages(where=folder, exclude=SKIP)
    return [f"quintet.{folder}", *(f"quintet.{folder}.{name}" for name in found)]


PACKAGES = ["quintet", *(name for folder in FOLDERS for name in subpackages(folder))]

setup(
    packages=PACKAGES,
    package_dir={"quintet": "quintet", **{f"quintet.{k}": v for k, v in FOLDERS.items()}},
    # The shipped data sets, so `quintet eval` on them works from an installed wheel.
    package_data={name: ["*"] for name in PACKAGES if name.startswith("quintet.data")},
)

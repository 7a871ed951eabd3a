"""Maps the repository's layer folders into the one ``quintet`` import namespace.

The checkout keeps ``core/``, ``apps/``, ``evaluation/`` and ``data/`` at the top; installed,
they are ``quintet.core``, ``quintet.apps``, ``quintet.evaluation`` and ``quintet.data``, and
nothing else lands at the top of site-packages. Everything else is in pyproject.toml; this
file only lists the packages, which pyproject.toml cannot compute under a mapping.
"""

from setuptools import find_packages, setup

LAYERS = ("core", "apps", "evaluation")

setup(
    packages=[
        "quintet",
        "quintet.data",
        *(f"quintet.{name}" for name in find_packages(include=[f"{layer}*" for layer in LAYERS])),
    ],
    package_dir={
        "quintet": "quintet",
        "quintet.data": "data",
        **{f"quintet.{layer}": layer for layer in LAYERS},
    },
)

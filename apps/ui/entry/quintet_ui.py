"""What ``quintet ui`` hands to ``streamlit run``: it runs :mod:`quintet.apps.home` on each rerun.

It lives alone in its folder because Streamlit puts the script's folder first on
``sys.path``: run from ``apps/``, every page folder there (``evaluation``, ``models``,
``server`` ...) would become an importable top-level name in the UI process. Here nothing
new is importable, so no module edits ``sys.path``.
"""

import runpy

runpy.run_module("quintet.apps.home", run_name="__main__")

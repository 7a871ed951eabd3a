"""What ``quintet ui`` hands to ``streamlit run``: it runs :mod:`apps.home` on each rerun.

It lives alone in its folder because Streamlit puts the script's folder first on
``sys.path``: run from ``apps/``, the page folder ``apps/evaluation`` would shadow the
top-level ``evaluation`` package (an editable install resolves packages after sys.path).
Here nothing can shadow anything, so no module edits ``sys.path``.
"""

import runpy

runpy.run_module("apps.home", run_name="__main__")

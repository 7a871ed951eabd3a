"""``python -m quintet``: the ``quintet`` command."""

import sys

from quintet.apps.cli import main

sys.exit(main())

"""``python -m conceptid``: the command line (same as ``python -m conceptid.cli``)."""

import sys

from .cli import main

sys.exit(main())

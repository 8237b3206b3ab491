"""``python -m nbfetch [options] URL``: see ``nbfetch.cli``."""

import sys

from .cli import main

sys.exit(main())

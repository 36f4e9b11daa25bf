"""``python -m cookbook.render [NAMES] [--force] [--quick] ...``: the same as ``cookbook render``."""

import sys

from cookbook.cli import main

sys.exit(main(["render", *sys.argv[1:]]))

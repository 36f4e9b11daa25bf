"""``python -m cookbook.render [NAMES] [--quick]``: the render without the CLI."""

import argparse

from cookbook import runtime
from cookbook.render import DEVICES, render

runtime.prefer_onednn()

parser = argparse.ArgumentParser(prog="python -m cookbook.render", description=__doc__.split("\n")[0])
parser.add_argument("names", nargs="*", help="recipes to render (default: all)")
parser.add_argument("--quick", action="store_true", help="small, fast renders (CI)")
parser.add_argument("--device", choices=DEVICES, default="auto")
parser.add_argument("--docs-dir", default="docs")
arguments = parser.parse_args()
for item in render(arguments.names or None, arguments.quick, arguments.device, arguments.docs_dir):
    state = "up to date" if item.skipped else f"rendered in {item.seconds:.0f} s"
    print(f"{item.name}: {state} on {item.device}; " + ", ".join(f"{k}={v:.3f}" for k, v in item.metrics.items()))

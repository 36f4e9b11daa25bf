"""Time `cookbook list`, `show` and `copy`: each must answer in under a second.

    .venv/bin/python benchmarks/bench_cli.py            # 11 runs of each command
    .venv/bin/python benchmarks/bench_cli.py --quick    # 3 runs: a smoke run

Each run is a fresh `python -m cookbook.cli ...` process, timed from start to exit, as
a user at a shell meets it (interpreter start-up included). Prints the median and the
range per command, with the CPU it ran on.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

from cookbook.runtime import cpu_name

GOAL_S = 1.0


def commands(folder):
    return {
        "list": ["list"],
        "show xception": ["show", "xception"],
        "copy xception DIR/": ["copy", "xception", os.path.join(folder, "models") + os.sep, "--force"],
    }


def time_command(argv, runs):
    """Wall seconds of ``runs`` fresh processes running ``cookbook ARGV``."""
    seconds = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "cookbook.cli", *argv], check=True, stdout=subprocess.DEVNULL)
        seconds.append(time.perf_counter() - start)
    return seconds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=11, help="runs per command (default 11)")
    parser.add_argument("--quick", action="store_true", help="3 runs per command, a smoke run")
    args = parser.parse_args(argv)
    runs = 3 if args.quick else args.runs
    print(f"CPU: {cpu_name()}; Python {sys.version.split()[0]}; {runs} runs per command")
    print(f"{'command':<22}{'median':>10}{'min':>10}{'max':>10}  goal {GOAL_S:.0f} s")
    with tempfile.TemporaryDirectory() as folder:
        for name, command in commands(folder).items():
            seconds = time_command(command, runs)
            verdict = "met" if statistics.median(seconds) <= GOAL_S else "MISSED"
            print(f"{name:<22}{statistics.median(seconds):>9.3f}s{min(seconds):>9.3f}s{max(seconds):>9.3f}s  {verdict}")


if __name__ == "__main__":
    main()

"""`make bench-cli`: how long `paradigms --help` and `paradigms --version` take, written to BENCHMARKS.md.

Each command is a fresh process, timed from its start to its exit (subprocess, output discarded): the wall time a
user waits. For reference, in the same rounds: `python -c pass` (the interpreter alone) and `python -c "import
torch"` (what every command that trains or loads a network pays, and what `--help` once paid). One warm-up round,
then ``--runs`` rounds, the commands taking turns within each round so that the load of a shared machine falls on
all of them alike; best and median of each.

Usage: python benchmarks/bench_cli.py [--runs 10] [--out BENCHMARKS.md]
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

from driver import run_benchmark

BIN = Path(sys.executable).parent
COMMANDS = {  # label -> argv
    "`paradigms --help`": [str(BIN / "paradigms"), "--help"],
    "`paradigms --version`": [str(BIN / "paradigms"), "--version"],
    "`python -c pass`": [sys.executable, "-c", "pass"],
    '`python -c "import torch"`': [sys.executable, "-c", "import torch"],
}


def wall_time(argv: list[str]) -> float:
    """Seconds from starting ``argv`` as a new process to its exit; fails if it fails."""
    t0 = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=True)
    return time.perf_counter() - t0


def measure(commands: dict[str, list[str]], runs: int) -> dict[str, list[float]]:
    """``runs`` wall times of each command, after one untimed warm-up round; the commands take turns in each round."""
    for argv in commands.values():
        wall_time(argv)
    times: dict[str, list[float]] = {label: [] for label in commands}
    for _ in range(runs):
        for label, argv in commands.items():
            times[label].append(wall_time(argv))
    return times


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def options(ap) -> None:
    ap.add_argument("--runs", type=int, default=10, help="timed runs of each command (after one warm-up)")


def block(args, runs=None) -> list[str]:  # no --work: nothing to keep
    load = os.getloadavg()[0]
    times = measure(COMMANDS, args.runs)
    for label, ts in times.items():
        print(f"{label}: best {min(ts):.3f} s, median {statistics.median(ts):.3f} s", flush=True)
    lines = ["## Command-line start-up", "",
             f"Command: `make bench-cli` (`python benchmarks/bench_cli.py --runs {args.runs}`).", "",
             f"Machine: the 2-core development machine ({cpu_name()} x {os.cpu_count()} cores, Python "
             f"{platform.python_version()}), shared with other work (load average {load:.1f} when it started). Each "
             f"number is the wall time of a fresh process, from its start to its exit, output discarded; one warm-up "
             f"round, then {args.runs} rounds with the commands taking turns.", "",
             "| command | best | median |", "|---|---|---|"]
    lines += [f"| {label} | {min(ts):.3f} s | {statistics.median(ts):.3f} s |" for label, ts in times.items()]
    lines += ["", "`paradigms --help` builds the whole command (every plugin's sub-commands) and imports no torch: "
              "each package's exports are imported when first used (`paradigms.lazy`); `--version` answers before "
              "typer parses anything. `tests/test_cli_speed.py` keeps torch out of both."]
    return lines


def main() -> None:
    run_benchmark(__file__, block, options=options, data=None, work=False)


if __name__ == "__main__":
    main()

"""Start-up time of the `engine` command: wall time of a fresh process, median of rounds.

    python bench/startup.py [--rounds 15] [--engine PATH]

Each round runs every case once, in turn (so a busy moment of the machine hits all of them
alike): `python -c pass` as the floor, `engine --version`, `engine --help`,
`engine validate examples/quickstart.toml`, `engine components`, and one shell-completion
request (what TAB after `engine ` runs). Reports the median wall time and the fastest round
of each, the median above the floor, and the median CPU time (user + system), which a busy
machine disturbs less than wall time. Targets (issue 15): `--version` under 0.25 s, `validate` under
0.5 s. The engine's modules are compiled to bytecode first, as `pip install` does (with
PYTHONDONTWRITEBYTECODE set, an editable install would otherwise compile them at every start).
"""

from __future__ import annotations

import argparse
import compileall
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

TARGETS = {"engine --version": 0.25, "engine validate examples/quickstart.toml": 0.5}


def cases(engine: str) -> dict[str, tuple[list[str], dict[str, str]]]:
    complete = {"_ENGINE_COMPLETE": "bash_complete", "COMP_WORDS": "engine ", "COMP_CWORD": "1"}
    return {
        "python -c pass": ([sys.executable, "-c", "pass"], {}),
        "engine --version": ([engine, "--version"], {}),
        "engine --help": ([engine, "--help"], {}),
        "engine validate examples/quickstart.toml": (
            [engine, "validate", "examples/quickstart.toml"],
            {},
        ),
        "engine components": ([engine, "components"], {}),
        "completion (engine TAB)": ([engine], complete),
    }


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU seconds of one run."""
    start = time.perf_counter()
    process = subprocess.Popen(
        argv, cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    assert process.stderr is not None
    err = process.stderr.read()
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed: {err.decode()[-500:]}")
    return elapsed, usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument(
        "--engine",
        default=shutil.which("engine") or "engine",
        help="The engine executable (default: the one on PATH).",
    )
    args = parser.parse_args()
    compileall.compile_dir(ROOT / "engine", quiet=1)
    table = cases(args.engine)
    walls: dict[str, list[float]] = {name: [] for name in table}
    cpus: dict[str, list[float]] = {name: [] for name in table}
    for argv, env in table.values():  # warm the file cache once
        timed(argv, env)
    for _ in range(args.rounds):
        for name, (argv, env) in table.items():
            wall, cpu = timed(argv, env)
            walls[name].append(wall)
            cpus[name].append(cpu)
    floor = statistics.median(walls["python -c pass"])
    print(f"{args.rounds} rounds, taking turns: median wall (fastest), above `python -c pass`, CPU")
    for name, samples in walls.items():
        median = statistics.median(samples)
        target = TARGETS.get(name)
        verdict = (
            ""
            if target is None
            else f"  target < {target:.2f} s: " + ("met" if median < target else "MISSED")
        )
        print(
            f"  {name:42} {median:6.3f} s ({min(samples):.3f})  +{median - floor:6.3f} s  "
            f"cpu {statistics.median(cpus[name]):.3f} s{verdict}"
        )


if __name__ == "__main__":
    main()

"""End to end: `engine run` against the tools a user could pick instead, in one invocation.

    python bench/run.py [--rows 1000000] [--rounds 3] [--only NAME,...] [--workloads W,...]
                        [--json FILE] [--quick]

Workloads, on the inventory CSV of ``../shared/bench/gen_inventory.py`` (the folder beside the
repository, where CI has it too):
  inventory  CSV -> map (8 fields) -> JSON Lines; the contenders of ../shared/bench
  filter     JSON Lines (the inventory output) -> filter -> CSV; bench/contenders/filter_*
  parquet    CSV -> map (8 fields) -> Parquet; bench/contenders/parquet_*
Contenders: the plain-Python floor, polars, DuckDB, pandas and Miller (each skipped, saying so,
when its tool is missing), and `engine run` on the default path (``ENGINE_COLUMNAR=auto``) and
the row path (``off``), with auditing on, and for the inventory also off (``-noaudit``).
The inventory also runs ``bound`` (bench/contenders/inventory_bound.py), not a contender:
polars' own query after the engine's imports, with the SHA-256 of the input and output, the
least an audited `engine run` could take with today's start-up.

Each contender runs in its own process, started afresh (start-up counts); the contenders take
turns, round after round, so a machine whose speed drifts slows all alike. Reported per
contender: the median wall time and CPU time (user + system of the child) over the rounds, its
peak RSS (the largest of the rounds), the ratios to the floor and to polars, and whether its
output equals the floor's: the same bytes, or the same values (Miller's JSON spacing, other
writers' Parquet). An output that differs makes the exit status 1.
"""

from __future__ import annotations

import argparse
import compileall
import csv
import filecmp
import importlib.util
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import zip_longest
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from generate import FIELDS  # noqa: E402

SHARED = HERE.parent.parent / "shared" / "bench"
CONTENDERS = HERE / "contenders"

PIPELINE = """\
[pipeline]
name = "bench-{workload}"
[audit]
enabled = {audit}
[sources.src]
type = "file"
path = "{src}"
batch = {{ size = 2000 }}
[transforms.step]
type = "{transform}"
inputs = ["src"]
{body}
[sinks.out]
type = "file"
inputs = ["step"]
path = "{out}"
"""

MAP_BODY = "[transforms.step.fields]\n" + "\n".join(
    f"{name} = {json.dumps(expr)}" for name, expr in FIELDS.items()
)
FILTER_CONDITION = "quantity > `2500` && product_type != 'General'"

#: engine contender -> (ENGINE_COLUMNAR, auditing)
ENGINES = {
    "engine": ("auto", True),
    "engine-noaudit": ("auto", False),
    "engine-row": ("off", True),
    "engine-row-noaudit": ("off", False),
}


@dataclass(frozen=True)
class Workload:
    name: str
    title: str
    source: str  # "csv" or "jsonl": the input file
    output: str  # extension of every contender's output
    transform: str
    body: str
    #: contender -> (script, what it needs: python modules or a program "mlr")
    tools: dict[str, tuple[Path, tuple[str, ...]]]
    engines: tuple[str, ...]


WORKLOADS = {
    w.name: w
    for w in (
        Workload(
            "inventory",
            "CSV -> map (8 fields) -> JSON Lines",
            "csv",
            "jsonl",
            "map",
            MAP_BODY,
            {
                "floor": (SHARED / "floor.py", ("orjson",)),
                "polars": (SHARED / "polars_way.py", ("polars",)),
                "duckdb": (SHARED / "duckdb_way.py", ("duckdb",)),
                "pandas": (SHARED / "pandas_way.py", ("pandas",)),
                "miller": (SHARED / "miller_way.sh", ("mlr",)),
                # not a contender: polars' own query with the engine's imports and the
                # audit's digests, the least an audited `engine run` could take
                "bound": (CONTENDERS / "inventory_bound.py", ("polars",)),
            },
            tuple(ENGINES),
        ),
        Workload(
            "filter",
            f"JSON Lines -> filter ({FILTER_CONDITION}) -> CSV",
            "jsonl",
            "csv",
            "filter",
            f"condition = {json.dumps(FILTER_CONDITION)}",
            {
                "floor": (CONTENDERS / "filter_floor.py", ("orjson",)),
                "polars": (CONTENDERS / "filter_polars.py", ("polars",)),
                "duckdb": (CONTENDERS / "filter_duckdb.py", ("duckdb",)),
                "pandas": (CONTENDERS / "filter_pandas.py", ("pandas",)),
                "miller": (CONTENDERS / "filter_miller.sh", ("mlr",)),
            },
            ("engine", "engine-row"),
        ),
        Workload(
            "parquet",
            "CSV -> map (8 fields) -> Parquet",
            "csv",
            "parquet",
            "map",
            MAP_BODY,
            {
                "floor": (CONTENDERS / "parquet_floor.py", ("pyarrow",)),
                "polars": (CONTENDERS / "parquet_polars.py", ("polars",)),
                "duckdb": (CONTENDERS / "parquet_duckdb.py", ("duckdb",)),
                "pandas": (CONTENDERS / "parquet_pandas.py", ("pandas", "pyarrow")),
            },
            ("engine", "engine-row"),
        ),
    )
}


@dataclass
class Runs:
    """One contender's measurements, one entry per round."""

    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    rss: list[int] = field(default_factory=list)
    check: str = ""


def missing(needs: tuple[str, ...]) -> str | None:
    """What a contender lacks on this machine (None: it can run)."""
    for need in needs:
        if need == "mlr":
            if shutil.which("mlr") is None:
                return "mlr not found (apt-get install miller)"
        elif importlib.util.find_spec(need) is None:
            return f"python module {need} not installed (pip install -e '.[bench]')"
    return None


#: Starts one contender and reports its wall and CPU time and peak RSS. A small process of
#: its own: a child's ru_maxrss counts the pages of the process it was forked from, so a
#: contender forked straight from this one (which has read Parquet files) would inherit them.
LAUNCHER = """\
import os, sys, time
start = time.perf_counter()
pid = os.posix_spawn(sys.argv[1], sys.argv[1:], os.environ)
_, status, use = os.wait4(pid, 0)
wall = time.perf_counter() - start
print(os.waitstatus_to_exitcode(status), wall, use.ru_utime + use.ru_stime, use.ru_maxrss)
"""


def measure(argv: list[str], env: dict[str, str], log: Path) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds (user + system) and peak RSS (bytes) of one child process."""
    program = shutil.which(argv[0]) or argv[0]
    launcher = [sys.executable, "-I", "-S", "-c", LAUNCHER, program, *argv[1:]]
    with log.open("wb") as err:
        done = subprocess.run(launcher, env=env, stdout=subprocess.PIPE, stderr=err, check=False)
    code, wall, cpu, rss = done.stdout.split()[-4:]
    if int(code) != 0 or done.returncode != 0:
        tail = log.read_text(errors="replace")[-2000:]
        raise SystemExit(f"{' '.join(argv[:3])} failed ({int(code)}):\n{tail}")
    return float(wall), float(cpu), int(rss) * 1024


# -- output checks --------------------------------------------------------------------


def _jsonl_rows(path: Path) -> Iterator[Any]:
    import orjson

    with path.open("rb") as f:
        for line in f:
            yield orjson.loads(line)


def _csv_rows(path: Path) -> Iterator[list[str]]:
    with path.open(newline="", encoding="utf-8") as f:
        yield from csv.reader(f)


def _close(a: Any, b: Any) -> bool:
    """Equal, or numbers equal to 12 significant digits (Miller's rounding leaves a last-bit
    residue: 456.28000000000003 for the floor's 456.28)."""
    if isinstance(a, int | float) and isinstance(b, int | float):
        return math.isclose(a, b, rel_tol=1e-12)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    return bool(a == b)


def _same_rows(
    rows: Callable[[Path], Iterator[Any]], ours: Path, floor: Path
) -> tuple[str | None, int]:
    """The first row that differs (None: none), and how many rows differ in a last digit."""
    near = 0
    for number, (a, b) in enumerate(zip_longest(rows(ours), rows(floor)), 1):
        if a == b:
            continue
        if not _close(a, b):
            if isinstance(a, dict) and isinstance(b, dict):
                keys = [k for k in {**b, **a} if a.get(k, ...) != b.get(k, ...)]
                a, b = {k: a.get(k) for k in keys}, {k: b.get(k) for k in keys}
            elif isinstance(a, list) and isinstance(b, list):  # CSV: the cells that differ
                cells = [(i, x, y) for i, (x, y) in enumerate(zip_longest(a, b)) if x != y]
                a, b = {i: x for i, x, _ in cells}, {i: y for i, _, y in cells}
            return f"row {number}: {str(a)[:100]} where the floor has {str(b)[:100]}", near
        near += 1
    return None, near


def _same_tables(ours: Path, floor: Path) -> str | None:
    import pyarrow.parquet as pq

    mine, theirs = pq.read_table(ours), pq.read_table(floor)
    if mine.column_names != theirs.column_names:
        return f"columns {mine.column_names} where the floor has {theirs.column_names}"
    try:
        mine = mine.cast(theirs.schema)
    except Exception as exc:  # a type that cannot become the floor's is a difference
        return f"types {mine.schema.types} where the floor has {theirs.schema.types} ({exc})"
    return None if mine.equals(theirs) else "the values differ"


def compare(out: Path, floor: Path, kind: str) -> str:
    """How ``out`` matches the floor's output: 'same bytes', 'same values' or 'DIFFERENT: ...'."""
    if filecmp.cmp(out, floor, shallow=False):
        return "same bytes"
    near = 0
    if kind == "parquet":
        problem = _same_tables(out, floor)
    else:
        problem, near = _same_rows(_jsonl_rows if kind == "jsonl" else _csv_rows, out, floor)
    if problem is not None:
        return f"DIFFERENT: {problem}"
    return f"same values, {near:,} rows to 12 digits" if near else "same values"


# -- running ----------------------------------------------------------------------------


def prepare(rows: int, work: Path) -> dict[str, Path]:
    """The inputs: the inventory CSV, and its floor output as the JSON Lines input."""
    src = work / "inventory.csv"
    subprocess.run([sys.executable, SHARED / "gen_inventory.py", str(rows), src], check=True)
    jsonl = work / "inventory.jsonl"
    subprocess.run([sys.executable, SHARED / "floor.py", src, jsonl], check=True)
    return {"csv": src, "jsonl": jsonl}


def contenders(
    workload: Workload, inputs: dict[str, Path], work: Path, only: set[str] | None
) -> tuple[dict[str, tuple[list[str], dict[str, str]]], dict[str, str]]:
    """argv and extra environment of each contender that runs, and why the others do not."""
    src = inputs[workload.source]
    runs: dict[str, tuple[list[str], dict[str, str]]] = {}
    skipped: dict[str, str] = {}
    for name, (script, needs) in workload.tools.items():
        if only is not None and name not in only and name != "floor":
            continue
        why = missing(needs)
        if why is not None:
            skipped[name] = why
            continue
        runner = ["sh"] if script.suffix == ".sh" else [sys.executable]
        runs[name] = ([*runner, str(script), str(src), str(output(work, workload, name))], {})
    engine = str(Path(sys.executable).with_name("engine"))
    for name in workload.engines:
        if only is not None and name not in only:
            continue
        columnar, audit = ENGINES[name]
        if workload.output == "parquet" and importlib.util.find_spec("pyarrow") is None:
            skipped[name] = "pyarrow not installed (pip install -e '.[columnar]')"
            continue
        pipeline = work / f"{workload.name}-{name}.toml"
        pipeline.write_text(
            PIPELINE.format(
                workload=workload.name,
                audit=str(audit).lower(),
                src=src,
                transform=workload.transform,
                body=workload.body,
                out=output(work, workload, name),
            )
        )
        runs[name] = ([engine, "run", "-q", str(pipeline)], {"ENGINE_COLUMNAR": columnar})
    return runs, skipped


def output(work: Path, workload: Workload, contender: str) -> Path:
    return work / f"out-{workload.name}-{contender}.{workload.output}"


def run_workload(
    workload: Workload, inputs: dict[str, Path], work: Path, rounds: int, only: set[str] | None
) -> tuple[dict[str, Runs], dict[str, str]]:
    argvs, skipped = contenders(workload, inputs, work, only)
    env = {**os.environ, "ENGINE_HOME": str(work / f".engine-{workload.name}")}
    results = {name: Runs() for name in argvs}
    names = list(argvs)
    for round_ in range(rounds):
        turn = round_ % len(names)
        for name in names[turn:] + names[:turn]:
            argv, extra = argvs[name]
            output(work, workload, name).unlink(missing_ok=True)
            wall, cpu, rss = measure(argv, {**env, **extra}, work / "stderr.log")
            results[name].wall.append(wall)
            results[name].cpu.append(cpu)
            results[name].rss.append(rss)
    floor = output(work, workload, "floor")
    for name, runs in results.items():
        if name == "floor":
            runs.check = "(reference)"
        else:
            runs.check = compare(output(work, workload, name), floor, workload.output)
    return results, skipped


def summary(results: dict[str, Runs]) -> dict[str, dict[str, Any]]:
    medians = {
        name: (statistics.median(r.wall), statistics.median(r.cpu)) for name, r in results.items()
    }
    floor_wall, floor_cpu = medians["floor"]
    polars = medians.get("polars", (None, None))[0]
    table: dict[str, dict[str, Any]] = {}
    for name, runs in results.items():
        wall, cpu = medians[name]
        table[name] = {
            "wall_s": wall,
            "cpu_s": cpu,
            "peak_rss_mb": max(runs.rss) / 2**20,
            "wall_per_floor": wall / floor_wall,
            "wall_per_polars": wall / polars if polars else None,
            "cpu_per_floor": cpu / floor_cpu,
            "walls": runs.wall,
            "output": runs.check,
        }
    return table


def paired(results: dict[str, Runs], a: str, b: str) -> str | None:
    """The median over the rounds of each round's wall-time ratio a / b."""
    if a not in results or b not in results:
        return None
    ratios = sorted(x / y for x, y in zip(results[a].wall, results[b].wall, strict=True))
    return (
        f"{a} / {b}: median of {len(ratios)} paired rounds {statistics.median(ratios):.2f}x"
        f" (from {ratios[0]:.2f}x to {ratios[-1]:.2f}x)"
    )


def report(name: str, rows: int, rounds: int, table: dict[str, dict[str, Any]]) -> None:
    workload = WORKLOADS[name]
    print(f"\n{name}: {rows:,} rows, {workload.title}; median of {rounds} round(s)")
    print(
        f"{'contender':20} {'wall s':>8} {'cpu s':>8} {'peak RSS MB':>12} {'wall/floor':>11}"
        f" {'wall/polars':>12} {'cpu/floor':>10}  output"
    )
    for contender, r in table.items():
        polars = f"{r['wall_per_polars']:.2f}" if r["wall_per_polars"] is not None else "-"
        print(
            f"{contender:20} {r['wall_s']:8.2f} {r['cpu_s']:8.2f} {r['peak_rss_mb']:12.1f}"
            f" {r['wall_per_floor']:11.2f} {polars:>12} {r['cpu_per_floor']:10.2f}  {r['output']}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=None, help="default 1,000,000")
    parser.add_argument("--rounds", type=int, default=None, help="default 3")
    parser.add_argument("--only", default=None, help="contenders, comma-separated (+ floor)")
    parser.add_argument(
        "--workloads", default=",".join(WORKLOADS), help=f"of {', '.join(WORKLOADS)}"
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--quick", action="store_true", help="2,000 rows, one round (a test)")
    args = parser.parse_args()
    # the engine's bytecode, as `pip install` compiles it (an editable install under
    # PYTHONDONTWRITEBYTECODE would compile every module at every start)
    compileall.compile_dir(Path(__file__).resolve().parent.parent / "engine", quiet=1)
    rows = args.rows or (2_000 if args.quick else 1_000_000)
    rounds = args.rounds or (1 if args.quick else 3)
    only = set(args.only.split(",")) if args.only else None
    chosen = args.workloads.split(",")
    unknown = [w for w in chosen if w not in WORKLOADS]
    if unknown:
        parser.error(f"unknown workload {', '.join(unknown)}; choose from {', '.join(WORKLOADS)}")
    if not SHARED.is_dir():
        raise SystemExit(f"the shared contenders are not at {SHARED}")

    print(
        f"python {platform.python_version()}, {os.cpu_count()} cores, {platform.machine()};"
        f" each contender in its own process, contenders taking turns; load average"
        " {:.1f} {:.1f} {:.1f}".format(*os.getloadavg())
    )
    everything: dict[str, Any] = {"rows": rows, "rounds": rounds, "workloads": {}}
    differs = False
    with tempfile.TemporaryDirectory(prefix="engine-bench-") as tmp:
        work = Path(tmp)
        inputs = prepare(rows, work)
        for name in chosen:
            results, skipped = run_workload(WORKLOADS[name], inputs, work, rounds, only)
            table = summary(results)
            report(name, rows, rounds, table)
            print(
                "load average (1, 5, 15 min) after it: {:.1f} {:.1f} {:.1f}".format(
                    *os.getloadavg()
                )
            )
            for contender, why in skipped.items():
                print(f"skipped {contender}: {why}")
            pairs = [
                paired(results, "engine", "engine-noaudit"),
                paired(results, "engine-row", "engine-row-noaudit"),
                paired(results, "engine", "engine-row"),
            ]
            for line in filter(None, pairs):
                print(line)
            differs |= any(r["output"].startswith("DIFFERENT") for r in table.values())
            everything["workloads"][name] = {"contenders": table, "skipped": skipped}
    if args.json:
        args.json.write_text(json.dumps(everything, indent=2))
    if differs:
        print("\nsome output differs from the floor's")
        sys.exit(1)


if __name__ == "__main__":
    main()

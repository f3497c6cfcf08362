"""Scale-out throughput: `engine run --workers N` on the inventory workload.

    python bench/scale.py [--rows 1000000] [--rounds 3] [--workers 1,2,3] [--size SIZE]
                          [--csv FILE] [--no-audit] [--broker 1,2,3]

The 1M-row inventory CSV (bench/generate.py, or ``--csv`` a file of the same columns, such
as one from gen_inventory.py) is mapped to JSON Lines with the benchmark's 8 fields, auditing
on, by `engine run --workers N` for each N. The runs take turns, round after round, each
column first in turn, so a machine whose speed drifts slows each alike; each column is the
median of its rounds, and is printed as records/s and as its ratio to ``--workers 1`` (and
the median of each round's own ratio), beside the CPU time (user and system) of the run's
processes, the workers included. The output of every run is checked byte-identical to the
first.

``--broker 1,2,3`` adds columns that run the same pipeline through RabbitMQ
(``ENGINE_BROKER_URL``): N `engine worker` processes are started for the column, and
`engine run --distributed` is timed from planning to the run's end. Every column then writes
one file per partition (``{partition}`` in the sink's path, which a distributed run needs),
and the outputs are compared joined in partition order. The overhead of the broker is the
ratio of a ``broker N`` column to its ``workers N``.
"""

from __future__ import annotations

import argparse
import compileall
import hashlib
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from generate import FIELDS, generate  # noqa: E402

ENGINE = str(Path(sys.executable).with_name("engine"))

PIPELINE = """\
[pipeline]
name = "scale"
[audit]
enabled = {audit}
[sources.inv]
type = "file"
path = "{src}"
codec = "csv"
batch = {{ size = 2000 }}
{partition}[transforms.to_product]
type = "map"
inputs = ["inv"]
[transforms.to_product.fields]
{fields}
[sinks.out]
type = "file"
inputs = ["to_product"]
path = "{out}"
"""

#: name -> the command that runs the pipeline file given (the columns of the table)
Column = Callable[[Path], list[str]]


def local(workers: int) -> Column:
    return lambda pipeline: [ENGINE, "run", "-q", "--workers", str(workers), str(pipeline)]


def distributed(queue: str) -> Column:
    return lambda pipeline: [
        *(ENGINE, "run", "-q", "--distributed", "--queue", queue, str(pipeline)),
    ]


class Workers:
    """N `engine worker` processes on one queue, for the rounds of a broker column."""

    def __init__(self, count: int, queue: str, home: Path) -> None:
        self.queue = queue
        env = {"ENGINE_HOME": str(home), **_env()}
        self.procs = [
            subprocess.Popen(
                [ENGINE, "worker", "--queue", queue],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for _ in range(count)
        ]

    def stop(self) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            proc.wait(timeout=120)
        import pika  # the distributed extra's client: delete the bench's own queues

        connection = pika.BlockingConnection(pika.URLParameters(_env()["ENGINE_BROKER_URL"]))
        try:
            for name in (self.queue, f"{self.queue}.DQ", f"{self.queue}.XQ"):
                connection.channel().queue_delete(queue=name)
        finally:
            connection.close()


def timed(argv: list[str], home: Path) -> tuple[float, float]:
    """The wall time of one run, and the CPU time (user and system) of its processes:
    the run's own and those it waited for (its workers; not `engine worker` processes)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(
        argv,
        env={"ENGINE_HOME": str(home), **_env()},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        check=False,
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed: {done.stderr.decode()[-2000:]}")
    return wall, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime


def _env() -> dict[str, str]:
    import os

    return {"ENGINE_BROKER_URL": "amqp://guest:guest@127.0.0.1:5672/%2F", **os.environ}


def digest(path: Path) -> str:
    """SHA-256 of the output file, or of a folder's files joined in name order."""
    h = hashlib.sha256()
    for part in sorted(path.iterdir()) if path.is_dir() else [path]:
        with part.open("rb") as f:
            while block := f.read(1 << 20):
                h.update(block)
    return h.hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", default="1,2,3")
    parser.add_argument(
        "--size", default="", help="the file source's partition size (default: unset, the engine's)"
    )
    parser.add_argument("--csv", type=Path, help="use this CSV instead of generating one")
    parser.add_argument("--no-audit", action="store_true")
    parser.add_argument(
        "--broker", default="", help="also through RabbitMQ with these worker counts (1,2,3)"
    )
    args = parser.parse_args()
    # the engine's bytecode, as `pip install` compiles it (an editable install under
    # PYTHONDONTWRITEBYTECODE would compile every module at every start)
    compileall.compile_dir(Path(__file__).resolve().parent.parent / "engine", quiet=1)
    brokers = [int(n) for n in args.broker.split(",") if n]
    with tempfile.TemporaryDirectory(prefix="engine-scale-") as tmp:
        root = Path(tmp)
        src = args.csv.resolve() if args.csv else root / "inventory.csv"
        if not args.csv:
            generate(args.rows, src)
        rows = args.rows
        if args.csv:
            with src.open("rb") as f:
                rows = sum(1 for _ in f) - 1  # close enough for a rate: names hold no breaks
        out = root / "out" if brokers else root / "out.jsonl"
        pipeline = root / "scale.toml"
        pipeline.write_text(
            PIPELINE.format(
                audit=str(not args.no_audit).lower(),
                src=src,
                partition=f'partition = {{ size = "{args.size}" }}\n' if args.size else "",
                fields="\n".join(f"{k} = {json.dumps(v)}" for k, v in FIELDS.items()),
                out=out / "{partition}.jsonl" if brokers else out,
            )
        )
        columns: dict[str, Column] = {
            f"workers {n}": local(int(n)) for n in args.workers.split(",")
        }
        pools: dict[str, Workers] = {}
        for n in brokers:
            name, queue = f"broker {n}", f"engine-bench-{time.time_ns()}-{n}"
            columns[name] = distributed(queue)
            # a broker column keeps one workspace: its workers share the planner's state
            pools[name] = Workers(n, queue, root / f"home-{name.replace(' ', '-')}")
        walls: dict[str, list[float]] = {name: [] for name in columns}
        cpus: dict[str, list[float]] = {name: [] for name in columns}
        try:
            _rounds(args, columns, pools, walls, cpus, root, pipeline, out)
        finally:
            for pool in pools.values():
                pool.stop()
        base = statistics.median(walls[next(iter(columns))])
        print(
            f"{rows:,} rows, audit {'off' if args.no_audit else 'on'}, "
            f"partition size {args.size or 'unset'}, median of {args.rounds} rounds"
        )
        print(f"{'column':<12} {'wall s':>8} {'cpu s':>7} {'records/s':>12} {'vs workers 1':>13}")
        for name, times in walls.items():
            wall = statistics.median(times)
            # a broker column's workers are not the run's processes: their CPU is not seen
            cpu = "-" if name in pools else f"{statistics.median(cpus[name]):.2f}"
            print(f"{name:<12} {wall:>8.2f} {cpu:>7} {rows / wall:>12,.0f} {base / wall:>12.2f}x")
        for n in brokers:
            if f"workers {n}" in walls:
                local_wall = statistics.median(walls[f"workers {n}"])
                broker_wall = statistics.median(walls[f"broker {n}"])
                print(f"broker {n} / workers {n}: {broker_wall / local_wall:.2f}x the wall time")
        # each round's own ratio: a drift of the machine's speed between rounds cancels out
        first = next(iter(columns))
        for name in list(columns)[1:]:
            paired = sorted(b / w for b, w in zip(walls[first], walls[name], strict=True))
            print(
                f"{name} vs {first}: median of {len(paired)} paired rounds "
                f"{statistics.median(paired):.2f}x (from {paired[0]:.2f}x to {paired[-1]:.2f}x)"
            )


def _rounds(
    args: argparse.Namespace,
    columns: dict[str, Column],
    pools: dict[str, Workers],
    walls: dict[str, list[float]],
    cpus: dict[str, list[float]],
    root: Path,
    pipeline: Path,
    out: Path,
) -> None:
    expected: str | None = None
    names = list(columns)
    for round_no in range(1, args.rounds + 1):
        turn = (round_no - 1) % len(names)  # each column goes first in turn
        for name in names[turn:] + names[:turn]:
            command = columns[name]
            home = root / f"home-{name.replace(' ', '-')}"
            if name not in pools:
                home = root / f"home-{name.replace(' ', '-')}-{round_no}"
            if out.is_dir():
                for old in out.iterdir():
                    old.unlink()
            wall, cpu = timed(command(pipeline), home)
            walls[name].append(wall)
            cpus[name].append(cpu)
            found = digest(out)
            expected = expected or found
            if found != expected:
                raise SystemExit(f"{name}: output differs from the first run's")
            print(f"round {round_no} {name}: {wall:.2f}s, cpu {cpu:.2f}s", file=sys.stderr)


if __name__ == "__main__":
    main()

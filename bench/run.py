"""End-to-end throughput: `engine run` on the inventory workload against what users write instead.

    python bench/run.py [--rows 1000000] [--repeat 1] [--no-pandas] [--only NAME,...]

Every contender runs in its own subprocess on the same generated CSV (so peak RSS is its own):
  engine        `engine run` of CSV -> map -> JSONL, auditing on (SQLite store, signed events)
  engine-noaudit the same with auditing off
  dictreader    (a) csv.DictReader + jmespath.py + json, hand-written
  floor         (b) csv.reader + the same fields as Python expressions + orjson
  pandas        (c) pandas.read_csv + vectorised columns + to_json(lines=True)
Prints records/s, wall time, peak RSS and each ratio of wall time to the floor, and the
audit overhead (engine against engine-noaudit). With ``--repeat``, the contenders take
turns, so a machine whose speed drifts slows every contender alike; the best run counts,
and the audit overhead is also given as the median over the rounds of each round's ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from generate import FIELDS, generate  # noqa: E402

PIPELINE = """\
[pipeline]
name = "bench"
[audit]
enabled = {audit}
[sources.inv]
type = "file"
path = "{src}"
codec = "csv"
batch = {{ size = 2000 }}
[transforms.to_product]
type = "map"
inputs = ["inv"]
[transforms.to_product.fields]
{fields}
[sinks.out]
type = "file"
inputs = ["to_product"]
path = "{out}"
"""

DICTREADER = r"""
import csv, json, sys, jmespath
from jmespath import functions

class F(functions.Functions):
    @functions.signature({"types": ["number"]}, {"types": ["number"]})
    def _func_subtract(self, a, b): return a - b
    @functions.signature({"types": ["number"]}, {"types": ["number"]})
    def _func_multiply(self, a, b): return a * b
    @functions.signature({"types": ["number"]}, {"types": ["number"]})
    def _func_round(self, a, n): return round(a, int(n))

opts = jmespath.Options(custom_functions=F())
fields = {k: jmespath.compile(v) for k, v in json.loads(sys.argv[3]).items()}
with open(sys.argv[1], newline="", encoding="utf-8") as f, open(sys.argv[2], "w") as out:
    for row in csv.DictReader(f):
        out.write(json.dumps({k: e.search(row, opts) for k, e in fields.items()}) + "\n")
"""

FLOOR = r"""
import csv, sys, orjson

def num(s):
    try:
        return int(s)
    except ValueError:
        try:
            return float(s)
        except ValueError:
            return None

with open(sys.argv[1], newline="", encoding="utf-8") as f, open(sys.argv[2], "wb") as out:
    rows = csv.reader(f)
    next(rows)
    dumps = orjson.dumps
    buf = []
    for sku, name, q, pq, price, cat, wh, _ in rows:
        qn = num(q)
        pn = num(price)
        buf.append(dumps({
            "product_id": "PROD_" + sku, "name": name, "quantity": qn,
            "delta": qn - num(pq), "price": pn, "product_type": cat or "General",
            "warehouse": wh, "cost": round(pn * 1.2, 2),
        }))
        if len(buf) >= 2000:
            out.write(b"\n".join(buf) + b"\n")
            buf.clear()
    if buf:
        out.write(b"\n".join(buf) + b"\n")
"""

PANDAS = r"""
import sys, pandas as pd
out = open(sys.argv[2], "w")
for df in pd.read_csv(sys.argv[1], dtype={"sku": str, "category": str}, keep_default_na=False,
                      chunksize=100_000):
    res = pd.DataFrame({
        "product_id": "PROD_" + df["sku"],
        "name": df["name"],
        "quantity": df["quantity"],
        "delta": df["quantity"] - df["previous_quantity"],
        "price": df["price"],
        "product_type": df["category"].where(df["category"] != "", "General"),
        "warehouse": df["warehouse"],
        "cost": (df["price"] * 1.2).round(2),
    })
    res.to_json(out, orient="records", lines=True)
out.close()
"""


def measure(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, int]:
    """Wall seconds and peak RSS (bytes) of one child process."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    stderr = proc.stderr.read().decode() if proc.stderr else ""
    if status != 0:
        raise SystemExit(f"{argv[:3]} failed: {stderr[-2000:]}")
    return wall, usage.ru_maxrss * 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--no-pandas", action="store_true")
    parser.add_argument(
        "--only", default=None, help="comma-separated contenders (the floor always runs)"
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="engine-bench-") as tmp:
        work = Path(tmp)
        src = work / "inventory.csv"
        generate(args.rows, src)
        fields = "\n".join(f"{k} = {json.dumps(v)}" for k, v in FIELDS.items())
        engine_bin = str(Path(sys.executable).with_name("engine"))
        env = {**os.environ, "ENGINE_HOME": str(work / ".engine")}
        for audit in ("true", "false"):
            (work / f"p-{audit}.toml").write_text(
                PIPELINE.format(
                    audit=audit, src=src, out=work / f"out-engine-{audit}.jsonl", fields=fields
                )
            )
        contenders: dict[str, list[str]] = {
            "floor": [sys.executable, "-c", FLOOR, str(src), str(work / "out-floor.jsonl")],
            "engine": [engine_bin, "run", "-q", str(work / "p-true.toml")],
            "engine-noaudit": [engine_bin, "run", "-q", str(work / "p-false.toml")],
            "dictreader": [
                sys.executable,
                "-c",
                DICTREADER,
                str(src),
                str(work / "out-dict.jsonl"),
                json.dumps(FIELDS),
            ],
        }
        if not args.no_pandas:
            contenders["pandas"] = [
                sys.executable,
                "-c",
                PANDAS,
                str(src),
                str(work / "out-pandas.jsonl"),
            ]
        if args.only:
            keep = {"floor", *args.only.split(",")}
            contenders = {k: v for k, v in contenders.items() if k in keep}
        best: dict[str, tuple[float, int]] = {}
        walls: dict[str, list[float]] = {}
        for _ in range(args.repeat):
            for name, argv in contenders.items():
                wall, rss = measure(argv, env)
                walls.setdefault(name, []).append(wall)
                if name not in best or wall < best[name][0]:
                    best[name] = (wall, rss)
        results: dict[str, dict[str, float]] = {
            name: {
                "wall_s": wall,
                "rss_mb": rss / 2**20,
                "records_per_s": args.rows / wall,
            }
            for name, (wall, rss) in best.items()
        }
        engine_out = args.rows
        if "engine" in contenders:
            engine_out = (work / "out-engine-true.jsonl").read_bytes().count(b"\n")
        floor_out = (work / "out-floor.jsonl").read_bytes().count(b"\n")
        if engine_out != args.rows or floor_out != args.rows:
            raise SystemExit(f"row counts differ: engine {engine_out}, floor {floor_out}")

    floor = results["floor"]["wall_s"]
    print(
        f"{args.rows:,} rows, CSV -> map (8 fields) -> JSONL; python {sys.version.split()[0]}, "
        f"{os.cpu_count()} cores"
    )
    print(f"{'contender':16} {'records/s':>12} {'wall s':>8} {'peak RSS MB':>12} {'x floor':>8}")
    for name, r in results.items():
        print(
            f"{name:16} {r['records_per_s']:12,.0f} {r['wall_s']:8.2f} {r['rss_mb']:12.1f} "
            f"{r['wall_s'] / floor:8.2f}"
        )
    if "engine" in results and "engine-noaudit" in results:
        on, off = results["engine"]["wall_s"], results["engine-noaudit"]["wall_s"]
        print(
            f"audit overhead, best against best: {on / off - 1:+.1%} "
            f"({on:.2f} s on, {off:.2f} s off)"
        )
        # Each run with auditing against the run without it that came right after: on a
        # machine whose speed drifts, the pair sees the same speed more often than two bests.
        pairs = zip(walls["engine"], walls["engine-noaudit"], strict=True)
        paired = sorted(on_run / off_run for on_run, off_run in pairs)
        print(
            f"audit overhead, median of {len(paired)} paired runs: "
            f"{statistics.median(paired) - 1:+.1%} (pairs from {paired[0] - 1:+.1%} "
            f"to {paired[-1] - 1:+.1%})"
        )
    if args.json:
        args.json.write_text(json.dumps({"rows": args.rows, "results": results}, indent=2))


if __name__ == "__main__":
    main()

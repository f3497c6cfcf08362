"""Mapping micro-benchmark: jmespath.py per record vs the compiled batch mapper vs hand-written.

Run: ``python bench/mapping_bench.py [--records N] [--repeat R]``. Maps the inventory workload's
fields over N generated CSV-like records (all values strings, some empty categories) and prints
records/s for each way and the ratios. Targets (issue 7): compiled >= 15x jmespath.py and within
2x of the hand-written dict code.
"""

from __future__ import annotations

import argparse
import platform
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jmespath

from engine.mapping import FieldRule, compile_map

sys.path.insert(0, str(Path(__file__).resolve().parent))
from generate import FIELDS

CATEGORIES = ["Tools", "Garden", "Kitchen", "Toys", ""]


def generate(count: int, seed: int = 7) -> list[dict[str, str]]:
    """Deterministic inventory rows, as a CSV reader would give them (strings only)."""
    rng = random.Random(seed)
    return [
        {
            "sku": f"SKU{i:07d}",
            "name": f'Widget "{i % 977}", size {rng.randint(1, 9)}',
            "quantity": str(rng.randint(0, 500)),
            "previous_quantity": str(rng.randint(0, 500)),
            "price": f"{rng.uniform(1, 200):.2f}",
            "category": rng.choice(CATEGORIES),
            "warehouse": f"WH-{rng.randint(1, 12)}",
            "updated_at": "2024-03-01T12:30:00Z",
        }
        for i in range(count)
    ]


def with_jmespath(batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What users write today: jmespath.py, one search per field per record."""
    from engine.mapping.library import EngineFunctions

    options = jmespath.Options(custom_functions=EngineFunctions())
    compiled = [(name, jmespath.compile(expr)) for name, expr in FIELDS.items()]
    return [{name: expr.search(row, options) for name, expr in compiled} for row in batch]


def _number(text: str) -> float:
    try:
        return int(text)
    except ValueError:
        return float(text)


def by_hand(batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The floor: the same fields written as plain Python dict code."""
    out = []
    append = out.append
    for row in batch:
        quantity = _number(row["quantity"])
        price = _number(row["price"])
        append(
            {
                "product_id": "PROD_" + row["sku"],
                "name": row["name"],
                "quantity": quantity,
                "delta": quantity - _number(row["previous_quantity"]),
                "price": price,
                "product_type": row["category"] or "General",
                "warehouse": row["warehouse"],
                "cost": round(price * 1.2, 2),
            }
        )
    return out


def by_hand_typed(batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The hardest floor: hand-written code that knows quantities are ints and prices floats."""
    return [
        {
            "product_id": "PROD_" + row["sku"],
            "name": row["name"],
            "quantity": int(row["quantity"]),
            "delta": int(row["quantity"]) - int(row["previous_quantity"]),
            "price": float(row["price"]),
            "product_type": row["category"] or "General",
            "warehouse": row["warehouse"],
            "cost": round(float(row["price"]) * 1.2, 2),
        }
        for row in batch
    ]


def with_compiled(batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
    mapper = compile_map([FieldRule(name, expr) for name, expr in FIELDS.items()])
    out: list[dict[str, Any]] = []
    for start in range(0, len(batch), 1000):  # the engine's batches
        mapped, rejected = mapper(batch[start : start + 1000])
        assert not rejected
        out.extend(mapped)
    return out


def measure(
    run: Callable[[list[dict[str, Any]]], Any], batch: list[dict[str, Any]], repeat: int
) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        run(batch)
        best = min(best, time.perf_counter() - start)
    return len(batch) / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3, help="best of R runs per way")
    args = parser.parse_args()

    batch = generate(args.records)
    expected = by_hand(batch)
    assert with_compiled(batch) == expected, "compiled mapping differs from the hand-written one"
    assert with_jmespath(batch[:1000]) == expected[:1000], "jmespath.py differs"
    assert by_hand_typed(batch) == expected, "typed hand-written code differs"

    print(f"mapping micro-benchmark: {args.records:,} records, best of {args.repeat}")
    machine = platform.processor() or sys.platform
    print(f"python {platform.python_version()} on {platform.machine()} ({machine})")
    rates = {
        "jmespath.py per record": measure(with_jmespath, batch, args.repeat),
        "compiled batch mapper": measure(with_compiled, batch, args.repeat),
        "hand-written Python": measure(by_hand, batch, args.repeat),
        "hand-written, typed": measure(by_hand_typed, batch, args.repeat),
    }
    for label, rate in rates.items():
        print(f"  {label:<24} {rate:>12,.0f} records/s")
    compiled = rates["compiled batch mapper"]
    ratios = [
        ("compiled / jmespath.py", compiled / rates["jmespath.py per record"], ">= 15x"),
        ("hand-written / compiled", rates["hand-written Python"] / compiled, "<= 2x"),
        ("hand-written typed / compiled", rates["hand-written, typed"] / compiled, "<= 2x"),
    ]
    for label, ratio, target in ratios:
        print(f"{label + ':':<31} {ratio:6.2f}x  (target {target})")


if __name__ == "__main__":
    main()

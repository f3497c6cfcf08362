"""Deterministic inventory workload: ``python bench/generate.py ROWS OUT.csv``.

Columns: sku,name,quantity,previous_quantity,price,category,warehouse,updated_at. Names hold
quotes and commas; about one category in eight is empty. The same seed gives the same bytes.
"""

from __future__ import annotations

import csv
import random
import sys
from pathlib import Path

#: The benchmark's mapping: the fields users write for this workload (issue 7).
FIELDS = {
    "product_id": "join('', ['PROD_', sku])",
    "name": "name",
    "quantity": "to_number(quantity)",
    "delta": "subtract(to_number(quantity), to_number(previous_quantity))",
    "price": "to_number(price)",
    "product_type": "category || 'General'",
    "warehouse": "warehouse",
    "cost": "round(multiply(to_number(price), `1.2`), `2`)",
}

HEADER = [
    "sku",
    "name",
    "quantity",
    "previous_quantity",
    "price",
    "category",
    "warehouse",
    "updated_at",
]
NAMES = [
    'Bolt, "hex" M8',
    "Garden hose 20m",
    'Chef knife 8"',
    "Kettle, 1.7L",
    "Toy robot",
    "Desk lamp",
    'Cable "USB-C", 2m',
    "Notebook A5",
]
CATEGORIES = ["Hardware", "Garden", "Kitchen", "Toys", "Office", "Electronics", "Lighting", ""]
WAREHOUSES = ["north", "south", "east", "west"]


def generate(rows: int, out: Path, seed: int = 42) -> None:
    rng = random.Random(seed)
    with out.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(HEADER)
        for i in range(rows):
            writer.writerow(
                [
                    f"SKU{i:08d}",
                    f"{rng.choice(NAMES)} #{i}",
                    rng.randint(0, 5000),
                    rng.randint(0, 5000),
                    f"{rng.uniform(0.5, 999.0):.2f}",
                    rng.choice(CATEGORIES),
                    rng.choice(WAREHOUSES),
                    f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T"
                    f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:00Z",
                ]
            )


if __name__ == "__main__":
    generate(int(sys.argv[1]), Path(sys.argv[2]))

"""The interpreter fallback behaves like the generated batch functions it stands in for."""

from __future__ import annotations

from typing import Any

import pytest

from engine.mapping.compiler import batch, fallback
from engine.mapping.expression import parse

BATCH: list[dict[str, Any]] = [
    {"sku": "A", "q": "3", "cat": "Tools"},
    {"sku": "B", "q": "x"},
    {"sku": 5, "q": "1"},
    {"sku": "C", "q": "0", "cat": ""},
]
FIELDS = [("id", "join('-', ['P', sku])"), ("q", "to_number(q)"), ("cat", "cat")]
SPECS = [("id", False, None), ("q", True, None), ("cat", False, lambda: "General")]


def _exprs(pairs: list[tuple[str, str]]) -> list[tuple[str, dict[str, Any]]]:
    return [(source, parse(source)) for _, source in pairs]


def test_fields_map_agrees() -> None:
    generated = batch.generate_map(SPECS, _exprs(FIELDS))(BATCH)
    interpreted = fallback.interpreted_map(SPECS, _exprs(FIELDS))(BATCH)
    assert generated == interpreted
    assert len(generated[0]) == 2
    assert len(generated[1]) == 2


@pytest.mark.parametrize("source", ["{id: sku, n: to_number(q)}", "sku", "abs(sku)"])
def test_whole_record_map_agrees(source: str) -> None:
    exprs = [(source, parse(source))]
    assert batch.generate_map(None, exprs)(BATCH) == fallback.interpreted_map(None, exprs)(BATCH)


@pytest.mark.parametrize("source", ["to_number(q) > `1`", "cat", "length(sku) == `1`"])
def test_filter_and_test_agree(source: str) -> None:
    ast = parse(source)
    assert batch.generate_filter(source, ast)(BATCH) == fallback.interpreted_filter(source, ast)(
        BATCH
    )
    record = BATCH[0]
    assert batch.generate_test(ast, source)(record) is fallback.interpreted_test(ast)(record)

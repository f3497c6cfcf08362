"""Decimals (CSV `decimal` columns, SQL NUMERIC) keep their exact value through every mapping
function, in generated code and in the interpreter alike, and dry-run shows what sinks write."""

from __future__ import annotations

import json
import os
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from engine.cli.main import cli
from engine.mapping import compile_expression
from engine.mapping.compiler import batch, fallback
from engine.mapping.expression import interpret, parse

RECORD: dict[str, Any] = {
    "price": Decimal("1.15"),
    "rate": 0.1,
    "qty": 3,
    "prices": [Decimal("1.10"), Decimal("2.205"), 3],
}

CASES = [
    ("to_number(price)", Decimal("1.15")),
    ("multiply(price, qty)", Decimal("3.45")),
    ("multiply(price, `1.1`)", Decimal("1.265")),
    ("add(price, rate)", Decimal("1.25")),
    ("add(rate, price)", Decimal("1.25")),
    ("subtract(price, `0.15`)", Decimal("1.00")),
    ("divide(price, `2`)", Decimal("0.575")),
    ("divide(price, rate)", Decimal("11.5")),
    ("round(price, `1`)", Decimal("1.2")),
    ("round(multiply(price, `3`), `1`)", Decimal("3.4")),  # halves to even, exactly
    ("ceil(price)", 2),
    ("floor(price)", 1),
    ("abs(multiply(price, `-1`))", Decimal("1.15")),
    ("sum(prices)", Decimal("6.305")),
    ("max(prices)", 3),
    ("min(prices)", Decimal("1.10")),
    ("sort(prices)[0]", Decimal("1.10")),
    ("to_string(price)", "1.15"),
    ("type(price)", "number"),
    ("price > `1.1`", True),
    ("price < rate", False),
    ("not_null(missing, price)", Decimal("1.15")),
]


@pytest.mark.parametrize(("source", "expected"), CASES, ids=[c[0] for c in CASES])
def test_decimals_stay_exact_in_both_paths(source: str, expected: Any) -> None:
    expression = compile_expression(source)
    assert expression.compiled
    generated = expression.search(RECORD)
    interpreted = interpret(parse(source), RECORD)
    assert generated == interpreted == expected
    assert type(generated) is type(interpreted) is type(expected)


def test_a_map_batch_agrees_on_decimals() -> None:
    fields = [("t", "multiply(price, `1.1`)"), ("n", "to_number(price)")]
    specs = [("t", False, None), ("n", True, None)]
    exprs = [(src, parse(src)) for _, src in fields]
    generated, rejected = batch.generate_map(specs, exprs)([RECORD])
    assert not rejected
    assert generated == fallback.interpreted_map(specs, exprs)([RECORD])[0]
    assert generated == [{"t": Decimal("1.265"), "n": Decimal("1.15")}]


def test_division_by_zero_is_still_refused() -> None:
    with pytest.raises(Exception, match="division by zero"):
        compile_expression("divide(price, `0`)").search(RECORD)


PIPELINE = """\
[pipeline]
name = "decimals"
[sources.src]
type = "file"
path = "in.csv"
codec = {{ type = "csv", types = {{ price = "decimal" }} }}
[transforms.m]
type = "map"
inputs = ["src"]
[transforms.m.fields]
sku = "sku"
n = "to_number(price)"
total = "multiply(price, `3`)"
plus = "add(price, `0.1`)"
r = "round(price, `1`)"
c = "ceil(price)"
[sinks.out]
type = "file"
inputs = ["m"]
path = "out.{ext}"
"""


@pytest.mark.parametrize("ext", ["jsonl", "json"])
def test_dry_run_json_shows_what_the_sink_writes(tmp_path: Path, ext: str) -> None:
    (tmp_path / "in.csv").write_text("sku,price\nA,1.15\nB,2.675\n")
    path = tmp_path / "p.toml"
    path.write_text(PIPELINE.format(ext=ext))
    result = CliRunner().invoke(cli, ["dry-run", "--format", "json", str(path)])
    assert result.exit_code == 0, result.stderr
    shown = json.loads(result.stdout, parse_float=Decimal)["sinks"]["out"]
    assert shown[0] == {
        "sku": "A",
        "n": Decimal("1.15"),
        "total": Decimal("3.45"),
        "plus": Decimal("1.25"),
        "r": Decimal("1.2"),
        "c": 2,
    }
    result = CliRunner().invoke(cli, ["run", "--no-audit", str(path)])
    assert result.exit_code == 0, result.stderr
    text = (tmp_path / f"out.{ext}").read_text()
    if ext == "jsonl":
        written = [json.loads(line, parse_float=Decimal) for line in text.splitlines()]
    else:
        written = json.loads(text, parse_float=Decimal)
    assert written == shown


def _postgres() -> str:
    url = os.environ.get("ENGINE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
    try:
        import psycopg

        psycopg.connect(
            "host=127.0.0.1 port=5432 user=postgres dbname=test", connect_timeout=3
        ).close()
    except Exception:
        if os.environ.get("ENGINE_REQUIRE_SERVICES") == "1":
            pytest.fail("PostgreSQL at 127.0.0.1:5432 (db test) is required but unreachable")
        pytest.skip("PostgreSQL at 127.0.0.1:5432 (user postgres, db test) is not reachable")
    return url


def test_sql_numeric_values_arrive_and_stay_decimal(tmp_path: Path) -> None:
    url = _postgres()
    path = tmp_path / "p.toml"
    path.write_text(
        f"""\
[pipeline]
name = "numeric"
[sources.db]
type = "sql"
url = "{url}"
query = "SELECT 'A' AS sku, CAST(1.15 AS NUMERIC(10, 2)) AS price"
[transforms.m]
type = "map"
inputs = ["db"]
[transforms.m.fields]
sku = "sku"
total = "multiply(price, `3`)"
vat = "round(multiply(price, `0.2`), `2`)"
[sinks.out]
type = "file"
inputs = ["m"]
path = "out.jsonl"
"""
    )
    result = CliRunner().invoke(cli, ["run", "--no-audit", str(path)])
    assert result.exit_code == 0, result.stderr
    line = (tmp_path / "out.jsonl").read_text()
    assert json.loads(line, parse_float=Decimal) == {
        "sku": "A",
        "total": Decimal("3.45"),
        "vat": Decimal("0.23"),
    }

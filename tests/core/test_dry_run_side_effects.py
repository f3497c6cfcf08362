"""`engine dry-run` names its mistakes in the user's words and creates nothing on disk."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from tests.support.cli import invoke

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def examples(tmp_path: Path) -> Path:
    folder = tmp_path / "examples"
    shutil.copytree(ROOT / "examples", folder, ignore=shutil.ignore_patterns("out", ".engine"))
    return folder


def tree(folder: Path) -> set[Path]:
    return {p.relative_to(folder) for p in folder.rglob("*")}


@pytest.mark.parametrize(
    ("item", "said"),
    [
        ("nosuch=sample.csv", "'nosuch' is an unknown source; sources: warehouse"),
        ("in_stock=sample.csv", "'in_stock' is not a source; sources: warehouse"),
    ],
)
def test_dry_run_input_names_an_unknown_source(examples: Path, item: str, said: str) -> None:
    code, _, err = invoke("dry-run", "--input", item, str(examples / "quickstart.toml"))
    assert code == 2
    assert said in err and "no such file" not in err


def test_dry_run_input_to_a_named_source_still_works(examples: Path) -> None:
    sample = examples / "data" / "inventory.csv"
    code, out, err = invoke(
        "dry-run",
        "--format",
        "json",
        "--input",
        f"warehouse={sample}",
        str(examples / "quickstart.toml"),
    )
    assert code == 0, err
    assert json.loads(out)["sinks"]["products"]


def test_sql_to_xml_example_dry_runs_from_its_shipped_database(examples: Path) -> None:
    before = tree(examples)
    code, out, err = invoke("dry-run", "--format", "json", str(examples / "sql_to_xml.toml"))
    assert code == 0, err
    ids = [r["id"] for r in json.loads(out)["sinks"]["export"]]
    assert ids == [1, 3, 4]  # the cancelled order is skipped
    assert tree(examples) == before


def test_a_dry_run_never_creates_a_missing_sqlite_database(examples: Path) -> None:
    (examples / "data" / "erp.db").unlink()
    before = tree(examples)
    code, _, err = invoke("dry-run", str(examples / "sql_to_xml.toml"))
    assert code == 1
    assert f"SQLite database {examples / 'data' / 'erp.db'} does not exist" in err
    code, _, err = invoke("validate", str(examples / "sql_to_xml.toml"))
    assert code == 0 and "warning[W012]" in err
    assert tree(examples) == before


def test_the_shipped_database_is_built_from_its_sql() -> None:
    data = ROOT / "examples" / "data"
    built = sqlite3.connect(":memory:")
    built.executescript((data / "erp.sql").read_text())
    shipped = sqlite3.connect(f"file:{data / 'erp.db'}?mode=ro", uri=True)
    try:
        query = "SELECT id, customer, total, status FROM orders ORDER BY id"
        assert shipped.execute(query).fetchall() == built.execute(query).fetchall()
    finally:
        shipped.close()
        built.close()

"""CLI conventions: every option has help, results print as `--format text|json` (`human` still
accepted under `audit`), `graph` has JSON, tables fit 80 columns or fold, and the lazily
loaded commands are listed with their own help."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from engine.cli.lazy import LazyGroup
from engine.cli.main import cli
from tests.support.cli import invoke

ROOT = Path(__file__).resolve().parents[2]

#: commands whose output is itself a file format, not a report (so no --format)
NO_FORMAT = {
    "engine audit export",  # JSON Lines
    "engine audit prove",  # a proof document
    "engine audit prove-consistency",
    "engine docs",  # writes files
    "engine schema",
    "engine serve",  # long-running
    "engine worker",
}


def _commands() -> Iterator[tuple[str, click.Command]]:
    def walk(
        command: click.Command, path: str, parent: click.Context | None
    ) -> Iterator[tuple[str, click.Command]]:
        ctx = click.Context(command, info_name=path.rsplit(" ", 1)[-1], parent=parent)
        yield path, command
        if isinstance(command, click.Group):
            for name in command.list_commands(ctx):
                sub = command.get_command(ctx, name)
                assert sub is not None, f"{path} {name} does not load"
                yield from walk(sub, f"{path} {name}", ctx)

    yield from walk(cli, "engine", None)


def test_every_option_has_help() -> None:
    missing = [
        f"{path} {'/'.join(param.opts)}"
        for path, command in _commands()
        for param in command.params
        if isinstance(param, click.Option) and not param.hidden and not param.help
    ]
    assert missing == []


def test_every_command_that_prints_results_takes_format_text_or_json() -> None:
    wrong = []
    for path, command in _commands():
        if isinstance(command, click.Group) or path in NO_FORMAT:
            continue
        formats = [p for p in command.params if p.name == "fmt"]
        choices = list(getattr(formats[0].type, "choices", ())) if formats else []
        expected_first = "mermaid" if path == "engine graph" else "text"
        if "json" not in choices or choices[0] != expected_first:
            wrong.append(f"{path}: {choices}")
    assert wrong == []


def test_lazy_commands_are_listed_with_their_own_help() -> None:
    assert isinstance(cli, LazyGroup)
    for name, entry in cli.lazy.items():
        command = entry.load()
        full = " ".join((command.help or "").split())
        assert full.startswith(entry.short_help.rstrip(".")), name
    code, out, _ = invoke("--help")
    assert code == 0
    assert all(name in out for name in cli.lazy)


def test_graph_prints_nodes_and_edges_as_json() -> None:
    code, out, _ = invoke("graph", "--format", "json", str(ROOT / "examples" / "quickstart.toml"))
    assert code == 0
    graph = json.loads(out)
    assert [n["id"] for n in graph["nodes"]] == ["warehouse", "to_product", "in_stock", "products"]
    assert graph["nodes"][0] == {
        "id": "warehouse",
        "role": "source",
        "type": "file",
        "resource": "data/inventory.csv",
    }
    assert {"from": "to_product", "to": "in_stock", "output": None} in graph["edges"]
    assert len(graph["edges"]) == 3


@pytest.fixture(scope="module")
def trail(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workspace holding the quickstart's audit trail."""
    tmp = tmp_path_factory.mktemp("trail")
    shutil.copytree(
        ROOT / "examples", tmp / "examples", ignore=shutil.ignore_patterns(".engine", "out")
    )
    code, _, err = invoke("run", "-q", str(tmp / "examples" / "quickstart.toml"))
    assert code == 0, err
    return tmp / "examples" / ".engine"


def _query(trail: Path, columns: int, *args: str) -> tuple[int, str]:
    result = CliRunner(env={"COLUMNS": str(columns)}).invoke(
        cli, ["audit", "query", "--workspace", str(trail), "--limit", "5", *args]
    )
    return result.exit_code, result.stdout


def test_audit_query_is_readable_at_80_columns(trail: Path) -> None:
    code, out = _query(trail, 80)
    assert code == 0
    lines = out.splitlines()
    assert lines and all(len(line) <= 80 for line in lines)
    assert "…" not in out  # nothing cut
    # every event shows its whole id, time and action
    assert sum("event id: " in line for line in lines) == 5
    assert any("run_finished" in line for line in lines)


def test_audit_query_is_a_table_when_it_fits(trail: Path) -> None:
    code, out = _query(trail, 200)
    assert code == 0
    header = out.splitlines()[0].split()
    assert header[:4] == ["time", "(UTC)", "level", "category"]
    assert "…" not in out


def test_human_is_still_accepted_as_text(trail: Path) -> None:
    human = _query(trail, 200, "--format", "human")[1].splitlines()[0].split()
    assert human == _query(trail, 200, "--format", "text")[1].splitlines()[0].split()
    code, out = _query(trail, 200, "--format", "json")
    assert code == 0 and len(json.loads(out)) == 5
    # not listed
    assert "human" not in CliRunner().invoke(cli, ["audit", "query", "--help"]).stdout


def test_components_fit_80_columns_by_wrapping_summaries() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "engine", "components"],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "80"},
        check=True,
    )
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["kind", "summary"]
    assert all(len(line) <= 80 for line in lines)
    text = " ".join(done.stdout.split())
    assert "sink amqp Publishes each record as a persistent message; a batch counts once" in text

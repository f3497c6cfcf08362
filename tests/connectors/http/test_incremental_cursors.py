"""Incremental http cursors against an API written here: typed comparison and dry runs.

The API is a small starlette app of its own (not the shared test server): it filters its
records by ``since`` the way such APIs do, comparing by the type of the field.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import anyio
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from engine.components.base import ComponentContext
from engine.connectors.http.incremental import CursorTracker, IncrementalSpec
from engine.errors import DataError, PermanentError
from engine.state import StateStore
from tests.support.http_server import ServerThread
from tests.support.pipelines import run_file, write_pipeline


class CursorApi:
    """``GET /items?since=``: records whose field is greater than ``since``, by ``order``."""

    def __init__(self, field: str, order: Callable[[Any], Any]) -> None:
        self.field, self.order = field, order
        self.records: list[dict[str, Any]] = []
        self.sent: list[str | None] = []  # the `since` of every request
        self.app = Starlette(routes=[Route("/items", self.items)])

    async def items(self, request: Request) -> JSONResponse:
        since = request.query_params.get("since")
        self.sent.append(since)
        out = [
            r
            for r in self.records
            if since is None or self.order(r[self.field]) > self.order(since)
        ]
        return JSONResponse({"data": out})


@pytest.fixture
def api_factory() -> Iterator[Callable[[str, Callable[[Any], Any]], tuple[CursorApi, str]]]:
    threads: list[ServerThread] = []

    def start(field: str, order: Callable[[Any], Any]) -> tuple[CursorApi, str]:
        api = CursorApi(field, order)
        thread = ServerThread(api.app)
        thread.__enter__()
        threads.append(thread)
        return api, thread.url

    yield start
    for thread in threads:
        thread.__exit__()


def pipeline(tmp_path: Path, url: str, incremental: str) -> Path:
    out = tmp_path / "out.jsonl"
    return write_pipeline(
        tmp_path,
        f"""
[pipeline]
name = "inc"

[sources.api]
type = "http"
url = "{url}/items"
records = "data"
incremental = {{ {incremental} }}

[sinks.out]
type = "file"
inputs = ["api"]
path = "{out}"
""",
    )


def read_ids(tmp_path: Path) -> list[str]:
    out = tmp_path / "out.jsonl"
    if not out.exists():
        return []
    return [json.loads(line)["id"] for line in out.read_text().splitlines() if line]


def run_ok(file: Path) -> list[str]:
    """One real run; the ids it delivered (the file sink replaces its output each run)."""
    summary = anyio.run(run_file, file)
    assert summary.ok, summary.error
    return read_ids(file.parent)


def test_numeric_string_versions_advance_to_the_true_maximum_over_three_runs(
    tmp_path: Path, api_factory: Any
) -> None:
    api, url = api_factory("version", int)
    api.records = [{"id": f"v{n}", "version": str(n)} for n in (8, 9, 10)]
    file = pipeline(tmp_path, url, 'cursor_field = "version", param = "since", cursor_type = "int"')
    ids = run_ok(file)
    api.records.append({"id": "v11", "version": "11"})
    ids += run_ok(file)
    api.records.append({"id": "v12", "version": "12"})
    ids += run_ok(file)
    assert api.sent == [None, "10", "11"]
    assert sorted(ids) == ["v10", "v11", "v12", "v8", "v9"]
    assert len(ids) == len(set(ids)), "a record was read twice"


def test_mixed_offset_timestamps_compare_as_instants_over_three_runs(
    tmp_path: Path, api_factory: Any
) -> None:
    api, url = api_factory("updated", datetime.fromisoformat)
    api.records = [
        {"id": "a", "updated": "2026-03-01T12:00:00+05:30"},  # 06:30Z
        {"id": "b", "updated": "2026-03-01T07:00:00Z"},
        {"id": "c", "updated": "2026-03-01T08:00:00+00:00"},  # the latest
    ]
    file = pipeline(tmp_path, url, 'cursor_field = "updated", param = "since"')
    ids = run_ok(file)
    api.records.append({"id": "d", "updated": "2026-03-01T10:00:00+01:00"})  # 09:00Z
    ids += run_ok(file)
    api.records.append({"id": "e", "updated": "2026-03-01T09:30:00Z"})
    ids += run_ok(file)
    assert api.sent == [None, "2026-03-01T08:00:00+00:00", "2026-03-01T10:00:00+01:00"]
    assert sorted(ids) == ["a", "b", "c", "d", "e"]
    assert len(ids) == len(set(ids)), "a record was read twice"


def test_dry_run_sends_the_saved_cursor_and_leaves_the_state_unchanged(
    tmp_path: Path, api_factory: Any
) -> None:
    api, url = api_factory("updated", datetime.fromisoformat)
    api.records = [{"id": str(n), "updated": f"2026-03-01T0{n}:00:00Z"} for n in range(1, 5)]
    file = pipeline(tmp_path, url, 'cursor_field = "updated", param = "since"')
    workspace = Path(os.environ["ENGINE_HOME"])

    def dry_run() -> dict[str, Any]:
        done = subprocess.run(
            [sys.executable, "-m", "engine", "dry-run", str(file), "--format", "json"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        result: dict[str, Any] = json.loads(done.stdout)
        return result

    # with no state yet a dry run reads everything and creates no file at all
    assert len(dry_run()["sinks"]["out"]) == 4
    assert not (workspace / "state.db").exists()
    assert api.sent == [None]

    assert run_ok(file) == ["1", "2", "3", "4"]
    state_file = workspace / "state.db"
    before = state_file.read_bytes()
    files_before = sorted(p.name for p in workspace.iterdir())
    api.records.append({"id": "5", "updated": "2026-03-01T05:00:00Z"})

    preview = dry_run()
    assert api.sent[-1] == "2026-03-01T04:00:00Z"
    assert [r["id"] for r in preview["sinks"]["out"]] == ["5"]
    assert state_file.read_bytes() == before
    assert sorted(p.name for p in workspace.iterdir()) == files_before

    # the real run still starts from the saved cursor: the dry run moved nothing
    assert run_ok(file) == ["5"]
    assert api.sent[-1] == "2026-03-01T04:00:00Z"


def tracker(tmp_path: Path, state: StateStore | None = None, **spec: Any) -> CursorTracker:
    context = ComponentContext(
        component_id="api", pipeline="p", base_dir=tmp_path, workspace=tmp_path, state=state
    )
    return CursorTracker(IncrementalSpec(param="since", **spec), context)


@pytest.mark.parametrize(
    ("cursor_type", "values", "highest"),
    [
        ("auto", [8, 9.5, 10], 10),
        ("auto", ["8", "9", "10"], "10"),
        ("int", ["8", 9, "10"], "10"),
        ("decimal", ["1.5", "10.25", "9.75"], "10.25"),
        ("auto", ["2026-03-01T12:00:00+05:30", "2026-03-01T08:00:00Z"], "2026-03-01T08:00:00Z"),
        ("timestamp", ["2026-03-01 09:00:00", "2026-03-01T10:00:00"], "2026-03-01T10:00:00"),
        ("auto", ["01HQZ0A", "01HQZ0B"], "01HQZ0B"),
        ("string", ["8", "10", "9"], "9"),
    ],
)
def test_values_compare_by_their_type(
    tmp_path: Path, cursor_type: str, values: list[Any], highest: Any
) -> None:
    cursor = tracker(tmp_path, cursor_field="v", cursor_type=cursor_type)
    cursor.observe([{"v": v} for v in values])
    assert cursor.highest == highest


@pytest.mark.parametrize(
    ("cursor_type", "values", "message"),
    [
        ("auto", ["2026-03-01T08:00:00Z", "10"], "a number cannot be compared with a timestamp"),
        ("auto", ["2026-03-01T08:00:00Z", "2026-03-01T09:00:00"], "without offset"),
        ("auto", [1, True], "is a boolean"),
        ("int", [1, "1.5"], "'1.5' is not an integer"),
        ("timestamp", ["2026-03-01T08:00:00Z", "yesterday"], "'yesterday' is not an ISO-8601"),
        ("string", ["a", 3], "3 is not a string"),
    ],
)
def test_values_that_cannot_be_compared_are_a_located_error(
    tmp_path: Path, cursor_type: str, values: list[Any], message: str
) -> None:
    cursor = tracker(tmp_path, cursor_field="item.v", cursor_type=cursor_type)
    with pytest.raises(DataError) as caught:
        cursor.observe([{"item": {"v": v}} for v in values], "https://api/items?page=2")
    text = str(caught.value)
    assert message in text
    assert "https://api/items?page=2" in text
    assert "record 2" in text
    assert "'item.v'" in text


def test_a_saved_cursor_that_does_not_fit_the_declared_type_is_refused(tmp_path: Path) -> None:
    state = StateStore(tmp_path / "state.db")
    state.set("p", "api", "cursor", "2026-03-01T08:00:00Z")
    with pytest.raises(PermanentError, match=r"saved cursor .* does not fit cursor_type 'int'"):
        tracker(tmp_path, state, cursor_field="v", cursor_type="int")
    state.close()


def test_a_read_only_state_store_reads_what_a_writer_saved_and_creates_nothing(
    tmp_path: Path,
) -> None:
    path = tmp_path / "state" / "state.db"
    reader = StateStore(path, read_only=True)
    assert reader.get("p", "api", "cursor", "none") == "none"
    reader.set("p", "api", "cursor", 1)
    reader.close()
    assert not path.parent.exists()  # not even the folder

    writer = StateStore(path)
    writer.set("p", "api", "cursor", "2026-03-01T08:00:00Z")
    files = sorted(p.name for p in path.parent.iterdir())  # the writer's WAL is open
    reader = StateStore(path, read_only=True)
    assert reader.get("p", "api", "cursor") == "2026-03-01T08:00:00Z"
    writer.set("p", "api", "cursor", "2026-03-01T09:00:00Z")
    assert reader.get("p", "api", "cursor") == "2026-03-01T09:00:00Z"
    reader.set("p", "api", "cursor", "1999")
    assert writer.get("p", "api", "cursor") == "2026-03-01T09:00:00Z"
    reader.close()
    assert sorted(p.name for p in path.parent.iterdir()) == files
    writer.close()

    before = path.read_bytes()
    reader = StateStore(path, read_only=True)  # no writer: the file is read as it is
    assert reader.get("p", "api", "cursor") == "2026-03-01T09:00:00Z"
    reader.close()
    assert sorted(p.name for p in path.parent.iterdir()) == ["state.db"]
    assert path.read_bytes() == before

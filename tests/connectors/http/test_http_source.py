"""The http source against the local server: every pagination style, codecs, auth, incremental."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from engine.mapping.expression import counting_compiles
from tests.support.http_server import API_KEY, CLIENT_SECRET, ITEMS, ServerState
from tests.support.pipelines import read_jsonl, run_file, write_pipeline

SKUS = [i["sku"] for i in ITEMS]


def pipeline(url: str, source_extra: str, out: str = "out.jsonl") -> str:
    return f"""
[pipeline]
name = "http-src"

[sources.api]
type = "http"
url = "{url}"
{source_extra}

[sinks.out]
type = "file"
inputs = ["api"]
path = "{out}"
"""


@pytest.mark.parametrize(
    ("path", "extra"),
    [
        ("/items/link", 'pagination = { type = "link" }'),
        (
            "/items/next",
            'records = "data"\npagination = { type = "next_url", path = "links.next" }',
        ),
        (
            "/items/cursor",
            'records = "items"\npagination = { type = "cursor", path = "meta.next_cursor" }',
        ),
        (
            "/items/offset",
            'records = "results"\npagination = { type = "offset", limit = 10 }',
        ),
        (
            "/items/page",
            'records = "items"\npagination = { type = "page", size = 10 }',
        ),
        (
            "/items/page",
            'records = "items"\n'
            'pagination = { type = "page", size = 7, total_pages_path = "total_pages" }',
        ),
        (
            "/items/cursor",
            'records = "items"\n'
            'pagination = { type = "cursor", path = "meta.next_cursor", '
            'stop = "meta.has_more == `false`" }',
        ),
    ],
    ids=["link", "next_url", "cursor", "offset", "page", "page-total", "cursor-stop"],
)
def test_every_pagination_style_reads_all_records_once(
    tmp_path: Path, server_url: str, server: ServerState, path: str, extra: str
) -> None:
    file = write_pipeline(tmp_path, pipeline(server_url + path, extra))
    summary = anyio.run(run_file, file)
    assert summary.ok, summary.error
    assert [r["sku"] for r in read_jsonl(tmp_path / "out.jsonl")] == SKUS


def test_offset_pagination_stops_on_the_short_page(
    tmp_path: Path, server_url: str, server: ServerState
) -> None:
    extra = 'records = "results"\npagination = { type = "offset", limit = 10 }'
    anyio.run(run_file, write_pipeline(tmp_path, pipeline(server_url + "/items/offset", extra)))
    assert server.hits["offset"] == 3  # 10 + 10 + 5: the short page ends it, no empty 4th call


def test_max_pages_limits_the_read(tmp_path: Path, server_url: str, server: ServerState) -> None:
    extra = 'pagination = { type = "link", max_pages = 2 }'
    anyio.run(run_file, write_pipeline(tmp_path, pipeline(server_url + "/items/link", extra)))
    assert len(read_jsonl(tmp_path / "out.jsonl")) == 20


def test_csv_response_through_the_codec(
    tmp_path: Path, server_url: str, server: ServerState
) -> None:
    file = write_pipeline(tmp_path, pipeline(server_url + "/items/csv", 'codec = "csv"'))
    summary = anyio.run(run_file, file)
    assert summary.ok, summary.error
    rows = read_jsonl(tmp_path / "out.jsonl")
    assert [r["sku"] for r in rows] == SKUS[:5]


def test_incremental_cursor_is_saved_on_success_and_sent_next_run(
    tmp_path: Path, server_url: str, server: ServerState
) -> None:
    extra = (
        'records = "items"\n'
        'incremental = { cursor_field = "updated_at", param = "updated_since", '
        'initial = "2024-01-05T00:00:00Z" }'
    )
    file = write_pipeline(tmp_path, pipeline(server_url + "/items/incremental", extra))
    assert anyio.run(run_file, file).ok
    first = read_jsonl(tmp_path / "out.jsonl")
    assert first[0]["id"] == 6 and first[-1]["id"] == 15
    assert anyio.run(run_file, file).ok
    sent = [r["updated_since"] for r in server.received["incremental"]]
    assert sent == ["2024-01-05T00:00:00Z", "2024-01-15T00:00:00Z"]
    second = read_jsonl(tmp_path / "out.jsonl")
    assert second[0]["id"] == 16


def test_api_key_in_header_and_in_query(
    tmp_path: Path, server_url: str, server: ServerState
) -> None:
    for auth in (
        f'auth = {{ type = "api_key", key = "{API_KEY}" }}',
        f'auth = {{ type = "api_key", key = "{API_KEY}", location = "query", name = "api_key" }}',
    ):
        file = write_pipeline(tmp_path, pipeline(server_url + "/apikey/items", auth))
        summary = anyio.run(run_file, file)
        assert summary.ok, summary.error
        assert len(read_jsonl(tmp_path / "out.jsonl")) == 3


def test_wrong_api_key_fails_without_leaking_it(
    tmp_path: Path, server_url: str, server: ServerState
) -> None:
    secret = "wrong-key-do-not-print"
    auth = f'auth = {{ type = "api_key", key = "{secret}", location = "query", name = "api_key" }}'
    summary = anyio.run(
        run_file, write_pipeline(tmp_path, pipeline(server_url + "/apikey/items", auth))
    )
    assert not summary.ok
    assert "403" in (summary.error or "")
    assert secret not in (summary.error or "")


def test_basic_auth(tmp_path: Path, server_url: str, server: ServerState) -> None:
    auth = 'auth = { type = "basic", username = "user", password = "pass-word" }'
    summary = anyio.run(
        run_file, write_pipeline(tmp_path, pipeline(server_url + "/basic/items", auth))
    )
    assert summary.ok, summary.error


def test_oauth2_token_is_fetched_once_and_cached(
    tmp_path: Path, server_url: str, server: ServerState
) -> None:
    auth = (
        f'auth = {{ type = "oauth2", token_url = "{server_url}/oauth/token", '
        f'client_id = "test-client", client_secret = "{CLIENT_SECRET}" }}'
    )
    extra = auth + '\npagination = { type = "link" }'
    text = pipeline(server_url + "/protected", auth)
    summary = anyio.run(run_file, write_pipeline(tmp_path, text))
    assert summary.ok, summary.error
    assert server.token_requests == 1
    assert extra  # the same auth block works with pagination


def test_oauth2_bad_secret_is_permanent_and_not_printed(
    tmp_path: Path, server_url: str, server: ServerState
) -> None:
    secret = "definitely-wrong-secret"
    auth = (
        f'auth = {{ type = "oauth2", token_url = "{server_url}/oauth/token", '
        f'client_id = "test-client", client_secret = "{secret}", client_auth = "body" }}'
    )
    summary = anyio.run(
        run_file, write_pipeline(tmp_path, pipeline(server_url + "/protected", auth))
    )
    assert not summary.ok
    assert "oauth2 token request refused" in (summary.error or "")
    assert secret not in (summary.error or "")
    assert summary.stages["api"].retries == 0  # 401 from the token endpoint is not retried


@pytest.mark.parametrize(
    ("path", "extra"),
    [
        (
            "/items/cursor",
            'records = "items"\npagination = { type = "cursor", path = "meta.next_cursor", '
            'stop = "meta.has_more == `false`" }',
        ),
        (
            "/items/page",
            'records = "items"\n'
            'pagination = { type = "page", size = 7, total_pages_path = "total_pages" }',
        ),
        (
            "/items/incremental",
            'records = "items"\nincremental = { cursor_field = "updated_at", '
            'param = "updated_since", initial = "2024-01-05T00:00:00Z" }',
        ),
    ],
    ids=["cursor-stop", "page-total", "incremental"],
)
def test_pagination_and_cursor_expressions_are_compiled_once_per_run(
    tmp_path: Path, server_url: str, server: ServerState, path: str, extra: str
) -> None:
    file = write_pipeline(tmp_path, pipeline(server_url + path, extra))
    with counting_compiles() as compiles:
        summary = anyio.run(run_file, file)
    assert summary.ok, summary.error
    assert compiles and all(count == 1 for count in compiles.values()), compiles

"""http, graphql and webhook sinks, and the graphql source, against the real server."""

from __future__ import annotations

import json
from pathlib import Path

import anyio

from tests.support.http_server import ITEMS, ServerState
from tests.support.pipelines import read_jsonl, run_file, write_pipeline

PRODUCTS = [{"sku": f"S{i}", "name": f"Item {i}", "qty": i} for i in range(1, 8)]


def sink_pipeline(tmp_path: Path, sink: str, records: list[dict[str, object]] = PRODUCTS) -> Path:
    data = tmp_path / "in.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in records))
    return write_pipeline(
        tmp_path,
        f"""
[pipeline]
name = "sinks"

[sources.file]
type = "file"
path = "in.jsonl"

[sinks.api]
inputs = ["file"]
{sink}
""",
    )


def test_record_mode_url_template_and_idempotency_key(
    tmp_path: Path, server_url: str, server: ServerState
) -> None:
    sink = (
        f'type = "http"\nurl = "{server_url}/sink/rec/{{sku}}"\n'
        'method = "PUT"\nidempotency_key = true'
    )
    summary = anyio.run(run_file, sink_pipeline(tmp_path, sink))
    assert summary.ok, summary.error
    got = sorted(server.received["rec"], key=lambda r: r["body"]["qty"])
    assert [r["path"] for r in got] == [f"/sink/rec/S{i}" for i in range(1, 8)]
    assert {r["method"] for r in got} == {"PUT"}
    assert [r["body"] for r in got] == PRODUCTS


def test_batch_mode_sends_one_array(tmp_path: Path, server_url: str, server: ServerState) -> None:
    sink = (
        f'type = "http"\nurl = "{server_url}/sink/batch"\nmode = "batch"\nidempotency_key = "X-Key"'
    )
    summary = anyio.run(run_file, sink_pipeline(tmp_path, sink))
    assert summary.ok, summary.error
    [request] = server.received["batch"]
    assert request["body"] == PRODUCTS
    assert request["headers"]["content-type"] == "application/json"
    assert len(request["headers"]["x-key"]) == 40


def test_transient_failures_mid_batch_resend_nothing_twice(
    tmp_path: Path, server_url: str, server: ServerState
) -> None:
    sink = (
        f'type = "http"\nurl = "{server_url}/flakysink/f"\nconcurrency = 2\n'
        "idempotency_key = true\nretry = { attempts = 10, backoff = 0.0, max_delay = 0.01 }"
    )
    summary = anyio.run(run_file, sink_pipeline(tmp_path, sink))
    assert summary.ok, summary.error
    delivered = [r["body"]["sku"] for r in server.received["f"]]
    assert sorted(delivered) == sorted(p["sku"] for p in PRODUCTS)  # each exactly once
    assert summary.stages["api"].retries >= 2
    keys = [r["idempotency"] for r in server.received["f"]]
    assert len(set(keys)) == len(keys)


def test_permanent_failure_goes_to_dead_letter(
    tmp_path: Path, server_url: str, server: ServerState
) -> None:
    sink = f'type = "http"\nurl = "{server_url}/status/422"\non_error = "dead_letter"'
    summary = anyio.run(run_file, sink_pipeline(tmp_path, sink))
    # every record dead-lettered: the run fails unless [dead_letter] max_rejected allows it
    assert not summary.ok and "records read were rejected" in (summary.error or "")
    assert summary.stages["api"].rejected == len(PRODUCTS)
    assert summary.dead_letters == len(PRODUCTS)


def test_graphql_sink_mutation_per_record(
    tmp_path: Path, server_url: str, server: ServerState
) -> None:
    mutation = "mutation($input: ProductInput!) { createProduct(input: $input) { id } }"
    sink = (
        f'type = "graphql"\nurl = "{server_url}/graphql"\nquery = "{mutation}"\n'
        'variables = { input = "{sku: sku, title: name}" }'
    )
    summary = anyio.run(run_file, sink_pipeline(tmp_path, sink))
    assert summary.ok, summary.error
    assert sorted(r["sku"] for r in server.received["graphql"]) == sorted(
        p["sku"] for p in PRODUCTS
    )


def test_graphql_sink_reports_graphql_errors(
    tmp_path: Path, server_url: str, server: ServerState
) -> None:
    mutation = "mutation($input: ProductInput!) { createProduct(input: $input) { id } }"
    sink = (
        f'type = "graphql"\nurl = "{server_url}/graphql"\nquery = "{mutation}"\n'
        'variables = { input = "{sku: sku, title: name}" }'
    )
    summary = anyio.run(
        run_file, sink_pipeline(tmp_path, sink, [{"sku": "BAD", "name": "x"}, *PRODUCTS[:2]])
    )
    assert not summary.ok
    assert "GraphQL errors: sku BAD is refused" in (summary.error or "")
    assert len(server.received["graphql"]) == 2  # the good records were still delivered


def test_webhook_sink_signs_per_standard_webhooks(
    tmp_path: Path, server_url: str, server: ServerState
) -> None:
    sink = (
        f'type = "webhook"\nurl = "{server_url}/webhooks/receive"\n'
        'secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"\nid_field = "sku"'
    )
    summary = anyio.run(run_file, sink_pipeline(tmp_path, sink))
    assert summary.ok, summary.error
    got = server.received["webhooks"]
    assert len(got) == len(PRODUCTS) and all(r["valid"] for r in got)
    assert sorted(r["id"] for r in got) == sorted(p["sku"] for p in PRODUCTS)


GRAPHQL_SOURCE = """
[pipeline]
name = "gql"

[sources.products]
type = "graphql"
url = "{url}/graphql"
{extra}

[sinks.out]
type = "file"
inputs = ["products"]
path = "out.jsonl"
"""

QUERY = (
    'query = "query($first: Int, $after: String, $since: String) '
    "{ products(first: $first, after: $after, updatedSince: $since) "
    '{ edges { node { id sku updatedAt } } pageInfo { hasNextPage endCursor } } }"'
)


def test_graphql_source_cursor_pagination_and_incremental(
    tmp_path: Path, server_url: str, server: ServerState
) -> None:
    extra = (
        QUERY + '\nrecords = "products.edges[].node"\nvariables = { first = 10 }\n'
        'pagination = { page_info = "products.pageInfo" }\n'
        'incremental = { cursor_field = "updatedAt", param = "since" }'
    )
    file = write_pipeline(tmp_path, GRAPHQL_SOURCE.format(url=server_url, extra=extra))
    assert anyio.run(run_file, file).ok
    assert [r["sku"] for r in read_jsonl(tmp_path / "out.jsonl")] == [i["sku"] for i in ITEMS]
    summary = anyio.run(run_file, file)  # nothing changed since: the saved cursor is sent
    assert summary.ok and summary.stages["products"].records_out == 0


def test_graphql_partial_data_with_errors_follows_on_error(
    tmp_path: Path, server_url: str, server: ServerState
) -> None:
    base = 'query = "{ broken { id title } }"\nrecords = "broken[?@]"'
    skip = write_pipeline(
        tmp_path, GRAPHQL_SOURCE.format(url=server_url, extra=base + '\non_error = "skip"')
    )
    summary = anyio.run(run_file, skip)
    assert summary.ok and summary.stages["products"].rejected == 1
    assert [r["id"] for r in read_jsonl(tmp_path / "out.jsonl")] == ["1"]
    fail = write_pipeline(tmp_path, GRAPHQL_SOURCE.format(url=server_url, extra=base))
    summary = anyio.run(run_file, fail)
    assert not summary.ok and "title unavailable" in (summary.error or "")


def test_graphql_query_is_checked_at_validate_time(tmp_path: Path, server_url: str) -> None:
    from engine.errors import ConfigError
    from engine.pipeline import compile_file

    bad = 'query = "{ products( }"\nrecords = "x"'
    file = write_pipeline(tmp_path, GRAPHQL_SOURCE.format(url=server_url, extra=bad))
    try:
        compile_file(file)
    except ConfigError as exc:
        assert "not valid GraphQL" in str(exc)
    else:
        raise AssertionError("an invalid query compiled")

"""Loading the registry and compiling any pipeline imports no connector client library.

Client libraries are imported when a component runs (``open()``, ``read()``, ``write()``,
``check()``), so `engine validate`, `engine components` and `engine schema` stay light.
The one exception is deliberate: an inline GraphQL ``query`` is parsed by graphql-core at
validate time, so only a pipeline with one imports ``graphql``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BUNDLED = sorted(
    p
    for d in ("pipelines", "examples")
    for p in (ROOT / d).glob("*")
    if p.suffix in (".toml", ".yaml", ".yml")
)
HEAVY = (
    "httpx",
    "graphql",
    "asyncssh",
    "aio_pika",
    "aiormq",
    "starlette",
    "uvicorn",
    "redis",
    "sqlalchemy.ext.asyncio",
    "asyncmy",
    "psycopg",
)

#: the kinds no bundled file uses, with every connection setting that has a model of its own
OTHER_KINDS = """\
[pipeline]
name = "every-kind"

[sources.gql]
type = "graphql"
url = "https://shop.example/graphql"
query_file = "products.graphql"
records = "products.nodes"
pagination = { page_info = "products.pageInfo" }
incremental = { cursor_field = "updated_at", param = "since" }
auth = { type = "oauth2", token_url = "https://auth.example/token", client_id = "c", \
client_secret = "s" }
rate_limit = "10/s"
circuit_breaker = { failures = 3 }

[sinks.queue]
type = "amqp"
inputs = ["gql"]
url = "amqp://app:pw@rabbit:5672/"
routing_key = "products"

[sinks.mutation]
type = "graphql"
inputs = ["gql"]
url = "https://shop.example/graphql"
query_file = "create.graphql"

[sinks.remote]
type = "sftp"
inputs = ["gql"]
host = "sftp.example"
user = "app"
password = "pw"
path = "/inbox/{run_id}.jsonl"

[sinks.console]
type = "stdout"
inputs = ["gql"]

[sinks.hook]
type = "webhook"
inputs = ["gql"]
url = "https://hooks.example/in"
secret = "whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQ="
"""

#: run in a fresh interpreter: compile every file, list every kind, render the schema
PROBE = """\
import json, sys
from engine.reference.options import options
from engine.pipeline import compile_file
from engine.registry import default_registry
from engine.schema import render_schema

registry = default_registry()
used = set()
for path in sys.argv[1:]:
    plan = compile_file(path, env={})
    used |= {(n.role.value, n.entry.spec.type) for n in plan.nodes.values()}
for spec in registry:
    options(spec.config)
render_schema(registry)
print(json.dumps({
    "missing": sorted(f"{r} {t}" for r, t in {(s.role.value, s.type) for s in registry} - used),
    "modules": sorted(sys.modules),
}))
"""


def _probe(*files: Path) -> dict[str, list[str]]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, *map(str, files)],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    result: dict[str, list[str]] = json.loads(out.stdout)
    return result


def _heavy(modules: list[str]) -> list[str]:
    return [m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY)]


def test_compiling_every_kind_imports_no_client_library(tmp_path: Path) -> None:
    other = tmp_path / "every_kind.toml"
    other.write_text(OTHER_KINDS)
    result = _probe(*BUNDLED, other)
    assert result["missing"] == []
    assert _heavy(result["modules"]) == []


def test_an_inline_graphql_query_is_parsed_at_validate_time(tmp_path: Path) -> None:
    inline = tmp_path / "inline.toml"
    inline.write_text(
        OTHER_KINDS.replace('query_file = "products.graphql"', 'query = "{ products { id } }"')
    )
    heavy = _heavy(_probe(inline)["modules"])
    assert heavy and {m.split(".")[0] for m in heavy} == {"graphql"}

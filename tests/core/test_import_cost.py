"""Loading the registry and compiling any pipeline imports no connector client library.

Client libraries are imported when a component runs (``open()``, ``read()``, ``write()``,
``check()``), so `engine validate`, `engine components` and `engine schema` stay light.
The one exception is deliberate: an inline GraphQL ``query`` is parsed by graphql-core at
validate time, so only a pipeline with one imports ``graphql``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.state import StateStore

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


#: run ``engine ARGS...`` in a fresh interpreter and print the modules it imported, at exit
CLI_PROBE = """\
import atexit, json, os, sys
out = int(os.environ.pop("PROBE_FD"))
atexit.register(lambda: os.write(out, json.dumps(sorted(sys.modules)).encode()))
sys.argv = ["engine", *sys.argv[1:]]
from engine.cli.main import main
main()
"""

#: what none of the light commands needs: every client library, SQLAlchemy (the audit
#: store's) and the settings loader of the commands that do not read settings
LIGHT_HEAVY = (*HEAVY, "sqlalchemy", "aiosqlite", "cryptography")


def _cli_modules(*args: str, env: dict[str, str] | None = None) -> list[str]:
    read, write = os.pipe()
    subprocess.run(
        [sys.executable, "-c", CLI_PROBE, *args],
        capture_output=True,
        cwd=ROOT,
        env={**os.environ, **(env or {}), "PROBE_FD": str(write)},
        pass_fds=(write,),
        check=False,
    )
    os.close(write)
    with os.fdopen(read) as pipe:
        modules: list[str] = json.loads(pipe.read())
    return modules


def _heavy_of(modules: list[str], names: tuple[str, ...]) -> list[str]:
    return sorted({m for m in modules if any(m == h or m.startswith(h + ".") for h in names)})


@pytest.mark.parametrize(
    "args",
    [
        ("--version",),
        ("--help",),
        ("validate", "examples/quickstart.toml"),
        ("components",),
        ("components", "sql"),
    ],
    ids=lambda args: " ".join(args)[:40],
)
def test_light_commands_import_no_client_library_nor_sqlalchemy(args: tuple[str, ...]) -> None:
    assert _heavy_of(_cli_modules(*args), LIGHT_HEAVY) == []


def test_version_reads_no_settings_and_loads_no_pipeline_code() -> None:
    modules = _cli_modules("--version")
    loaded = _heavy_of(modules, ("engine.settings", "anyio", "engine.runtime", "engine.config"))
    assert loaded == []


@pytest.mark.parametrize(
    ("words", "cword"),
    [("engine ", "1"), ("engine run ", "2"), ("engine validate --", "2")],
)
@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_shell_completion_imports_nothing_heavy(shell: str, words: str, cword: str) -> None:
    env = {"_ENGINE_COMPLETE": f"{shell}_complete", "COMP_WORDS": words, "COMP_CWORD": cword}
    modules = _cli_modules(env=env)
    assert _heavy_of(modules, (*LIGHT_HEAVY, "engine.settings", "engine.config")) == []


#: a file -> map -> file pipeline with the audit trail on, as most runs are
FILE_TO_FILE = """\
[pipeline]
name = "file-to-file"

[audit]
enabled = true

[sources.src]
type = "file"
path = "in.csv"

[transforms.step]
type = "map"
inputs = ["src"]
[transforms.step.fields]
id = "join('', ['P', sku])"
quantity = "to_number(quantity)"

[sinks.out]
type = "file"
inputs = ["step"]
path = "out.jsonl"
"""

#: what a file -> file run needs none of: the other kinds' modules and the connectors they
#: use, the XML and EDI readers and writers, PyYAML (for a TOML file) and PostgreSQL's
#: SQLAlchemy dialect (for a SQLite store: SQLAlchemy itself is not loaded at all)
NOT_FOR_A_FILE_RUN = (
    *HEAVY,
    "engine.connectors.http",
    "engine.connectors.sftp",
    "engine.connectors.amqp",
    "engine.connectors.sql",
    "engine.webhooks",
    "engine.components.sources.http",
    "engine.components.sources.sql",
    "engine.components.sinks.sftp",
    "engine.components.sinks.amqp",
    "engine.components.transforms.route",
    "engine.codecs.xml_stream",
    "engine.codecs.edi.reader",
    "engine.codecs.edi.envelope",
    "engine.codecs.edi.writer",
    "xmltodict",
    "defusedxml",
    "yaml",
    "sqlalchemy.dialects.postgresql",
    "pydantic_settings",
)


def test_a_file_to_file_run_imports_only_what_its_kinds_use(tmp_path: Path) -> None:
    pipeline = tmp_path / "run.toml"
    pipeline.write_text(FILE_TO_FILE)
    (tmp_path / "in.csv").write_text("sku,quantity\nA,1\nB,2\n")
    env = {"ENGINE_HOME": str(tmp_path / "home")}
    modules = _cli_modules("run", "-q", str(pipeline), env=env)
    assert (tmp_path / "out.jsonl").read_text().count("\n") == 2  # it ran
    assert {"engine.components.sources.file", "engine.components.transforms.map"} <= set(modules)
    assert _heavy_of(modules, NOT_FOR_A_FILE_RUN) == []
    # the SQLite stores are made, and kept in later runs, on sqlite3 alone
    assert _heavy_of(modules, ("sqlalchemy",)) == []
    (tmp_path / "out.jsonl").unlink()
    modules = _cli_modules("run", "-q", str(pipeline), env=env)
    assert (tmp_path / "out.jsonl").read_text().count("\n") == 2
    assert _heavy_of(modules, ("sqlalchemy",)) == []
    verify = subprocess.run(
        [sys.executable, "-m", "engine", "audit", "verify", str(pipeline)],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        check=False,
    )
    assert verify.returncode == 0 and "intact" in verify.stdout, verify.stdout + verify.stderr
    store = StateStore(next((tmp_path / "home").rglob("state.db")), read_only=True)
    try:
        assert [(r.outcome, r.records_out) for r in store.runs()] == [("success", 2)] * 2
        assert store.leases() == []  # each run gave its lease back
    finally:
        store.close()


def test_a_command_leaves_its_heap_to_the_exit_uncollected() -> None:
    """A finished command freezes the heap: the interpreter's last full collection, which
    would walk every object the imports made, skips it."""
    probe = (
        "import atexit, gc, sys\n"
        "atexit.register(lambda: print('frozen', gc.get_freeze_count(), file=sys.stderr))\n"
        "sys.argv = ['engine', 'validate', 'examples/quickstart.toml']\n"
        "from engine.cli.main import main\n"
        "main()\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, check=False
    )
    assert out.returncode == 0, out.stderr
    frozen = int(out.stderr.rsplit("frozen ", 1)[1].split()[0])
    assert frozen > 10_000

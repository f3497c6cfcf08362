"""The `engine` command: a thin layer over the library."""

from __future__ import annotations

import gc
import json
import logging
import math
import signal
import sys
import uuid
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from engine.cli.environment import (
    EXIT_INVALID,
    current_environ,
    current_settings,
    env_file_option,
    fail_config,
    load_settings,
    workspace_option,
)
from engine.cli.lazy import LazyGroup
from engine.cli.logs import log_options, setup_logging
from engine.cli.output import (
    err_console,
    escape,
    format_option,
    notice,
    out_console,
    print_diagnostics,
)
from engine.cli.telemetry import metrics_options, telemetry_session
from engine.columnar import release_columnar_memory
from engine.errors import ConfigError, EngineError, Severity
from engine.logs import is_json

# `engine --version`, `validate` and completion stay fast: what only running a pipeline
# needs (the runtime, the audit store, connector libraries) is imported by the command.
if TYPE_CHECKING:
    import anyio
    import anyio.abc

    from engine.errors import Diagnostic
    from engine.partitions.local import WorkerPool
    from engine.runtime.lease import RunLease
    from engine.runtime.observer import RunObserver, RunSummary
    from engine.runtime.plan import Plan
    from engine.runtime.runner import Runner
    from engine.settings import EngineSettings

__all__ = ["EXIT_FAILED", "EXIT_INVALID", "EXIT_OK", "cli", "main"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def _compile(path: str) -> Plan:
    # engine.config, not engine.pipeline: checking a file loads no runtime
    from engine.config.compile import compile_path

    try:
        plan = compile_path(path, env=current_environ())
    except ConfigError as exc:
        fail_config(exc)
    print_diagnostics(plan.warnings)
    return plan


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="engine")
@log_options
@workspace_option
def cli(log_level: str | None, log_format: str | None) -> None:
    """Declarative integration engine: validate, dry-run and run pipeline files.

    Environment variables (ENGINE_HOME, AUDIT_*, INTEGRATION_*, ...) are listed in
    docs/settings.md; one that does not parse stops every command with exit 78.
    """
    current_settings()
    setup_logging(log_level, log_format)


@cli.command("run")
@env_file_option
@click.argument("file", type=click.Path(dir_okay=False))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    help="Summary format (json goes to stdout).",
)
@click.option(
    "--quiet", "-q", is_flag=True, help="Warnings and errors only: no progress, no summary."
)
@click.option("--verbose", "-v", is_flag=True, help="Debug logging (like --log-level debug).")
@log_options
@click.option("--no-audit", is_flag=True, help="Run without the audit trail.")
@click.option(
    "--wait",
    is_flag=True,
    help="When another run of this pipeline holds its lease, wait for it to end instead of "
    "failing.",
)
@click.option(
    "--wait-timeout",
    type=click.FloatRange(min=0),
    default=None,
    metavar="SECONDS",
    help="Wait at most this long (implies --wait; default: as long as it takes).",
)
@click.option(
    "--restart",
    is_flag=True,
    help="Discard the checkpoint of an interrupted run and start over (default: resume).",
)
@click.option(
    "--full-refresh",
    is_flag=True,
    help="Read everything again: ignore the saved cursors (and any checkpoint); a run that "
    "succeeds replaces them. Sinks are not touched.",
)
@workspace_option
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Run the pipeline's partitions (files, byte ranges, key ranges) in this many local "
    "processes (docs/scale.md); 1 runs it in this process.",
)
@click.option(
    "--distributed",
    is_flag=True,
    help="Send the partitions to `engine worker` processes through RabbitMQ "
    "(ENGINE_BROKER_URL) and wait for the run to end (docs/scale.md).",
)
@click.option("--detach", is_flag=True, help="With --distributed: send, print the run id, exit.")
@click.option(
    "--queue",
    default="engine",
    show_default=True,
    help="With --distributed: the RabbitMQ queue the workers take partitions from.",
)
@metrics_options
def run_cmd(
    file: str,
    fmt: str,
    quiet: bool,
    verbose: bool,
    no_audit: bool,
    wait: bool,
    wait_timeout: float | None,
    restart: bool,
    log_level: str | None,
    log_format: str | None,
    full_refresh: bool,
    metrics_file: Path | None,
    pushgateway: str | None,
    workers: int,
    distributed: bool,
    detach: bool,
    queue: str,
) -> None:
    """Run the pipeline in FILE. Exit 0 when it succeeded, 1 when it failed, 78 when invalid,
    130 when a signal stopped it. A run that a signal stopped keeps a checkpoint where it can,
    and the next run resumes from it (--restart starts over)."""
    import anyio

    from engine.cli.output import print_summary, progress_display
    from engine.pipeline import make_observer, run
    from engine.runtime.observer import NullObserver
    from engine.workspace import workspace_for

    if full_refresh and workers > 1:
        raise click.UsageError("--full-refresh runs in one process: leave out --workers")
    level = setup_logging(log_level, log_format, verbose=verbose, quiet=quiet)
    if fmt == "text" and not is_json() and level > logging.DEBUG:
        # the summary table says what these records would
        logging.getLogger("engine.run").setLevel(logging.CRITICAL)
    plan = _compile(file)
    runner_box: list[Runner] = []
    env = current_settings()
    workspace = workspace_for(plan.spec.file, env)
    pool: WorkerPool | None = None
    if workers > 1 and not distributed:
        from engine.partitions.local import start_workers

        # before the lease, whose renewal is a thread: the workers are forked from this
        # process, ready by the time the partitions are planned
        pool = start_workers(plan, workers, environ=current_environ())
    lease = _take_lease(plan, workspace, wait, wait_timeout)
    telemetry = telemetry_session(plan.name, metrics_file, pushgateway)

    async def main() -> tuple[RunSummary | None, RunObserver]:
        observer = NullObserver() if no_audit else make_observer(plan, workspace, env)
        summary: RunSummary | None = None  # stays None when a second signal cancels the run
        async with anyio.create_task_group() as tg:
            # listening before the run starts: a resumed run adopts its output at once
            await tg.start(_signals, runner_box, tg.cancel_scope)
            shown = level <= logging.INFO and fmt == "text" and not is_json()
            with progress_display(shown) as update:
                summary = await run(
                    plan,
                    workspace=workspace,
                    observer=observer,
                    runner_hook=runner_box.append,
                    on_progress=update,
                    run_id=lease.run_id,
                    restart=restart,
                    full_refresh=full_refresh,
                    settings=env,
                    # resuming or keeping a checkpoint: only after an interruption
                    notify=partial(notice, level=logging.WARNING),
                    telemetry=telemetry.hook,
                )
            tg.cancel_scope.cancel()
        return summary, observer

    if distributed:
        _run_distributed(plan, workspace, lease, env, queue, detach, fmt, not no_audit)
    try:
        with lease, telemetry:
            summary: RunSummary | None
            if workers > 1:
                from engine.partitions.local import run_workers

                summary, observer = run_workers(
                    plan,
                    workers=workers,
                    workspace=workspace,
                    run_id=lease.run_id,
                    settings=env,
                    audit=not no_audit,
                    notify=partial(notice, level=logging.WARNING),
                    environ=current_environ(),
                    pool=pool,
                )
            else:
                # what start-up made lives as long as the process: out of the collector's
                # sight, a run's many short-lived objects do not make it walk them again
                gc.freeze()
                summary, observer = anyio.run(main)
            # The run is over: a late signal must not kill the process before it reports.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
    except (EngineError, BaseExceptionGroup) as exc:
        error = _engine_error(exc)
        if error is None:
            raise
        from engine.redact import ValueMask

        said = ValueMask(plan.spec.secrets).text(str(error))
        err_console.print(f"[red]error:[/red] {escape(said)}", markup=True, soft_wrap=True)
        sys.exit(EXIT_FAILED)
    if summary is None:
        err_console.print("cancelled: in-flight batches were dropped, no output was published")
        sys.exit(EXIT_INTERRUPTED)
    roles = {cid: n.role.value for cid, n in plan.nodes.items()}
    resources = {cid: n.config.resource() for cid, n in plan.nodes.items()}
    print_summary(summary, roles, resources=resources, as_json=fmt == "json")
    checkpoint = getattr(observer, "last_checkpoint", None)
    if checkpoint is not None and fmt == "text":
        notice(
            f"audit: chain {checkpoint.producer} now holds {checkpoint.tree_size} signed "
            f"events (checkpoint signed by {checkpoint.key_id}); "
            f"check it with: engine audit verify {_verify_args(file, workspace)}"
        )
    if summary.interrupted:
        sys.exit(EXIT_INTERRUPTED)
    sys.exit(EXIT_OK if summary.ok else EXIT_FAILED)


def _run_distributed(
    plan: Plan,
    workspace: Path,
    lease: RunLease,
    env: EngineSettings,
    queue: str,
    detach: bool,
    fmt: str,
    audit: bool,
) -> NoReturn:
    from engine.cli.worker import report_distributed, run_distributed

    try:
        with lease:  # held while the run is planned and sent; then its record holds it
            run_distributed(
                plan,
                workspace=workspace,
                run_id=lease.run_id,
                settings=env,
                queue=queue,
                audit=audit,
            )
    except EngineError as exc:
        err_console.print(f"[red]error:[/red] {escape(str(exc))}", markup=True, soft_wrap=True)
        sys.exit(EXIT_FAILED)
    if detach:
        click.echo(lease.run_id)
        sys.exit(EXIT_OK)
    sys.exit(report_distributed(plan, workspace, lease.run_id, as_json=fmt == "json"))


def _verify_args(file: str, workspace: Path) -> str:
    """What `engine audit verify` needs to find this run's trail."""
    from engine.settings import EngineSettings
    from engine.workspace import workspace_for

    beside = workspace_for(Path(file), EngineSettings.defaults())
    return file if workspace.resolve() == beside.resolve() else f"--workspace {workspace} {file}"


def _take_lease(plan: Plan, workspace: Path, wait: bool, timeout: float | None) -> RunLease:
    """The pipeline's run lease (one run per pipeline per state store), or exit 1 naming
    the run that holds it."""
    from engine.runtime.history import state_of
    from engine.runtime.lease import RunLease, describe_holder
    from engine.state import Lease

    lease = RunLease(state_of(plan, workspace), plan.name, uuid.uuid4().hex[:12])

    def waiting(holder: Lease) -> None:
        notice(f"waiting for {describe_holder(holder)} to end...", logging.WARNING)

    try:
        if timeout is not None:
            lease.acquire(timeout, on_wait=waiting)
        else:
            lease.acquire(math.inf if wait else None, on_wait=waiting)
    except EngineError as exc:
        err_console.print(f"[red]error:[/red] {escape(str(exc))}", markup=True, soft_wrap=True)
        sys.exit(EXIT_FAILED)
    except KeyboardInterrupt:
        lease.close()
        sys.exit(EXIT_INTERRUPTED)
    return lease


def _engine_error(exc: BaseException) -> EngineError | None:
    """The EngineError behind an exception, looking inside task-group exception groups."""
    if isinstance(exc, EngineError):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = _engine_error(inner)
            if found is not None:
                return found
    return None


async def _signals(
    runner_box: list[Runner],
    scope: anyio.CancelScope,
    *,
    task_status: anyio.abc.TaskStatus[None],
) -> None:
    """First Ctrl-C/SIGTERM: stop sources and drain; the second: cancel everything."""
    import anyio

    count = 0
    try:
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            task_status.started()
            async for signum in signals:
                count += 1
                if count == 1 and runner_box:
                    name = signal.Signals(signum).name
                    err_console.print(f"{name}: stopping sources, draining...")
                    runner_box[0].stop()
                else:
                    scope.cancel()
                    return
    finally:
        if count < 2:
            # The run is over: a late signal must not kill the process before it reports.
            # At once, not once the event loop has ended: asyncio leaves SIGTERM at its
            # default action when the receiver closes.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)


@cli.command("validate")
@env_file_option
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@format_option(help="Report format: text (stderr) or json (stdout, for CI).")
@click.option("--strict", is_flag=True, help="Treat warnings as errors.")
@click.option("--connect", is_flag=True, help="Also health-check every endpoint the files name.")
def validate_cmd(files: tuple[str, ...], fmt: str, strict: bool, connect: bool) -> None:
    """Check pipeline files: syntax, variables, schema, graph, expressions (78 when invalid)."""
    results: list[dict[str, Any]] = []
    import anyio

    from engine.config.compile import compile_path, masked
    from engine.graph.preflight import preflight

    all_diags: list[Diagnostic] = []
    for file in files:
        try:
            plan = compile_path(file, env=current_environ())
            diags = [*plan.warnings, *preflight(plan)]
            if connect:
                from engine.health import check_plan

                diags.extend(anyio.run(partial(check_plan, plan, settings=current_settings())))
            diags = masked(diags, plan.spec.secrets)
        except ConfigError as exc:
            diags = exc.diagnostics
        errors = [d for d in diags if d.severity is Severity.ERROR or strict]
        results.append({"file": file, "valid": not errors})
        all_diags.extend(diags)
    valid = all(r["valid"] for r in results)
    if fmt == "json":
        payload = {
            "valid": valid,
            "files": results,
            "diagnostics": [d.to_dict() for d in all_diags],
        }
        sys.stdout.write(json.dumps(payload, indent=2) + "\n")
    else:
        print_diagnostics(all_diags)
        for r in results:
            if is_json():
                word, level = ("valid", logging.INFO) if r["valid"] else ("invalid", logging.ERROR)
                notice(f"{r['file']}: {word}", level, file=r["file"], valid=r["valid"])
                continue
            mark = "[green]valid[/green]" if r["valid"] else "[red]invalid[/red]"
            err_console.print(f"{escape(r['file'])}: {mark}", markup=True)
    sys.exit(EXIT_OK if valid else EXIT_INVALID)


@cli.command("dry-run")
@env_file_option
@click.argument("file", type=click.Path(dir_okay=False))
@click.option(
    "--input",
    "inputs",
    multiple=True,
    metavar="[SOURCE=]SAMPLE",
    help="Feed a sample file instead of the sources (or one named source).",
)
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Records read per source.")
@format_option(help="Output format: text, or json (the records each sink would receive).")
@workspace_option
def dry_run_cmd(file: str, inputs: tuple[str, ...], limit: int | None, fmt: str) -> None:
    """Show what each sink would receive. Opens no sink and writes nothing."""
    import anyio

    from engine.pipeline import dry_run
    from engine.redact import ValueMask

    plan = _compile(file)
    samples: dict[str, Path] = {}
    sources = sorted(cid for cid, node in plan.nodes.items() if node.role.value == "source")
    for item in inputs:
        key, sep, value = item.partition("=")
        if sep and key in sources:
            samples[key] = Path(value)
        elif sep and not Path(item).exists():
            what = "is not a source" if key in plan.nodes else "is an unknown source"
            raise click.BadParameter(
                f"{key!r} {what}; sources: {', '.join(sources)}", param_hint="--input"
            )
        else:
            samples["*"] = Path(item)
    for path in samples.values():
        if not path.is_file():
            raise click.BadParameter(f"no such file: {path}", param_hint="--input")
    try:
        env = current_settings()
        result = anyio.run(lambda: dry_run(plan, samples=samples, limit=limit, settings=env))
    except EngineError as exc:
        err_console.print(f"[red]error:[/red] {escape(str(exc))}", markup=True, soft_wrap=True)
        sys.exit(EXIT_FAILED)
    mask = ValueMask(plan.spec.secrets)  # a secret mapped into a record is shown masked
    sinks, rejected = mask.deep(result.sinks), mask.deep(result.rejected)
    if fmt == "json":
        payload = {
            "ok": result.summary.ok,
            "error": result.summary.error,
            "sinks": sinks,
            "rejected": rejected,
        }
        sys.stdout.write(_as_sinks_write(payload, indent=True) + "\n")
    else:
        for sink, records in sinks.items():
            out_console.rule(escape(f"{sink}: {len(records)} record(s) would be written"))
            for record in records:
                out_console.print_json(_as_sinks_write(record))
        for entry in rejected:
            err_console.print(
                f"rejected at {entry['component']}: {entry['reason']}"
                + (f" ({entry['location']})" if entry.get("location") else ""),
                markup=False,
            )
        if result.summary.error:
            err_console.print(f"[red]error:[/red] {escape(result.summary.error)}", markup=True)
    sys.exit(EXIT_OK if result.summary.ok else EXIT_FAILED)


def _as_sinks_write(value: object, *, indent: bool = False) -> str:
    """JSON text of records as the JSON sinks encode them (decimals as exact numbers)."""
    import orjson

    from engine.codecs.json import dump_default

    def default(item: object) -> object:
        try:
            return dump_default(item)
        except TypeError:
            return str(item)

    option = orjson.OPT_NON_STR_KEYS | (orjson.OPT_INDENT_2 if indent else 0)
    return orjson.dumps(value, default=default, option=option).decode()


@cli.command("test")
@env_file_option
@click.argument("file", type=click.Path(dir_okay=False))
@format_option(help="Result format: text, or json (one entry per case).")
def test_cmd(file: str, fmt: str) -> None:
    """Run the pipeline's own [[tests]] cases (exit 0 when all pass, 1 otherwise)."""
    import anyio

    from engine.testing import run_case

    plan = _compile(file)
    if not plan.spec.tests:
        err_console.print(f"{file}: no [[tests]] cases")
        sys.exit(EXIT_FAILED)

    env = current_settings()

    async def all_cases() -> list[Any]:
        return [await run_case(plan, case, settings=env) for case in plan.spec.tests]

    results = anyio.run(all_cases)
    if fmt == "json":
        payload = [
            {"name": r.name, "ok": r.ok, "failures": r.failures, "error": r.error} for r in results
        ]
        sys.stdout.write(json.dumps(payload, indent=2) + "\n")
    else:
        for r in results:
            mark = "[green]PASS[/green]" if r.ok else "[red]FAIL[/red]"
            err_console.print(f"{mark} {escape(r.name)}", markup=True)
            for failure in r.failures + ([r.error] if r.error else []):
                err_console.print(f"    {failure}", markup=False)
        passed = sum(r.ok for r in results)
        err_console.print(f"{passed} passed, {len(results) - passed} failed")
    sys.exit(EXIT_OK if all(r.ok for r in results) else EXIT_FAILED)


@cli.command("schema")
@click.option(
    "--check",
    is_flag=True,
    help="Fail (exit 1) if the committed schema, or the one installed with the package, is "
    "out of date.",
)
@click.option(
    "--output",
    type=click.Path(dir_okay=False, allow_dash=True),
    default=None,
    help="Where the schema lives (default: schemas/pipeline.schema.json; - for stdout).",
)
def schema_cmd(check: bool, output: str | None) -> None:
    """Write the JSON Schema of pipeline files, or check it for drift. Outside a checkout
    (no schemas/ here), --check checks the schema installed with the package."""
    from engine.schema import SCHEMA_FILE, packaged_schema, render_schema

    text = render_schema()
    if output == "-":
        sys.stdout.write(text)
        return
    if check:
        targets = [Path(output)] if output else [SCHEMA_FILE, packaged_schema()]
        found = [t for t in targets if t.is_file()] or targets[:1]
        for target in found:
            current = target.read_text(encoding="utf-8") if target.is_file() else None
            if current != text:
                err_console.print(f"{target} is out of date: run `engine schema`", markup=False)
                sys.exit(EXIT_FAILED)
        err_console.print(f"{found[0]} is up to date", markup=False)
        return
    target = Path(output) if output else SCHEMA_FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    err_console.print(f"wrote {target}", markup=False)


@cli.command("graph")
@env_file_option
@click.argument("file", type=click.Path(dir_okay=False))
@format_option(
    "mermaid",
    "dot",
    "json",
    help="Mermaid, Graphviz DOT, or json (nodes and edges).",
)
def graph_cmd(file: str, fmt: str) -> None:
    """Print the pipeline's DAG as Mermaid, Graphviz DOT or JSON."""
    from engine.graph.render import to_dot, to_json, to_mermaid

    plan = _compile(file)
    if fmt == "json":
        sys.stdout.write(json.dumps(to_json(plan), indent=2) + "\n")
    else:
        sys.stdout.write(to_mermaid(plan) if fmt == "mermaid" else to_dot(plan))


assert isinstance(cli, LazyGroup)
# imported when run, so listing them (--help, TAB) loads none of their libraries
cli.add_lazy(
    "audit",
    "engine.cli.audit:audit",
    "Verify, prove, query and export the signed audit trail, and rotate its keys.",
)
cli.add_lazy(
    "components",
    "engine.cli.reference:components_cmd",
    "List the component kinds and codecs, or show the options of KIND.",
)
cli.add_lazy(
    "docs",
    "engine.cli.reference:docs_cmd",
    "Write the option reference of every kind and codec, or check it for drift.",
)
cli.add_lazy(
    "runs",
    "engine.cli.history:runs",
    "List the runs of FILE's pipeline (or show one run) from its state store.",
)
cli.add_lazy(
    "state",
    "engine.cli.history:state",
    "Show, set or reset what FILE's pipeline keeps between runs (cursors).",
)
cli.add_lazy(
    "secrets",
    "engine.cli.secrets:secrets",
    "Secrets for ${secret:NAME:key}, kept encrypted in the workspace (the `file` backend).",
)
cli.add_lazy(
    "worker",
    "engine.cli.worker:worker_cmd",
    "Run partitions of distributed runs from RabbitMQ until SIGTERM or SIGINT.",
)
cli.add_lazy(
    "serve",
    "engine.cli.serve:serve",
    "Serve FILES: webhook sources at their paths, /livez, /readyz, /healthz, /metrics and "
    "every [schedule].",
)


#: Allocations between collections of the young generation, from the process's start
#: (CPython: 700). Starting up makes hundreds of thousands of objects that live as long as
#: the process (modules, classes, the configuration's models), few of them garbage: their
#: collections took about a twentieth of a small run. A run sets its own while it lasts.
_YOUNG_GENERATION = 50_000


def main() -> None:
    gc.set_threshold(_YOUNG_GENERATION, *gc.get_threshold()[1:])
    # read once, when polars or pyarrow is first loaded: set before anything imports them
    release_columnar_memory()
    # settings are read by the group's callback: `--version`, `--help` and TAB skip them
    try:
        cli.main(standalone_mode=True)
    except KeyboardInterrupt:
        sys.exit(EXIT_INTERRUPTED)
    except Exception as exc:  # a bug, not bad input: say so without a wall of traceback
        if load_settings().engine_debug:
            raise
        err_console.print(
            f"internal error: {type(exc).__name__}: {exc} (ENGINE_DEBUG=1 for details)"
        )
        sys.exit(EXIT_FAILED)
    finally:
        # The process ends next: what it made goes back to the system with it, unwalked. A
        # last full collection of every imported module's objects would cost a run a fifth
        # of its start-up time.
        gc.freeze()

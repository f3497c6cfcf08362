"""How the CLI prints: diagnostics, run summaries and progress, human or JSON."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import NoReturn

from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from engine.errors import ConfigError, Diagnostic, Severity
from engine.runtime.observer import RunSummary, StageStats

__all__ = [
    "EXIT_INVALID",
    "err_console",
    "fail_config",
    "print_diagnostics",
    "print_summary",
    "progress_display",
    "summary_dict",
]

#: the pipeline file or the environment is invalid (EX_CONFIG)
EXIT_INVALID = 78

# markup off unless a call asks for it: messages carry user text such as `[pipeline]`
err_console = Console(stderr=True, highlight=False, soft_wrap=True, markup=False)
out_console = Console(highlight=False, soft_wrap=True, markup=False)


def print_diagnostics(diagnostics: Iterable[Diagnostic]) -> None:
    for d in diagnostics:
        style = "red" if d.severity is Severity.ERROR else "yellow"
        err_console.print(
            f"[bold]{escape(d.location)}[/bold]: "
            f"[{style}]{d.severity.value}\\[{d.code}][/{style}]: {escape(d.message)}",
            markup=True,
            soft_wrap=True,
        )
        if d.hint:
            err_console.print(f"  hint: {d.hint}", soft_wrap=True, markup=False)


def fail_config(exc: ConfigError) -> NoReturn:
    """Print every diagnostic of an invalid pipeline file and exit 78."""
    print_diagnostics(exc.diagnostics)
    n = len(exc.errors)
    err_console.print(f"{n} error{'s' if n != 1 else ''}; nothing was run")
    sys.exit(EXIT_INVALID)


def summary_dict(summary: RunSummary) -> dict[str, object]:
    return {
        "run_id": summary.run_id,
        "pipeline": summary.pipeline,
        "ok": summary.ok,
        "outcome": summary.outcome,
        "duration_s": round(summary.duration_s, 3),
        "error": summary.error,
        "dead_letters": summary.dead_letters,
        "dead_letter_path": summary.dead_letter_path,
        "components": {
            cid: {
                "records_in": s.records_in,
                "records_out": s.records_out,
                "rejected": s.rejected,
                "batches": s.batches,
                "retries": s.retries,
                "errors": s.errors,
            }
            for cid, s in summary.stages.items()
        },
    }


def print_summary(
    summary: RunSummary,
    roles: dict[str, str],
    *,
    resources: dict[str, str | None] | None = None,
    as_json: bool = False,
) -> None:
    if as_json:
        sys.stdout.write(json.dumps(summary_dict(summary)) + "\n")
        return
    table = Table(title=escape(f"run {summary.run_id} of {summary.pipeline}"), title_justify="left")
    text_cols = ("component", "role", "resource")
    for col in ("component", "role", "in", "out", "rejected", "retries", "resource"):
        table.add_column(col, justify="left" if col in text_cols else "right")
    for cid, s in summary.stages.items():
        table.add_row(
            escape(cid),
            roles.get(cid, ""),
            _n(s.records_in, roles.get(cid) == "source"),
            str(s.records_out),
            str(s.rejected),
            str(s.retries),
            escape((resources or {}).get(cid) or ""),
        )
    err_console.print(table)
    status = {
        "success": "[green]ok[/green]",
        "interrupted": "[yellow]interrupted[/yellow]",
    }.get(summary.outcome, "[red]failed[/red]")
    err_console.print(f"{status} in {summary.duration_s:.2f}s", markup=True)
    if summary.interrupted:
        err_console.print(
            "stopped by a signal: outputs published only at the end of a run were left as "
            "they were; input is released only for what was published"
        )
    if summary.dead_letters:
        where = f" {summary.dead_letter_path}" if summary.dead_letter_path else ""
        err_console.print(
            f"{summary.dead_letters} record(s) written to the dead-letter file{where}",
            soft_wrap=True,
        )
    if summary.error:
        err_console.print(f"[red]error:[/red] {escape(summary.error)}", markup=True, soft_wrap=True)


def _n(value: int, blank: bool) -> str:
    return "-" if blank else str(value)


@contextmanager
def progress_display(enabled: bool) -> Iterator[object]:
    """A live per-component counter on a terminal; nothing when output is not a TTY."""
    if not enabled or not err_console.is_terminal:
        yield None
        return
    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
    )
    tasks: dict[str, object] = {}

    def update(stats: dict[str, StageStats]) -> None:
        for cid, s in stats.items():
            if cid not in tasks:
                tasks[cid] = progress.add_task(cid, total=None)
            progress.update(
                tasks[cid],  # type: ignore[arg-type]
                description=f"{cid}: {s.records_out} out, {s.rejected} rejected",
            )

    with progress:
        yield update

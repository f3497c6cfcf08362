"""How the CLI prints: diagnostics, run summaries and progress, human or JSON."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar, cast

import click

from engine.errors import Diagnostic, Severity
from engine.logs import is_json

if TYPE_CHECKING:
    from rich.console import Console

    from engine.runtime.observer import RunSummary

__all__ = [
    "err_console",
    "escape",
    "format_option",
    "notice",
    "print_diagnostics",
    "print_summary",
    "print_table",
    "progress_display",
    "summary_dict",
]

log = logging.getLogger("engine.cli")


class _Console:
    """A rich Console made when first used: a command that prints nothing (a quiet run
    that went well) does not import rich, 20-30 ms of start-up."""

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._console: Console | None = None
        self._set: dict[str, Any] = {}  # attributes set before it was made

    def _made(self) -> Console:
        if self._console is None:
            from rich.console import Console

            self._console = Console(**self._options)
            for name, value in self._set.items():
                setattr(self._console, name, value)
        return self._console

    def __getattr__(self, name: str) -> Any:
        return getattr(self._made(), name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name.startswith("_"):
            object.__setattr__(self, name, value)
        elif self._console is None:
            self._set[name] = value
        else:
            setattr(self._console, name, value)


def escape(text: str) -> str:
    """``text`` with rich's markup escaped."""
    from rich.markup import escape

    return escape(text)


# markup off unless a call asks for it: messages carry user text such as `[pipeline]`
err_console = cast("Console", _Console(stderr=True, highlight=False, soft_wrap=True, markup=False))
out_console = cast("Console", _Console(highlight=False, soft_wrap=True, markup=False))


_F = TypeVar("_F", bound=Callable[..., Any])


class _FormatChoice(click.Choice[str]):
    """A ``--format`` choice that also takes ``human``, the old name of ``text``, unlisted."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        if value == "human" and "text" in self.choices:
            value = "text"
        return str(super().convert(value, param, ctx))


def format_option(
    *formats: str, help: str = "Output format (json goes to stdout)."
) -> Callable[[_F], _F]:
    """The ``--format`` option of a command that prints results: ``text`` (default) and
    ``json`` unless ``formats`` says otherwise; the first one is the default."""
    choices = formats or ("text", "json")
    return click.option(
        "--format",
        "fmt",
        type=_FormatChoice(choices),
        default=choices[0],
        show_default=True,
        help=help,
    )


def notice(text: str, level: int = logging.INFO, **fields: object) -> None:
    """A line for the person running the command, unless the log level hides it: on stderr,
    or a record of ``engine.cli`` in JSON mode."""
    if not log.isEnabledFor(level):
        return
    if is_json():
        log.log(level, text, extra=fields)
    else:
        err_console.print(text, markup=False, soft_wrap=True)


def print_diagnostics(diagnostics: Iterable[Diagnostic]) -> None:
    for d in diagnostics:
        if is_json():
            level = logging.ERROR if d.severity is Severity.ERROR else logging.WARNING
            fields = {k: v for k, v in d.to_dict().items() if k != "message"}
            notice(f"{d.location}: {d.message}", level, **fields)
            continue
        style = "red" if d.severity is Severity.ERROR else "yellow"
        err_console.print(
            f"[bold]{escape(d.location)}[/bold]: "
            f"[{style}]{d.severity.value}\\[{d.code}][/{style}]: {escape(d.message)}",
            markup=True,
            soft_wrap=True,
        )
        if d.hint:
            err_console.print(f"  hint: {d.hint}", soft_wrap=True, markup=False)


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


def print_table(
    console: Console,
    headers: Sequence[str],
    rows: Iterable[Sequence[str]],
    *,
    right: Collection[str] = (),
    wrap: Collection[str] = (),
    lead: int = 1,
) -> None:
    """Rows as a table when it fits the console's width (COLUMNS; the ``wrap`` columns wrap
    their text within at least 20 columns), else folded: per row, the first ``lead`` cells
    on one line, then the others as ``header: value``, wrapped. Cells are never cut, so ids
    stay whole and can be copied."""
    import textwrap

    from rich import box
    from rich.cells import cell_len
    from rich.table import Table

    rows = [list(row) for row in rows]
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False, show_header=bool(headers))
    for name in headers:
        table.add_column(
            name, justify="right" if name in right else "left", no_wrap=name not in wrap
        )
    for row in rows:
        table.add_row(*row)
    widths = [
        min(20, max(map(cell_len, column))) if name in wrap else max(map(cell_len, column))
        for name, column in zip(headers, zip(headers, *rows, strict=True), strict=True)
    ]
    # cells are padded by a space each side and divided by one more; the edges are not
    if sum(widths) + 3 * (len(widths) - 1) <= console.width:
        console.print(table)
        return
    for row in rows:
        console.print("  ".join(cell for cell in row[:lead] if cell), markup=False)
        # a no-break space inside each `header: value` keeps it on one line where it fits
        items = [
            f"{name}: {cell}".replace(" ", "\xa0")
            for name, cell in zip(headers[lead:], row[lead:], strict=True)
            if cell
        ]
        for line in textwrap.wrap(
            "  ".join(items),
            width=console.width,
            initial_indent="  ",
            subsequent_indent="  ",
            break_long_words=False,
            break_on_hyphens=False,
        ):
            console.print(line.replace("\xa0", " "), markup=False, soft_wrap=True)


def print_summary(
    summary: RunSummary,
    roles: dict[str, str],
    *,
    resources: dict[str, str | None] | None = None,
    as_json: bool = False,
) -> None:
    from engine.runtime.runlog import read_rate

    _, rate = read_rate(summary, roles)
    if as_json:
        sys.stdout.write(json.dumps({**summary_dict(summary), "records_per_s": rate}) + "\n")
        return
    if is_json():
        return  # the run logged its components and its end (engine.run)
    if summary.ok and not log.isEnabledFor(logging.INFO):
        return  # quiet: a run that went well says nothing
    from rich.table import Table

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
    err_console.print(f"{status} in {summary.duration_s:.2f}s ({rate:,.0f} records/s)", markup=True)
    if summary.interrupted:
        err_console.print(
            "stopped by a signal: outputs published only at the end of a run were left as "
            "they were; input is released only for what was published"
        )
    if summary.dead_letters:
        where = (
            f"the dead-letter file {summary.dead_letter_path}"
            if summary.dead_letter_path
            else f"the state store (engine runs show {summary.run_id})"
        )
        err_console.print(f"{summary.dead_letters} record(s) written to {where}", soft_wrap=True)
    if summary.error:
        err_console.print(f"[red]error:[/red] {escape(summary.error)}", markup=True, soft_wrap=True)


def _n(value: int, blank: bool) -> str:
    return "-" if blank else str(value)


@contextmanager
def progress_display(enabled: bool) -> Iterator[object]:
    """A live per-component display on a terminal; nothing when output is not a TTY."""
    if not enabled or not err_console.is_terminal:
        yield None
        return
    from engine.cli.progress import live_progress

    with live_progress(err_console) as update:
        yield update

"""`engine docs` and `engine components`: the option reference, rendered from the models."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from engine.cli.output import err_console, format_option, out_console, print_table
from engine.codecs.registry import default_codecs
from engine.reference import (
    REFERENCE_DIR,
    codec_section,
    component_section,
    render_reference,
    stale_pages,
)
from engine.reference.options import Option, options
from engine.reference.pages import envelope_fields
from engine.registry import default_registry

__all__ = ["components_cmd", "docs_cmd"]


@click.command("docs")
@click.option("--check", is_flag=True, help="Fail (exit 1) naming the pages that are stale.")
@click.option(
    "--output",
    type=click.Path(file_okay=False),
    default=None,
    help="Where the reference lives (default: docs/reference).",
)
def docs_cmd(check: bool, output: str | None) -> None:
    """Write the option reference of every kind and codec, or check it for drift."""
    target = Path(output) if output else REFERENCE_DIR
    pages = render_reference()
    stale = stale_pages(target, pages)
    if check:
        if stale:
            for path in stale:
                err_console.print(f"{path} is out of date: run `engine docs`", markup=False)
            sys.exit(1)
        err_console.print(f"{target} is up to date", markup=False)
        return
    target.mkdir(parents=True, exist_ok=True)
    for path in stale:
        if path.name in pages:
            path.write_text(pages[path.name], encoding="utf-8")
        else:
            path.unlink()
    err_console.print(f"wrote {target} ({len(stale)} page(s) changed)", markup=False)


@click.command("components")
@click.argument("kind", required=False)
@format_option(help="Output format: text, or json (kinds with their options).")
def components_cmd(kind: str | None, fmt: str) -> None:
    """List the component kinds and codecs, or show the options of KIND (a kind's or a
    codec's name, e.g. `file`, `csv`), as in docs/reference."""
    registry, codecs = default_registry(), default_codecs()
    specs = [s for s in registry if kind is None or s.type == kind]
    kinds = [k for k in codecs if kind is None or k.type == kind]
    if not specs and not kinds:
        names = sorted({s.type for s in registry} | {k.type for k in codecs})
        raise click.BadParameter(f"{kind!r} is no kind; kinds: {', '.join(names)}")
    if fmt == "json":
        entries = [
            {
                "role": s.role.value,
                "type": s.type,
                "summary": s.summary,
                "options": _json_options(options(s.config, envelope_fields(s.role))),
            }
            for s in specs
        ] + [
            {
                "role": "codec",
                "type": k.type,
                "summary": k.summary,
                "extensions": list(k.extensions),
                "options": _json_options(options(k.config, ["type"])),
            }
            for k in kinds
        ]
        sys.stdout.write(json.dumps(entries, indent=2) + "\n")
        return
    if kind is None:
        print_table(
            out_console,
            ("kind", "summary"),
            [(f"{s.role.value} {s.type}", s.summary) for s in specs]
            + [(f"codec {k.type}", k.summary) for k in kinds],
            wrap={"summary"},
        )
        out_console.print("\n`engine components KIND` shows a kind's options.", markup=False)
        return
    sections = [
        [f"# {s.role.value} `{s.type}`", *component_section(s, level=2)[1:]] for s in specs
    ] + [[f"# codec `{k.type}`", *codec_section(k, level=2)[1:]] for k in kinds]
    sys.stdout.write("\n\n".join("\n".join(section) for section in sections) + "\n")


def _json_options(rows: list[Option]) -> dict[str, dict[str, object]]:
    return {
        row.name: {
            "type": row.type,
            "required": row.required,
            "default": None if row.required else row.default,
            "description": row.description,
            "when": row.when or None,
        }
        for row in rows
    }

"""What `engine validate` checks on this machine, beyond the file: inputs exist, outputs can be
written. Compile stays pure; only validate calls this, and its findings are warnings (errors
under ``--strict``), since a file may well appear before the run."""

from __future__ import annotations

import glob
import os
from pathlib import Path

from engine.components.base import Role
from engine.errors import Diagnostic, Severity
from engine.runtime.plan import Plan

__all__ = ["preflight"]


def preflight(plan: Plan) -> list[Diagnostic]:
    """Warnings about missing input files and output folders that cannot be written."""
    spec = plan.spec
    base = spec.file.resolve().parent if spec.file is not None else Path.cwd()
    found: list[Diagnostic] = []
    for cid, node in plan.nodes.items():
        if node.entry.spec.type == "sql" and node.role is Role.SOURCE:
            found.extend(_missing_database(plan, cid, base))
        if node.entry.spec.type != "file":
            continue
        path = getattr(node.config, "path", None)
        if not isinstance(path, str):
            continue
        target = Path(path).expanduser()
        target = target if target.is_absolute() else base / target
        loc = (node.role.table, cid, "path")
        if node.role is Role.SOURCE:
            message = _missing_input(target)
        elif node.role is Role.SINK:
            message = _unwritable_output(target)
        else:
            continue
        if message is not None:
            found.append(
                spec.document.diagnostic(
                    "W012" if node.role is Role.SOURCE else "W013",
                    f"{node.role.value} {cid!r}: {message}",
                    loc,
                    "paths are relative to the pipeline file's folder",
                    Severity.WARNING,
                )
            )
    return found


def _missing_database(plan: Plan, cid: str, base: Path) -> list[Diagnostic]:
    from engine.connectors.sql.urls import sqlite_file

    url = plan.nodes[cid].config.url.get_secret_value()  # type: ignore[attr-defined]
    db = sqlite_file(url)
    if db is None:
        return []
    db = db.expanduser() if db.expanduser().is_absolute() else base / db
    if db.is_file():
        return []
    return [
        plan.spec.document.diagnostic(
            "W012",
            f"source {cid!r}: SQLite database {db} does not exist",
            ("sources", cid, "url"),
            "a source reads a database; it never creates one",
            Severity.WARNING,
        )
    ]


def _missing_input(target: Path) -> str | None:
    pattern = str(target)
    if glob.has_magic(pattern):
        if any(Path(p).is_file() for p in glob.iglob(pattern, recursive=True)):
            return None
        return f"no file matches {pattern}"
    if target.is_file():
        return None
    if target.exists():
        return f"{target} is not a file"
    return f"input file {target} does not exist"


def _unwritable_output(target: Path) -> str | None:
    # the folder is fixed up to the first templated part; deeper folders are made per record
    parts = target.parts
    fixed = next((i for i, part in enumerate(parts) if "{" in part), len(parts) - 1)
    folder = Path(*parts[:fixed]) if fixed else Path(parts[0])
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return f"cannot create folder {folder}: {existing} is not a folder"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"cannot write to folder {existing}"
    return None

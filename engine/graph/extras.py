"""Compile's check that each component's client library is installed: a base install runs
file pipelines, and a pipeline that needs a connector names the extra that brings it."""

from __future__ import annotations

from collections.abc import Mapping

from engine.components.extras import install_command, missing_extras
from engine.errors import Diagnostic
from engine.runtime.plan import ComponentEntry, DocumentView

__all__ = ["check_extras"]


def check_extras(doc: DocumentView, components: Mapping[str, ComponentEntry]) -> list[Diagnostic]:
    """An E045 at the ``type`` of every component whose extra is not installed."""
    problems = []
    for cid, entry in components.items():
        missing = missing_extras(entry.config.extras())
        if not missing:
            continue
        names = " and ".join(f"`{extra}`" for extra in missing)
        plural = len(missing) > 1
        problems.append(
            doc.diagnostic(
                "E045",
                f"{entry.role.value} {cid!r} (type {entry.spec.type!r}) needs the {names} "
                f"extra{'s' if plural else ''}, which {'are' if plural else 'is'} not installed",
                (f"{entry.role.value}s", cid, "type"),
                f"install it: {install_command(missing)}",
            )
        )
    return problems

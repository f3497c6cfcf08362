"""How big a pipeline file may be: nesting depth and values after alias expansion."""

from __future__ import annotations

from engine.errors import ConfigError, Diagnostic

__all__ = ["MAX_DEPTH", "MAX_NODES", "too_deep"]

MAX_DEPTH = 64
"""Deepest nesting of tables, mappings, arrays and lists a pipeline file may have."""

MAX_NODES = 100_000
"""Most values a pipeline file may expand to, aliases included."""


def too_deep(file: str, line: int | None, column: int | None) -> ConfigError:
    """Nesting past ``MAX_DEPTH``, located at what opens one level too many."""
    return ConfigError(
        [
            Diagnostic(
                "E004",
                f"nesting deeper than {MAX_DEPTH} levels",
                file,
                line,
                column,
                "a pipeline file needs only a few levels of tables and lists",
            )
        ]
    )

"""Compile-time checks of what a run would trip over: a sink overwriting an input, unknown codecs,
and path-template fields that nothing upstream produces. Pure: paths are compared as text."""

from __future__ import annotations

import difflib
import fnmatch
import os
import string
from collections.abc import Mapping, Sequence

from engine.codecs import codec_for_path
from engine.codecs.registry import default_codecs
from engine.components.base import RUN_FIELDS, Role
from engine.errors import Diagnostic, Severity
from engine.mapping import Expression
from engine.runtime.plan import ComponentEntry, ExpressionKey, PipelineSpec

__all__ = ["check_files", "produced_fields"]

Inputs = Mapping[str, Sequence[tuple[str, str | None]]]


def check_files(
    spec: PipelineSpec,
    inputs: Inputs,
    order: Sequence[str],
    expressions: Mapping[ExpressionKey, Expression],
) -> list[Diagnostic]:
    """Problems with the files a pipeline reads and writes that are visible in the file alone."""
    problems = _overwritten_inputs(spec)
    problems.extend(_unknown_codecs(spec))
    problems.extend(_template_fields(spec, inputs, order, expressions))
    return problems


def _file_path(entry: ComponentEntry) -> str | None:
    if entry.spec.type != "file":
        return None
    path = getattr(entry.config, "path", None)
    return path if isinstance(path, str) else None


def _overwritten_inputs(spec: PipelineSpec) -> list[Diagnostic]:
    """A file sink that writes a file a source reads would replace the run's own input."""
    doc = spec.document
    reads = {
        cid: os.path.normpath(path)
        for cid, entry in spec.components.items()
        if entry.role is Role.SOURCE and (path := _file_path(entry)) is not None
    }
    problems = []
    for cid, entry in spec.components.items():
        path = _file_path(entry)
        if entry.role is not Role.SINK or path is None:
            continue
        written = os.path.normpath(path)
        for source, pattern in reads.items():
            line, col = doc.where(("sources", source, "path"))
            where = f"({doc.name}:{line}:{col})"
            if written == pattern:
                problems.append(
                    doc.diagnostic(
                        "E044",
                        f"sink {cid!r} writes {written}, which source {source!r} reads {where}",
                        ("sinks", cid, "path"),
                        "write the output to another path",
                    )
                )
            elif fnmatch.fnmatchcase(written, pattern):
                problems.append(
                    doc.diagnostic(
                        "W014",
                        f"sink {cid!r} writes {written}, which source {source!r} {where} "
                        f"matches with {pattern}: the next run reads its own output",
                        ("sinks", cid, "path"),
                        "write the output outside the source's pattern",
                        Severity.WARNING,
                    )
                )
    return problems


def _unknown_codecs(spec: PipelineSpec) -> list[Diagnostic]:
    problems = []
    for cid, entry in spec.components.items():
        path = _file_path(entry)
        if path is None or getattr(entry.config, "codec", None) is not None:
            continue
        suffix = os.path.splitext(path)[1]
        if "*" in suffix or "?" in suffix or "[" in suffix or "{" in suffix:
            continue  # a glob or a template: the extension is known per file only
        if codec_for_path(path) is None:
            problems.append(
                _warn(
                    spec,
                    (entry.role.table, cid, "path"),
                    "W010",
                    f"{entry.role.value} {cid!r}: cannot tell the codec of {path!r} from its "
                    "extension, and no `codec` is set",
                    f"set `codec` ({', '.join(default_codecs().names())})",
                )
            )
    return problems


def produced_fields(
    spec: PipelineSpec,
    inputs: Inputs,
    order: Sequence[str],
    expressions: Mapping[ExpressionKey, Expression],
) -> dict[str, frozenset[str] | None]:
    """The record fields each component outputs, where the file says (None: not known)."""
    known: dict[str, frozenset[str] | None] = {}
    for cid in order:
        entry = spec.components[cid]
        fields = getattr(entry.config, "fields", None)
        if entry.role is Role.SOURCE:
            known[cid] = None
        elif entry.spec.type == "map":
            known[cid] = (
                frozenset(fields)
                if isinstance(fields, dict)
                else _object_keys(expressions.get((cid, ("expression",))))
            )
        else:
            ups = [known.get(up) for up, _ in inputs.get(cid, ())]
            if not ups or any(u is None for u in ups):
                known[cid] = None
            else:
                known[cid] = frozenset().union(*(u for u in ups if u is not None))
    return known


def _object_keys(expression: Expression | None) -> frozenset[str] | None:
    """The keys of a whole-record expression that builds an object literal ``{a: x, b: y}``."""
    if expression is None:
        return None
    ast = expression.ast
    if ast["type"] != "multi_select_dict":
        return None
    return frozenset(str(pair["value"]) for pair in ast["children"])


def _template_fields(
    spec: PipelineSpec,
    inputs: Inputs,
    order: Sequence[str],
    expressions: Mapping[ExpressionKey, Expression],
) -> list[Diagnostic]:
    """A `{field}` in a sink's path that no upstream map produces sends records to `_`."""
    known = produced_fields(spec, inputs, order, expressions)
    problems = []
    for cid, entry in spec.components.items():
        path = _file_path(entry)
        if entry.role is not Role.SINK or path is None or cid not in inputs:
            continue
        ups = [known.get(up) for up, _ in inputs[cid]]
        if not ups or any(u is None for u in ups):
            continue
        available = frozenset().union(*(u for u in ups if u is not None))
        for _, name, _, _ in string.Formatter().parse(path):
            if not name or name in RUN_FIELDS or name in available:
                continue
            guess = difflib.get_close_matches(name, sorted(available), n=1)
            listed = ", ".join(sorted(available))
            hint = f"did you mean {{{guess[0]}}}? " if guess else ""
            problems.append(
                _warn(
                    spec,
                    ("sinks", cid, "path"),
                    "W011",
                    f"sink {cid!r}: path field {{{name}}} is produced by no input, so every "
                    "record would go to a file named `_`",
                    f"{hint}the inputs produce: {listed}",
                )
            )
    return problems


def _warn(
    spec: PipelineSpec, path: tuple[str | int, ...], code: str, message: str, hint: str
) -> Diagnostic:
    return spec.document.diagnostic(code, message, path, hint, Severity.WARNING)

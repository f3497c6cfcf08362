"""The graph stage of compile: resolve every component's inputs, order them, find cycles and dead
ends, and build the frozen Plan. Pure, synchronous, no I/O; problems are returned, not raised."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass

import jmespath.exceptions

from engine.components.base import Role
from engine.errors import Diagnostic, Severity
from engine.mapping import Expression, compile_expression
from engine.runtime.plan import TESTS, ComponentEntry, ExpressionKey, Node, PipelineSpec, Plan

__all__ = ["Links", "build_plan", "check_tests", "link"]


@dataclass(frozen=True)
class Links:
    """The resolved graph of a valid file, and what is wrong with it."""

    #: component id -> (upstream id, upstream output name or None)
    inputs: dict[str, list[tuple[str, str | None]]]
    consumers: dict[str, dict[str | None, list[str]]]
    order: list[str]
    #: a cycle as a chain ``a -> b -> a``, when there is one
    cycle: list[str] | None
    problems: list[Diagnostic]


def link(spec: PipelineSpec) -> Links:
    """Resolve inputs and order the components; unknown inputs, cycles and dead ends."""
    problems: list[Diagnostic] = []
    doc = spec.document
    entries = spec.components
    outputs = {cid: e.config.output_names() for cid, e in entries.items()}
    known = sorted(
        [cid for cid, e in entries.items() if e.role is not Role.SINK]
        + [f"{cid}.{name}" for cid, names in outputs.items() for name in names]
    )

    inputs: dict[str, list[tuple[str, str | None]]] = {}
    for cid, entry in entries.items():
        refs: list[tuple[str, str | None]] = []
        for index, ref in enumerate(getattr(entry.config, "inputs", []) or []):
            loc = (entry.role.table, cid, "inputs", index)
            resolved = _resolve(ref, entries, outputs)
            if isinstance(resolved, str):
                guess = [g for g in difflib.get_close_matches(ref, known, n=2) if g != ref]
                hint = f"did you mean {guess[0]!r}?" if guess else f"known: {', '.join(known)}"
                problems.append(doc.diagnostic("E040", resolved, loc, hint))
                continue
            if resolved[0] == cid:
                problems.append(doc.diagnostic("E041", f"{cid!r} reads its own output", loc))
                continue
            refs.append(resolved)
        inputs[cid] = refs

    consumers: dict[str, dict[str | None, list[str]]] = {cid: {} for cid in entries}
    for cid, refs in inputs.items():
        for up, out in refs:
            consumers[up].setdefault(out, []).append(cid)

    order, cycle = _toposort(list(entries), inputs)
    if cycle:
        first = cycle[0]
        entry = entries[first]
        problems.append(
            doc.diagnostic(
                "E042",
                "cycle: " + " -> ".join(cycle),
                (entry.role.table, first, "inputs"),
                "a pipeline is a DAG: break the cycle by removing one of these inputs",
            )
        )

    for cid, entry in entries.items():
        if entry.role is Role.SINK:
            continue
        used = consumers[cid]
        if not used:
            problems.append(
                _warning(
                    spec,
                    entry,
                    f"{entry.role.value} {cid!r} is not read by anything (dead end)",
                    "W001",
                    "add it to a sink's inputs or remove it",
                )
            )
        for name in outputs[cid]:
            if name not in used and None not in used:
                problems.append(
                    _warning(spec, entry, f"output {cid}.{name} is not read by anything", "W002")
                )
    return Links(inputs, consumers, order, cycle, problems)


def build_plan(
    spec: PipelineSpec,
    links: Links,
    expressions: Mapping[ExpressionKey, Expression],
    warnings: list[Diagnostic],
) -> Plan:
    """The frozen Plan of a file whose every stage passed."""
    assert links.cycle is None and not any(d.severity is Severity.ERROR for d in warnings)
    entries = spec.components
    nodes = {
        cid: Node(entries[cid], tuple(links.inputs[cid]), links.consumers[cid])
        for cid in links.order
    }
    return Plan(spec, nodes, tuple(links.order), dict(expressions), warnings)


def _warning(
    spec: PipelineSpec, entry: ComponentEntry, message: str, code: str, hint: str | None = None
) -> Diagnostic:
    line, col = spec.document.where((entry.role.table, entry.id))
    return Diagnostic(code, message, spec.document.name, line, col, hint, Severity.WARNING)


def _resolve(
    ref: str, entries: dict[str, ComponentEntry], outputs: dict[str, tuple[str, ...]]
) -> tuple[str, str | None] | str:
    if ref in entries:
        if entries[ref].role is Role.SINK:
            return f"input {ref!r} is a sink; sinks have no output"
        names = outputs.get(ref, ())
        if names:
            listed = ", ".join(f"{ref}.{n}" for n in names)
            return f"input {ref!r} has only named outputs: read {listed}"
        return (ref, None)
    if "." in ref:
        base, _, name = ref.rpartition(".")
        if base in entries:
            if name in outputs.get(base, ()):
                return (base, name)
            names = outputs.get(base, ())
            if not names:
                return f"input {ref!r}: {base!r} has no named outputs"
            return f"input {ref!r}: {base!r} has no output {name!r} (it has {', '.join(names)})"
    return f"unknown input {ref!r}"


def _toposort(
    ids: list[str], inputs: dict[str, list[tuple[str, str | None]]]
) -> tuple[list[str], list[str] | None]:
    """Order by dependencies; on a cycle return it as a chain ``a -> b -> a``."""
    state: dict[str, int] = {}
    order: list[str] = []
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for up, _ in inputs.get(node, []):
            if state.get(up) == 1:
                i = stack.index(up)
                return [*stack[i:], up][::-1]
            if up not in state:
                found = visit(up)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        order.append(node)
        return None

    for cid in ids:
        if cid not in state:
            cycle = visit(cid)
            if cycle:
                return order, cycle
    return order, None


def check_tests(
    spec: PipelineSpec, expressions: dict[ExpressionKey, Expression]
) -> list[Diagnostic]:
    """`[[tests]]` name real sources and components, and their conditions compile: each is
    added to ``expressions`` under ``TESTS``, reusing a component's expression of one source."""
    doc = spec.document
    by_source = {expression.source: expression for expression in expressions.values()}
    problems: list[Diagnostic] = []
    sources = sorted(c for c, e in spec.components.items() if e.role is Role.SOURCE)
    for index, case in enumerate(spec.tests):
        for sid in case.inputs:
            if sid not in sources:
                problems.append(
                    doc.diagnostic(
                        "E060",
                        f"test {case.name!r} feeds {sid!r}, which is not a source",
                        ("tests", index, "inputs", sid),
                        f"sources: {', '.join(sources)}",
                    )
                )
        for cid, expect in case.expect.items():
            if cid not in spec.components:
                guess = difflib.get_close_matches(cid, list(spec.components), n=1)
                problems.append(
                    doc.diagnostic(
                        "E061",
                        f"test {case.name!r} expects output of unknown component {cid!r}",
                        ("tests", index, "expect", cid),
                        f"did you mean {guess[0]!r}?" if guess else None,
                    )
                )
            for i, condition in enumerate(expect.conditions):
                try:
                    found = by_source.get(condition) or compile_expression(condition)
                    by_source[condition] = found
                    expressions[(TESTS, ("tests", index, "expect", cid, "conditions", i))] = found
                except jmespath.exceptions.JMESPathError as exc:
                    problems.append(
                        doc.diagnostic(
                            "E050",
                            f"bad JMESPath condition in test {case.name!r}: {exc}",
                            ("tests", index, "expect", cid, "conditions", i),
                        )
                    )
    return problems

"""The compiled pipeline the runtime runs: a frozen Plan, built by engine.graph from a valid file.

It lives here, below the graph, so the runtime can read it without importing the compiler.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from engine.components.base import ComponentConfig, Role
from engine.components.expressions import CompiledExpressions, ExpressionKey
from engine.errors import Diagnostic, Severity
from engine.mapping import Expression
from engine.model import DeadLetterSettings, PipelineMeta, ScheduleSettings, TestCase
from engine.model.audit import AuditSettings
from engine.model.state import StateSettings
from engine.registry import ComponentSpec

__all__ = [
    "TESTS",
    "ComponentEntry",
    "DocumentView",
    "ExpressionKey",
    "Node",
    "PipelineSpec",
    "Plan",
]

#: A key path in the pipeline file: ("sinks", "out", "path").
KeyPath = tuple[str | int, ...]
#: The owner of the ``[[tests]]`` conditions in ``Plan.expressions`` (never a component id).
TESTS = "[tests]"


class DocumentView(Protocol):
    """What compile and the runtime need of a parsed pipeline file: its text and key positions."""

    @property
    def path(self) -> Path | None: ...

    @property
    def text(self) -> str: ...

    @property
    def name(self) -> str: ...

    def where(self, path: KeyPath) -> tuple[int | None, int | None]: ...

    def diagnostic(
        self,
        code: str,
        message: str,
        path: KeyPath,
        hint: str | None = None,
        severity: Severity = Severity.ERROR,
    ) -> Diagnostic: ...


@dataclass(frozen=True)
class ComponentEntry:
    id: str
    spec: ComponentSpec
    config: ComponentConfig

    @property
    def role(self) -> Role:
        return self.spec.role


@dataclass(frozen=True)
class PipelineSpec:
    """A valid pipeline file: its settings and components, ready to compile."""

    document: DocumentView
    meta: PipelineMeta
    audit: AuditSettings
    dead_letter: DeadLetterSettings
    components: dict[str, ComponentEntry]
    warnings: list[Diagnostic] = field(default_factory=list)
    tests: list[TestCase] = field(default_factory=list)
    state: StateSettings = field(default_factory=StateSettings)
    schedule: ScheduleSettings | None = None
    #: the values interpolation put into secret fields or read from a secrets backend
    secrets: frozenset[str] = field(default=frozenset(), repr=False)

    @property
    def file(self) -> Path | None:
        return self.document.path

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.document.text.encode()).hexdigest()

    def where(self, role: Role, cid: str, *loc: str | int) -> tuple[int | None, int | None]:
        return self.document.where((role.table, cid, *loc))


@dataclass(frozen=True)
class Node:
    entry: ComponentEntry
    #: (upstream id, upstream output name or None for the default output)
    inputs: tuple[tuple[str, str | None], ...]
    #: output name (None = default) -> downstream ids
    consumers: dict[str | None, list[str]] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return self.entry.id

    @property
    def role(self) -> Role:
        return self.entry.role

    @property
    def config(self) -> ComponentConfig:
        return self.entry.config


@dataclass(frozen=True)
class Plan:
    spec: PipelineSpec
    nodes: dict[str, Node]
    order: tuple[str, ...]  # topological: every node after its inputs
    #: every JMESPath expression of the components, compiled once: (id, key path) -> expression
    expressions: Mapping[ExpressionKey, Expression]
    warnings: list[Diagnostic]

    @property
    def name(self) -> str:
        return self.spec.meta.name

    def started_details(self) -> dict[str, object]:
        """What ``run_started`` says of the pipeline, for the trail and its rules."""
        nodes = self.nodes
        return {
            "pipeline_sha256": self.spec.sha256,
            "components": {cid: nodes[cid].entry.spec.type for cid in self.order},
            # How each transform accounts for its records (SOX completeness).
            "accounting": {
                cid: nodes[cid].entry.spec.implementation.accounting
                for cid in self.order
                if nodes[cid].role is Role.TRANSFORM
            },
            # GDPR Art. 30 declarations, for the compliance rules.
            "pipeline_meta": self.spec.meta.model_dump(
                include={"purpose", "data_categories", "retention_days"}
            ),
        }

    def expressions_of(self, cid: str) -> CompiledExpressions:
        """One component's compiled expressions, by key path, for its ComponentContext."""
        return CompiledExpressions(
            {loc: expr for (owner, loc), expr in self.expressions.items() if owner == cid}
        )

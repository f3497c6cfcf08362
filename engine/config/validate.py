"""The model stages of compile: interpolate, validate every table against its located pydantic
model, and check the rules file. Problems are collected, never raised: compile raises once."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.components.base import Role
from engine.config.fields import FieldLookup
from engine.config.interpolate import interpolate
from engine.config.loader import Document
from engine.config.located import valid_keys_hint, validate_model
from engine.config.positions import Path_
from engine.config.rules_file import read_rules
from engine.errors import Diagnostic, Severity
from engine.model import (
    TOP_LEVEL_KEYS,
    DeadLetterSettings,
    PipelineMeta,
    ScheduleSettings,
    TestCase,
)
from engine.model.audit import AuditSettings
from engine.model.state import StateSettings
from engine.registry import Registry
from engine.runtime.plan import ComponentEntry, PipelineSpec

__all__ = ["Validated", "validate_document"]


@dataclass
class Validated:
    """What the model stages made of a file: every table that is valid, and every problem."""

    document: Document
    meta: PipelineMeta | None
    audit: AuditSettings | None
    dead_letter: DeadLetterSettings | None
    components: dict[str, ComponentEntry]
    tests: list[TestCase] = field(default_factory=list)
    problems: list[Diagnostic] = field(default_factory=list)
    state: StateSettings | None = None
    schedule: ScheduleSettings | None = None
    #: values put into secret fields or read from a secrets backend: never in a message
    secrets: frozenset[str] = frozenset()

    @property
    def errors(self) -> bool:
        return any(d.severity is Severity.ERROR for d in self.problems)

    def spec(self) -> PipelineSpec | None:
        """The file's spec, when every table is valid."""
        if self.errors or self.meta is None or self.audit is None or self.dead_letter is None:
            return None
        if self.state is None:
            return None
        return PipelineSpec(
            self.document,
            self.meta,
            self.audit,
            self.dead_letter,
            self.components,
            list(self.problems),
            self.tests,
            state=self.state,
            schedule=self.schedule,
            secrets=self.secrets,
        )


def validate_document(doc: Document, reg: Registry, env: Mapping[str, str] | None) -> Validated:
    """Interpolate ``doc`` and validate its tables; the rules file it names too."""
    fields = FieldLookup(doc.tree, reg)
    interpolated = interpolate(doc, env, multiline=fields.takes_key)
    tree, problems = interpolated.tree, interpolated.problems
    secrets = frozenset(
        r.value
        for r in interpolated.resolved
        if r.value and (r.kind == "secret" or fields.holds_secret(r.path))
    )

    for key in tree:
        if key not in TOP_LEVEL_KEYS:
            problems.append(
                doc.diagnostic(
                    "E020", f"unknown table {key!r}", (key,), valid_keys_hint(key, TOP_LEVEL_KEYS)
                )
            )

    meta = validate_model(doc, PipelineMeta, tree.get("pipeline"), ("pipeline",), problems)
    audit = validate_model(doc, AuditSettings, tree.get("audit", {}), ("audit",), problems)
    if audit is not None and audit.rules_file:
        audit = _check_rules_file(doc, audit, problems)
    dead_letter = validate_model(
        doc, DeadLetterSettings, tree.get("dead_letter", {}), ("dead_letter",), problems
    )
    state = validate_model(doc, StateSettings, tree.get("state", {}), ("state",), problems)
    schedule = None
    if "schedule" in tree:
        schedule = validate_model(doc, ScheduleSettings, tree["schedule"], ("schedule",), problems)
    tests: list[TestCase] = []
    raw_tests = tree.get("tests", [])
    if not isinstance(raw_tests, list):
        problems.append(doc.diagnostic("E029", "`tests` must be an array of tables", ("tests",)))
    else:
        for index, raw in enumerate(raw_tests):
            case = validate_model(doc, TestCase, raw, ("tests", index), problems)
            if case is not None:
                tests.append(case)

    components: dict[str, ComponentEntry] = {}
    seen_at: dict[str, Path_] = {}
    for role in Role:
        table = tree.get(role.table, {})
        if not isinstance(table, dict):
            problems.append(
                doc.diagnostic(
                    "E021", f"[{role.table}] must be a table of components", (role.table,)
                )
            )
            continue
        for cid, raw in table.items():
            path: Path_ = (role.table, cid)
            if not _valid_id(cid):
                problems.append(
                    doc.diagnostic(
                        "E022",
                        f"component id {cid!r} may hold only letters, digits, _ and -",
                        path,
                    )
                )
            if cid in seen_at:
                problems.append(
                    doc.diagnostic(
                        "E023",
                        f"component id {cid!r} is used twice ({seen_at[cid][0]} and {role.table})",
                        path,
                        "ids are shared by sources, transforms and sinks",
                    )
                )
                continue
            seen_at[cid] = path
            entry = _validate_component(doc, reg, role, cid, raw, problems)
            if entry is not None:
                components[cid] = entry

    if not any(c.role is Role.SOURCE for c in components.values()) and not any(
        d.severity is Severity.ERROR for d in problems
    ):
        problems.append(doc.diagnostic("E024", "the pipeline has no source", ("sources",)))
    if schedule is not None:
        for entry in components.values():
            if entry.role is Role.SOURCE and entry.spec.type == "webhook":
                problems.append(
                    doc.diagnostic(
                        "E047",
                        f"a pipeline with a [schedule] cannot have a webhook source "
                        f"(sources.{entry.id}): webhook sources run as long as `engine serve`",
                        ("schedule",),
                        "serve the webhook part as a pipeline of its own",
                    )
                )
    return Validated(
        doc,
        meta,
        audit,
        dead_letter,
        components,
        tests,
        problems,
        state=state,
        schedule=schedule,
        secrets=secrets,
    )


def _check_rules_file(
    doc: Document, audit: AuditSettings, problems: list[Diagnostic]
) -> AuditSettings:
    """Validate ``[audit] rules_file`` now, and pin it to the pipeline file's folder."""
    assert audit.rules_file is not None
    path = Path(audit.rules_file).expanduser()
    if not path.is_absolute() and doc.path is not None:
        path = doc.path.resolve().parent / path
    if not path.is_file():
        problems.append(
            doc.diagnostic(
                "E121",
                f"rules file {path} does not exist",
                ("audit", "rules_file"),
                "paths are relative to the pipeline file's folder",
            )
        )
        return audit
    problems.extend(read_rules(path)[1])
    return audit.model_copy(update={"rules_file": str(path)})


def _valid_id(cid: object) -> bool:
    return isinstance(cid, str) and bool(cid) and all(ch.isalnum() or ch in "_-" for ch in cid)


def _validate_component(
    doc: Document, reg: Registry, role: Role, cid: str, raw: Any, problems: list[Diagnostic]
) -> ComponentEntry | None:
    path: Path_ = (role.table, cid)
    if not isinstance(raw, dict):
        problems.append(doc.diagnostic("E025", f"{role.value} {cid!r} must be a table", path))
        return None
    kind = raw.get("type")
    types = reg.types(role)
    if kind is None:
        problems.append(
            doc.diagnostic(
                "E026",
                f"{role.value} {cid!r} has no 'type'",
                path,
                f"one of: {', '.join(types)}",
            )
        )
        return None
    spec = reg.get(role, str(kind))
    if spec is None:
        guess = reg.suggest(role, str(kind))
        hint = f"did you mean {guess!r}?" if guess else f"one of: {', '.join(types)}"
        problems.append(
            doc.diagnostic(
                "E027", f"unknown {role.value} type {kind!r} in {cid!r}", (*path, "type"), hint
            )
        )
        return None
    config = validate_model(doc, spec.config, raw, path, problems)
    return ComponentEntry(cid, spec, config) if config is not None else None

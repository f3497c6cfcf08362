"""Parse, interpolate and validate a pipeline file, reporting every problem at once."""

from __future__ import annotations

import difflib
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from engine.audit.settings import AuditSettings
from engine.components.base import ComponentConfig, Role
from engine.components.envelope import foreign_roles
from engine.config.interpolate import interpolate
from engine.config.loader import Document, load_document, parse_document
from engine.config.positions import Path_
from engine.errors import ConfigError, Diagnostic, Severity
from engine.model import TOP_LEVEL_KEYS, DeadLetterSettings, PipelineMeta, TestCase
from engine.registry import ComponentSpec, Registry, default_registry

__all__ = [
    "ComponentEntry",
    "PipelineSpec",
    "load_pipeline",
    "load_pipeline_text",
    "validate_document",
]

M = TypeVar("M", bound=BaseModel)


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

    document: Document
    meta: PipelineMeta
    audit: AuditSettings
    dead_letter: DeadLetterSettings
    components: dict[str, ComponentEntry]
    warnings: list[Diagnostic] = field(default_factory=list)
    tests: list[TestCase] = field(default_factory=list)

    @property
    def file(self) -> Path | None:
        return self.document.path

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.document.text.encode()).hexdigest()

    def where(self, role: Role, cid: str, *loc: str | int) -> tuple[int | None, int | None]:
        return self.document.where((role.table, cid, *loc))


def load_pipeline(
    path: str | Path, *, registry: Registry | None = None, env: Mapping[str, str] | None = None
) -> PipelineSpec:
    return validate_document(load_document(path), registry=registry, env=env)


def load_pipeline_text(
    text: str,
    *,
    fmt: str = "toml",
    registry: Registry | None = None,
    env: Mapping[str, str] | None = None,
    path: Path | None = None,
) -> PipelineSpec:
    return validate_document(parse_document(text, fmt=fmt, path=path), registry=registry, env=env)


def validate_document(
    doc: Document, *, registry: Registry | None = None, env: Mapping[str, str] | None = None
) -> PipelineSpec:
    reg = registry or default_registry()
    tree, problems, _secrets = interpolate(doc, env)

    for key in tree:
        if key not in TOP_LEVEL_KEYS:
            problems.append(
                doc.diagnostic(
                    "E020", f"unknown table {key!r}", (key,), _valid_keys_hint(key, TOP_LEVEL_KEYS)
                )
            )

    meta = _validate_model(doc, PipelineMeta, tree.get("pipeline"), ("pipeline",), problems)
    audit = _validate_model(doc, AuditSettings, tree.get("audit", {}), ("audit",), problems)
    if audit is not None and audit.rules_file:
        audit = _check_rules_file(doc, audit, problems)
    dead_letter = _validate_model(
        doc, DeadLetterSettings, tree.get("dead_letter", {}), ("dead_letter",), problems
    )
    tests: list[TestCase] = []
    raw_tests = tree.get("tests", [])
    if not isinstance(raw_tests, list):
        problems.append(doc.diagnostic("E029", "`tests` must be an array of tables", ("tests",)))
    else:
        for index, raw in enumerate(raw_tests):
            case = _validate_model(doc, TestCase, raw, ("tests", index), problems)
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

    errors = [d for d in problems if d.severity is Severity.ERROR]
    if errors:
        # still check the expressions of the components that are valid: report all at once
        from engine.graph.expressions import compile_expressions

        problems.extend(compile_expressions(doc, components)[1])
    if errors or meta is None or audit is None or dead_letter is None:
        raise ConfigError(problems)
    return PipelineSpec(doc, meta, audit, dead_letter, components, problems, tests)


def _check_rules_file(
    doc: Document, audit: AuditSettings, problems: list[Diagnostic]
) -> AuditSettings:
    """Validate ``[audit] rules_file`` now, and pin it to the pipeline file's folder."""
    from engine.audit.rules.loader import load_rules_file

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
    try:
        load_rules_file(path)
    except ConfigError as exc:
        problems.extend(exc.diagnostics)
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
    config = _validate_model(doc, spec.config, raw, path, problems)
    return ComponentEntry(cid, spec, config) if config is not None else None


def _validate_model(
    doc: Document, model: type[M], raw: Any, path: Path_, problems: list[Diagnostic]
) -> M | None:
    if raw is None:
        problems.append(
            doc.diagnostic("E028", f"missing required table [{'.'.join(map(str, path))}]", path)
        )
        return None
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        seen: dict[tuple[str, tuple[str | int, ...]], Diagnostic] = {}
        for err in exc.errors(include_input=False, include_url=False):
            diag = _from_pydantic(doc, model, path, err, raw)
            key = (diag.code, _tree_loc(raw, tuple(err["loc"])))
            if key in seen:  # one value failing every branch of a union: say it once
                first = seen[key]
                merged = Diagnostic(
                    first.code,
                    f"{first.message}; or {diag.message.split(': ', 1)[-1]}",
                    first.file,
                    first.line,
                    first.column,
                    first.hint,
                    first.severity,
                )
                problems[problems.index(first)] = merged
                seen[key] = merged
                continue
            seen[key] = diag
            problems.append(diag)
        return None


def _tree_loc(raw: Any, loc: Sequence[str | int]) -> tuple[str | int, ...]:
    """The part of a pydantic error location that exists in the file (drops union tags)."""
    out: list[str | int] = []
    node = raw
    for part in loc:
        in_dict = isinstance(node, dict) and part in node
        if in_dict or (isinstance(node, list) and isinstance(part, int) and part < len(node)):
            node = node[part]
            out.append(part)
        elif isinstance(node, dict) and isinstance(part, str) and node.get("type") == part:
            continue  # a discriminated union's tag
        elif node is not None and not isinstance(node, dict | list) and isinstance(part, str):
            continue  # a union branch name under a scalar (codec = "csv", x = 42)
        else:
            out.append(part)
            node = None
    return tuple(out)


def _from_pydantic(
    doc: Document, model: type[BaseModel], path: Path_, err: Mapping[str, Any], raw: Any
) -> Diagnostic:
    model_loc: tuple[str | int, ...] = tuple(err["loc"])
    loc = _tree_loc(raw, model_loc)
    where = ".".join(str(p) for p in (*path, *loc))
    kind = err["type"]
    if kind == "extra_forbidden":
        role = getattr(model, "kind_role", None)
        others = foreign_roles(role, str(loc[-1])) if role and len(loc) == 1 else ()
        if role and others:
            return doc.diagnostic(
                "E033",
                f"{loc[-1]!r} means nothing for a {role.value} ({'.'.join(map(str, path))})",
                (*path, *loc),
                f"only a {' or a '.join(r.value for r in others)} has it; remove it",
            )
        valid = _fields_at(model, model_loc[:-1])
        hint = _valid_keys_hint(str(loc[-1]), valid) if valid else None
        return doc.diagnostic(
            "E030", f"unknown key {loc[-1]!r} in {_parent(path, loc)}", (*path, *loc), hint
        )
    if kind == "missing":
        return doc.diagnostic("E031", f"missing required key {where}", (*path, *loc))
    if kind == "union_tag_invalid":
        ctx = err.get("ctx", {})
        return doc.diagnostic(
            "E032",
            f"unknown type {ctx.get('tag')!r} at {where}",
            (*path, *loc),
            f"one of: {ctx.get('expected_tags')}",
        )
    message = str(err["msg"]).removeprefix("Value error, ")
    return doc.diagnostic("E032", f"{where}: {message}", (*path, *loc))


def _parent(path: Path_, loc: tuple[str | int, ...]) -> str:
    full = (*path, *loc[:-1])
    return ".".join(str(p) for p in full) if full else "the file"


def _fields_at(model: type[BaseModel], loc: Sequence[str | int]) -> list[str]:
    """Valid keys of the (sub)model at a pydantic error location, following union tags."""
    current: list[type[BaseModel]] = [model]
    for part in loc:
        if len(current) > 1:
            tagged = [m for m in current if _tag(m) == part]
            if tagged:
                current = tagged
                continue
        if len(current) != 1:
            return []
        info = current[0].model_fields.get(str(part))
        if info is None:
            return []
        current = _models_in(info.annotation)
    return sorted(current[0].model_fields) if len(current) == 1 else []


def _tag(model: type[BaseModel]) -> Any:
    field = model.model_fields.get("type")
    return field.default if field is not None else None


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The models inside an annotation: itself, or the members of a (nested, annotated) union."""
    found: list[type[BaseModel]] = []
    stack = [annotation]
    while stack:
        item = stack.pop()
        if isinstance(item, type) and issubclass(item, BaseModel):
            found.append(item)
            continue
        if getattr(item, "__metadata__", None) is not None:
            stack.append(item.__origin__)
            continue
        stack.extend(getattr(item, "__args__", ()))
    return found


def _valid_keys_hint(key: str, valid: Sequence[str]) -> str:
    guess = difflib.get_close_matches(key, valid, n=1)
    text = f"valid keys: {', '.join(valid)}"
    return f"did you mean {guess[0]!r}? {text}" if guess else text

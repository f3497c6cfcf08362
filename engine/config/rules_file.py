"""Read a compliance rules file (TOML ``[[rules]]`` or YAML ``rules:``) with located errors.

Reading a file is config's job; compliance gets the validated rules."""

from __future__ import annotations

from pathlib import Path

from engine.compliance.rules.model import ComplianceRule
from engine.config.loader import Document, load_document, parse_document
from engine.config.located import validate_model
from engine.errors import ConfigError, Diagnostic
from engine.model.rules import RulesFile

__all__ = ["load_rules_file", "parse_rules", "read_rules", "read_rules_text"]


def load_rules_file(path: str | Path) -> list[ComplianceRule]:
    """The rules of a file; raises ConfigError with every problem, each at file:line:col."""
    return _rules(*read_rules(path))


def parse_rules(text: str, *, fmt: str = "toml", name: str = "<rules>") -> list[ComplianceRule]:
    """The rules of a document given as text (for tests and tools)."""
    return _rules(*read_rules_text(text, fmt=fmt, name=name))


def _rules(parsed: RulesFile | None, problems: list[Diagnostic]) -> list[ComplianceRule]:
    if problems or parsed is None:
        raise ConfigError(problems)
    return [ComplianceRule.from_spec(spec) for spec in parsed.rules]


def read_rules(path: str | Path) -> tuple[RulesFile | None, list[Diagnostic]]:
    """The rules file at ``path``, or None, and every problem, each at file:line:col."""
    try:
        doc = load_document(path)
    except ConfigError as exc:
        return None, list(exc.diagnostics)
    return _validate(doc)


def read_rules_text(
    text: str, *, fmt: str = "toml", name: str = "<rules>"
) -> tuple[RulesFile | None, list[Diagnostic]]:
    """A rules document given as text (for tests and tools)."""
    try:
        doc = parse_document(text, fmt=fmt, path=Path(name))
    except ConfigError as exc:
        return None, list(exc.diagnostics)
    return _validate(doc)


def _validate(doc: Document) -> tuple[RulesFile | None, list[Diagnostic]]:
    problems: list[Diagnostic] = []
    parsed = validate_model(doc, RulesFile, doc.tree, (), problems)
    if parsed is not None:
        seen: dict[str, int] = {}
        for i, spec in enumerate(parsed.rules):
            if spec.id in seen:
                problems.append(
                    doc.diagnostic(
                        "E120",
                        f"duplicate rule id {spec.id!r} (first at rules[{seen[spec.id]}])",
                        ("rules", i, "id"),
                        "give every rule its own id",
                    )
                )
            seen.setdefault(spec.id, i)
    return (None if problems else parsed), problems

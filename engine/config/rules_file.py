"""Read a rules file (TOML ``[[rules]]`` or YAML ``rules:``) with located errors."""

from __future__ import annotations

from pathlib import Path

from engine.compliance.rules.model import ComplianceRule
from engine.errors import ConfigError, Diagnostic
from engine.model.rules import RulesFile

__all__ = ["load_rules_file", "parse_rules"]


def load_rules_file(path: str | Path) -> list[ComplianceRule]:
    """The rules of a file; raises ConfigError with every problem, each at file:line:col."""
    from engine.config.loader import load_document

    return _rules(load_document(path))


def parse_rules(text: str, *, fmt: str = "toml", name: str = "<rules>") -> list[ComplianceRule]:
    """The rules of a document given as text (for tests and tools)."""
    from engine.config.loader import parse_document

    return _rules(parse_document(text, fmt=fmt, path=Path(name)))


def _rules(doc: object) -> list[ComplianceRule]:
    from engine.config.loader import Document
    from engine.config.validate import _validate_model

    assert isinstance(doc, Document)
    problems: list[Diagnostic] = []
    parsed = _validate_model(doc, RulesFile, doc.tree, (), problems)
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
    if problems or parsed is None:
        raise ConfigError(problems)
    return [ComplianceRule.from_spec(spec) for spec in parsed.rules]

"""Read a rules file (TOML ``[[rules]]`` or YAML ``rules:``) with located errors."""

from __future__ import annotations

from pathlib import Path

from engine.compliance.rules.model import ComplianceRule
from engine.config.rules import read_rules, read_rules_text
from engine.errors import ConfigError, Diagnostic
from engine.model.rules import RulesFile

__all__ = ["load_rules_file", "parse_rules"]


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

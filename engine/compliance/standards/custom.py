"""CUSTOM and user rules: those of ``[audit] rules`` and of ``[audit] rules_file``.

Nothing is built in for CUSTOM; a rule of any standard given in the pipeline file or a
rules file is a configured rule and follows its standard's switch.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from engine.compliance.rules.model import ComplianceRule
from engine.compliance.standards.base import BuiltinConfig
from engine.errors import FatalError
from engine.model.audit import AuditSettings

__all__ = ["configured_rules", "rules"]


def rules(cfg: BuiltinConfig) -> list[ComplianceRule]:
    """No built-in CUSTOM rule: custom rules are configured (see :func:`configured_rules`)."""
    return []


def configured_rules(
    settings: AuditSettings,
    load_rules: Callable[[str], list[ComplianceRule]] | None,
    *,
    base_dir: str | None = None,
) -> list[ComplianceRule]:
    """The rules of ``[audit] rules``, then those of ``[audit] rules_file`` (read with
    ``load_rules``; a relative path is taken from ``base_dir``)."""
    found = [ComplianceRule.from_spec(s) for s in settings.rules]
    if settings.rules_file:
        if load_rules is None:
            raise FatalError("[audit] rules_file is set but no rules file loader was given")
        path = settings.rules_file
        if base_dir and not os.path.isabs(path):
            path = os.path.join(base_dir, path)
        found += load_rules(path)
    return found

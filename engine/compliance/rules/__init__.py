"""Compliance rules: the model, conditions, built-in rules per standard and the policy.

Import the policy from :mod:`engine.compliance.rules.policy`; this package's top level holds
only the light, dependency-free parts so ``engine.model.audit`` can use the spec.
"""

from engine.compliance.rules.model import ComplianceRule, EventView, Hit, RuleSet
from engine.model.rules import RuleActionName, RulesFile, RuleSpec, WindowSpec

__all__ = [
    "ComplianceRule",
    "EventView",
    "Hit",
    "RuleActionName",
    "RuleSet",
    "RuleSpec",
    "RulesFile",
    "WindowSpec",
]

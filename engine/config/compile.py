"""One compile: a pipeline file becomes a frozen Plan, or one ConfigError with every problem.

The stages run in order and each adds its findings to one list: interpolation, the located
pydantic models and the rules file (``validate``), the graph, the expressions, the tests, the
resources sinks write and the files the run touches. Expressions are compiled here, once, and
reach the components through their ComponentContext. Pure and synchronous: the runtime never
reads the file again.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping
from pathlib import Path

from engine.config.loader import Document, load_document, parse_document
from engine.config.validate import validate_document
from engine.errors import ConfigError, Diagnostic, Severity
from engine.graph.checks import check_files
from engine.graph.expressions import compile_expressions
from engine.graph.extras import check_extras
from engine.graph.plan import build_plan, check_tests, link
from engine.graph.resources import check_resources
from engine.redact import ValueMask
from engine.registry import Registry, default_registry
from engine.runtime.plan import Plan

__all__ = ["compile_document", "compile_path", "compile_text", "masked"]


def compile_document(
    doc: Document, *, registry: Registry | None = None, env: Mapping[str, str] | None = None
) -> Plan:
    """Run every stage over a parsed file; raise one ConfigError with all their problems."""
    validated = validate_document(doc, registry or default_registry(), env)
    problems: list[Diagnostic] = list(validated.problems)
    expressions, bad_expressions = compile_expressions(doc, validated.components)
    spec = validated.spec()
    if spec is None:
        # the graph of a file with invalid tables would only echo them: check what stands alone
        problems.extend(bad_expressions)
        problems.extend(check_resources(doc, validated.components))
        raise ConfigError(masked(problems, validated.secrets))
    links = link(spec)
    problems.extend(links.problems)
    problems.extend(bad_expressions)
    problems.extend(check_tests(spec, expressions))
    problems.extend(check_resources(doc, spec.components))
    problems.extend(check_extras(doc, spec.components))
    if links.cycle is None:
        problems.extend(check_files(spec, links.inputs, links.order, expressions))
    problems = masked(problems, validated.secrets)
    if any(d.severity is Severity.ERROR for d in problems):
        raise ConfigError(problems)
    return build_plan(spec, links, expressions, problems)


def compile_path(
    path: str | Path, *, registry: Registry | None = None, env: Mapping[str, str] | None = None
) -> Plan:
    """Read, parse and compile the pipeline file at ``path``."""
    return compile_document(load_document(path), registry=registry, env=env)


def compile_text(
    text: str,
    *,
    fmt: str = "toml",
    path: Path | None = None,
    registry: Registry | None = None,
    env: Mapping[str, str] | None = None,
) -> Plan:
    """Parse and compile a pipeline given as text; ``path`` names it in diagnostics."""
    return compile_document(parse_document(text, fmt=fmt, path=path), registry=registry, env=env)


def masked(problems: list[Diagnostic], secrets: Collection[str]) -> list[Diagnostic]:
    """The problems with every secret value masked (``Plan.spec.secrets``)."""
    mask = ValueMask(secrets)
    if not mask:
        return problems
    return [
        dataclasses.replace(d, message=mask.text(d.message), hint=d.hint and mask.text(d.hint))
        for d in problems
    ]

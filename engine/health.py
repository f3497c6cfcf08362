"""Health checks: ask every component of a plan whether its endpoint answers.

Used by ``engine validate --connect`` and by ``/healthz`` under ``engine serve``. Only kinds
that implement ``check()`` are contacted; each check runs once, without retries, under a
deadline, and its resources are released afterwards. Under ``validate --connect`` a kind with
a ``check_document()`` (GraphQL) also has its document checked against the server's schema.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import anyio

from engine.components.base import ComponentContext, Role, Source
from engine.errors import Diagnostic, EngineError
from engine.runtime.plan import Node, Plan
from engine.settings import EngineSettings
from engine.workspace import base_dir_of, workspace_for

if TYPE_CHECKING:
    from engine.connectors.http.graphql import DocumentProblem

__all__ = ["CHECK_TIMEOUT", "check_node", "check_plan"]

CHECK_TIMEOUT = 10.0


def _context(plan: Plan, node: Node, settings: EngineSettings) -> ComponentContext:
    return ComponentContext(
        component_id=node.id,
        pipeline=plan.name,
        base_dir=base_dir_of(plan.spec.file),
        workspace=workspace_for(plan.spec.file, settings),
        dry_run=True,
        settings=settings,
        timeout=node.config.timeout,
        expressions=plan.expressions_of(node.id),
    )


def _has_check(component: Any) -> bool:
    # every kind inherits a no-op check(); only an override talks to an endpoint
    return type(component).check is not Source.check


async def check_node(
    plan: Plan,
    node: Node,
    timeout: float = CHECK_TIMEOUT,
    *,
    settings: EngineSettings | None = None,
) -> str | None:
    """None when healthy (or nothing to check), else why not; never raises for the endpoint.
    ``settings`` default to the process environment's."""
    env = settings if settings is not None else EngineSettings.load()
    component = node.entry.spec.implementation(node.config, _context(plan, node, env))
    if not _has_check(component):
        return None
    problem: str | None = None
    try:
        with anyio.fail_after(timeout):
            await component.check()
    except TimeoutError:
        problem = f"no answer within {timeout:g}s"
    except EngineError as exc:
        problem = str(exc)
    except Exception as exc:  # a check must report, not crash validate or /healthz
        problem = f"{type(exc).__name__}: {exc}"
    finally:
        await _release(component, node)
    return problem


async def _release(component: Any, node: Node) -> None:
    with anyio.CancelScope(shield=True):
        try:
            if node.role is Role.SINK:
                await component.close(success=False)
            elif node.role is Role.SOURCE:
                await component.close()
        except Exception:
            pass  # releasing after a check is best effort: the finding is the check's


async def check_document(
    plan: Plan, node: Node, timeout: float, settings: EngineSettings
) -> list[DocumentProblem]:
    """The node's document against its server's schema; none for other kinds, or when the
    server cannot be asked (the health check reports that)."""
    component = node.entry.spec.implementation(node.config, _context(plan, node, settings))
    if not callable(getattr(component, "check_document", None)):
        return []
    try:
        with anyio.fail_after(timeout):
            problems: list[DocumentProblem] = await component.check_document()
    except Exception:  # unreachable or no introspection: check_node has the finding
        problems = []
    finally:
        await _release(component, node)
    return problems


async def check_plan(
    plan: Plan, timeout: float = CHECK_TIMEOUT, *, settings: EngineSettings | None = None
) -> list[Diagnostic]:
    """One diagnostic (E090, located at the component) per component whose endpoint fails.
    ``settings`` default to the process environment's."""
    env = settings if settings is not None else EngineSettings.load()
    results: dict[str, str | None] = {}

    documents: dict[str, list[DocumentProblem]] = {}

    async def one(node: Node) -> None:
        results[node.id] = await check_node(plan, node, timeout, settings=env)
        if results[node.id] is None:
            documents[node.id] = await check_document(plan, node, timeout, env)

    async with anyio.create_task_group() as tg:
        for cid in plan.order:
            tg.start_soon(one, plan.nodes[cid])
    diagnostics: list[Diagnostic] = []
    for cid in plan.order:
        problem = results.get(cid)
        diagnostics.extend(_document_diagnostics(plan, plan.nodes[cid], documents.get(cid, [])))
        if problem is None:
            continue
        node = plan.nodes[cid]
        diagnostics.append(
            plan.spec.document.diagnostic(
                "E090",
                f"{node.role.value} {cid!r} failed its health check: {problem}",
                (node.role.table, cid),
                "check the URL, the credentials and that the endpoint is up",
            )
        )
    return diagnostics


def _document_diagnostics(
    plan: Plan, node: Node, problems: list[DocumentProblem]
) -> list[Diagnostic]:
    """E091 per schema error: at its line in the .graphql file, or at the inline `query`."""
    hint = "compare the document with the server's schema (fields, arguments, types)"
    found = []
    for problem in problems:
        message = f"{node.role.value} {node.id!r}: {problem.message}"
        if problem.file is not None:
            found.append(
                Diagnostic("E091", message, problem.file, problem.line, problem.column, hint)
            )
        else:
            found.append(
                plan.spec.document.diagnostic(
                    "E091",
                    f"{message} (query line {problem.line}, column {problem.column})",
                    (node.role.table, node.id, "query"),
                    hint,
                )
            )
    return found

"""The DAG of a Plan as Mermaid, Graphviz DOT or JSON."""

from __future__ import annotations

from engine.components.base import Role
from engine.runtime.plan import Plan

__all__ = ["to_dot", "to_json", "to_mermaid"]

_MERMAID_SHAPE = {Role.SOURCE: ("[/", "/]"), Role.TRANSFORM: ("[", "]"), Role.SINK: ("[\\", "\\]")}
_DOT_SHAPE = {Role.SOURCE: "invhouse", Role.TRANSFORM: "box", Role.SINK: "house"}


def _label(plan: Plan, cid: str) -> str:
    node = plan.nodes[cid]
    return f"{cid} ({node.entry.spec.type})"


def to_mermaid(plan: Plan) -> str:
    lines = ["flowchart LR"]
    for cid in plan.order:
        node = plan.nodes[cid]
        left, right = _MERMAID_SHAPE[node.role]
        lines.append(f'    {_mid(cid)}{left}"{_label(plan, cid)}"{right}')
    for cid in plan.order:
        for up, output in plan.nodes[cid].inputs:
            arrow = f"-->|{output}|" if output else "-->"
            lines.append(f"    {_mid(up)} {arrow} {_mid(cid)}")
    return "\n".join(lines) + "\n"


def to_dot(plan: Plan) -> str:
    lines = [f'digraph "{plan.name}" {{', "    rankdir=LR;"]
    for cid in plan.order:
        node = plan.nodes[cid]
        lines.append(f'    "{cid}" [label="{_label(plan, cid)}", shape={_DOT_SHAPE[node.role]}];')
    for cid in plan.order:
        for up, output in plan.nodes[cid].inputs:
            attr = f' [label="{output}"]' if output else ""
            lines.append(f'    "{up}" -> "{cid}"{attr};')
    lines.append("}")
    return "\n".join(lines) + "\n"


def to_json(plan: Plan) -> dict[str, object]:
    """Nodes (id, role, type, resource) in run order, and edges (from, to, the output used)."""
    nodes = [
        {
            "id": cid,
            "role": plan.nodes[cid].role.value,
            "type": plan.nodes[cid].entry.spec.type,
            "resource": plan.nodes[cid].config.resource(),
        }
        for cid in plan.order
    ]
    edges = [
        {"from": up, "to": cid, "output": output}
        for cid in plan.order
        for up, output in plan.nodes[cid].inputs
    ]
    return {"pipeline": plan.name, "nodes": nodes, "edges": edges}


def _mid(cid: str) -> str:
    return "n_" + "".join(c if c.isalnum() else "_" for c in cid)

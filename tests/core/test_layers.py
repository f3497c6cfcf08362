"""The layer contract: an engine module imports only its own layer or lower ones, with no cycles.

Every import counts: module-level, inside functions, under ``if TYPE_CHECKING:``, and
``importlib.import_module("engine....")`` with a literal name. A lazy import that dodges a cycle
at run time is still an edge here. See docs/architecture.md.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

#: Top to bottom. A module may import modules of its own layer or of a lower one (a higher
#: number). Every engine module must fall under one of these names: a new package is placed on
#: purpose, not by default. ``engine`` itself (the root ``__init__``) re-exports errors: bottom.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("engine.cli", "engine.__main__"),
    (
        "engine.serve",
        "engine.pipeline",
        "engine.partitions",
        "engine.testing",
        "engine.integrations",
        "engine.health",
        "engine.schema",
        "engine.reference",
        "engine.telemetry",
    ),
    ("engine.audit",),
    ("engine.config",),
    ("engine.compliance",),
    ("engine.graph",),
    ("engine.runtime",),
    ("engine.model",),
    ("engine.components", "engine.registry"),
    ("engine.state", "engine.workspace", "engine.secrets"),
    ("engine.webhooks",),
    ("engine.connectors",),
    ("engine.codecs",),
    ("engine.resilience", "engine.columnar"),
    ("engine.mapping",),
    ("engine.records",),
    ("engine.ledger",),
    (
        "engine.settings",
        "engine.redact",
        "engine.logs",
        "engine.errors",
        "engine.exports",
        "engine",
    ),
)

#: Today's known violations, each (importer, imported) with why it is still here. Other parts of
#: the work remove them; an entry whose edge is gone (or no longer breaks a rule) fails the test,
#: so this list only shrinks. Never add to it to make a new import pass.
ALLOWED: dict[tuple[str, str], str] = {}

Graph = dict[str, set[str]]


def engine_modules(root: Path) -> dict[str, tuple[Path, bool]]:
    """Dotted name -> (file, is a package ``__init__``) for every module under root/engine."""
    found: dict[str, tuple[Path, bool]] = {}
    for path in sorted((root / "engine").rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts.pop()
        found[".".join(parts)] = (path, is_package)
    return found


def _targets(node: ast.AST, package: str) -> Iterable[tuple[str, str | None]]:
    """(module, imported name or None) for an import statement or a literal import_module()."""
    if isinstance(node, ast.Import):
        for alias in node.names:
            yield alias.name, None
    elif isinstance(node, ast.ImportFrom):
        if node.level:
            base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
            module = ".".join(base + ([node.module] if node.module else []))
        else:
            module = node.module or ""
        for alias in node.names:
            yield module, alias.name
    elif isinstance(node, ast.Call) and node.args:
        func, arg = node.func, node.args[0]
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
        literal = arg.value if isinstance(arg, ast.Constant) else None
        if name == "import_module" and isinstance(literal, str):
            yield literal, None


def import_graph(root: Path) -> Graph:
    """Module -> the engine modules it imports, wherever in the file the import is written."""
    modules = engine_modules(root)

    def resolve(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: Graph = {}
    for module, (path, is_package) in modules.items():
        package = module if is_package else module.rpartition(".")[0]
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            for target, name in _targets(node, package):
                if not (target == "engine" or target.startswith("engine.")):
                    continue
                full = f"{target}.{name}" if name else target
                hit = full if full in modules else resolve(target)
                if hit is not None and hit != module:
                    edges.add(hit)
        graph[module] = edges
    return graph


def layer_of(module: str) -> int | None:
    """The 1-based layer of ``module`` (longest listed prefix wins), None when unassigned."""
    best: tuple[int, int] | None = None
    for number, names in enumerate(LAYERS, start=1):
        for name in names:
            covers = module == name or (name != "engine" and module.startswith(name + "."))
            if covers and (best is None or len(name) > best[0]):
                best = (len(name), number)
    return None if best is None else best[1]


def upward(graph: Graph) -> dict[tuple[str, str], str]:
    """Every edge that imports a higher layer, with its description."""
    found = {}
    for importer, imported in sorted((a, b) for a, bs in graph.items() for b in bs):
        low, high = layer_of(importer), layer_of(imported)
        if low is not None and high is not None and high < low:
            found[(importer, imported)] = (
                f"{importer} -> {imported} (layer {low} imports layer {high})"
            )
    return found


def cyclic_groups(graph: Graph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    group = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        group.append(member)
                        if member == node:
                            break
                    if len(group) > 1:
                        groups.append(sorted(group))
    return sorted(groups)


def _without(graph: Graph, edges: Iterable[tuple[str, str]]) -> Graph:
    drop = set(edges)
    return {a: {b for b in bs if (a, b) not in drop} for a, bs in graph.items()}


def _cycle_report(graph: Graph, groups: list[list[str]]) -> str:
    lines = []
    for group in groups:
        members = set(group)
        lines.append(f"cycle of {len(group)}: " + ", ".join(group))
        for a in group:
            lines += [f"  {a} -> {b}" for b in sorted(graph[a] & members)]
    return "\n".join(lines)


GRAPH = import_graph(ROOT)


def test_every_engine_module_has_a_layer() -> None:
    unplaced = sorted(m for m in GRAPH if layer_of(m) is None)
    assert not unplaced, "modules in no layer (add their package to LAYERS):\n" + "\n".join(
        unplaced
    )


def test_no_import_runs_up_a_layer() -> None:
    bad = [text for edge, text in upward(GRAPH).items() if edge not in ALLOWED]
    assert not bad, "imports that run up a layer:\n" + "\n".join(bad)


def test_no_import_cycles() -> None:
    graph = _without(GRAPH, ALLOWED)
    groups = cyclic_groups(graph)
    assert not groups, "import cycles:\n" + _cycle_report(graph, groups)


def test_the_ledger_imports_nothing_of_the_engine_but_errors() -> None:
    """The provable log stands alone: compliance and the wiring sit above it."""
    outside = sorted(
        (a, b)
        for a, targets in GRAPH.items()
        if a == "engine.ledger" or a.startswith("engine.ledger.")
        for b in targets
        if not (b == "engine.ledger" or b.startswith("engine.ledger.") or b == "engine.errors")
    )
    assert outside == []


def test_allowlist_only_shrinks() -> None:
    wrong = upward(GRAPH)
    on_cycle = {(a, b) for group in cyclic_groups(GRAPH) for a in group for b in group}
    stale = [
        f"{a} -> {b}: " + ("no longer imported" if b not in GRAPH.get(a, ()) else "breaks no rule")
        for a, b in ALLOWED
        if b not in GRAPH.get(a, ()) or ((a, b) not in wrong and (a, b) not in on_cycle)
    ]
    assert not stale, "remove these entries from ALLOWED:\n" + "\n".join(stale)


def test_the_docs_list_the_same_layers() -> None:
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| (\d+) \| (.+?) \|", text, flags=re.MULTILINE)
    documented = tuple(tuple(re.findall(r"`([\w.]+)`", names)) for _, names in rows)
    assert [int(number) for number, _ in rows] == list(range(1, len(LAYERS) + 1))
    assert documented == LAYERS


def test_the_graph_counts_every_kind_of_import(tmp_path: Path) -> None:
    package = tmp_path / "engine"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "low.py").write_text("")
    (package / "sub" / "__init__.py").write_text("from . import mod\n")
    (package / "sub" / "mod.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from engine.low import X\n"
        "def f():\n    from ..low import Y\n    import engine.high\n"
        "class C:\n    def g(self):\n        importlib.import_module('engine.other')\n"
    )
    (package / "high.py").write_text("import engine.sub.mod\n")
    (package / "other.py").write_text("")
    graph = import_graph(tmp_path)
    assert graph["engine.sub.mod"] == {"engine.low", "engine.high", "engine.other"}
    assert graph["engine.sub"] == {"engine.sub.mod"}
    assert cyclic_groups(graph) == [["engine.high", "engine.sub.mod"]]

"""Python source generated from jmespath.py's parse tree.

Each AST node becomes straight-line statements that leave its value in a local variable (an
"atom"); projections become ``for`` loops and ``||``/``&&`` become ``if`` blocks. Static kinds
(what a value can possibly be) let the generator drop checks that cannot fail, and pure
subexpressions computed unconditionally are reused instead of evaluated twice.
"""

from __future__ import annotations

import json
import linecache
import math
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from itertools import count
from typing import Any

from engine.mapping.compiler import runtime
from engine.mapping.compiler.functions import emit_call
from engine.mapping.compiler.kinds import (
    ANY,
    BOOL,
    DICT,
    IMMUTABLE,
    LIST,
    NONE,
    NULL,
    NUM,
    OTHER,
    STR,
    Kind,
    Node,
    Val,
    kind_of,
)
from engine.mapping.library import CUSTOM_FUNCTIONS

__all__ = ["Builder", "Module"]

_PATH_NODES = frozenset(
    {"field", "subexpression", "index_expression", "index", "current", "identity"}
)
#: Past this indentation a node goes into a function of its own: Python allows only 20 nested
#: loops/try blocks and 100 indentation levels in one function.
_HOIST_INDENT = 16
_ORDERING = {"lt": "<", "lte": "<=", "gt": ">", "gte": ">="}


def _plain(value: Any) -> bool:
    """Whether ``repr(value)`` rebuilds ``value`` as a fresh object of the same JSON types."""
    if value is None or isinstance(value, bool | int | str):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list):
        return all(_plain(item) for item in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    return False


class Module:
    """One generated module: hoisted functions, constants and the namespace they run in."""

    def __init__(self) -> None:
        self._names = count()
        self.chunks: list[str] = []
        self.namespace: dict[str, Any] = {
            "_call": runtime.call_function,
            "_order": runtime.order,
            "_terr": runtime.type_error,
            "_eterr": runtime.element_type_error,
            "_to_number": runtime.to_number,
            "_to_number_str": runtime.to_number_str,
            "_join": runtime.join_strings,
            "_ExprRef": runtime.ExprRef,
            "_CMP": runtime.CMP_TYPES,
            "_NUMS": runtime.NUM_TYPES,
            "_Dec": Decimal,
            "_SIZED": frozenset({str, list, dict}),
            "_EMPTYABLE": (str, list, dict),
            **{f"_fn_{name}": spec.impl for name, spec in CUSTOM_FUNCTIONS.items()},
        }

    def name(self, prefix: str) -> str:
        return f"{prefix}{next(self._names)}"

    def const(self, value: Any) -> str:
        """A module-level name bound to ``value``."""
        name = self.name("_k")
        self.namespace[name] = value
        return name

    def build(self, label: str) -> dict[str, Any]:
        """Execute the generated source; return the namespace holding its functions."""
        source = "\n\n".join(self.chunks) + "\n"
        filename = f"<jmespath {next(_FILES)}: {label[:60]}>"
        # Registered so that tracebacks through generated code show its lines.
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        with warnings.catch_warnings():
            # a SyntaxWarning is a generator bug: fail here (and fall back), never warn later
            warnings.simplefilter("error", SyntaxWarning)
            code = compile(source, filename, "exec")
        exec(code, self.namespace)
        return self.namespace


_FILES = count()


class Builder:
    """Statements of one generated function, and the node-by-node translation into them."""

    def __init__(self, module: Module, indent: int = 1) -> None:
        self.module = module
        self.lines: list[str] = []
        self.indent = indent
        self._conditional = 0
        self._cache: dict[tuple[str, str], Val] = {}

    # -- emitting ---------------------------------------------------------------------------

    def emit(self, line: str) -> None:
        self.lines.append("    " * self.indent + line)

    def tmp(self) -> str:
        return self.module.name("_t")

    def assign(self, code: str, kind: Kind) -> Val:
        name = self.tmp()
        self.emit(f"{name} = {code}")
        return Val(name, kind)

    @contextmanager
    def block(self, header: str, conditional: bool = True) -> Iterator[None]:
        """An indented block; values cached inside a conditional one do not escape it."""
        self.emit(header + ":")
        self.indent += 1
        start = len(self.lines)
        self._conditional += conditional
        try:
            yield
        finally:
            self._conditional -= conditional
            if len(self.lines) == start:
                self.emit("pass")
            self.indent -= 1

    def source(self, header: str) -> str:
        return "\n".join([header, *self.lines])

    # -- truthiness -------------------------------------------------------------------------

    @staticmethod
    def falsy(val: Val) -> str:
        """A Python condition that is true when ``val`` is JMESPath-false."""
        code, kind = val.code, val.kind
        if kind == NULL:
            return "True"
        if kind <= BOOL | NULL:
            return f"{code} is not True"
        if not kind & (NULL | BOOL | STR | LIST | DICT):
            return "False"
        if not kind & (NUM | OTHER):  # no zero to tell apart from false
            return f"not {code}"
        empty = f"(not {code} and isinstance({code}, _EMPTYABLE))"
        return f"({code} is None or {code} is False or {empty})"

    @classmethod
    def truthy(cls, val: Val) -> str:
        condition = cls.falsy(val)
        if condition in ("True", "False"):
            return "False" if condition == "True" else "True"
        if condition.startswith("not "):
            return condition[4:]
        if condition.endswith(" is not True"):
            return condition[: -len(" is not True")] + " is True"
        return f"not {condition}"

    # -- translation ------------------------------------------------------------------------

    def value(self, node: Node, cur: Val) -> Val:
        """Emit statements computing ``node`` on ``cur``; return where the result is."""
        key = None
        if self._conditional == 0 and node["type"] not in ("literal", "current", "identity"):
            key = (json.dumps(node, sort_keys=True, default=repr), cur.code)
            hit = self._cache.get(key)
            if hit is not None:
                return hit
        handler: Callable[[Node, Val], Val] | None = getattr(self, "_" + node["type"], None)
        if handler is None:
            raise NotImplementedError(f"JMESPath node {node['type']!r}")
        if self.indent >= _HOIST_INDENT and node["type"] not in ("literal", "current", "field"):
            result = self._hoisted(node, cur)
        else:
            result = handler(node, cur)
        if key is not None and _reusable(node, result):
            self._cache[key] = result
        return result

    def _function(self, node: Node, kind: Kind) -> str:
        """Hoist ``node`` into a module-level function of the current node; return its name."""
        name = self.module.name("_x")
        inner = Builder(self.module)
        result = inner.value(node, Val("_v", kind))
        inner.emit(f"return {result.code}")
        self.module.chunks.append(inner.source(f"def {name}(_v):"))
        return name

    def _hoisted(self, node: Node, cur: Val) -> Val:
        return self.assign(f"{self._function(node, cur.kind)}({cur.code})", ANY)

    def _literal(self, node: Node, cur: Val) -> Val:
        value = node["value"]
        if _plain(value):
            if isinstance(value, list | dict):  # a fresh object per evaluation, never shared
                return self.assign(repr(value), kind_of(value))
            if isinstance(value, int | float) and not isinstance(value, bool):
                return Val(f"({value!r})", NUM)  # (1).__class__ is valid Python, 1.__class__ not
            return Val(repr(value), kind_of(value))
        return Val(self.module.const(value), kind_of(value))

    def _current(self, node: Node, cur: Val) -> Val:
        return cur

    _identity = _current

    def _field(self, node: Node, cur: Val) -> Val:
        key = repr(node["value"])
        if "dict" not in cur.kind:
            return NONE
        if cur.kind == DICT:
            return self.assign(f"{cur.code}.get({key})", ANY)
        return self.assign(f"{cur.code}.get({key}) if isinstance({cur.code}, dict) else None", ANY)

    def _chain(self, node: Node, cur: Val) -> Val:
        for child in node["children"]:
            cur = self.value(child, cur)
        return cur

    _subexpression = _chain
    _index_expression = _chain
    _pipe = _chain

    def _index(self, node: Node, cur: Val) -> Val:
        index: int = node["value"]
        if "list" not in cur.kind:
            return NONE
        c = cur.code
        bound = f"len({c}) > {index}" if index >= 0 else f"len({c}) >= {-index}"
        test = bound if cur.kind == LIST else f"isinstance({c}, list) and {bound}"
        return self.assign(f"{c}[{index}] if {test} else None", ANY)

    def _slice(self, node: Node, cur: Val) -> Val:
        if "list" not in cur.kind:
            return NONE
        start, stop, step = (repr(part) for part in node["children"])
        # Python slicing is what jmespath.py uses; a zero step raises the same ValueError.
        sliced = f"{cur.code}[{start}:{stop}:{step}]"
        if cur.kind == LIST:
            return self.assign(sliced, LIST)
        return self.assign(f"{sliced} if isinstance({cur.code}, list) else None", LIST | NULL)

    def _flatten(self, node: Node, cur: Val) -> Val:
        base = self.value(node["children"][0], cur)
        if "list" not in base.kind:
            return NONE
        out = self.tmp()
        self.emit(f"{out} = None")
        item = self.tmp()
        with self._if_list(base):
            self.emit(f"{out} = []")
            with self.block(f"for {item} in {base.code}"):
                with self.block(f"if isinstance({item}, list)"):
                    self.emit(f"{out}.extend({item})")
                with self.block("else"):
                    self.emit(f"{out}.append({item})")
        return Val(out, LIST if base.kind == LIST else LIST | NULL)

    @contextmanager
    def _if_list(self, base: Val) -> Iterator[None]:
        if base.kind == LIST:
            yield
        else:
            with self.block(f"if isinstance({base.code}, list)"):
                yield

    def _collect(self, out: str, node: Node, item: str) -> None:
        """Append ``node`` evaluated on ``item`` to list ``out`` unless it is null."""
        result = self.value(node, Val(item, ANY))
        if "null" not in result.kind:
            self.emit(f"{out}.append({result.code})")
        elif result.kind != NULL:
            with self.block(f"if {result.code} is not None"):
                self.emit(f"{out}.append({result.code})")

    def _projection(self, node: Node, cur: Val) -> Val:
        left, right = node["children"]
        base = self.value(left, cur)
        if "list" not in base.kind:
            return NONE
        out = self.tmp()
        self.emit(f"{out} = None")
        item = self.tmp()
        with self._if_list(base):
            if right["type"] in ("identity", "current"):
                c = base.code
                self.emit(f"{out} = [{item} for {item} in {c} if {item} is not None]")
            else:
                self.emit(f"{out} = []")
                with self.block(f"for {item} in {base.code}"):
                    self._collect(out, right, item)
        return Val(out, LIST if base.kind == LIST else LIST | NULL)

    def _value_projection(self, node: Node, cur: Val) -> Val:
        left, right = node["children"]
        base = self.value(left, cur)
        if "dict" not in base.kind:
            return NONE
        out = self.tmp()
        self.emit(f"{out} = None")
        item = self.tmp()
        with self.block(f"if isinstance({base.code}, dict)"):
            self.emit(f"{out} = []")
            with self.block(f"for {item} in {base.code}.values()"):
                self._collect(out, right, item)
        return Val(out, LIST | NULL)

    def _filter_projection(self, node: Node, cur: Val) -> Val:
        left, right, condition = node["children"]
        base = self.value(left, cur)
        if "list" not in base.kind:
            return NONE
        out = self.tmp()
        self.emit(f"{out} = None")
        item = self.tmp()
        with self._if_list(base):
            self.emit(f"{out} = []")
            with self.block(f"for {item} in {base.code}"):
                test = self.value(condition, Val(item, ANY))
                with self.block(f"if {self.truthy(test)}"):
                    self._collect(out, right, item)
        return Val(out, LIST if base.kind == LIST else LIST | NULL)

    @contextmanager
    def _unless_null(self, cur: Val, out: str) -> Iterator[None]:
        """Multi-selects of null are null: run the body only for a non-null current node."""
        if "null" not in cur.kind:
            yield
        else:
            self.emit(f"{out} = None")
            with self.block(f"if {cur.code} is not None"):
                yield

    def _multi_select_list(self, node: Node, cur: Val) -> Val:
        if cur.kind == NULL:
            return NONE
        out = self.tmp()
        with self._unless_null(cur, out):
            items = [self.value(child, cur).code for child in node["children"]]
            self.emit(f"{out} = [{', '.join(items)}]")
        return Val(out, LIST if "null" not in cur.kind else LIST | NULL)

    def _multi_select_dict(self, node: Node, cur: Val) -> Val:
        if cur.kind == NULL:
            return NONE
        out = self.tmp()
        with self._unless_null(cur, out):
            pairs = [
                f"{pair['value']!r}: {self.value(pair['children'][0], cur).code}"
                for pair in node["children"]
            ]
            self.emit(f"{out} = {{{', '.join(pairs)}}}")
        return Val(out, DICT if "null" not in cur.kind else DICT | NULL)

    def _or_expression(self, node: Node, cur: Val) -> Val:
        return self._short_circuit(node, cur, self.falsy)

    def _and_expression(self, node: Node, cur: Val) -> Val:
        return self._short_circuit(node, cur, self.truthy)

    def _short_circuit(self, node: Node, cur: Val, go_on: Callable[[Val], str]) -> Val:
        """`a || b` / `a && b`: the left value, or the right one when ``go_on(left)`` holds."""
        left = self.value(node["children"][0], cur)
        test = go_on(left)
        if test == "False":
            return left
        out = self.assign(left.code, left.kind)
        with self.block(f"if {test}"):
            right = self.value(node["children"][1], cur)
            self.emit(f"{out.code} = {right.code}")
        return Val(out.code, left.kind | right.kind)

    def _not_expression(self, node: Node, cur: Val) -> Val:
        operand = self.value(node["children"][0], cur)
        return self.assign(self.falsy(operand), BOOL)

    def _comparator(self, node: Node, cur: Val) -> Val:
        op = node["value"]
        left = self.value(node["children"][0], cur)
        right = self.value(node["children"][1], cur)
        lc, rc = left.code, right.code
        if op in ("eq", "ne"):
            if (rc in _BOOLS and _is_name(lc)) or (lc in _BOOLS and _is_name(rc)):
                # Equal to a boolean only when it is that boolean (1 is not true).
                test = f"{lc} is {rc}"
            elif (left.kind & BOOL and right.kind & NUM) or (left.kind & NUM and right.kind & BOOL):
                # jmespath.py: 0 and 1 do not equal false and true.
                test = f"({lc} == {rc} and ({lc}.__class__ is bool) == ({rc}.__class__ is bool))"
            else:
                test = f"{lc} == {rc}"
            return self.assign(test if op == "eq" else f"not ({test})", BOOL)
        symbol = _ORDERING[op]
        if left.kind <= NUM and right.kind <= NUM:
            return self.assign(f"{lc} {symbol} {rc}", BOOL)
        checks = [f"{val.code}.__class__ in _CMP" for val in (left, right) if not val.kind <= NUM]
        code = f"({lc} {symbol} {rc}) if {' and '.join(checks)} else _order({op!r}, {lc}, {rc})"
        return self.assign(code, BOOL | NULL)

    def _expref(self, node: Node, cur: Val) -> Val:
        function = self._function(node["children"][0], ANY)
        reference = self.module.name("_ref")
        self.module.chunks.append(f"{reference} = _ExprRef({function}, None)")
        return Val(reference, OTHER)

    def _function_expression(self, node: Node, cur: Val) -> Val:
        return emit_call(self, node, cur)


_BOOLS = ("True", "False")


def _is_name(code: str) -> bool:
    """Whether an atom is a variable (``x is True`` on a literal is a SyntaxWarning)."""
    return code.isidentifier() and code not in ("True", "False", "None")


def _pure(node: Node) -> bool:
    if node["type"] == "function_expression" and node["value"] == "now":
        return False
    return all(_pure(child) for child in node.get("children", ()) if isinstance(child, dict))


def _path_only(node: Node) -> bool:
    children = (child for child in node.get("children", ()) if isinstance(child, dict))
    return node["type"] in _PATH_NODES and all(_path_only(child) for child in children)


def _reusable(node: Node, result: Val) -> bool:
    """A value may be reused if recomputing it would give an equal value that is not a fresh
    container: immutable results, or references into the input document."""
    return _pure(node) and (result.kind <= IMMUTABLE or _path_only(node))

"""Function calls in generated code: hot functions inlined, the rest through one generic call.

Arguments are always all evaluated first and then type-checked in order, as jmespath.py does,
so the first error raised is the same one. Arity was checked when the expression was parsed.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Protocol

from engine.mapping.compiler.kinds import ANY, NULL, NUM, STR, Kind, Node, Val

__all__ = ["Builder", "emit_call"]


class Builder(Protocol):
    """What an emitter needs of :class:`engine.mapping.compiler.codegen.Builder`."""

    def value(self, node: Node, cur: Val) -> Val: ...

    def emit(self, line: str) -> None: ...

    def tmp(self) -> str: ...

    def assign(self, code: str, kind: Kind) -> Val: ...

    def block(self, header: str, conditional: bool = True) -> AbstractContextManager[None]: ...


Emitter = Callable[[Builder, str, list[Node], Val], Val | None]


def _args(b: Builder, nodes: list[Node], cur: Val) -> list[Val]:
    return [b.value(node, cur) for node in nodes]


def _check(b: Builder, function: str, val: Val, kind: Kind, test: str, expected: str) -> None:
    """Emit a type check of ``val`` unless its static kind already satisfies it."""
    if not val.kind <= kind:
        b.emit(f"if {test.format(val.code)}: _terr({function!r}, {val.code}, {expected})")


def _check_number(b: Builder, function: str, val: Val) -> None:
    _check(b, function, val, NUM, "{}.__class__ not in _NUMS", "['number']")


def _check_string(b: Builder, function: str, val: Val) -> None:
    _check(b, function, val, STR, "{}.__class__ is not str", "['string']")


def _check_string_element(b: Builder, function: str, val: Val) -> None:
    if not val.kind <= STR:
        c = val.code
        b.emit(f"if {c}.__class__ is not str: _eterr({function!r}, {c}, ['array-string'])")


def _generic(b: Builder, name: str, nodes: list[Node], cur: Val) -> Val:
    args = _args(b, nodes, cur)
    return b.assign(f"_call({name!r}, [{', '.join(arg.code for arg in args)}])", ANY)


def _to_number(b: Builder, name: str, nodes: list[Node], cur: Val) -> Val:
    (arg,) = _args(b, nodes, cur)
    if arg.kind <= NUM:
        return arg
    c = arg.code
    # ASCII digits convert exactly as jmespath.py's int() would (int() refuses > 4300 digits)
    digits = f"{c}.isdigit() and {c}.isascii() and len({c}) < 4300"
    fast = f"int({c}) if {digits} else _to_number_str({c})"
    if arg.kind <= STR:
        return b.assign(fast, NUM | NULL)
    out = b.tmp()
    with b.block(f"if {c}.__class__ is str"):
        b.emit(f"{out} = {fast}")
    with b.block("else"):
        b.emit(f"{out} = _to_number({c})")
    return Val(out, NUM | NULL)


_BINARY = {"add": "+", "subtract": "-", "multiply": "*"}


def _arithmetic(b: Builder, name: str, nodes: list[Node], cur: Val) -> Val:
    left, right = _args(b, nodes, cur)
    _check_number(b, name, left)
    _check_number(b, name, right)
    lc, rc = left.code, right.code
    # a decimal goes to the library function, which keeps it exact beside a float
    plain = f"{lc}.__class__ is not _Dec and {rc}.__class__ is not _Dec"
    if name == "divide":
        # so does a zero divisor, for the documented error
        return b.assign(f"{lc} / {rc} if {rc} and {plain} else _fn_divide({lc}, {rc})", NUM)
    return b.assign(f"{lc} {_BINARY[name]} {rc} if {plain} else _fn_{name}({lc}, {rc})", NUM)


def _round(b: Builder, name: str, nodes: list[Node], cur: Val) -> Val:
    value, digits = _args(b, nodes, cur)
    _check_number(b, name, value)
    _check_number(b, name, digits)
    if digits.code.strip("()").lstrip("-").isdigit():  # a whole-number literal
        return b.assign(f"round({value.code}, {digits.code})", NUM)
    return b.assign(f"_fn_round({value.code}, {digits.code})", NUM)


def _join(b: Builder, name: str, nodes: list[Node], cur: Val) -> Val:
    items = nodes[1]
    if items["type"] != "multi_select_list" or "null" in cur.kind:
        separator, array = _args(b, nodes, cur)
        return b.assign(f"_join('join', {separator.code}, {array.code})", STR)
    # join(sep, [a, b, ...]) with a list built right here: check and concatenate the parts.
    separator = b.value(nodes[0], cur)
    parts = _args(b, items["children"], cur)
    _check_string(b, name, separator)
    for part in parts:
        _check_string_element(b, name, part)
    if not parts:
        return Val("''", STR)
    if separator.code in ("''", '""'):
        return b.assign(" + ".join(part.code for part in parts), STR)
    return b.assign(f"{separator.code}.join(({', '.join(p.code for p in parts)},))", STR)


def _first_not_null(b: Builder, name: str, nodes: list[Node], cur: Val) -> Val:
    args = _args(b, nodes, cur)
    chain: list[str] = []
    kind: Kind = frozenset()
    for arg in args:
        kind |= arg.kind
        if "null" not in arg.kind:
            chain.append(arg.code)
            kind -= NULL
            break
        chain.append(f"{arg.code} if {arg.code} is not None else")
    else:
        chain.append("None")
    return b.assign(" ".join(chain), kind)


def _length(b: Builder, name: str, nodes: list[Node], cur: Val) -> Val:
    (arg,) = _args(b, nodes, cur)
    expected = "['string', 'array', 'object']"
    _check(b, name, arg, frozenset({"str", "list", "dict"}), "{}.__class__ not in _SIZED", expected)
    return b.assign(f"len({arg.code})", NUM)


_STRING_METHODS = {"upper": "upper", "lower": "lower", "trim": "strip"}


def _string_method(b: Builder, name: str, nodes: list[Node], cur: Val) -> Val:
    (arg,) = _args(b, nodes, cur)
    _check_string(b, name, arg)
    return b.assign(f"{arg.code}.{_STRING_METHODS[name]}()", STR)


def _concat(b: Builder, name: str, nodes: list[Node], cur: Val) -> Val:
    args = _args(b, nodes, cur)
    for arg in args:
        _check_string(b, name, arg)
    return b.assign(" + ".join(arg.code for arg in args), STR)


def _abs(b: Builder, name: str, nodes: list[Node], cur: Val) -> Val:
    (arg,) = _args(b, nodes, cur)
    _check_number(b, name, arg)
    return b.assign(f"abs({arg.code})", NUM)


_EMITTERS: dict[str, Emitter] = {
    "to_number": _to_number,
    "add": _arithmetic,
    "subtract": _arithmetic,
    "multiply": _arithmetic,
    "divide": _arithmetic,
    "round": _round,
    "join": _join,
    "not_null": _first_not_null,
    "coalesce": _first_not_null,
    "length": _length,
    "upper": _string_method,
    "lower": _string_method,
    "trim": _string_method,
    "concat": _concat,
    "abs": _abs,
}


def emit_call(b: Builder, node: Node, cur: Val) -> Val:
    """Emit a call of ``node['value']`` (known to exist with a valid argument count)."""
    name: str = node["value"]
    nodes: list[Node] = node["children"]
    emitter = _EMITTERS.get(name)
    if emitter is not None:
        result = emitter(b, name, nodes, cur)
        if result is not None:
            return result
    return _generic(b, name, nodes, cur)

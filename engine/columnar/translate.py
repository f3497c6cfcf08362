"""JMESPath parse trees to polars expressions, with the row path's semantics.

A translated expression is a :class:`Val`: a polars expression, its one JSON type
(``str``, ``int``, ``float``, ``bool`` or ``null``) and whether it may be null. Where the
row path may give another answer for some rows (a type error that rejects a record, a
``to_number`` column holding both ``"912"`` and ``"741.67"``, a ``round`` near a tie),
translation adds a *guard*: a boolean expression true for such rows. A batch with any
guard true runs on the row path instead, so results are the row path's, byte for byte.

Anything without a translation raises :class:`Untranslatable`; the component then runs
on the row path. Translation depends on the batch's columns (their types and whether
they hold nulls) and, for ``to_number`` of text, on an assumption (all whole numbers,
or all decimals) that guards check; :class:`Program` caches one per shape.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import polars
    import polars as pl

__all__ = ["Assumptions", "Shape", "Translator", "Untranslatable", "Val"]

Node = dict[str, Any]
#: per column: (JSON type, may be null); a column of another type is left out
Shape = tuple[tuple[str, str, bool], ...]
#: per to_number node of text: whether it assumes decimals ("float") rather than integers
Assumptions = frozenset[int]


@cache
def _py_space() -> str:
    """What Python's str.strip() removes (str.isspace): not Rust's idea of whitespace."""
    return "".join(chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace())


_EXACT_INT = 2**53  # integers a float holds exactly
_SAFE_INT = 2**62  # sums and differences of two such stay in 64 bits
_NUMERIC = frozenset({"int", "float"})


class Untranslatable(Exception):
    """No columnar form with the row path's semantics."""


@dataclass(frozen=True, slots=True)
class Val:
    expr: pl.Expr
    type: str  # str | int | float | bool | null
    nullable: bool


@dataclass
class Translator:
    """Translates one expression tree at a time against one shape; collects guards."""

    shape: Mapping[str, tuple[str, bool]]
    floats: Assumptions = frozenset()
    guards: list[pl.Expr] = field(default_factory=list)
    #: to_number nodes of text seen, by id, with the guard each assumption needs
    numbers: dict[int, pl.Expr] = field(default_factory=dict)
    #: columns computed once before the expressions and guards that use them, by name
    bindings: dict[str, pl.Expr] = field(default_factory=dict)

    def __post_init__(self) -> None:
        import polars

        self.pl = polars

    # -- helpers --------------------------------------------------------------------------
    def _lit(self, value: Any) -> Val:
        pl = self.pl
        if value is None:
            return Val(pl.lit(None), "null", True)
        if isinstance(value, bool):
            return Val(pl.lit(value, dtype=pl.Boolean), "bool", False)
        if isinstance(value, int):
            if abs(value) >= _SAFE_INT:
                raise Untranslatable("integer literal too large")
            return Val(pl.lit(value, dtype=pl.Int64), "int", False)
        if isinstance(value, float):
            return Val(pl.lit(value, dtype=pl.Float64), "float", False)
        if isinstance(value, str):
            return Val(pl.lit(value, dtype=pl.String), "str", False)
        raise Untranslatable("literal of a container")

    def _bind(self, expr: pl.Expr) -> pl.Expr:
        """``expr`` computed once into a column of its own, which every expression and
        guard that needs it reads (a text column parsed as numbers, say, is parsed once)."""
        for name, bound in self.bindings.items():
            # meta.eq, not the printed form: polars prints 'a", "b' and 'a', 'b' alike
            if bound.meta.eq(expr):
                return self.pl.col(name)
        name = f"\x00bound{len(self.bindings)}"
        self.bindings[name] = expr
        return self.pl.col(name)

    @staticmethod
    def _at_least(expr: pl.Expr, limit: int) -> pl.Expr:
        """Whether an integer's magnitude is ``limit`` or more: compared on both sides,
        as ``abs()`` of the smallest 64-bit integer overflows (and stays negative)."""
        return (expr >= limit) | (expr <= -limit)

    def _require(self, val: Val, *types: str) -> None:
        """The row path raises a type error (rejecting the record) unless ``val`` is of
        ``types``: refuse a wrong static type, guard against nulls."""
        if val.type not in types:
            raise Untranslatable(f"{val.type} where {'/'.join(types)} is needed")
        if val.nullable:
            self.guards.append(val.expr.is_null())

    def truthy(self, val: Val) -> pl.Expr:
        """JMESPath truth: null, false and '' are false; 0 is true."""
        if val.type == "null":
            return self._flag(False)
        if val.type == "bool":
            return val.expr.fill_null(False)
        if val.type == "str":
            test = val.expr != ""
            return test.fill_null(False) if val.nullable else test
        return val.expr.is_not_null() if val.nullable else self._flag(True)

    def _flag(self, value: bool) -> polars.Expr:
        flag: polars.Expr = self.pl.lit(value)
        return flag

    def _same(self, vals: Iterable[Val]) -> str:
        types = {v.type for v in vals} - {"null"}
        if len(types) > 1:
            raise Untranslatable("values of several types in one column")
        return types.pop() if types else "null"

    # -- nodes ----------------------------------------------------------------------------
    def value(self, node: Node) -> Val:
        handler: Callable[[Node], Val] | None = getattr(self, "_" + node["type"], None)
        if handler is None:
            raise Untranslatable(f"JMESPath node {node['type']}")
        return handler(node)

    def _literal(self, node: Node) -> Val:
        return self._lit(node["value"])

    def _field(self, node: Node) -> Val:
        name = node["value"]
        found = self.shape.get(name)
        if found is None:
            return self._lit(None)  # a field no record has: null
        kind, nullable = found
        if kind == "other":
            raise Untranslatable(f"field {name} holds values of another type")
        return Val(self.pl.col(name), kind, nullable)

    def _subexpression(self, node: Node) -> Val:
        left, right = node["children"]
        if left["type"] == "current":
            return self.value(right)
        raise Untranslatable("nested field")

    def _or_expression(self, node: Node) -> Val:
        return self._either(node, keep_left_when_truthy=True)

    def _and_expression(self, node: Node) -> Val:
        return self._either(node, keep_left_when_truthy=False)

    def _either(self, node: Node, *, keep_left_when_truthy: bool) -> Val:
        pl = self.pl
        left, right = (self.value(child) for child in node["children"])
        kind = self._same((left, right))
        truth = self.truthy(left)
        test = truth if keep_left_when_truthy else ~truth
        expr = pl.when(test).then(left.expr).otherwise(right.expr)
        return Val(expr, kind, left.nullable or right.nullable)

    def _not_expression(self, node: Node) -> Val:
        operand = self.value(node["children"][0])
        return Val(~self.truthy(operand), "bool", False)

    def _comparator(self, node: Node) -> Val:
        op = node["value"]
        left, right = (self.value(child) for child in node["children"])
        nullable = left.nullable or right.nullable
        if op in ("eq", "ne"):
            lt, rt = left.type, right.type
            comparable = lt == rt or {lt, rt} <= _NUMERIC
            if "null" in (lt, rt):
                # null equals only null
                other = right if lt == "null" else left
                test = other.expr.is_null() if other.type != "null" else self.pl.lit(True)
            elif not comparable:
                # never equal, but a null equals a null
                both_null = left.expr.is_null() & right.expr.is_null()
                test = both_null if nullable else self.pl.lit(False)
            else:
                self._exact_mix(left, right)
                test = left.expr.eq_missing(right.expr)
            return Val(test if op == "eq" else ~test, "bool", False)
        if {left.type, right.type} <= _NUMERIC or left.type == right.type == "str":
            self._exact_mix(left, right)
            expr = {
                "lt": left.expr < right.expr,
                "lte": left.expr <= right.expr,
                "gt": left.expr > right.expr,
                "gte": left.expr >= right.expr,
            }[op]
            return Val(expr, "bool", nullable)
        if "null" in (left.type, right.type):
            return self._lit(None)
        raise Untranslatable("ordering of values of different types")

    def _exact_mix(self, left: Val, right: Val) -> None:
        """An integer beside a float is compared exactly by Python, as a float by polars;
        and polars orders NaN above every number and equal to itself, where Python finds
        it equal to nothing and neither above nor below anything."""
        for val in (left, right):
            if val.type == "float":
                self.guards.append(val.expr.is_nan().fill_null(False))
        if {left.type, right.type} == _NUMERIC:
            side = left if left.type == "int" else right
            self.guards.append(self._at_least(side.expr, _EXACT_INT).fill_null(False))

    def _function_expression(self, node: Node) -> Val:
        name = node["value"]
        handler: Callable[[Node, list[Node]], Val] | None = getattr(self, "_fn_" + name, None)
        if handler is None:
            raise Untranslatable(f"function {name}()")
        return handler(node, node["children"])

    # -- functions ------------------------------------------------------------------------
    def _fn_join(self, node: Node, args: list[Node]) -> Val:
        separator, items = args
        if items["type"] != "multi_select_list":
            raise Untranslatable("join of an array that is not written out")
        sep = self.value(separator)
        if separator["type"] != "literal" or sep.type != "str":
            raise Untranslatable("join with a separator that is not a string literal")
        parts = [self.value(child) for child in items["children"]]
        for part in parts:
            self._require(part, "str")
        if not parts:
            return self._lit("")
        expr = self.pl.concat_str([p.expr for p in parts], separator=node_value(separator))
        return Val(expr, "str", False)

    def _fn_concat(self, node: Node, args: list[Node]) -> Val:
        parts = [self.value(child) for child in args]
        for part in parts:
            self._require(part, "str")
        return Val(self.pl.concat_str([p.expr for p in parts]), "str", False)

    def _fn_to_number(self, node: Node, args: list[Node]) -> Val:
        pl = self.pl
        val = self.value(args[0])
        if val.type in _NUMERIC:
            return val
        if val.type in ("null", "bool"):
            return self._lit(None)  # to_number(true) is null too
        if val.type != "str":
            raise Untranslatable("to_number of a container")
        text = val.expr
        given = text != ""  # '' is null on both paths
        whole = self._bind(text.cast(pl.Int64, strict=False))
        if id(node) in self.floats:
            result = Val(self._bind(text.cast(pl.Float64, strict=False)), "float", True)
            # a whole number is an int on the row path; polars may not read what Python does
            wrong = whole.is_not_null() | (result.expr.is_null() & given)
            # nor one past 64 bits (19 digits or more), which polars reads as a float only:
            # text that long without a '.' takes the row path (where int() may take it)
            wrong = wrong | ((text.str.len_bytes() >= 19) & ~text.str.contains(".", literal=True))
        else:
            result = Val(whole, "int", True)
            # a decimal, or text polars reads otherwise than Python's int() (' 5', '1_000')
            wrong = whole.is_null() & given
        wrong = wrong.fill_null(False)
        self.numbers[id(node)] = wrong
        self.guards.append(wrong)
        return result

    def _fn_to_string(self, node: Node, args: list[Node]) -> Val:
        pl = self.pl
        val = self.value(args[0])
        if val.type == "str":
            if val.nullable:
                return Val(val.expr.fill_null("null"), "str", False)
            return val
        if val.type == "null":
            return self._lit("null")
        if val.type == "bool":
            text = pl.when(val.expr).then(pl.lit("true")).otherwise(pl.lit("false"))
            return Val(text.fill_null("null") if val.nullable else text, "str", False)
        if val.type == "int":
            text = val.expr.cast(pl.String)
        else:
            # Python's repr and polars agree on the digits; the notation differs outside
            # 1e-4 <= |x| < 1e16, and for non-finite values
            size = val.expr.abs()
            plain = (val.expr == 0) | ((size >= 1e-4) & (size < 1e16))
            self.guards.append(~plain.fill_null(True))
            text = val.expr.cast(pl.String)
        return Val(text.fill_null("null") if val.nullable else text, "str", False)

    def _arithmetic(self, args: list[Node], op: str) -> Val:
        left, right = (self.value(child) for child in args)
        return self._combine(left, right, op)

    def _combine(self, left: Val, right: Val, op: str) -> Val:
        """``fn_add``, ``fn_subtract``, ``fn_multiply`` or ``fn_divide`` of two values."""
        pl = self.pl
        self._require(left, "int", "float")
        self._require(right, "int", "float")
        both_int = left.type == right.type == "int"
        for val in (left, right):
            if val.type == "int":
                limit = _SAFE_INT if both_int and op in ("+", "-") else _EXACT_INT
                if op == "*" and both_int:
                    limit = 2**31  # a product stays in 64 bits
                self.guards.append(self._at_least(val.expr, limit))
        lx, rx = left.expr, right.expr
        if op == "/":
            self.guards.append(rx == 0)  # the row path rejects the record
            # polars divides by a constant as a multiplication by its reciprocal, which
            # may round otherwise than Python's division: divide by a column of it
            divisor = rx.cast(pl.Float64) + pl.int_range(pl.len()).cast(pl.Float64) * 0.0
            return Val(lx.cast(pl.Float64) / divisor, "float", False)
        if both_int:
            return Val({"+": lx + rx, "-": lx - rx, "*": lx * rx}[op], "int", False)
        lx, rx = lx.cast(pl.Float64), rx.cast(pl.Float64)
        result = self._bind({"+": lx + rx, "-": lx - rx, "*": lx * rx}[op])
        # polars simplifies x + 0.0, 0 - x and the like, losing the sign of a zero that
        # Python's arithmetic keeps: a zero the row path works out
        self.guards.append((result == 0.0).fill_null(False))
        return Val(result, "float", False)

    def _fn_add(self, node: Node, args: list[Node]) -> Val:
        return self._arithmetic(args, "+")

    def _fn_subtract(self, node: Node, args: list[Node]) -> Val:
        return self._arithmetic(args, "-")

    def _fn_multiply(self, node: Node, args: list[Node]) -> Val:
        return self._arithmetic(args, "*")

    def _fn_divide(self, node: Node, args: list[Node]) -> Val:
        return self._arithmetic(args, "/")

    def _items(self, args: list[Node], name: str) -> list[Val]:
        """The values of a written-out array (``sum([a, b])``)."""
        (items,) = args
        if items["type"] != "multi_select_list":
            raise Untranslatable(f"{name} of an array that is not written out")
        return [self.value(child) for child in items["children"]]

    def _sum(self, vals: list[Val]) -> Val:
        """The row path's ``sum``: ``fn_add`` from ``0``, left to right (so ``0 + -0.0`` is
        ``0.0``, and a zero sum takes the row path, as ``add`` does)."""
        total = self._lit(0)
        for val in vals:
            total = self._combine(total, val, "+")
        return total

    def _fn_sum(self, node: Node, args: list[Node]) -> Val:
        return self._sum(self._items(args, "sum"))

    def _fn_avg(self, node: Node, args: list[Node]) -> Val:
        vals = self._items(args, "avg")
        return self._combine(self._sum(vals), self._lit(len(vals)), "/")

    def _extreme(self, args: list[Node], name: str) -> Val:
        """``max`` and ``min``: Python's, of numbers or of strings (code point order, which is
        UTF-8's byte order). Of an int and a float the result's type is the row's: no
        translation. Python keeps the first of equal values, so floats that are NaN or zero
        (``-0.0 == 0.0``) take the row path."""
        pl = self.pl
        vals = self._items(args, name)
        kind = self._same(vals)
        if kind not in ("int", "float", "str"):
            raise Untranslatable(f"{name} of {kind} values")
        for val in vals:
            self._require(val, kind)
            if kind == "float":
                self.guards.append((val.expr.is_nan() | (val.expr == 0.0)).fill_null(False))
        build = pl.max_horizontal if name == "max" else pl.min_horizontal
        return Val(build([v.expr for v in vals]), kind, False)

    def _fn_max(self, node: Node, args: list[Node]) -> Val:
        return self._extreme(args, "max")

    def _fn_min(self, node: Node, args: list[Node]) -> Val:
        return self._extreme(args, "min")

    def _fn_abs(self, node: Node, args: list[Node]) -> Val:
        val = self.value(args[0])
        self._require(val, "int", "float")
        if val.type == "int":  # its negation is past 64 bits: Python's int holds it
            self.guards.append(self._at_least(val.expr, _SAFE_INT))
        return Val(val.expr.abs(), val.type, False)

    def _whole(self, args: list[Node], method: str) -> Val:
        """``ceil`` and ``floor``: Python's ``math.ceil`` and ``math.floor``, an int of a
        number (an int is itself)."""
        val = self.value(args[0])
        self._require(val, "int", "float")
        if val.type == "int":
            return Val(val.expr, "int", False)
        whole = self._bind(getattr(val.expr, method)())
        # the row path's int has any size, and NaN or infinity rejects the record: it
        # decides past 64 bits (NaN and infinity compare false here)
        self.guards.append(~(whole.abs() < 2.0**63).fill_null(True))
        return Val(whole.cast(self.pl.Int64), "int", False)

    def _fn_ceil(self, node: Node, args: list[Node]) -> Val:
        return self._whole(args, "ceil")

    def _fn_floor(self, node: Node, args: list[Node]) -> Val:
        return self._whole(args, "floor")

    def _fn_round(self, node: Node, args: list[Node]) -> Val:
        value, digits = args
        val = self.value(value)
        self._require(val, "int", "float")
        nd = node_value(digits) if digits["type"] == "literal" else None
        if type(nd) is not int or not 0 <= nd <= 15:
            raise Untranslatable("round to digits other than a literal 0..15")
        if val.type == "int":
            return val
        scale = 10.0**nd
        scaled = self._bind(val.expr * scale)
        # Python rounds the exact binary value half to even; scaling may blur a value
        # near a tie: the row path decides. Past 2**52 the tolerance exceeds 0.5, so
        # "near a tie" holds there too (nothing is left to round).
        near_tie = ((scaled - scaled.floor()) - 0.5).abs() <= 1e-13 * scaled.abs().clip(1.0)
        self.guards.append(near_tie | ~scaled.is_finite())
        return Val(val.expr.round(nd, mode="half_to_even"), "float", False)

    def _string_fn(self, args: list[Node], build: Callable[[pl.Expr], pl.Expr], kind: str) -> Val:
        val = self.value(args[0])
        self._require(val, "str")
        return Val(build(val.expr), kind, False)

    def _fn_upper(self, node: Node, args: list[Node]) -> Val:
        val = self.value(args[0])
        self._require(val, "str")
        # case maps beyond ASCII depend on the Unicode version: the row path decides
        self.guards.append(val.expr.str.contains(r"[^\x00-\x7f]"))
        return Val(val.expr.str.to_uppercase(), "str", False)

    def _fn_lower(self, node: Node, args: list[Node]) -> Val:
        val = self.value(args[0])
        self._require(val, "str")
        self.guards.append(val.expr.str.contains(r"[^\x00-\x7f]"))
        return Val(val.expr.str.to_lowercase(), "str", False)

    def _fn_trim(self, node: Node, args: list[Node]) -> Val:
        return self._string_fn(args, lambda e: e.str.strip_chars(_py_space()), "str")

    def _fn_length(self, node: Node, args: list[Node]) -> Val:
        val = self.value(args[0])
        self._require(val, "str")
        return Val(val.expr.str.len_chars().cast(self.pl.Int64), "int", False)

    def _literal_text(self, node: Node) -> str:
        value = node_value(node) if node["type"] == "literal" else None
        if not isinstance(value, str):
            raise Untranslatable("an argument that is not a string literal")
        return value

    def _fn_replace(self, node: Node, args: list[Node]) -> Val:
        old, new = self._literal_text(args[1]), self._literal_text(args[2])
        if not old:
            raise Untranslatable("replace of '' (an error on the row path)")
        return self._string_fn(args, lambda e: e.str.replace_all(old, new, literal=True), "str")

    def _prefix_test(self, args: list[Node], method: str) -> Val:
        subject, other = self.value(args[0]), self.value(args[1])
        self._require(subject, "str")
        self._require(other, "str")
        test = getattr(subject.expr.str, method)(other.expr)
        return Val(test, "bool", False)

    def _fn_starts_with(self, node: Node, args: list[Node]) -> Val:
        return self._prefix_test(args, "starts_with")

    def _fn_ends_with(self, node: Node, args: list[Node]) -> Val:
        return self._prefix_test(args, "ends_with")

    def _fn_contains(self, node: Node, args: list[Node]) -> Val:
        subject = self.value(args[0])
        self._require(subject, "str")
        search = self._literal_text(args[1])
        return Val(subject.expr.str.contains(search, literal=True), "bool", False)

    def _first_not_null(self, args: list[Node]) -> Val:
        vals = [self.value(child) for child in args]
        kind = self._same(vals)
        nullable = all(v.nullable for v in vals)
        return Val(self.pl.coalesce([v.expr for v in vals]), kind, nullable)

    def _fn_coalesce(self, node: Node, args: list[Node]) -> Val:
        return self._first_not_null(args)

    def _fn_not_null(self, node: Node, args: list[Node]) -> Val:
        return self._first_not_null(args)

    def _fn_sha256(self, node: Node, args: list[Node]) -> Val:
        pl = self.pl

        def digest(series: polars.Series) -> polars.Series:
            sha = hashlib.sha256
            out: polars.Series = pl.Series(
                [None if v is None else sha(v.encode()).hexdigest() for v in series],
                dtype=pl.String,
            )
            return out

        val = self.value(args[0])
        self._require(val, "str")
        return Val(val.expr.map_batches(digest, return_dtype=pl.String), "str", False)

    def _fn_mask(self, node: Node, args: list[Node]) -> Val:
        keep = node_value(args[1]) if args[1]["type"] == "literal" else None
        if type(keep) is not int or keep < 0:
            raise Untranslatable("mask with a keep that is not a literal whole number")
        val = self.value(args[0])
        self._require(val, "str")
        size = val.expr.str.len_chars().cast(self.pl.Int64)
        hidden = (size - keep).clip(0)
        masked = val.expr.str.slice(hidden).str.pad_start(size, "*")
        return Val(masked, "str", False)

    # -- dates: fixed-width forms, taken apart as text -------------------------------------
    def _date_text(self, node: Node, form: str, at: Mapping[str, int]) -> pl.Expr:
        """The text of a date argument; a guard sends to the row path any value not of the
        fixed-width ``form`` (a regular expression of ASCII digits, so no other script's
        digits) or not a day of the Gregorian calendar that Python's ``datetime`` holds
        (year 1 to 9999, a month's own days)."""
        pl = self.pl
        val = self.value(node)
        self._require(val, "str")
        text = val.expr
        year = text.str.slice(at["Y"], 4).cast(pl.Int32, strict=False)
        month = text.str.slice(at["m"], 2).cast(pl.Int32, strict=False)
        day = text.str.slice(at["d"], 2).cast(pl.Int32, strict=False)
        leap = ((year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))).cast(pl.Int32)
        days = (
            pl.when(month == 2)
            .then(28 + leap)
            .when(month.is_in([4, 6, 9, 11]))
            .then(30)
            .otherwise(31)
        )
        valid = text.str.contains(form) & (year >= 1) & (day <= days)
        self.guards.append(~valid.fill_null(True))
        return text

    def _iso(self, args: list[Node]) -> Val:
        """The subject of ``parse_date`` or ``format_date`` without a format, as
        ``YYYY-MM-DDTHH:MM:SS``: ``datetime.fromisoformat`` reads more forms than these
        (a zone, a fraction, week dates); any other form takes the row path."""
        pl = self.pl
        text = self._date_text(args[0], _ISO_FORM, {"Y": 0, "m": 5, "d": 8})
        size = text.str.len_bytes()
        clock = (
            pl.when(size == 10)
            .then(pl.lit("00:00:00"))
            .when(size == 16)
            .then(text.str.slice(11, 5) + ":00")
            .otherwise(text.str.slice(11, 8))
        )
        return Val(self._bind(text.str.slice(0, 10) + "T" + clock), "str", False)

    def _fn_parse_date(self, node: Node, args: list[Node]) -> Val:
        if len(args) == 1:
            return self._iso(args)
        pl = self.pl
        form, at = _strptime_form(self._literal_text(args[1]))
        text = self._date_text(args[0], form, at)

        def part(name: str) -> polars.Expr:
            return text.str.slice(at[name], 2) if name in at else pl.lit("00")

        pieces = [text.str.slice(at["Y"], 4), pl.lit("-"), part("m"), pl.lit("-"), part("d")]
        pieces += [pl.lit("T"), part("H"), pl.lit(":"), part("M"), pl.lit(":"), part("S")]
        iso = pl.concat_str(pieces)
        return Val(iso, "str", False)

    def _fn_format_date(self, node: Node, args: list[Node]) -> Val:
        pl = self.pl
        pieces = _strftime_pieces(self._literal_text(args[1]))
        iso = self._iso(args[:1]).expr
        if "Y" in pieces:  # the C library writes a year before 1000 without zeros
            self.guards.append(iso.str.starts_with("0"))
        parts = [
            iso.str.slice(*_ISO_AT[piece]) if piece in _ISO_AT else pl.lit(piece[1:])
            for piece in pieces
        ]
        return Val(pl.concat_str(parts) if parts else pl.lit(""), "str", False)


def node_value(node: Node) -> Any:
    return node.get("value")


#: what ``datetime.fromisoformat`` reads that is taken apart here (seconds optional)
_ISO_FORM = (
    r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
    r"([T ]([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?)?$"
)
#: strptime directives taken apart as fixed-width digits (``%m`` as ``01``, never ``1``)
_STRPTIME = {
    "Y": r"[0-9]{4}",
    "m": r"(0[1-9]|1[0-2])",
    "d": r"(0[1-9]|[12][0-9]|3[01])",
    "H": r"([01][0-9]|2[0-3])",
    "M": r"[0-5][0-9]",
    "S": r"[0-5][0-9]",
}
#: strftime directives, where each stands in the ``YYYY-MM-DDTHH:MM:SS`` text
_ISO_AT = {
    "Y": (0, 4),
    "y": (2, 2),
    "m": (5, 2),
    "d": (8, 2),
    "H": (11, 2),
    "M": (14, 2),
    "S": (17, 2),
}


def _directives(fmt: str) -> Iterable[str]:
    """A format's pieces: a directive's letter, or ``'=' + text`` for literal text."""
    i = 0
    while i < len(fmt):
        if fmt[i] != "%":
            yield "=" + fmt[i]
            i += 1
            continue
        if i + 1 == len(fmt):
            raise Untranslatable("a format ending in %")
        letter = fmt[i + 1]
        yield "=%" if letter == "%" else letter
        i += 2


def _strptime_form(fmt: str) -> tuple[str, dict[str, int]]:
    """For ``parse_date(s, fmt)``: the regular expression a value must match whole (Python's
    ``strptime`` reads such a value the same way: it tries two digits before one), and where
    each directive's digits start."""
    if not fmt.isascii():
        raise Untranslatable("a date format of other than ASCII")
    form, at, offset = ["^"], dict[str, int](), 0
    for piece in _directives(fmt):
        if piece.startswith("="):
            char = piece[1:]  # escaped by its code, as the regex crate reads it
            form.append(char if char.isalnum() else f"\\x{ord(char):02X}")
            offset += 1
            continue
        if piece not in _STRPTIME or piece in at:
            raise Untranslatable(f"strptime directive %{piece} (or twice)")
        at[piece] = offset
        form.append(_STRPTIME[piece])
        offset += 4 if piece == "Y" else 2
    if not {"Y", "m", "d"} <= at.keys():
        raise Untranslatable("a date format without %Y, %m and %d")
    return "".join(form) + "$", at


def _strftime_pieces(fmt: str) -> list[str]:
    """For ``format_date``: the directives (letters) and literal text (``'=' + text``)."""
    if not fmt.isascii():
        raise Untranslatable("a date format of other than ASCII")
    pieces = list(_directives(fmt))
    for piece in pieces:
        if not piece.startswith("=") and piece not in _ISO_AT:
            raise Untranslatable(f"strftime directive %{piece}")
    return pieces

"""Map, filter and route over a :class:`ColumnBatch`, or ``None``: that batch takes the row path.

A program is compiled per batch shape (column types and nulls) and ``to_number``
assumption, and cached. A batch runs columnar when every guard of its compiled form is
false on every row; otherwise, or when polars fails, the caller runs the row path on it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from engine.columnar.batch import ColumnBatch, polars_failures
from engine.columnar.translate import Assumptions, Translator, Untranslatable, Val

if TYPE_CHECKING:
    import polars as pl

__all__ = ["FieldPlan", "FilterProgram", "MapProgram", "RouteProgram", "translatable"]

Node = dict[str, Any]

_NODES = frozenset(
    {
        "field",
        "subexpression",
        "current",
        "literal",
        "or_expression",
        "and_expression",
        "not_expression",
        "comparator",
        "function_expression",
        "multi_select_list",  # only as the written-out array of join, sum, avg, max, min
    }
)
#: the functions with a translation: the translator's ``_fn_<name>`` methods
_FUNCTIONS = frozenset(name[4:] for name in dir(Translator) if name.startswith("_fn_"))
_SCALARS = (str, int, float, bool)
# Per shape, a few assumption sets to try before a batch goes the row path.
_ATTEMPTS = 3


def translatable(ast: Node) -> bool:
    """Whether every node of ``ast`` has a columnar form (for some batch shape)."""
    if ast["type"] not in _NODES:
        return False
    if ast["type"] == "function_expression" and ast["value"] not in _FUNCTIONS:
        return False
    return all(translatable(c) for c in ast.get("children", ()) if isinstance(c, dict))


@dataclass(frozen=True, slots=True)
class FieldPlan:
    name: str
    ast: Node
    required: bool = False
    default: Any = None


@dataclass(slots=True)
class _Compiled:
    exprs: list[pl.Expr]
    #: true when some row needs the row path (None: no row can)
    guard: pl.Expr | None
    numbers: dict[int, pl.Expr]
    #: whether every float the expressions give is finite (None: they give no float)
    finite: pl.Expr | None = None
    #: columns the expressions and guards read, computed first (Translator.bindings)
    bindings: dict[str, pl.Expr] = dataclasses.field(default_factory=dict)

    def frame(self, batch: ColumnBatch) -> pl.LazyFrame:
        """The batch's columns, with the bound ones."""
        frame = batch.frame.lazy()
        for name, expr in self.bindings.items():  # in order: one may read another
            frame = frame.with_columns(expr.alias(name))
        return frame


#: the names of the extra columns of one select: whether a guard holds, whether all is finite
_GUARD, _FINITE = "\x00guard", "\x00finite"


def _any(guards: list[pl.Expr]) -> pl.Expr | None:
    """Each guard once, each reduced first: an any() of a row-wise any of them all costs
    several times more."""
    import polars as pl

    unique: list[pl.Expr] = []
    for guard in guards:  # meta.eq: two guards may print alike (quotes in a literal)
        if not any(guard.meta.eq(seen) for seen in unique):
            unique.append(guard)
    if not unique:
        return None
    return pl.any_horizontal([g.any().alias(f"g{i}") for i, g in enumerate(unique)])


class _Program:
    """Compiles per shape and assumptions; runs guards, then the expressions."""

    def __init__(self) -> None:
        #: per shape and assumptions: the compiled form, or (no translation) the to_number
        #: nodes of text it took as ints, whose float form may translate
        self._cache: dict[tuple[object, Assumptions], _Compiled | Assumptions] = {}
        self._floats: Assumptions = frozenset()

    def _compile(self, translator: Translator) -> tuple[list[pl.Expr], pl.Expr | None]:
        """The expressions, and whether the floats they give are all finite (None: they
        give none)."""
        raise NotImplementedError

    def _compiled(self, shape: tuple[tuple[str, str, bool], ...], floats: Assumptions) -> Any:
        key = (shape, floats)
        if key not in self._cache:
            translator = Translator({n: (t, null) for n, t, null in shape}, floats)
            try:
                exprs, finite = self._compile(translator)
            except Untranslatable:
                # to_number's int form beside a float (`to_number(a) || `0.5``) translates
                # as its float form, for a column of decimals
                self._cache[key] = frozenset(translator.numbers) - floats
            else:
                guard = _any(translator.guards)
                self._cache[key] = _Compiled(
                    exprs, guard, translator.numbers, finite, translator.bindings
                )
        return self._cache[key]

    def evaluate(self, batch: ColumnBatch) -> tuple[pl.DataFrame, bool] | None:
        """The program's columns on ``batch`` and whether their floats are known to be
        finite, or None: the row path must run it."""

        try:
            shape = batch.shape()
        except polars_failures():
            return None
        floats = self._floats
        for _ in range(_ATTEMPTS):
            compiled = self._compiled(shape, floats)
            if not isinstance(compiled, _Compiled):
                if not compiled:
                    return None
                floats = floats | compiled
                continue
            frame = compiled.frame(batch)
            try:
                out = _at_once(frame, compiled)
            except polars_failures():
                out = None  # a value the guards would have sent to the row path: look
            if out is not None:
                self._floats = floats
                return _spread(out[0], batch.frame), out[1]
            try:
                if compiled.guard is not None and _collect(frame.select(compiled.guard)).item():
                    keys = list(compiled.numbers)
                    checks = [compiled.numbers[k].any().alias(f"n{i}") for i, k in enumerate(keys)]
                    found = _collect(frame.select(checks)).row(0) if keys else ()
                    wrong = {k for k, hit in zip(keys, found, strict=True) if hit}
                    if not wrong:
                        return None  # a guard other than a to_number shape: the row path
                    floats = floats ^ frozenset(wrong)  # try the other shape
                    continue
                result = _collect(frame.select(compiled.exprs))
            except polars_failures():
                return None
            self._floats = floats
            return _spread(result, batch.frame), False
        return None


def _collect(frame: pl.LazyFrame) -> pl.DataFrame:
    """A query on one batch, run in memory: polars' default engine may choose its
    streaming one, which costs about 0.4 ms more a call to set up (a fifth of a map's
    time on a 1 MiB block)."""
    return frame.collect(engine="in-memory")


def _at_once(frame: pl.LazyFrame, compiled: _Compiled) -> tuple[pl.DataFrame, bool] | None:
    """The expressions, their guard and their floats' finiteness in one pass (the guard's
    work, a ``to_number`` cast say, is shared with the expressions that need it): None
    when a guard holds."""
    import polars as pl

    extra = {}
    if compiled.guard is not None:
        extra[_GUARD] = compiled.guard
    if compiled.finite is not None:
        extra[_FINITE] = compiled.finite
    out = _collect(frame.select(*compiled.exprs, **extra))
    if not extra:
        return out, False
    # read the flags and drop their columns from the Series themselves: a select or a
    # drop would be a query each
    columns = out.get_columns()
    fields = pl.DataFrame(columns[: len(compiled.exprs)])
    if not out.height:
        return fields, True
    flags = {name: columns[len(compiled.exprs) + i][0] for i, name in enumerate(extra)}
    if flags.get(_GUARD):
        return None
    return fields, bool(flags.get(_FINITE, False))


def _spread(out: pl.DataFrame, frame: pl.DataFrame) -> pl.DataFrame:
    """Literals only give one row: one per record, as a record-wise run gives."""
    if out.height == frame.height:
        return out
    return out.clear() if not frame.height else out[[0] * frame.height]


class MapProgram(_Program):
    """A map's fields, in order, with their ``default`` and ``required`` rules."""

    def __init__(self, fields: Sequence[FieldPlan]) -> None:
        super().__init__()
        self.fields = tuple(fields)

    def _compile(self, translator: Translator) -> tuple[list[pl.Expr], pl.Expr | None]:
        pl = translator.pl
        exprs = []
        floats = []
        for field in self.fields:
            val = translator.value(field.ast)
            if field.default is not None:
                val = _with_default(translator, val, field.default)
            if field.required:
                missing = val.expr.is_null() if val.nullable else pl.lit(False)
                if val.type == "str":
                    missing = missing | (val.expr == "")
                if val.type == "null":
                    missing = pl.lit(True)
                translator.guards.append(missing)  # the row path rejects the record
            exprs.append(val.expr.alias(field.name))
            if val.type == "float":
                floats.append(val.expr.is_finite().all())
        return exprs, pl.all_horizontal(floats) if floats else None

    def __call__(self, batch: ColumnBatch) -> ColumnBatch | None:
        evaluated = self.evaluate(batch)
        if evaluated is None:
            return None
        frame, finite = evaluated
        return batch.select(frame, finite=finite)


def _with_default(translator: Translator, val: Val, default: Any) -> Val:
    """``default`` where the value is null or '' (the row path's rule)."""
    pl = translator.pl
    if not isinstance(default, _SCALARS):
        raise Untranslatable("a default that is a container")
    fill = translator._lit(default)
    if val.type == "null":
        return fill
    if val.type != "str" and not val.nullable:
        return val  # never null or '': the default never applies
    if val.type != fill.type:
        raise Untranslatable("a default of another type than the value")
    missing = val.expr.is_null()
    if val.type == "str":
        missing = missing | (val.expr == "")
    return Val(pl.when(missing).then(fill.expr).otherwise(val.expr), val.type, False)


class _Conditions(_Program):
    def __init__(self, conditions: Iterable[Node]) -> None:
        super().__init__()
        self.conditions = tuple(conditions)

    def _compile(self, translator: Translator) -> tuple[list[pl.Expr], pl.Expr | None]:
        conditions = [
            translator.truthy(translator.value(ast)).alias(f"c{i}")
            for i, ast in enumerate(self.conditions)
        ]
        return conditions, None


class FilterProgram(_Conditions):
    """The records whose condition is JMESPath-true."""

    def __init__(self, condition: Node) -> None:
        super().__init__((condition,))

    def __call__(self, batch: ColumnBatch) -> ColumnBatch | None:
        if not batch.built:
            return None  # decoded records: filtered as they are (engine.codecs.columns)
        evaluated = self.evaluate(batch)
        if evaluated is None:
            return None
        try:
            return batch.take(evaluated[0].to_series(0))
        except polars_failures():
            return None


class RouteProgram(_Conditions):
    """Per route, the records whose condition holds; then those no condition holds."""

    def __init__(self, names: Sequence[str], conditions: Sequence[Node]) -> None:
        super().__init__(conditions)
        self.names = tuple(names)

    def __call__(self, batch: ColumnBatch) -> dict[str, ColumnBatch] | None:
        import polars as pl

        if not batch.built:
            return None  # decoded records: routed as they are (engine.codecs.columns)
        evaluated = self.evaluate(batch)
        if evaluated is None:
            return None
        out = evaluated[0]
        try:
            routed = {name: batch.take(out.to_series(i)) for i, name in enumerate(self.names)}
            none = out.select(~pl.any_horizontal(pl.all())).to_series(0)
            routed[""] = batch.take(none)
        except polars_failures():
            return None
        return routed

"""Differential property test: generated code agrees with jmespath.py's interpreter.

Hypothesis writes expressions from the JMESPath grammar (projections, filters, slices,
multi-selects, pipes, boolean operators, comparisons, literals, exprefs, built-in and custom
functions) and JSON documents; the compiled expression and the compiled batch mapper must give
the same value as the interpreter, or an error of the same class.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jmespath import exceptions

from engine.mapping import FieldRule, compile_expression, compile_map
from engine.mapping.expression import interpret, parse

KEYS = ["a", "b", "c", "foo"]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.sampled_from([0, 1, -1, 2, 0.0, 1.0, 2.5, -3.25]),
    st.integers(-1000, 1000),
    st.sampled_from(["", "a", "B", " x ", "10", "2.5", "abc", "nan", "1e3", "a,b"]),
)
documents = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.sampled_from(KEYS), children, max_size=4),
    ),
    max_leaves=12,
)

fields = st.sampled_from([*KEYS, '"a"', '"with space"'])
literals = st.one_of(
    scalars.map(lambda value: f"`{json.dumps(value)}`"),
    st.sampled_from(["`[1, 2]`", '`{"a": 1}`', "`[]`", "`{}`"]),
    st.sampled_from(["'a'", "'B'", "''", "'x,y'"]),
)
COMPARATORS = ["==", "!=", "<", "<=", ">", ">="]
UNARY = [
    "length", "to_number", "to_string", "type", "keys", "values", "abs", "sum", "avg", "max",
    "min", "sort", "reverse", "floor", "ceil", "to_array", "not_null", "upper", "lower", "trim",
    "sha256", "coalesce", "concat",
]  # fmt: skip
BINARY = [
    "contains", "starts_with", "ends_with", "join", "merge", "not_null", "add", "subtract",
    "multiply", "divide", "round", "split", "mask", "concat", "coalesce",
]  # fmt: skip
BY = ["sort_by", "max_by", "min_by"]


def _extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    index = st.integers(-3, 3)
    part = st.one_of(st.none(), st.integers(-3, 3)).map(lambda v: "" if v is None else str(v))
    step = st.sampled_from(["", ":1", ":-1", ":2", ":-2"])
    return st.one_of(
        st.tuples(inner, fields).map(lambda t: f"{t[0]}.{t[1]}"),
        inner.map(lambda e: f"{e}[*]"),
        inner.map(lambda e: f"{e}.*"),
        inner.map(lambda e: f"{e}[]"),
        st.tuples(inner, index).map(lambda t: f"{t[0]}[{t[1]}]"),
        st.tuples(inner, part, part, step).map(lambda t: f"{t[0]}[{t[1]}:{t[2]}{t[3]}]"),
        st.tuples(inner, inner).map(lambda t: f"{t[0]}[?{t[1]}]"),
        st.tuples(inner, inner, fields).map(lambda t: f"{t[0]}[?{t[1]}].{t[2]}"),
        st.tuples(inner, inner).map(lambda t: f"{t[0]} | {t[1]}"),
        st.tuples(inner, inner).map(lambda t: f"({t[0]} || {t[1]})"),
        st.tuples(inner, inner).map(lambda t: f"({t[0]} && {t[1]})"),
        inner.map(lambda e: f"!({e})"),
        st.tuples(inner, st.sampled_from(COMPARATORS), inner).map(
            lambda t: f"({t[0]} {t[1]} {t[2]})"
        ),
        st.tuples(inner, inner).map(lambda t: f"[{t[0]}, {t[1]}]"),
        st.tuples(inner, inner).map(lambda t: f"{{a: {t[0]}, b: {t[1]}}}"),
        st.tuples(inner, st.sampled_from(KEYS)).map(lambda t: f"{t[0]}.[{t[1]}, @]"),
        st.tuples(st.sampled_from(UNARY), inner).map(lambda t: f"{t[0]}({t[1]})"),
        st.tuples(st.sampled_from(BINARY), inner, inner).map(lambda t: f"{t[0]}({t[1]}, {t[2]})"),
        st.tuples(st.sampled_from(BY), inner, inner).map(lambda t: f"{t[0]}({t[1]}, &{t[2]})"),
        st.tuples(inner, inner).map(lambda t: f"map(&{t[0]}, {t[1]})"),
        st.tuples(inner, inner).map(lambda t: f"join('', [{t[0]}, {t[1]}])"),
        st.tuples(inner, inner).map(lambda t: f"to_number({t[0]}) > to_number({t[1]})"),
        inner.map(lambda e: f"round(multiply(to_number({e}), `1.2`), `2`)"),
        inner.map(lambda e: f"pad_left(to_string({e}), `4`, '0')"),
    )


expressions = st.recursive(
    st.one_of(fields, literals, st.just("@"), st.just("*")), _extend, max_leaves=6
)


def identical(actual: Any, expected: Any) -> bool:
    """Same JSON value with the same Python types (NaN equal to NaN)."""
    if type(actual) is not type(expected):
        return False
    if isinstance(expected, float):
        return actual == expected or (math.isnan(actual) and math.isnan(expected))
    if isinstance(expected, list):
        return len(actual) == len(expected) and all(
            identical(a, e) for a, e in zip(actual, expected, strict=True)
        )
    if isinstance(expected, dict):
        return list(actual) == list(expected) and all(
            identical(actual[k], v) for k, v in expected.items()
        )
    return bool(actual == expected) or actual is expected


def _reference(source: str, document: Any) -> tuple[str, Any]:
    try:
        return "ok", interpret(parse(source), document)
    except (ValueError, TypeError, ArithmeticError) as error:
        return "error", type(error)


SETTINGS = settings(
    max_examples=1000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


@SETTINGS
@given(source=expressions, document=documents)
def test_compiled_expression_matches_jmespath_py(source: str, document: Any) -> None:
    try:
        expression = compile_expression(source)
    except exceptions.ParseError:
        with pytest.raises(exceptions.ParseError):
            parse(source)
        return
    assert expression.compiled
    outcome, expected = _reference(source, document)
    if outcome == "error":
        with pytest.raises(expected):
            expression.search(document)
    else:
        assert identical(expression.search(document), expected), source


@SETTINGS
@given(source=expressions, document=st.dictionaries(st.sampled_from(KEYS), documents, max_size=4))
def test_batch_mapper_matches_jmespath_py(source: str, document: dict[str, Any]) -> None:
    try:
        # The same expression twice and inside another: shared subexpressions are reused.
        mapper = compile_map(
            [FieldRule("v", source), FieldRule("w", f"[{source}, a]"), FieldRule("x", source)]
        )
    except exceptions.ParseError:
        return
    outcome, expected = _reference(source, document)
    out, rejected = mapper([document])
    if outcome == "error":
        assert out == []
        assert "failed" in rejected[0].reason
    else:
        assert rejected == []
        assert identical(out[0]["v"], expected), source
        assert identical(out[0]["x"], expected), source
        assert identical(out[0]["w"], [expected, document.get("a")]), source

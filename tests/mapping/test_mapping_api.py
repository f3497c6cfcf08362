"""The public interface of engine.mapping: expressions, batch map, filter and predicates."""

from __future__ import annotations

from typing import Any

import pytest
from jmespath import exceptions

import engine.mapping
from engine.mapping import (
    FieldRule,
    InvalidValueError,
    compile_expression,
    compile_filter,
    compile_map,
    compile_predicate,
)
from engine.records import Rejected


def test_public_api_is_pinned() -> None:
    assert sorted(engine.mapping.__all__) == [
        "BatchFilter",
        "BatchMapper",
        "Expression",
        "FieldRule",
        "InvalidValueError",
        "compile_expression",
        "compile_filter",
        "compile_map",
        "compile_predicate",
    ]


def test_expression_keeps_source_and_searches() -> None:
    expression = compile_expression("items[?qty > `1`].sku | sort(@)")
    assert expression.source == "items[?qty > `1`].sku | sort(@)"
    data = {"items": [{"sku": "b", "qty": 2}, {"sku": "c", "qty": 1}, {"sku": "a", "qty": 5}]}
    assert expression.search(data) == ["a", "b"]
    assert compile_expression("items[0].sku").search({}) is None


@pytest.mark.parametrize(
    ("source", "error"),
    [
        ("foo.", exceptions.ParseError),
        ("foo[?", exceptions.ParseError),
        ("", exceptions.EmptyExpressionError),
        ("no_such_function(a)", exceptions.UnknownFunctionError),
        ("add(a)", exceptions.ArityError),
        ("length(a, b)", exceptions.ArityError),
        ("now(a)", exceptions.ArityError),
        ("parse_date(a, b, c)", exceptions.ArityError),
        ("concat()", exceptions.VariadictArityError),
        ("coalesce()", exceptions.VariadictArityError),
        ("merge()", exceptions.VariadictArityError),
        # Found in nested positions too, before any data is seen.
        ("items[?upper(a, b) == 'X']", exceptions.ArityError),
        ("sort_by(@, &nope(x))", exceptions.UnknownFunctionError),
    ],
)
def test_errors_knowable_at_compile_time_are_raised_there(
    source: str, error: type[Exception]
) -> None:
    with pytest.raises(error):
        compile_expression(source)


def test_optional_argument_and_variadics_accept_their_counts() -> None:
    compile_expression("parse_date(a)")
    compile_expression("parse_date(a, '%Y')")
    assert compile_expression("concat('a', 'b', 'c', 'd')").search({}) == "abcd"


def test_type_errors_name_the_function() -> None:
    with pytest.raises(exceptions.JMESPathTypeError, match=r"subtract\(\)"):
        compile_expression("subtract(a, `1`)").search({"a": "3"})
    with pytest.raises(exceptions.JMESPathTypeError, match=r"concat\(\)"):
        # every variadic argument is checked, not just the first
        compile_expression("concat('a', 'b', `1`)").search({})
    with pytest.raises(exceptions.JMESPathTypeError):
        compile_expression("add(`true`, `1`)").search({})


def test_division_by_zero_is_an_invalid_value() -> None:
    with pytest.raises(InvalidValueError, match="division by zero"):
        compile_expression("divide(`1`, `0.0`)").search({})
    assert isinstance(InvalidValueError("divide", "x"), exceptions.JMESPathError)


def test_now_is_utc_iso() -> None:
    from datetime import datetime, timedelta

    value = compile_expression("now()").search(None)
    parsed = datetime.fromisoformat(value)
    assert parsed.utcoffset() == timedelta(0)


INVENTORY = [
    FieldRule("product_id", "join('', ['PROD_', sku])"),
    FieldRule("quantity", "to_number(quantity)", required=True),
    FieldRule("product_type", "category", default="General"),
    FieldRule("tags", "tags", default=["new"]),
]


def test_map_builds_fields_in_order_with_defaults() -> None:
    mapper = compile_map(INVENTORY)
    out, rejected = mapper(
        [
            {"sku": "A1", "quantity": "3", "category": "Tools"},
            {"sku": "B2", "quantity": "4.5", "category": None, "tags": ["x"]},
        ]
    )
    assert rejected == []
    assert out == [
        {"product_id": "PROD_A1", "quantity": 3, "product_type": "Tools", "tags": ["new"]},
        {"product_id": "PROD_B2", "quantity": 4.5, "product_type": "General", "tags": ["x"]},
    ]
    assert list(out[0]) == ["product_id", "quantity", "product_type", "tags"]


def test_mutable_defaults_are_not_shared_between_records() -> None:
    out, _ = compile_map(INVENTORY)([{"sku": "a", "quantity": "1"}, {"sku": "b", "quantity": "2"}])
    out[0]["tags"].append("changed")
    assert out[1]["tags"] == ["new"]


def test_required_null_rejects_only_that_record() -> None:
    batch = [
        {"sku": "A1", "quantity": "3"},
        {"sku": "B2", "quantity": "many"},
        {"sku": "C3", "quantity": "5"},
    ]
    out, rejected = compile_map(INVENTORY)(batch)
    assert [record["product_id"] for record in out] == ["PROD_A1", "PROD_C3"]
    assert len(rejected) == 1
    assert isinstance(rejected[0], Rejected)
    assert rejected[0].record is batch[1]
    assert "quantity" in rejected[0].reason
    assert "to_number(quantity)" in rejected[0].reason
    assert "null" in rejected[0].reason


def test_empty_string_counts_as_missing_for_default_and_required() -> None:
    out, rejected = compile_map(INVENTORY)(
        [{"sku": "A", "quantity": "1", "category": ""}, {"sku": "B", "quantity": ""}]
    )
    assert out == [
        {"product_id": "PROD_A", "quantity": 1, "product_type": "General", "tags": ["new"]}
    ]
    assert "required" in rejected[0].reason
    name_required = compile_map([FieldRule("name", "name", required=True)])
    assert name_required([{"name": ""}])[0] == []


def test_required_field_satisfied_by_its_default() -> None:
    mapper = compile_map([FieldRule("kind", "kind", required=True, default="x")])
    assert mapper([{}]) == ([{"kind": "x"}], [])


def test_runtime_error_rejects_the_record_with_the_reason() -> None:
    mapper = compile_map(
        [FieldRule("sku", "sku"), FieldRule("ratio", "divide(to_number(a), to_number(b))")]
    )
    out, rejected = mapper([{"sku": 1, "a": "1", "b": "0"}, {"sku": 2, "a": "1", "b": "4"}])
    assert out == [{"sku": 2, "ratio": 0.25}]
    [bad] = rejected
    assert bad.record == {"sku": 1, "a": "1", "b": "0"}
    assert "ratio" in bad.reason
    assert "division by zero" in bad.reason
    out, rejected = compile_map([FieldRule("x", "upper(n)")])([{"n": 5}, {"n": "a"}])
    assert out == [{"x": "A"}]
    assert "upper()" in rejected[0].reason


def test_whole_record_expression() -> None:
    mapper = compile_map(expression="{id: sku, total: multiply(qty, price)}")
    out, rejected = mapper([{"sku": "a", "qty": 2, "price": 1.5}, {"sku": "b", "qty": "2"}])
    assert out == [{"id": "a", "total": 3.0}]
    assert "multiply()" in rejected[0].reason
    out, rejected = compile_map(expression="sku")([{"sku": "a"}, {}])
    assert out == []
    assert "must produce an object" in rejected[0].reason
    assert "null" in rejected[1].reason


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"fields": [FieldRule("a", "a")], "expression": "@"}],
)
def test_map_needs_exactly_one_form(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="exactly one"):
        compile_map(**kwargs)


def test_map_refuses_duplicate_fields_and_names_the_bad_field() -> None:
    with pytest.raises(ValueError, match="duplicate output fields: a"):
        compile_map([FieldRule("a", "a"), FieldRule("a", "b")])
    with pytest.raises(exceptions.ParseError) as caught:
        compile_map([FieldRule("ok", "a"), FieldRule("broken", "a.")])
    assert "in field 'broken'" in caught.value.__notes__


def test_field_rule_is_frozen() -> None:
    rule = FieldRule("a", "a")
    with pytest.raises(AttributeError):
        rule.name = "b"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("value", "kept"),
    [
        (True, True),
        (False, False),
        (None, False),
        ("", False),
        ("x", True),
        ([], False),
        ([0], True),
        ({}, False),
        ({"a": 1}, True),
        (0, True),  # zero is true in JMESPath
        (0.0, True),
    ],
)
def test_filter_uses_jmespath_truthiness(value: Any, kept: bool) -> None:
    record = {"v": value}
    assert compile_filter("v")([record]) == (([record], []) if kept else ([], []))
    assert compile_predicate("v")(record) is kept


def test_filter_keeps_order_and_rejects_evaluation_errors() -> None:
    batch = [{"q": 3}, {"q": 0}, {"q": "x"}, {"q": 7}, {}]
    kept, rejected = compile_filter("abs(q) > `1`")(batch)
    assert kept == [{"q": 3}, {"q": 7}]
    assert [r.record for r in rejected] == [{"q": "x"}, {}]
    assert "abs()" in rejected[0].reason
    assert "abs(q) > `1`" in rejected[0].reason


def test_predicate_raises_evaluation_errors() -> None:
    predicate = compile_predicate("length(name) > `3`")
    assert predicate({"name": "abcd"}) is True
    assert predicate({"name": "ab"}) is False
    with pytest.raises(exceptions.JMESPathTypeError):
        predicate({"name": 5})


@pytest.mark.parametrize(
    "source",
    [
        "`true` == `115`",
        "`1` == `true`",
        "a == `false`",
        "!(`1` < 'a' || `null`)",
        "[`1`, 'a'][?@ == `1`]",
        "a[*].b[*].c[*].d[*].e[*].f[*].g[*].h[*].i[*].j[*].k[*].l[*].m[*].n[*].o[*].p[*]",
    ],
)
def test_awkward_expressions_still_compile_to_python(source: str) -> None:
    assert compile_expression(source).compiled


def test_literal_containers_are_fresh_per_evaluation() -> None:
    expression = compile_expression("`[1, 2]`")
    first = expression.search({})
    first.append(3)
    assert expression.search({}) == [1, 2]

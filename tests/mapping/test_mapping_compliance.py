"""The JMESPath compliance suite, run through the compiled path (compile_expression).

The case files are read from ../shared/testdata/jmespath-compliance/ beside the repository
(see its SOURCE.md); the tests skip with the reason when that folder is absent.
"""

from __future__ import annotations

import json
from typing import Any

import jmespath
import pytest

from engine.mapping import FieldRule, compile_expression, compile_map, compile_predicate
from engine.mapping.compiler.runtime import is_false
from tests.support.mapping import COMPLIANCE_DIR, matches_error


def _cases() -> list[Any]:
    if not COMPLIANCE_DIR.is_dir():
        return [
            pytest.param(
                None,
                marks=pytest.mark.skip(
                    reason=f"JMESPath compliance suite not found at {COMPLIANCE_DIR}"
                ),
                id="compliance-suite-absent",
            )
        ]
    params = []
    for path in sorted(COMPLIANCE_DIR.glob("*.json")):
        for group_no, group in enumerate(json.loads(path.read_text(encoding="utf-8"))):
            for case_no, case in enumerate(group["cases"]):
                case_id = f"{path.stem}-{group_no}-{case_no}"
                params.append(pytest.param((group["given"], case), id=case_id))
    return params


CASES = _cases()


def same(actual: Any, expected: Any) -> bool:
    """Equal as JSON values: types matter (1 is not true, 1 is 1.0 as numbers)."""
    if isinstance(expected, bool) or expected is None or isinstance(actual, bool):
        return actual is expected
    if isinstance(expected, int | float):
        return isinstance(actual, int | float) and actual == expected
    if isinstance(expected, str):
        return isinstance(actual, str) and actual == expected
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(actual) == len(expected)
            and all(same(a, e) for a, e in zip(actual, expected, strict=True))
        )
    assert isinstance(expected, dict)
    return (
        isinstance(actual, dict)
        and actual.keys() == expected.keys()
        and all(same(actual[key], value) for key, value in expected.items())
    )


def test_suite_is_complete() -> None:
    if not COMPLIANCE_DIR.is_dir():
        pytest.skip(f"JMESPath compliance suite not found at {COMPLIANCE_DIR}")
    kinds = [case.values[0][1] for case in CASES]
    assert len(kinds) == 908  # 742 result cases, 150 error cases, 16 benchmarks
    assert sum("error" in case for case in kinds) == 150


@pytest.mark.parametrize("given_case", CASES)
def test_compliance(given_case: tuple[Any, dict[str, Any]]) -> None:
    given, case = given_case
    expression = case["expression"]
    if "error" in case:
        with pytest.raises(Exception) as caught:
            compiled = compile_expression(expression)
            assert compiled.compiled
            compiled.search(given)
        assert matches_error(caught.value, case["error"]), repr(caught.value)
    elif "result" in case:
        compiled = compile_expression(expression)
        assert compiled.compiled
        assert same(compiled.search(given), case["result"])
    else:  # a benchmark case: no expected value, so agree with jmespath.py
        assert same(
            compile_expression(expression).search(given), jmespath.search(expression, given)
        )


# Batches hold objects: the cases whose document is one (and that have an expected outcome).
BATCH_CASES = [
    case
    for case in CASES
    if case.values[0] is not None
    and isinstance(case.values[0][0], dict)
    and "bench" not in case.values[0][1]
]


@pytest.mark.parametrize("given_case", BATCH_CASES)
def test_compliance_in_batch_functions(given_case: tuple[Any, dict[str, Any]]) -> None:
    """The same cases through the generated batch map and the route predicate."""
    given, case = given_case
    expression = case["expression"]
    if "error" in case:
        try:
            mapper = compile_map([FieldRule("v", expression)])
        except Exception as error:  # knowable at compile time
            assert matches_error(error, case["error"]), repr(error)
            return
        out, rejected = mapper([given])
        assert out == []
        assert len(rejected) == 1
        assert "failed" in rejected[0].reason
        return
    out, rejected = compile_map([FieldRule("v", expression)])([given])
    assert rejected == []
    assert same(out[0]["v"], case["result"])
    assert compile_predicate(expression)(given) is not is_false(case["result"])

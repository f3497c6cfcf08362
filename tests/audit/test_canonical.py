"""The fast canonical encoder must produce the reference RFC 8785 bytes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
import rfc8785
from hypothesis import given
from hypothesis import strategies as st

from engine.ledger.canonical import canonical_event, canonical_json
from engine.ledger.pruning import prune

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53) + 1, 2**53 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=20,
)


@given(json_values)
def test_matches_reference(value: Any) -> None:
    assert canonical_json(value) == rfc8785.dumps(value)


def test_rfc8785_examples() -> None:
    # Sorting by UTF-16 code units (RFC 8785 §3.2.3), where code point order differs.
    value = {"\U0001f600": 1, "\ufb33": 2, "a": 3}
    assert canonical_json(value) == rfc8785.dumps(value)
    assert canonical_json({"b": 1.0, "a": [1e21, 1e-7, 0.5]}) == b'{"a":[1e+21,1e-7,0.5],"b":1}'
    assert canonical_json({"s": "\u20ac\n\x1f"}) == '{"s":"\u20ac\\n\\u001f"}'.encode()


def test_big_integers_are_refused_like_the_reference() -> None:
    with pytest.raises(rfc8785.IntegerDomainError):
        canonical_json({"n": 2**60})


@given(
    st.dictionaries(st.text(max_size=6), json_values, max_size=4),
    st.floats(0, 1),
    st.text(),
    st.one_of(st.none(), st.integers(0, 2**53 - 1)),
)
def test_event_fast_path_matches_reference(
    details: dict[str, Any], risk: float, action: str, count: int | None
) -> None:
    draft = {
        "event_id": "0" * 32,
        "seq": 7,
        "action": action,
        "record_count": count,
        "details": details,
        "risk_score": risk,
        "resource": None,
    }
    assert canonical_event(draft) == rfc8785.dumps(draft)


@given(
    st.dictionaries(st.text(max_size=6), st.one_of(st.text(max_size=8), json_values), max_size=4),
    st.floats(0, 1),
    st.text(),
)
def test_ordered_drafts_match_reference(details: dict[str, Any], risk: float, action: str) -> None:
    # The trail builds drafts with their keys in sorted order and says so (ordered=True).
    draft = {
        "action": action,
        "details": details,
        "event_id": "0" * 32,
        "record_count": None,
        "risk_score": risk,
        "seq": 7,
    }
    assert canonical_event(draft, ordered=True) == rfc8785.dumps(draft)


def test_trail_drafts_are_built_in_canonical_key_order(tmp_path: Path) -> None:
    from engine.audit.wiring import open_resources
    from engine.model.audit import AuditSettings

    res = open_resources(AuditSettings(compliance=False), tmp_path / ".engine")
    try:
        trail = res.trail("api", actor="api")
        trail.emit(level="INFO", category="SYSTEM", action="x", details={"b": "1", "a": "2"})
        [draft] = trail._pending
        assert list(draft) == sorted(draft)
        trail.close()
        prune(trail, keep_last=0)
        stored = list(res.store.iter_chain("api"))
        assert [orjson.loads(s.body)["action"] for s in stored] == ["retention_applied"]
        assert all(canonical_json(orjson.loads(s.body)) == s.body for s in stored)
    finally:
        res.close()

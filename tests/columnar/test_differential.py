"""The columnar path writes what the row path writes, byte for byte, and rejects the same
records: generated expressions over generated CSV and JSON Lines inputs."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.columnar.support import Outcome, both

pytest.importorskip("polars", reason="the columnar extra is not installed")

FIELDS = ("a", "b", "c", "d")

# Text a CSV cell may hold: numbers as users write them, and the traps around them.
CELLS = st.one_of(
    st.integers(-5000, 5000).map(str),
    st.decimals(-1000, 1000, places=2, allow_nan=False).map(str),
    st.sampled_from(
        [
            "",
            "0",
            "912",
            "741.67",
            "1e3",
            " 7",
            "-0",
            "0.125",
            "2.675",
            "abc",
            "ABC",
            "ß",
            "Ünï",
            "a,b",
            'q"uote',
            "line\nbreak",
            "  pad  ",
            "NaN",
            "1_000",
            "99999999999999999999",
            # traps found by hand: signed zeros, the ends of 64 bits, a cell's own BOM
            "-0.0",
            "0.0",
            "9223372036854775808",
            "-9223372036854775808",
            "\ufeffx",
            # dates: the calendar's edges, and forms only Python's datetime reads
            "2024-02-29",
            "2023-02-29",
            "2024-01-05 07:08",
            "0999-12-31T23:59:59",
            "05/01/2024",
            "2024-01-05T10:30:00Z",
        ]
    ),
    st.text(alphabet='abcxyzÀé ,"-', max_size=6),
)
# A column is of one kind (so that its batches run columnar) or of any.
COLUMN = st.sampled_from(["int", "dec", "text", "date", "any"])
DATES = st.builds(
    lambda moment, form: moment.strftime(form.replace("%Y", f"{moment.year:04d}")),
    st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59)),
    st.sampled_from(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%d/%m/%Y"]),
)
KINDS = {
    "int": st.integers(-5000, 5000).map(str),
    "dec": st.decimals(-1000, 1000, places=2, allow_nan=False).map(lambda d: f"{d:.2f}"),
    "text": st.text(alphabet="abcxyzÀé ,-", max_size=8),
    "date": DATES,
    "any": CELLS,
}


def _field() -> st.SearchStrategy[str]:
    return st.sampled_from(FIELDS)


def _strings(depth: int) -> st.SearchStrategy[str]:
    # a literal with quotes and a comma prints as two literals would in polars
    base = st.one_of(_field(), st.sampled_from(["'x'", "''", "'Ab c'", "'é'", "'a\", \"b'"]))
    if depth <= 0:
        return base
    inner = _strings(depth - 1)
    nums = _numbers(depth - 1)
    return st.one_of(
        base,
        st.tuples(inner, inner).map(lambda t: f"join('-', [{t[0]}, {t[1]}])"),
        st.tuples(inner, inner).map(lambda t: f"concat({t[0]}, {t[1]})"),
        inner.map(lambda s: f"upper({s})"),
        inner.map(lambda s: f"lower({s})"),
        inner.map(lambda s: f"trim({s})"),
        inner.map(lambda s: f"replace({s}, 'a', 'Z')"),
        inner.map(lambda s: f"mask({s}, `2`)"),
        inner.map(lambda s: f"sha256({s})"),
        inner.map(lambda s: f"parse_date({s})"),
        inner.map(lambda s: f"parse_date({s}, '%d/%m/%Y')"),
        inner.map(lambda s: f"format_date({s}, '%d.%m.%Y %H:%M %%')"),
        st.tuples(st.sampled_from(["max", "min"]), st.lists(inner, min_size=1, max_size=3)).map(
            lambda t: f"{t[0]}([{', '.join(t[1])}])"
        ),
        nums.map(lambda n: f"to_string({n})"),
        st.tuples(inner, inner).map(lambda t: f"{t[0]} || {t[1]}"),
        st.tuples(inner, inner).map(lambda t: f"coalesce({t[0]}, {t[1]})"),
        inner.map(lambda s: f"[{s}][0]"),  # no columnar form: the whole map runs row-wise
    )


def _numbers(depth: int) -> st.SearchStrategy[str]:
    base = st.one_of(
        _field().map(lambda f: f"to_number({f})"),
        st.sampled_from(["`0`", "`2`", "`-3`", "`1.2`", "`0.5`", "`0.0`"]),
    )
    if depth <= 0:
        return base
    inner = _numbers(depth - 1)
    pair = st.tuples(inner, inner)
    return st.one_of(
        base,
        pair.map(lambda t: f"add({t[0]}, {t[1]})"),
        pair.map(lambda t: f"subtract({t[0]}, {t[1]})"),
        pair.map(lambda t: f"multiply({t[0]}, {t[1]})"),
        pair.map(lambda t: f"divide({t[0]}, {t[1]})"),
        inner.map(lambda n: f"abs({n})"),
        inner.map(lambda n: f"ceil({n})"),
        inner.map(lambda n: f"floor({n})"),
        st.tuples(inner, st.integers(0, 3)).map(lambda t: f"round({t[0]}, `{t[1]}`)"),
        st.tuples(
            st.sampled_from(["sum", "avg", "max", "min"]), st.lists(inner, min_size=1, max_size=3)
        ).map(lambda t: f"{t[0]}([{', '.join(t[1])}])"),
        _strings(depth - 1).map(lambda s: f"length({s})"),
    )


def _conditions(depth: int) -> st.SearchStrategy[str]:
    strings, numbers = _strings(1), _numbers(1)
    base = st.one_of(
        st.tuples(numbers, st.sampled_from(["<", "<=", ">", ">=", "==", "!="]), numbers).map(
            " ".join
        ),
        st.tuples(strings, st.sampled_from(["==", "!="]), strings).map(" ".join),
        strings.map(lambda s: f"starts_with({s}, 'a')"),
        strings.map(lambda s: f"ends_with({s}, 'c')"),
        strings.map(lambda s: f"contains({s}, 'b')"),
        _field(),
    )
    if depth <= 0:
        return base
    inner = _conditions(depth - 1)
    return st.one_of(
        base,
        inner.map(lambda c: f"!({c})"),
        st.tuples(inner, inner).map(lambda t: f"({t[0]}) && ({t[1]})"),
        st.tuples(inner, inner).map(lambda t: f"({t[0]}) || ({t[1]})"),
    )


EXPRESSIONS = st.one_of(_strings(2), _numbers(2), _conditions(1))


@st.composite
def csv_inputs(draw: st.DrawFn) -> bytes:
    kinds = [draw(COLUMN) for _ in FIELDS]
    rows = draw(st.integers(1, 30))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator=draw(st.sampled_from(["\n", "\r\n"])))
    writer.writerow(FIELDS)
    for _ in range(rows):
        writer.writerow([draw(KINDS[kind]) for kind in kinds])
    return out.getvalue().encode()


JSON_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.sampled_from([-(2**63), 2**63, -0.0]),
    st.floats(allow_nan=False, allow_infinity=False),
    CELLS,
    st.just({"nested": 1}),
    st.just([1, "x"]),
)


@st.composite
def jsonl_inputs(draw: st.DrawFn) -> bytes:
    kinds = [draw(st.sampled_from(["int", "float", "str", "any"])) for _ in FIELDS]
    values = {
        "int": st.integers(-5000, 5000),
        "float": st.floats(-1e6, 1e6, allow_nan=False),
        "str": st.text(alphabet="abcxyzÀé ,-", max_size=8),
        "any": JSON_VALUES,
    }
    lines = []
    for _ in range(draw(st.integers(1, 30))):
        record = {}
        for name, kind in zip(FIELDS, kinds, strict=True):
            if draw(st.integers(0, 9)):  # now and then a record misses the field
                record[name] = draw(values[kind])
        lines.append(json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode())
    return b"\n".join(lines) + b"\n"


def _pipeline(source: str, fields: dict[str, str], condition: str | None, out: str) -> str:
    spec = []
    for i, (name, expr) in enumerate(fields.items()):
        extra = {1: ', default = "dflt"', 2: ", required = true"}.get(i, "")
        spec.append(f"{name} = {{ expr = {json.dumps(expr)}{extra} }}")
    spec_text = "\n".join(spec)
    text = (
        '[pipeline]\nname = "diff"\n[dead_letter]\nmax_rejected = "100%"\n'
        f'[sources.src]\ntype = "file"\npath = "{source}"\n'
        '[transforms.m]\ntype = "map"\ninputs = ["src"]\non_error = "dead_letter"\n'
        f"[transforms.m.fields]\n{spec_text}\n"
    )
    last = "m"
    if condition is not None:
        text += (
            '[transforms.f]\ntype = "filter"\ninputs = ["m"]\non_error = "dead_letter"\n'
            f"condition = {json.dumps(condition)}\n"
        )
        last = "f"
    return text + f'[sinks.out]\ntype = "file"\ninputs = ["{last}"]\npath = "out/{out}"\n'


def _letters(outcome: Outcome) -> list[tuple[object, ...]]:
    """Dead letters without their time and run id."""
    found = []
    for line in outcome.dead_letters.splitlines():
        entry = json.loads(line)
        found.append((entry["component"], entry["reason"], entry["location"], entry["record"]))
    return found


def _same(tmp: Path, pipeline: str) -> None:
    row, col = both(tmp, pipeline)
    assert (col.summary.ok, col.summary.error) == (row.summary.ok, row.summary.error)
    assert col.outputs == row.outputs
    assert _letters(col) == _letters(row)


CASES = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@CASES
@given(
    data=csv_inputs(),
    exprs=st.lists(EXPRESSIONS, min_size=1, max_size=4),
    condition=st.one_of(st.none(), _conditions(1)),
    out=st.sampled_from(["o.jsonl", "o.json", "o.csv"]),
)
def test_csv_input_gives_the_row_paths_bytes(
    tmp_path_factory: pytest.TempPathFactory,
    data: bytes,
    exprs: list[str],
    condition: str | None,
    out: str,
) -> None:
    tmp = tmp_path_factory.mktemp("csv")
    (tmp / "in.csv").write_bytes(data)
    fields = {f"f{i}": expr for i, expr in enumerate(exprs)}
    _same(tmp, _pipeline("in.csv", fields, condition, out))


@CASES
@given(
    data=jsonl_inputs(),
    exprs=st.lists(EXPRESSIONS, min_size=1, max_size=4),
    condition=st.one_of(st.none(), _conditions(1)),
)
def test_jsonl_input_gives_the_row_paths_bytes(
    tmp_path_factory: pytest.TempPathFactory, data: bytes, exprs: list[str], condition: str | None
) -> None:
    tmp = tmp_path_factory.mktemp("jsonl")
    (tmp / "in.jsonl").write_bytes(data)
    fields = {f"f{i}": expr for i, expr in enumerate(exprs)}
    _same(tmp, _pipeline("in.jsonl", fields, condition, "o.jsonl"))

"""The columnar path: where it runs, the traps where its semantics could part from the row
path's (each checked byte for byte against the row path), and its audit trail."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import orjson
import pytest

from engine.audit.observer import AuditObserver
from engine.columnar import ColumnBatch
from engine.ledger.store import AuditStore, default_store_url
from engine.model.audit import AuditSettings
from engine.records import Record
from engine.records.digest import ContentDigest
from engine.runtime.observer import BatchAction, NullObserver, StageInfo
from tests.columnar.support import both, run_path, settings
from tests.support.cli import invoke

pytest.importorskip("polars", reason="the columnar extra is not installed")


class Kinds(NullObserver):
    """Notes, per stage and action, whether each batch was a column batch."""

    def __init__(self) -> None:
        self.seen: dict[tuple[str, str], list[bool]] = {}

    def batch(
        self,
        stage: StageInfo,
        action: BatchAction,
        records: Sequence[Record],
        content: ContentDigest | None = None,
    ) -> None:
        key = (stage.component, action.value)
        self.seen.setdefault(key, []).append(isinstance(records, ColumnBatch))


def _pipeline(fields: Mapping[str, str], *, source: str = "in.csv", out: str = "o.jsonl") -> str:
    lines = "\n".join(f"{name} = {spec}" for name, spec in fields.items())
    return (
        '[pipeline]\nname = "traps"\n[dead_letter]\nmax_rejected = "100%"\n'
        f'[sources.src]\ntype = "file"\npath = "{source}"\n'
        '[transforms.m]\ntype = "map"\ninputs = ["src"]\non_error = "dead_letter"\n'
        f"[transforms.m.fields]\n{lines}\n"
        f'[sinks.out]\ntype = "file"\ninputs = ["m"]\npath = "out/{out}"\n'
    )


def _same(tmp_path: Path, data: bytes, pipeline: str, name: str = "in.csv") -> bytes:
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / name).write_bytes(data)
    row, col = both(tmp_path, pipeline)
    assert (col.summary.ok, col.summary.error) == (row.summary.ok, row.summary.error)
    assert col.outputs == row.outputs
    assert _letters(col.dead_letters, "auto") == _letters(row.dead_letters, "off")
    return next(iter(col.outputs.values()), b"")


def _letters(data: bytes, folder: str) -> list[dict[str, object]]:
    """Dead letters without their time and run id, and their folder left out."""
    found = []
    for line in data.splitlines():
        entry = {k: v for k, v in json.loads(line).items() if k not in ("time", "run_id")}
        entry["location"] = str(entry["location"]).replace(f"/{folder}/", "/")
        found.append(entry)
    return found


#: dates as users write them, and those Python's datetime refuses or reads otherwise
DATES = [
    "2024-01-05",
    "2024-02-29",
    "2023-02-29",
    "1900-02-29",
    "2000-02-29",
    "2024-04-31",
    "2024-01-05T10:30:00",
    "2024-01-05 10:30",
    "2024-01-05t10:30:00",
    "2024-01-05x10:30",
    "2024-01-05T24:00:00",
    "0000-01-01",
    "0999-12-31",
    "2024-13-01",
    "",
    "\u0662\u0660\u0662\u0664-01-05",
]

BENCH = {
    "product_id": "\"join('', ['PROD_', sku])\"",
    "name": '"name"',
    "quantity": '"to_number(quantity)"',
    "delta": '"subtract(to_number(quantity), to_number(previous_quantity))"',
    "price": '"to_number(price)"',
    "product_type": "\"category || 'General'\"",
    "warehouse": '"warehouse"',
    "cost": '"round(multiply(to_number(price), `1.2`), `2`)"',
}
INVENTORY = (
    b"sku,name,quantity,previous_quantity,price,category,warehouse\n"
    b'SKU1,"Item 1 ""deluxe"", size 11",912,204,741.67,Electronics,WH-WEST\n'
    b"SKU2,Caf\xc3\xa9 \xe2\x9c\x93,4467,712,590.69,,WH-EAST\n"
    b'SKU3,"two\nlines",0,5000,0.50,Garden,DC-01\n'
)


def test_the_inventory_mapping_runs_columnar_with_the_row_paths_bytes(tmp_path: Path) -> None:
    (tmp_path / "in.csv").write_bytes(INVENTORY)
    kinds = Kinds()
    outcome = run_path(tmp_path, _pipeline(BENCH), "auto", kinds)
    assert outcome.summary.ok, outcome.summary.error
    assert kinds.seen[("src", "batch_read")] == [True]
    assert kinds.seen[("m", "batch_transformed")] == [True]
    first = orjson.loads(outcome.outputs["o.jsonl"].splitlines()[0])
    assert first == {
        "product_id": "PROD_SKU1",
        "name": 'Item 1 "deluxe", size 11',
        "quantity": 912,
        "delta": 708,
        "price": 741.67,
        "product_type": "Electronics",
        "warehouse": "WH-WEST",
        "cost": 890.0,
    }
    assert _same(tmp_path / "cmp", INVENTORY, _pipeline(BENCH)) == outcome.outputs["o.jsonl"]


def test_off_runs_the_row_path(tmp_path: Path) -> None:
    (tmp_path / "in.csv").write_bytes(INVENTORY)
    copy = (
        '[pipeline]\nname = "copy"\n[sources.src]\ntype = "file"\npath = "in.csv"\n'
        '[sinks.out]\ntype = "file"\ninputs = ["src"]\npath = "out/o.jsonl"\n'
    )
    for pipeline in (_pipeline(BENCH), copy):
        kinds = Kinds()
        run_path(tmp_path, pipeline, "off", kinds)
        assert kinds.seen and not any(any(seen) for seen in kinds.seen.values())
        kinds = Kinds()
        run_path(tmp_path, pipeline, "auto", kinds)
        assert all(all(seen) for seen in kinds.seen.values())


@pytest.mark.parametrize(
    ("cells", "expr"),
    [
        # to_number: an int for "912", a float for "741.67", in one column
        (["912", "741.67", "", "x", " 7", "1e3", "-0"], '"to_number(a)"'),
        (["912", "741.67"], '"multiply(to_number(a), `2`)"'),
        # truthiness: '' and null are false, 0 is true; || gives the left value
        (["", "0", "a"], "\"a || 'empty'\""),
        (["", "0", "3"], '"to_number(a) || `5`"'),
        (["", "0", "a"], "\"!a && 'x'\""),
        # Python rounds half to even, on the exact binary value
        (["0.5", "1.5", "2.5", "0.125", "2.675", "1.005", "-0.5"], '"round(to_number(a), `0`)"'),
        (["0.125", "2.675", "1.005", "0.045", "-0.001"], '"round(to_number(a), `2`)"'),
        # default and required: '' is missing
        (["", "x"], '{ expr = "a", default = "D" }'),
        (["", "x"], '{ expr = "a", required = true }'),
        (["", "3"], '{ expr = "to_number(a)", default = 9 }'),
        # unicode: case maps and lengths of code points
        (["ß", "ǅ", "İ", "é✓😀", "ΣΑΣ"], '"upper(a)"'),
        (["ß", "ǅ", "İ", "ΣΑΣ"], '"lower(a)"'),
        (["é✓😀", "\u00a0x\u2003", "\x1fy\x1c"], '"[length(a), trim(a)][1]"'),
        (["é✓😀", "\u00a0x\u2003", "\x1fy\x1c"], '"trim(a)"'),
        (["é✓😀", "ab"], '"length(a)"'),
        (["é✓😀", "ab", ""], '"mask(a, `1`)"'),
        # the JSON encoder's float text, beside polars' own
        (["1e16", "1e-5", "123456789.125", "0.1", "1e300"], '"to_string(to_number(a))"'),
        (["1e16", "1e-7", "1e22", "5e-324", "1e400"], '"to_number(a)"'),
        # integers past 64 bits and division by zero: the row path decides
        (["99999999999999999999", "3"], '"add(to_number(a), `1`)"'),
        (["99999999999999999999", "1.5"], '"to_number(a)"'),  # beside floats, too
        (["-9223372036854775809", "1" * 50], '"subtract(to_number(a), `1`)"'),
        # the smallest 64-bit integer: its negation is past 64 bits
        (["-9223372036854775808", "5"], '"abs(to_number(a))"'),
        (["-9223372036854775808", "5"], '"multiply(to_number(a), `-1`)"'),
        (["-9223372036854775808", "5"], '"subtract(`0`, to_number(a))"'),
        # a zero's sign, which polars' simplifications lose (x + 0.0, 0 - x)
        (["0.0", "-0.0", "1.5"], '"add(to_number(a), `0.0`)"'),
        (["0.0", "-0.0", "1.5"], '"subtract(`0`, to_number(a))"'),
        (["0.0", "-0.0", "-2.5"], '"multiply(to_number(a), `0`)"'),
        # NaN: equal to nothing, neither above nor below anything (polars: above all)
        (["nan", "1.5"], '"to_number(a) == to_number(a)"'),
        (["NaN", "7.5"], '"to_number(a) > `5`"'),
        (["-nan", "7.5"], '"to_number(a) < `5`"'),
        (["0", "4"], '"divide(`7`, to_number(a))"'),
        # ceil and floor: Python's int, of any size; NaN and infinity reject the record
        (
            ["1.5", "-0.5", "-2.5", "-0.0", "2.0", "99999999999999999999.5", "1e300"],
            '"ceil(to_number(a))"',
        ),
        (["1.5", "-0.5", "-2.5", "-0.0", "-1e300", "nan", "inf"], '"floor(to_number(a))"'),
        (["912", "741.67", "-3"], '"ceil(to_number(a))"'),
        (["1.5", "-9.5", "0.25"], '"floor(multiply(to_number(a), `1000000000000000000.0`))"'),
        # sum, avg, max and min of a written-out array: Python's sum from 0 (0 + -0.0 is
        # 0.0), division of a sum past 2**53, the first of equal maximums, NaN, code points
        (
            ["1", "2.5", "-0.0", "", "x", "9223372036854775807", "0.1"],
            '"sum([to_number(a), `1`, to_number(a)])"',
        ),
        (["1", "2.5", "", "99999999999999999", "-2"], '"avg([to_number(a), `2`])"'),
        (["1", "3", "", "nan", "2.5"], '"max([to_number(a), `2`])"'),
        (["1.5", "-0.0", "0.0", "nan", "3.5"], '"min([to_number(a), `2.5`])"'),
        (["-0.0", "0.0", "1.5", "nan"], '"max([to_number(a), `0.0`])"'),
        (["0.0", "-0.0", "nan", "2.5"], '"min([to_number(a), `0.0`])"'),
        (["1.5", "nan"], '"max([to_number(a), `0.5`])"'),
        # to_number beside a float literal: its float form, or the row path for whole numbers
        (["1.5", "", "912", "x"], '"to_number(a) || `0.5`"'),
        (["1.5", "", "912"], '"coalesce(to_number(a), `0.0`)"'),
        (["b", "😀", "", "ÿ", "é"], "\"max([a, 'é'])\""),
        (["b", "😀", "", "ÿ", "a"], "\"min([a, 'b', a])\""),
        # dates: Python's datetime decides every form but the fixed-width ones, the calendar
        # (leap years, a month's days, year 0) and a year before 1000 in strftime's %Y
        (
            [*DATES, "2024-01-05T10:30:00Z", "2024-01-05T10:30:00.5", "20240105", "2024-W01-1"],
            '"parse_date(a)"',
        ),
        (
            [
                "05/01/2024",
                "5/1/2024",
                "05/1/2024",
                "31/04/2024",
                "29/02/2023",
                "29/02/2024",
                "05/01/2024 ",
            ],
            "\"parse_date(a, '%d/%m/%Y')\"",
        ),
        (["202401051030", "2024010510", "000101010000"], "\"parse_date(a, '%Y%m%d%H%M')\""),
        (
            [
                "2024-01-05T10:30:59",
                "2024-01-05t10:30:00",
                "2024-01-05T10:30:60",
                "2024-01-05T24:30:00",
            ],
            "\"parse_date(a, '%Y-%m-%dT%H:%M:%S')\"",
        ),
        (["01 05 2024", "01  05 2024", "01\t05 2024"], "\"parse_date(a, '%m %d %Y')\""),
        (["2024-01-05", "12"], "\"parse_date(a, '%Y-%m-%d%%')\""),
        (DATES, "\"format_date(a, '%d.%m.%Y %H:%M:%S %y %%')\""),
        (DATES, "\"format_date(a, '%F %T %j')\""),
    ],
)
def test_a_trap_gives_the_row_paths_bytes(tmp_path: Path, cells: list[str], expr: str) -> None:
    # all the cells in one batch (one of them may send it down the row path), then each
    # cell alone, so that every cell the columnar path keeps is checked
    for i, batch in enumerate([cells, *([c] for c in cells)]):
        data = "a\n" + "".join(f'"{c}"\n' for c in batch)
        _same(tmp_path / str(i), data.encode(), _pipeline({"v": expr, "a": '"a"'}))


@pytest.mark.parametrize(
    ("data", "fields", "lines"),
    [
        pytest.param(
            b"a,b\n1.5,-2.25\n-0.5,7.75\n3.0,0.0\n",
            {"c": '"ceil(to_number(a))"', "f": '"floor(to_number(b))"'},
            [b'{"c":2,"f":-3}', b'{"c":0,"f":7}', b'{"c":3,"f":0}'],
            id="ceil-floor",
        ),
        pytest.param(
            b"a,b\n1.5,2\n-7.25,4\n",
            {
                "s": '"sum([to_number(a), to_number(a), `1.0`])"',
                "v": '"avg([to_number(b), `3`])"',
                "x": "\"max([a, 'é'])\"",
                "n": '"min([to_number(b), `3`, to_number(b)])"',
            },
            [
                b'{"s":4.0,"v":2.5,"x":"\xc3\xa9","n":2}',
                b'{"s":-13.5,"v":3.5,"x":"\xc3\xa9","n":3}',
            ],
            id="sum-avg-max-min",
        ),
        pytest.param(  # to_number's float form, where its int form would not translate
            b"a,b\n1.5,\n-2.25,7.0\n",
            {"v": '"to_number(b) || `0.5`"', "m": '"max([to_number(a), `1.0`])"'},
            [b'{"v":0.5,"m":1.5}', b'{"v":7.0,"m":1.0}'],
            id="to_number-beside-a-float",
        ),
        pytest.param(
            b"a,b\n2024-02-29 07:08,05/01/2024\n1999-12-31,31/12/1999\n",
            {
                "p": '"parse_date(a)"',
                "q": "\"parse_date(b, '%d/%m/%Y')\"",
                "f": "\"format_date(a, '%d.%m.%y %H:%M %%')\"",
            },
            [
                b'{"p":"2024-02-29T07:08:00","q":"2024-01-05T00:00:00","f":"29.02.24 07:08 %"}',
                b'{"p":"1999-12-31T00:00:00","q":"1999-12-31T00:00:00","f":"31.12.99 00:00 %"}',
            ],
            id="dates",
        ),
    ],
)
def test_functions_run_columnar(
    tmp_path: Path, data: bytes, fields: dict[str, str], lines: list[bytes]
) -> None:
    (tmp_path / "in.csv").write_bytes(data)
    kinds = Kinds()
    outcome = run_path(tmp_path, _pipeline(fields), "auto", kinds)
    assert outcome.summary.ok, outcome.summary.error
    assert kinds.seen[("m", "batch_transformed")] == [True]
    assert outcome.outputs["o.jsonl"].splitlines() == lines


def test_expressions_that_polars_prints_alike_stay_apart(tmp_path: Path) -> None:
    # polars prints lit('1", "2') as it prints lit('1'), lit('2'): what is computed once
    # for several expressions, and each guard, is told apart by the expression itself
    fields = {
        "x": json.dumps("to_number(concat(a, '1', '2'))"),
        "y": json.dumps("to_number(concat(a, '1\", \"2'))"),
        "z": json.dumps("replace(a, 'x\", \"1', '')"),
        "w": json.dumps("replace(a, 'x', '1\", \"')"),
    }
    out = _same(tmp_path, b"a\n5\n7\n", _pipeline(fields))
    assert orjson.loads(out.splitlines()[0]) == {"x": 512, "y": None, "z": "5", "w": "5"}


def test_records_missing_a_field_and_decimals_give_the_row_paths_bytes(tmp_path: Path) -> None:
    lines = [{"a": 1, "b": "x"}, {"b": "y"}, {"a": None, "b": ""}, {"a": 2.5}, {"a": "t"}]
    data = b"".join(orjson.dumps(r) + b"\n" for r in lines)
    fields = {"a": '"a"', "b": '{ expr = "b", default = "none" }', "c": '"coalesce(a, `0`)"'}
    _same(tmp_path, data, _pipeline(fields, source="in.jsonl"), "in.jsonl")
    decimals = b"a\n1.10\n2.005\n"
    pipeline = _pipeline({"v": '"multiply(a, `3`)"'}).replace(
        'path = "in.csv"', 'path = "in.csv"\ncodec = { type = "csv", types = { a = "decimal" } }'
    )
    _same(tmp_path / "dec", decimals, pipeline)


def test_a_malformed_row_is_located_and_routed_as_on_the_row_path(tmp_path: Path) -> None:
    rows = [f"S{i},{i}" for i in range(2000)]
    rows[700] = "S700"  # one field short
    rows[1500] = 'S1500,"x"y'  # a stray quote
    data = ("sku,q\n" + "\n".join(rows) + "\n").encode()
    pipeline = _pipeline({"sku": '"sku"', "q": '"to_number(q)"'}).replace(
        'path = "in.csv"', 'path = "in.csv"\non_error = "dead_letter"'
    )
    out = _same(tmp_path, data, pipeline)
    assert out.count(b"\n") == 1998
    letters = (tmp_path / "auto").glob(".engine-auto/dead_letter/**/*.jsonl")
    located = [json.loads(line)["location"] for p in letters for line in p.read_text().splitlines()]
    assert located == [
        f"{tmp_path / 'auto' / 'in.csv'}:702",
        f"{tmp_path / 'auto' / 'in.csv'}:1502",
    ]


def test_a_pipeline_mixes_both_paths(tmp_path: Path) -> None:
    data = b"a,b\n1,x\n2,y\n"
    pipeline = (
        _pipeline({"n": '"to_number(a)"', "b": '"b"'})
        .replace('inputs = ["m"]', 'inputs = ["pairs"]')
        .replace(
            "[sinks.out]",
            '[transforms.pairs]\ntype = "map"\ninputs = ["m"]\n'
            '[transforms.pairs.fields]\npair = "[n, b]"\nkeys = "keys(@)"\n[sinks.out]',
        )
    )
    (tmp_path / "in.csv").write_bytes(data)
    kinds = Kinds()
    outcome = run_path(tmp_path, pipeline, "auto", kinds)
    assert kinds.seen[("m", "batch_transformed")] == [True]  # translates
    assert kinds.seen[("pairs", "batch_transformed")] == [False]  # arrays: the row path
    assert outcome.outputs["o.jsonl"] == (
        b'{"pair":[1,"x"],"keys":["n","b"]}\n{"pair":[2,"y"],"keys":["n","b"]}\n'
    )
    _same(tmp_path / "cmp", data, pipeline)


def test_a_columnar_runs_audit_digests_are_the_files_sha256(tmp_path: Path) -> None:
    rows = [f'S{i},"Item, {i}",{i},{i % 7}.25' for i in range(60_000)]
    data = ("sku,name,q,p\n" + "\n".join(rows) + "\n").encode()
    (tmp_path / "in.csv").write_bytes(data)
    fields = {"sku": '"sku"', "q": '"to_number(q)"', "p": '"multiply(to_number(p), `2`)"'}
    workspace = tmp_path / ".engine-auto"
    observer = AuditObserver(AuditSettings(), workspace, env=settings("auto"))
    kinds: list[bool] = []
    original = observer.batch

    def batch(stage: StageInfo, action: BatchAction, records: Sequence[Record], *a: object) -> None:
        kinds.append(isinstance(records, ColumnBatch))
        original(stage, action, records, *a)  # type: ignore[arg-type]

    observer.batch = batch  # type: ignore[method-assign]
    try:
        outcome = run_path(tmp_path, _pipeline(fields), "auto", observer)
    finally:
        observer.close()
    assert outcome.summary.ok, outcome.summary.error
    assert all(kinds) and len(kinds) >= 6  # several blocks, all columnar
    output = outcome.outputs["o.jsonl"]
    with AuditStore(default_store_url(workspace), create=False) as store:
        events = [orjson.loads(e.body) for e in store.iter_chain("pipeline:traps")]
    for action, key, content in (
        ("batch_read", "input_bytes", data),
        ("batch_written", "output_bytes", output),
    ):
        found = [e for e in events if e["action"] == action]
        position = 0
        for event in found:
            start, end = event["details"][key]
            assert start == position
            assert event["digest"] == hashlib.sha256(content[start:end]).hexdigest()
            position = end
        assert position == len(content)
    transformed = [e["digest"] for e in events if e["action"] == "batch_transformed"]
    written = [e["digest"] for e in events if e["action"] == "batch_written"]
    assert transformed == written  # a JSON Lines sink's bytes are the batch's digest
    code, out, err = invoke("audit", "verify", "--workspace", str(workspace))
    assert code == 0, out + err


def test_an_interrupted_columnar_read_resumes_where_it_stopped(tmp_path: Path) -> None:
    import anyio

    from engine.components.base import ComponentContext
    from engine.components.sources.file import FileSource, FileSourceConfig

    rows = [f'S{i},"line {i}\nand, more",{i}' for i in range(60_000)]
    rows[45_000] = "S45000,short"  # the row decoder takes over in the last block
    data = ("sku,text,q\n" + "\n".join(rows) + "\n").encode()
    (tmp_path / "in.csv").write_bytes(data)
    config = FileSourceConfig(type="file", path="in.csv")

    def source() -> FileSource:
        context = ComponentContext("src", "p", tmp_path, tmp_path / ".e", columnar=True)
        return FileSource(config, context)

    async def records(reader: FileSource, chunks: int | None) -> tuple[list[Record], object]:
        got: list[Record] = []
        taken = 0
        async for chunk in reader.read():
            got.extend(chunk.records)
            taken += 1
            if chunks is not None and taken == chunks:
                break
        return got, reader.position()

    whole, _ = anyio.run(records, source(), None)
    assert len(whole) == 59_999
    for stop in (1, 3):
        first, position = anyio.run(records, source(), stop)
        resumed = source()
        resumed.resume_from(position)  # type: ignore[arg-type]
        rest, _ = anyio.run(records, resumed, None)
        assert first + rest == whole


def test_route_gives_the_row_paths_bytes(tmp_path: Path) -> None:
    data = b"a,b\n1,x\n2,\n30,y\n,z\n5,x\n"
    pipeline = (
        '[pipeline]\nname = "route"\n'
        '[sources.src]\ntype = "file"\npath = "in.csv"\n'
        '[transforms.r]\ntype = "route"\ninputs = ["src"]\n'
        "[transforms.r.routes]\n"
        'big = "to_number(a) > `3`"\nnamed = "b"\n'
        '[sinks.big]\ntype = "file"\ninputs = ["r.big"]\npath = "out/big.jsonl"\n'
        '[sinks.named]\ntype = "file"\ninputs = ["r.named"]\npath = "out/named.jsonl"\n'
        '[sinks.rest]\ntype = "file"\ninputs = ["r._unmatched"]\npath = "out/rest.csv"\n'
    )
    (tmp_path / "in.csv").write_bytes(data)
    kinds = Kinds()
    outcome = run_path(tmp_path, pipeline, "auto", kinds)
    assert outcome.summary.ok, outcome.summary.error
    assert kinds.seen[("big", "batch_written")] == [True]
    assert outcome.outputs["big.jsonl"] == b'{"a":"30","b":"y"}\n{"a":"5","b":"x"}\n'
    _same(tmp_path / "cmp", data, pipeline)


def test_without_polars_everything_runs_on_the_row_path(tmp_path: Path) -> None:
    from tests.support.blocked import engine_without

    (tmp_path / "in.csv").write_bytes(INVENTORY)
    (tmp_path / "pipeline.toml").write_text(_pipeline(BENCH))
    done = engine_without(
        ["polars"], "run", "-q", "pipeline.toml", cwd=tmp_path, env={"ENGINE_AUDIT": "false"}
    )
    assert done.returncode == 0, done.stderr
    without = (tmp_path / "out" / "o.jsonl").read_bytes()
    assert _same(tmp_path / "cmp", INVENTORY, _pipeline(BENCH)) == without


@pytest.mark.parametrize("out", ["o.xml", "o.parquet"])
def test_a_sink_whose_encoder_takes_records_gets_them(tmp_path: Path, out: str) -> None:
    if out.endswith(".parquet"):
        pytest.importorskip("pyarrow", reason="the parquet codec needs pyarrow")
    fields = {"sku": '"sku"', "q": '"to_number(quantity)"', "p": '"to_number(price)"'}
    _same(tmp_path, INVENTORY, _pipeline(fields, out=out))


def test_workers_share_the_cores_between_their_polars_threads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import os

    from engine.columnar import THREADS_VARIABLE, limit_threads

    monkeypatch.delenv(THREADS_VARIABLE, raising=False)
    cores = len(os.sched_getaffinity(0))
    limit_threads(2)
    assert os.environ[THREADS_VARIABLE] == str(max(1, cores // 2))
    monkeypatch.setenv(THREADS_VARIABLE, "7")
    limit_threads(2)
    assert os.environ[THREADS_VARIABLE] == "7"  # the user's choice stays


def test_large_buffers_keep_their_own_mappings_after_one_is_freed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # glibc raises its mmap threshold to the size of each mapped buffer freed: without a
    # fixed one, the second 4 MiB buffer would come from the heap, and the heap creeps
    import os
    import subprocess
    import sys

    from engine.codecs.columns import BLOCK
    from engine.columnar import MMAP_THRESHOLD, MMAP_THRESHOLD_VARIABLE

    if not sys.platform.startswith("linux") or not os.confstr("CS_GNU_LIBC_VERSION"):
        pytest.skip("glibc's malloc only")
    probe = """
import ctypes, sys
names = "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost"
class Info(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in names.split()]
libc = ctypes.CDLL(None)
libc.mallinfo2.restype = Info
if sys.argv[1] == "release":
    from engine.columnar import release_columnar_memory
    release_columnar_memory()
first = bytearray(4 << 20)
del first
second = bytearray(4 << 20)
held = libc.mallinfo2().hblks
del second
print(held - libc.mallinfo2().hblks)  # 1: the buffer had a mapping of its own
"""
    monkeypatch.delenv(MMAP_THRESHOLD_VARIABLE, raising=False)

    def mapped(how: str) -> int:
        run = subprocess.run([sys.executable, "-c", probe, how], capture_output=True, check=True)
        return int(run.stdout)

    assert mapped("plain") == 0  # the threshold rose: the second buffer is in the heap
    assert mapped("release") == 1
    monkeypatch.setenv(MMAP_THRESHOLD_VARIABLE, str(8 << 20))
    assert mapped("plain") == 0  # the user's choice (8 MiB) stays
    assert mapped("release") == 0
    # a CSV block comes from the heap (its space reused by the next), a larger buffer not
    assert BLOCK < MMAP_THRESHOLD < 4 << 20

"""Batch digests of file sources and sinks: the SHA-256 of the bytes read or written."""

from __future__ import annotations

import hashlib
from pathlib import Path

import anyio
import orjson
import pytest

from engine.audit.observer import batch_digest
from engine.ledger.store import AuditStore, default_store_url
from engine.pipeline import compile_file, run

ROWS = 20_000


def _pipeline(folder: Path, codec: str, data: bytes) -> Path:
    (folder / f"in.{codec}").write_bytes(data)
    path = folder / "pipeline.toml"
    path.write_text(
        f"""
[pipeline]
name = "digests"
[sources.src]
type = "file"
path = "in.{codec}"
batch = {{ size = 1000 }}
[sinks.out]
type = "file"
inputs = ["src"]
path = "out.jsonl"
"""
    )
    return path


def _read_events(workspace: Path, action: str = "batch_read") -> list[dict[str, object]]:
    with AuditStore(default_store_url(workspace), create=False) as store:
        bodies = [orjson.loads(e.body) for e in store.iter_chain("pipeline:digests")]
    return [b for b in bodies if b["action"] == action]


@pytest.mark.parametrize(
    "codec",
    ["csv", "jsonl"],
)
def test_read_digests_cover_the_input_byte_for_byte(
    tmp_path: Path, codec: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENGINE_COLUMNAR", "off")  # batches of `batch.size` records
    if codec == "csv":
        lines = ["sku,name,quantity"] + [f'S{i},"Item, {i}",{i}' for i in range(ROWS)]
        data = ("\n".join(lines) + "\n").encode()
    else:
        data = b"".join(orjson.dumps({"sku": f"S{i}", "quantity": i}) + b"\n" for i in range(ROWS))
    workspace = tmp_path / ".engine"
    summary = anyio.run(
        lambda: run(compile_file(_pipeline(tmp_path, codec, data)), workspace=workspace)
    )
    assert summary.ok, summary.error
    events = _read_events(workspace)
    assert sum(int(e["record_count"]) for e in events) == ROWS  # type: ignore[call-overload]
    position = 0
    for event in events:
        details = event["details"]
        assert isinstance(details, dict)
        start, end = details["input_bytes"]
        assert start == position  # contiguous: no byte read goes unsigned
        assert event["digest"] == hashlib.sha256(data[start:end]).hexdigest()
        position = end
    assert position == len(data)
    assert (
        sum(1 for e in events if e["details"]["input_bytes"][1] > e["details"]["input_bytes"][0])
        > 3
    )  # type: ignore[index]


def test_a_changed_input_byte_changes_its_batch_digest(tmp_path: Path) -> None:
    lines = ["sku,quantity"] + [f"S{i},{i}" for i in range(ROWS)]
    data = ("\n".join(lines) + "\n").encode()
    first = tmp_path / "a"
    second = tmp_path / "b"
    first.mkdir()
    second.mkdir()
    tampered = data.replace(b"S2000,2000", b"S2000,2001")
    digests = []
    for folder, content in ((first, data), (second, tampered)):
        anyio.run(
            lambda f=folder, c=content: run(
                compile_file(_pipeline(f, "csv", c)), workspace=f / ".e"
            )
        )
        digests.append([e["digest"] for e in _read_events(folder / ".e")])
    changed = [i for i, (a, b) in enumerate(zip(*digests, strict=True)) if a != b]
    assert len(changed) == 1  # only the batch that read the changed byte


def test_written_digests_cover_the_output_and_serve_the_transform(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENGINE_COLUMNAR", "off")  # batches of `batch.size` records
    lines = ["sku,quantity"] + [f"S{i},{i}" for i in range(ROWS)]
    path = _pipeline(tmp_path, "csv", ("\n".join(lines) + "\n").encode())
    text = path.read_text().replace('inputs = ["src"]', 'inputs = ["double"]')
    text += """
[transforms.double]
type = "map"
inputs = ["src"]
[transforms.double.fields]
sku = "sku"
twice = "multiply(to_number(quantity), `2`)"
"""
    path.write_text(text)
    workspace = tmp_path / ".engine"
    summary = anyio.run(lambda: run(compile_file(path), workspace=workspace))
    assert summary.ok, summary.error
    output = (tmp_path / "out.jsonl").read_bytes()
    written = _read_events(workspace, "batch_written")
    transformed = _read_events(workspace, "batch_transformed")
    assert len(written) == len(transformed) == ROWS // 1000
    position = 0
    for done, made in zip(written, transformed, strict=True):
        details = done["details"]
        assert isinstance(details, dict)
        start, end = details["output_bytes"]
        assert start == position
        assert done["digest"] == hashlib.sha256(output[start:end]).hexdigest()
        # The transform's batch is those very records: as JSON Lines, the same bytes.
        assert made["digest"] == done["digest"]
        records = [orjson.loads(line) for line in output[start:end].splitlines()]
        assert made["digest"] == batch_digest(records)
        position = end
    assert position == len(output)

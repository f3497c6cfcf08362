"""A small file-to-file pipeline with a rejected row, for the metrics and traces tests."""

from __future__ import annotations

from pathlib import Path

PIPELINE = """
[pipeline]
name = "{name}"

[sources.rows]
type = "file"
path = "in.csv"
codec = "csv"
batch = {{ size = 2 }}

[transforms.shape]
type = "map"
inputs = ["rows"]
on_error = "dead_letter"
[transforms.shape.fields]
id = {{ expr = "to_number(id)", required = true }}

[sinks.out]
type = "file"
inputs = ["shape"]
path = "out.jsonl"
"""

#: five rows, one of which (``x``) the map rejects: 4 written, 1 dead-lettered, 3 chunks read
ROWS = ["1", "2", "x", "4", "5"]


def write_pipeline(folder: Path, name: str = "obs") -> Path:
    (folder / "in.csv").write_text("id\n" + "\n".join(ROWS) + "\n", encoding="utf-8")
    path = folder / "pipeline.toml"
    path.write_text(PIPELINE.format(name=name), encoding="utf-8")
    return path

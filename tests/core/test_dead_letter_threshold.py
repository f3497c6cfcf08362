"""`[dead_letter] max_rejected`: a run that rejects too much fails, publishes nothing, and
says where its dead letters are."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.cli import invoke

PIPELINE = """\
[pipeline]
name = "threshold"
[sources.src]
type = "file"
path = "in.csv"
on_error = "dead_letter"
[transforms.shape]
type = "map"
inputs = ["src"]
on_error = "skip"
fields = {{ a = {{ expr = "a", required = true }} }}
[sinks.out]
type = "file"
inputs = ["shape"]
path = "out.jsonl"
{extra}"""

# 10 rows: 2 cannot be decoded (dead-lettered), 1 has no `a` (skipped by the map)
ROWS = "a,b\n" + "".join(f"{i},x\n" for i in range(7)) + "bad\nbad\n,y\n"


def run(tmp_path: Path, rows: str, extra: str = "") -> tuple[int, dict[str, object], str]:
    (tmp_path / "in.csv").write_text(rows)
    path = tmp_path / "p.toml"
    path.write_text(PIPELINE.format(extra=extra))
    code, out, err = invoke("run", "--no-audit", "--format", "json", str(path))
    return code, json.loads(out) if out.strip() else {}, err


@pytest.mark.parametrize(
    ("setting", "ok"),
    [
        ("", True),  # default: fails only when every record is rejected
        ("max_rejected = 3", True),
        ("max_rejected = 2", False),
        ('max_rejected = "30%"', True),
        ('max_rejected = "29.9%"', False),
        ("max_rejected = 0", False),
    ],
)
def test_the_threshold_counts_every_rejection(tmp_path: Path, setting: str, ok: bool) -> None:
    extra = f"[dead_letter]\n{setting}\n" if setting else ""
    code, summary, err = run(tmp_path, ROWS, extra)
    assert code == (0 if ok else 1), err
    assert summary["ok"] is ok
    assert (tmp_path / "out.jsonl").exists() is ok  # a failed run publishes nothing
    if not ok:
        assert f"3 of 10 records read were rejected, more than [dead_letter] {setting}" in str(
            summary["error"]
        )


def test_a_run_that_rejects_every_record_fails_by_default(tmp_path: Path) -> None:
    code, summary, _ = run(tmp_path, "a,b\nbad\nbad\n,z\n")
    assert code == 1
    assert "all 3 records read were rejected" in str(summary["error"])
    dead = Path(str(summary["dead_letter_path"]))
    assert dead.is_file() and len(dead.read_text().splitlines()) == 2
    assert not (tmp_path / "out.jsonl").exists()


def test_the_summary_prints_the_dead_letter_file(tmp_path: Path) -> None:
    (tmp_path / "in.csv").write_text(ROWS)
    path = tmp_path / "p.toml"
    path.write_text(PIPELINE.format(extra='[dead_letter]\npath = "rejects/{run_id}.jsonl"\n'))
    code, _, err = invoke("run", "--no-audit", str(path))
    assert code == 0, err
    [dead] = (tmp_path / "rejects").iterdir()
    assert f"2 record(s) written to the dead-letter file {dead}" in err


def test_an_empty_input_is_no_failure(tmp_path: Path) -> None:
    code, summary, err = run(tmp_path, "a,b\n")
    assert code == 0, err
    assert summary["dead_letter_path"] is None


@pytest.mark.parametrize("value", ["-1", '"5"', '"150%"', "true", '"many%"'])
def test_a_bad_threshold_is_a_located_error(tmp_path: Path, value: str) -> None:
    path = tmp_path / "p.toml"
    path.write_text(PIPELINE.format(extra=f"[dead_letter]\nmax_rejected = {value}\n"))
    code, _, err = invoke("validate", str(path))
    assert code == 78
    assert f"{path}:17:1: error[E032]: dead_letter.max_rejected" in err


def test_dry_run_lists_rejections_without_the_bound(tmp_path: Path) -> None:
    (tmp_path / "in.csv").write_text("a,b\nbad\nbad\n,z\n")
    path = tmp_path / "p.toml"
    path.write_text(PIPELINE.format(extra=""))
    code, out, err = invoke("dry-run", "--format", "json", str(path))
    assert code == 0, err
    assert len(json.loads(out)["rejected"]) == 2  # the dead-lettered ones; skipped go unlisted

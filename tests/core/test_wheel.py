"""The wheel: license, classifiers, the pipeline schema as package data, and `engine schema`
working from the installed files (no checkout around them).

Built offline from a copy of the source, with the environment's setuptools.
"""

from __future__ import annotations

import email
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SKIP = shutil.ignore_patterns(
    ".git", ".venv", "__pycache__", "*.egg-info", "build", "dist", ".engine", "out", ".*_cache"
)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("wheel")
    source = tmp / "src"
    shutil.copytree(ROOT, source, symlinks=True, ignore=SKIP)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-w",
            str(tmp / "dist"),
            str(source),
        ],
        check=True,
        capture_output=True,
    )
    [built] = (tmp / "dist").glob("engine-*.whl")
    return built


def test_the_wheel_carries_license_classifiers_and_schema(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as whl:
        names = whl.namelist()
        [metadata] = [n for n in names if n.endswith(".dist-info/METADATA")]
        meta = email.message_from_bytes(whl.read(metadata))
        [license_file] = [n for n in names if n.endswith(".dist-info/licenses/LICENSE")]
        assert b"Apache License" in whl.read(license_file)
        schema = whl.read("engine/schemas/pipeline.schema.json")
    assert meta["License-Expression"] == "Apache-2.0"
    classifiers = meta.get_all("Classifier") or []
    assert "Typing :: Typed" in classifiers
    assert "Programming Language :: Python :: 3.11" in classifiers
    assert schema == (ROOT / "schemas" / "pipeline.schema.json").read_bytes()
    assert "engine/py.typed" in names
    assert not [n for n in names if n.startswith("tests/")]


def test_engine_schema_works_from_the_installed_wheel(wheel: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as whl:
        whl.extractall(site)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site)}
    run = [sys.executable, "-c", "from engine.cli.main import main; main()", "schema"]
    checked = subprocess.run(
        [*run, "--check"], cwd=elsewhere, env=env, capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stderr
    assert f"{site}/engine/schemas/pipeline.schema.json is up to date" in checked.stderr
    printed = subprocess.run(
        [*run, "--output", "-"], cwd=elsewhere, env=env, capture_output=True, text=True, check=True
    )
    assert printed.stdout == (ROOT / "schemas" / "pipeline.schema.json").read_text()
    # a stale installed schema is caught
    (site / "engine" / "schemas" / "pipeline.schema.json").write_text("{}\n")
    stale = subprocess.run(
        [*run, "--check"], cwd=elsewhere, env=env, capture_output=True, text=True, check=False
    )
    assert stale.returncode == 1
    assert "out of date" in stale.stderr

"""The base install (`pip install .`, no extras) runs the quickstart and validates every bundled
pipeline, each one either valid or naming the extra it needs.

The child hides every module that only an extra brings (worked out from the installed
metadata, transitive dependencies included), as a base install would lack them
(tests/support/blocked.py).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from importlib.metadata import PackageNotFoundError, distribution, packages_distributions
from pathlib import Path

from packaging.requirements import Requirement

from tests.support.blocked import engine_without

ROOT = Path(__file__).resolve().parents[2]
BUNDLED = sorted(
    p
    for d in ("pipelines", "examples")
    for p in (ROOT / d).glob("*")
    if p.suffix in (".toml", ".yaml", ".yml")
)


def _closure(name: str, extras: frozenset[str], seen: set[str]) -> None:
    """Add ``name`` (with ``extras``) and every distribution it requires to ``seen``."""
    key = re.sub(r"[-_.]+", "-", name).lower()
    try:
        requires = distribution(name).requires or []
    except PackageNotFoundError:
        return
    seen.add(key)
    for text in requires:
        req = Requirement(text)
        wanted = [{"extra": e} for e in extras] or [{"extra": ""}]
        if req.marker is not None and not any(req.marker.evaluate(env) for env in wanted):
            continue
        if req.name.lower() == "engine":
            _closure("engine", frozenset(req.extras), seen)
        elif re.sub(r"[-_.]+", "-", req.name).lower() not in seen or req.extras:
            _closure(req.name, frozenset(req.extras), seen)


def extras_only_modules() -> list[str]:
    """Top-level modules of the distributions `engine[all]` installs and `engine` does not."""
    base: set[str] = set()
    _closure("engine", frozenset(), base)
    full: set[str] = set()
    _closure("engine", frozenset({"all"}), full)
    only = full - base
    return sorted(
        module
        for module, dists in packages_distributions().items()
        if all(re.sub(r"[-_.]+", "-", d).lower() in only for d in dists)
    )


def _engine(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return engine_without(extras_only_modules(), *args, cwd=cwd, env={"COLUMNS": "120"})


def test_the_extras_hide_every_connector_library() -> None:
    modules = set(extras_only_modules())
    assert {"httpx", "gql", "asyncssh", "aio_pika", "yarl", "psycopg", "redis"} <= modules
    assert not {"sqlalchemy", "pydantic", "click", "cryptography"} & modules


def test_the_quickstart_runs_on_the_base_install(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    for leftover in (".engine", "out"):
        shutil.rmtree(tmp_path / "examples" / leftover, ignore_errors=True)
    done = _engine("run", "examples/quickstart.toml", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "examples" / "out" / "products.jsonl").read_text().count("\n") == 35


def test_every_bundled_pipeline_is_valid_or_names_its_extra() -> None:
    done = _engine("validate", *map(str, BUNDLED), cwd=ROOT)
    assert "internal error" not in done.stderr, done.stderr
    errors = [line for line in done.stderr.splitlines() if ": error[" in line]
    assert errors, "some bundled pipeline needs an extra"
    assert all("error[E045]" in line and "extra" in line for line in errors), errors
    assert _engine("components", cwd=ROOT).returncode == 0


def test_serve_names_its_extra_on_the_base_install() -> None:
    done = _engine("serve", "examples/quickstart.toml", cwd=ROOT)
    assert done.returncode == 78
    assert "pip install 'engine[serve]'" in done.stderr

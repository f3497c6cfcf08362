"""Run `engine` in a child process where some modules cannot be imported, as an install
without an extra would lack them: a ``sys.meta_path`` finder refuses them in that child only,
so nothing is uninstalled."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

#: ``engine ARGS...`` with the top-level modules named in BLOCKED (comma-separated) refused
BLOCKING = """\
import importlib.abc, os, sys

blocked = set(os.environ["BLOCKED"].split(","))

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in blocked:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, Block())
sys.argv = ["engine", *sys.argv[1:]]
from engine.cli.main import main
main()
"""


def engine_without(
    blocked: Iterable[str], *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``engine ARGS...`` run in ``cwd`` with the ``blocked`` modules not importable."""
    return subprocess.run(
        [sys.executable, "-c", BLOCKING, *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, **(env or {}), "BLOCKED": ",".join(blocked)},
        check=False,
    )

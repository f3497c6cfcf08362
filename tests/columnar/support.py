"""Running one pipeline on the row path and on the columnar path, and what each wrote."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import anyio

from engine.pipeline import compile_file, run
from engine.runtime.observer import NullObserver, RunObserver, RunSummary
from engine.settings import EngineSettings


def settings(columnar: str) -> EngineSettings:
    return EngineSettings.defaults().model_copy(update={"engine_columnar": columnar})


@dataclass
class Outcome:
    summary: RunSummary
    outputs: dict[str, bytes]
    dead_letters: bytes


def run_path(
    folder: Path, pipeline: str, columnar: str, observer: RunObserver | None = None
) -> Outcome:
    """Run ``pipeline`` (TOML) in ``folder``; the outputs are the files under out/."""
    path = folder / "pipeline.toml"
    path.write_text(pipeline, encoding="utf-8")
    plan = compile_file(path)
    summary = anyio.run(
        lambda: run(
            plan,
            observer=observer or NullObserver(),
            settings=settings(columnar),
            workspace=folder / f".engine-{columnar}",
        )
    )
    out = folder / "out"
    outputs = {p.name: p.read_bytes() for p in sorted(out.glob("*"))} if out.is_dir() else {}
    letters = b"".join(
        p.read_bytes() for p in sorted(folder.glob(f".engine-{columnar}/dead_letter/**/*.jsonl"))
    )
    return Outcome(summary, outputs, letters)


def both(folder: Path, pipeline: str) -> tuple[Outcome, Outcome]:
    """The row path's outcome, then the columnar path's (each in a folder of its own)."""
    outcomes = []
    for mode in ("off", "auto"):
        here = folder / mode
        here.mkdir(parents=True, exist_ok=True)
        for item in folder.iterdir():
            if item.is_file():
                (here / item.name).write_bytes(item.read_bytes())
        outcomes.append(run_path(here, pipeline, mode))
    return outcomes[0], outcomes[1]

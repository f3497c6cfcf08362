"""Publishing what partitions handed over, once every partition is done.

A file sink's output with ``{partition}`` in its path is one piece per partition: each is
renamed into place. Without it, every partition wrote a piece of the one output: the
pieces are joined in partition order (each codec says how its outputs join: a CSV header
only once, one JSON array) into a temp file, fsynced, and renamed into place, so the
output is the very bytes one process writes. All outputs are finished before the first is
renamed: a failed join publishes nothing.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from engine.errors import PermanentError
from engine.partitions.spec import PartitionResult

__all__ = ["discard_outputs", "merge_dead_letters", "publish_outputs"]

_COPY = 1 << 20


def _pieces(results: Sequence[PartitionResult]) -> dict[str, list[dict[str, Any]]]:
    """Every output's pieces, by final path, in partition order."""
    by_final: dict[str, list[dict[str, Any]]] = {}
    for result in sorted(results, key=lambda r: r.index):
        for pieces in result.outputs.values():
            for piece in pieces:
                by_final.setdefault(piece["final"], []).append(piece)
    return by_final


def publish_outputs(results: Sequence[PartitionResult], run_id: str) -> int:
    """Join and rename every handed-over output into place; the number published."""
    staged: list[tuple[Path, Path]] = []
    temps: list[Path] = []
    try:
        for final, pieces in _pieces(results).items():
            target = Path(final)
            if len(pieces) == 1:
                staged.append((Path(pieces[0]["tmp"]), target))
                continue
            joined = target.with_name(f".{target.name}.{run_id}.{os.getpid()}.tmp")
            temps.append(joined)
            _join(pieces, joined)
            staged.append((joined, target))
        folders: set[Path] = set()
        for tmp, target in staged:
            if target.is_dir():
                raise PermanentError(f"cannot publish {target}: a folder stands there")
            os.replace(tmp, target)
            folders.add(target.parent)
        for folder in folders:
            _fsync_folder(folder)
    except OSError as exc:
        raise PermanentError(f"cannot publish {exc.filename}: {exc.strerror or exc}") from None
    finally:
        _remove([*temps, *(Path(p["tmp"]) for ps in _pieces(results).values() for p in ps)])
    return len(staged)


def discard_outputs(results: Iterable[PartitionResult]) -> None:
    """Remove what partitions handed over (the run failed or was stopped)."""
    _remove(Path(p["tmp"]) for r in results for ps in r.outputs.values() for p in ps)


def _join(pieces: list[dict[str, Any]], joined: Path) -> None:
    framing = pieces[0]["framing"]
    if framing is None:
        raise PermanentError(
            f"{pieces[0]['final']}: its codec cannot join outputs written in partitions; "
            "put {partition} in the sink's path"
        )
    head, sep, tail = int(framing[0]), bytes.fromhex(framing[1]), int(framing[2])
    kept = [p for p in pieces if p["records"]] or pieces[:1]
    with joined.open("wb", buffering=0) as out:
        for i, piece in enumerate(kept):
            path = Path(piece["tmp"])
            size = path.stat().st_size
            start = head if i > 0 else 0
            end = size - tail if i < len(kept) - 1 else size
            if i > 0:
                out.write(sep)
            with path.open("rb", buffering=0) as src:
                src.seek(start)
                _copy(src.fileno(), out.fileno(), end - start, path)
        os.fsync(out.fileno())


def _copy(src: int, out: int, length: int, path: Path) -> None:
    """``length`` bytes from ``src``'s position to ``out``'s, in the kernel where it can."""
    while length > 0:
        try:
            n = os.copy_file_range(src, out, min(length, 1 << 30))
        except (AttributeError, OSError):
            data = memoryview(os.read(src, min(_COPY, length)))
            n = len(data)
            while data:
                data = data[os.write(out, data) :]
        if n == 0:
            raise PermanentError(f"{path} is shorter than when it was handed over")
        length -= n


def merge_dead_letters(results: Sequence[PartitionResult], final: Path) -> Path | None:
    """Append every partition's dead letters, in partition order, to the run's file."""
    ordered = sorted(results, key=lambda r: r.index)
    files = [Path(r.dead_letter_path) for r in ordered if r.dead_letter_path]
    files = [f for f in files if f.is_file()]
    if not files:
        return None
    final.parent.mkdir(parents=True, exist_ok=True)
    with final.open("ab") as out:
        for path in files:
            with path.open("rb") as src:
                shutil.copyfileobj(src, out, _COPY)
        out.flush()
        os.fsync(out.fileno())
    _remove(files)
    return final


def _remove(paths: Iterable[Path]) -> None:
    for path in paths:
        with contextlib.suppress(OSError):
            path.unlink(missing_ok=True)


def _fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

"""The columnar path: batches as polars frames, expressions as polars expressions.

Nothing here imports polars until a columnar batch is made, so the engine starts and runs
on the row path without the ``columnar`` extra. See docs/columnar.md.
"""

from __future__ import annotations

import os
import sys
from functools import cache
from importlib.util import find_spec

from engine.columnar.batch import ColumnBatch
from engine.records import Batch

__all__ = [
    "ColumnBatch",
    "as_taken",
    "available",
    "limit_threads",
    "release_columnar_memory",
    "takes_columns",
]

#: polars reads its thread count from this variable once, when it is imported
THREADS_VARIABLE = "POLARS_MAX_THREADS"
#: polars' allocator (jemalloc) reads its options from this variable once, when it loads
ALLOCATOR_VARIABLE = "_RJEM_MALLOC_CONF"
#: jemalloc keeps freed pages 10 s by default; a run frees a batch's buffers every few
#: milliseconds, so pages kept longer than this only add to its peak memory
ALLOCATOR_OPTIONS = "narenas:1,dirty_decay_ms:100,muzzy_decay_ms:0"
#: pyarrow (the parquet codec) reads its memory pool from this variable once, when loaded
ARROW_POOL_VARIABLE = "ARROW_DEFAULT_MEMORY_POOL"
#: glibc's malloc reads its mmap threshold from this variable when the process starts
MMAP_THRESHOLD_VARIABLE = "MALLOC_MMAP_THRESHOLD_"
#: allocations of this size or more get mappings of their own; a CSV block (1.5 MiB, see
#: engine.codecs.columns.BLOCK) comes from the heap, where the next block reuses its space:
#: no fresh pages to fault in and no unmapping (which interrupts the other cores) per block
MMAP_THRESHOLD = 2 << 20
_M_MMAP_THRESHOLD = -3  # mallopt's parameter number (malloc.h)


@cache
def _installed() -> bool:
    try:
        return find_spec("polars") is not None
    except ImportError:  # an import hook that refuses it
        return False


def available(mode: str) -> bool:
    """Whether the columnar path runs: ``ENGINE_COLUMNAR`` is ``auto`` and polars is there."""
    return mode == "auto" and _installed()


def limit_threads(workers: int) -> None:
    """Share the cores between ``workers`` processes: each runs polars on
    ``cores // workers`` threads (at least one), unless POLARS_MAX_THREADS says otherwise.
    Call it before the worker processes start (they inherit the variable) and before
    polars is loaded in them."""
    if workers > 1 and THREADS_VARIABLE not in os.environ:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        os.environ[THREADS_VARIABLE] = str(max(1, (cores or 1) // workers))


def release_columnar_memory() -> None:
    """Have polars' allocator give freed pages back after 100 ms, pyarrow allocate with
    the system's malloc (its default, mimalloc, keeps freed memory for later), and the
    system's malloc map buffers larger than a CSV block on their own, unless the variables
    say otherwise. A run's peak memory on the 1M-row benchmark: about 15 MB less writing JSON
    Lines, 60 MB less writing Parquet, at the same speed; see docs/columnar.md (Memory).
    Call it before polars or pyarrow is loaded; worker processes inherit it."""
    os.environ.setdefault(ALLOCATOR_VARIABLE, ALLOCATOR_OPTIONS)
    os.environ.setdefault(ARROW_POOL_VARIABLE, "system")
    if MMAP_THRESHOLD_VARIABLE not in os.environ:
        os.environ[MMAP_THRESHOLD_VARIABLE] = str(MMAP_THRESHOLD)
        _set_mmap_threshold(MMAP_THRESHOLD)


def _set_mmap_threshold(size: int) -> None:
    """glibc's malloc raises its mmap threshold to the size of each mapped buffer freed,
    so ever larger buffers come from the heap, and free space in it creeps up. A fixed
    threshold stops that. This process read the variable before it was set, so its malloc
    is told directly; a system without glibc's ``mallopt`` keeps its own behaviour."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        mallopt = ctypes.CDLL(None).mallopt
    except (ImportError, OSError, AttributeError):
        return
    mallopt(_M_MMAP_THRESHOLD, size)


def takes_columns(component: object) -> bool:
    """Whether a component takes column batches as they are (``takes_columns``)."""
    return bool(getattr(component, "takes_columns", False))


def as_taken(component: object, batch: Batch) -> Batch:
    """A column batch as records for a component that does not take columns: decoded
    once, never encoded and decoded again."""
    if isinstance(batch, ColumnBatch) and not takes_columns(component):
        return batch.records()
    return batch

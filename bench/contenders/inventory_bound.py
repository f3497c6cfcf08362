"""A bound, not a contender: what an `engine run` of the inventory workload cannot go below.

    python bench/contenders/inventory_bound.py IN.csv OUT.jsonl

It does only what no audited run of the engine can leave out: it imports what `engine run`
imports before its first row (the CLI, the pipeline's modules, the audit observer and
polars), runs polars' own streaming query (../shared/bench/polars_way.py itself, reading and
writing the whole file in one call, on both cores) while another thread takes the
SHA-256 of the input, then takes the SHA-256 of the output. It checks nothing of what
Python's `csv` module and the row path would read otherwise, keeps no rejected row, writes
no audit event and holds the whole file's pipeline in polars' memory. An engine run slower
than polars' own query by more than this bound's margin spends the difference on its own
work; a goal below this bound cannot be met by an audited run with today's start-up.
"""

from __future__ import annotations

import hashlib
import runpy
import sys
import threading
from pathlib import Path

import polars  # noqa: F401

# what `engine run` imports before its first row
import engine.audit.observer
import engine.cli.main
import engine.pipeline  # noqa: F401

POLARS_WAY = Path(__file__).resolve().parents[3] / "shared" / "bench" / "polars_way.py"


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    buffer = bytearray(1 << 21)
    view = memoryview(buffer)
    with path.open("rb", buffering=0) as f:
        while size := f.readinto(buffer):
            digest.update(view[:size])  # hashlib lets go of the interpreter lock here
    return digest.hexdigest()


def main() -> None:
    src, out = Path(sys.argv[1]), Path(sys.argv[2])
    read = threading.Thread(target=sha256, args=(src,))
    read.start()
    sys.argv = [str(POLARS_WAY), str(src), str(out)]
    runpy.run_path(str(POLARS_WAY), run_name="__main__")  # polars' own query, as it is
    read.join()
    sha256(out)


if __name__ == "__main__":
    main()

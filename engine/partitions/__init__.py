"""Partitions: a run's work split into parts that other processes run.

Sources split their work (:meth:`engine.components.base.Source.partitions`),
:func:`run_partition` runs one part in any process, and ``engine run --workers N``
(:mod:`engine.partitions.local`) runs them all in N local processes.
"""

from engine.partitions.spec import PartitionResult, PartitionSpec, RunContext
from engine.partitions.worker import run_partition

__all__ = ["PartitionResult", "PartitionSpec", "RunContext", "run_partition"]

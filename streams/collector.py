"""How an engine process runs CPython's cycle collector: rarely.

A worker and a backtest keep alive, for long stretches, objects that cannot be
garbage: a worker the messages its merges hold under a backlog and its batch's
records, a backtest every customer's record (about 26 tracked objects each). With
CPython's default thresholds (700, 10, 10) the young collections run every few
hundred allocations and the full ones every time the survivors grow by a quarter,
and each walks those objects and frees almost nothing: a third of a worker's replay
once, and a fifth of a backtest's time at 60,000 customers (bench/RESULTS.md). So a
process freezes what start-up built and raises the thresholds; cycles are still
collected, only later.
"""

from __future__ import annotations

import gc

__all__ = ["GC_THRESHOLDS", "collect_garbage_rarely"]

GC_THRESHOLDS = (50_000, 50, 100)
"""Allocations before a young collection, young collections before a middle one, and
middle ones before a full one."""


def collect_garbage_rarely() -> None:
    """Collect once, freeze what survives (start-up's modules, the playbook, the
    settings: never walked again), and run the cycle collector at ``GC_THRESHOLDS``."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)

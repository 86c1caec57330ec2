"""What a worker (and the backtest) keeps for each partition it processes.

One lane per partition: the cross-topic merge, the partition's clock, its
timer heap and its co-purchase counts. Keeping them together is what makes
a partition's history a function of its input alone, whichever process runs it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Generic, TypeVar

from lifecycle.clock import ClockMode, PartitionClock
from lifecycle.ordering import PartitionMerger
from lifecycle.recommend import Recommender
from lifecycle.timers import TimerHeap

__all__ = ["Lane"]

T = TypeVar("T")
K = TypeVar("K", str, bytes)


@dataclass(slots=True)
class Lane(Generic[T, K]):
    merger: PartitionMerger[T]
    clock: PartitionClock
    recommender: Recommender
    timers: TimerHeap[K] = field(default_factory=TimerHeap)

    @classmethod
    def open(
        cls,
        topics: Sequence[str],
        mode: ClockMode,
        lateness: timedelta,
        recommender: Recommender,
    ) -> Lane[T, K]:
        return cls(PartitionMerger(topics), PartitionClock(mode, lateness), recommender)

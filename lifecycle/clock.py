"""A partition's clock: how far its timers may fire, in either of two modes.

The core never reads the clock; this class decides the ``now`` the callers
pass to ``apply`` in a ``Due``, from the inputs they see, so the decision is testable
without a broker and the backtest and the worker make it the same way.

- ``event``: now is the partition's watermark, the latest ``occurred_at``
  released minus the allowed lateness. A late event within the lateness is
  applied before any timer it could cancel. Ticks matter only once the
  partition has consumed everything: then a tick, carrying the latest event
  time any partition has released, lets the quiet partition catch up.
- ``wall``: now is the wall-clock time carried by the ticks, minus the
  allowed lateness; events do not move it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

__all__ = ["ClockMode", "PartitionClock", "just_after", "reading_time"]

_TICK = timedelta(microseconds=1)


class ClockMode(StrEnum):
    WALL = "wall"
    EVENT = "event"


def just_after(at: datetime) -> datetime:
    """The ``now`` at which timers due at ``at`` have fired (they fire strictly before now)."""
    return at + _TICK


def reading_time(
    mode: ClockMode, partition_now: datetime | None, last_event_at: datetime, wall: datetime
) -> datetime:
    """The ``now`` a customer's scores are read at between messages (``/customers/{id}``).

    In event mode it is the clock of the customer's partition, the one its
    transitions and timers use, so a record reads as it did at its last
    transition, never as of today's wall clock for a history in the past. The
    record's own last event is the floor: the watermark trails the newest event
    by the allowed lateness, and a partition has no clock yet after a restart
    until input arrives. In wall mode it is the wall clock.
    """
    if mode is ClockMode.WALL:
        return wall
    if partition_now is None:
        return last_event_at
    return max(partition_now, last_event_at)


class PartitionClock:
    """``now`` only moves forward; ``None`` until the first input that sets it."""

    def __init__(self, mode: ClockMode, lateness: timedelta = timedelta(0)) -> None:
        self.mode = mode
        self.lateness = lateness
        self.now: datetime | None = None
        self.latest_event: datetime | None = None

    def _advance(self, to: datetime) -> bool:
        if self.now is not None and to <= self.now:
            return False
        self.now = to
        return True

    def on_event(self, occurred_at: datetime) -> bool:
        """An event was released; True when ``now`` moved (a sweep is due)."""
        if self.latest_event is None or occurred_at > self.latest_event:
            self.latest_event = occurred_at
        if self.mode is ClockMode.EVENT:
            return self._advance(self.latest_event - self.lateness)
        return False

    def on_tick(self, at: datetime, *, idle: bool) -> bool:
        """A tick carrying ``at``; ``idle``: nothing of this partition is buffered or unread."""
        if self.mode is ClockMode.WALL:
            return self._advance(at - self.lateness)
        return idle and self._advance(just_after(at))

    def end_of_input(self, until: datetime) -> bool:
        """Everything is consumed (a backtest's end): fire what is due up to ``until``."""
        return self._advance(just_after(until))

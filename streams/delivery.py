"""Gap-free delivery per topic-partition, on top of Faust's stream.

After a rebalance Faust can skip records (how: ``streams.faust_compat``). An
engine that commits "up to the last record read" then passes records it never
applied (the two-worker rebalance test lost prospects' merges that way).

So the engine applies a partition's records strictly in offset order from
the group's resume point: a record ahead of the next expected offset is
skipped and the partition is sought back to that offset; a record below it
was applied already and is skipped. Pure bookkeeping: the agent does the
seeking and asks the broker for the resume points.

A record can also vanish with no later one to reveal the gap: after a worker
was killed and its partitions came back a minute later (the dead member's
session ran out), a worker's consumer had fetched a partition to its end
while the agent never received those records, and nothing more was
published. ``stalled`` finds such a partition from the consumer's fetch
position: past the expected offset, with no progress for ``stall_after``.
"""

from __future__ import annotations

import enum
from collections.abc import Hashable, Iterable, Mapping
from typing import Generic, TypeVar

__all__ = ["Delivery", "Verdict"]

P = TypeVar("P", bound=Hashable)


class Verdict(enum.Enum):
    TAKE = "take"
    """The next record of its partition: apply it."""
    REPEAT = "repeat"
    """Applied (or held) before: skip it."""
    AHEAD = "ahead"
    """Records before it were never delivered: skip it, seek back to ``expected``."""
    UNKNOWN = "unknown"
    """Not a partition of the current assignment, or its resume point is not known yet."""


class Delivery(Generic[P]):
    """The next offset to apply per partition, and which partitions wait for a seek.

    ``retry_after`` (seconds) is how long a seek may go unanswered by the record
    it asked for before it is repeated: a seek can fail (the broker away). Under a
    backlog that record may only be queued behind what was handed over before it;
    the repeat then fetches it again, and ``check`` skips the second copy. (Faust's
    own fetch loop drops a seek's records while it holds some fetched before the
    seek; the engine's copy hands them over: ``streams.faust_compat``, "Gap-free
    delivery".)
    """

    def __init__(self, retry_after: float = 1.0, stall_after: float = 10.0) -> None:
        self.expected: dict[P, int] = {}
        self.seeking: dict[P, float] = {}
        """Partition -> when it was last sought back to its expected offset."""
        self.retry_after = retry_after
        self.stall_after = stall_after
        """Seconds a partition may stay fetched past ``expected`` without taking a record.
        Records fetched but still queued for the agent are taken within seconds;
        a needless seek back costs a re-fetch of what ``check`` then skips."""
        self.behind: dict[P, tuple[int, float]] = {}
        """Partition -> (expected offset, since when) while its fetch is past it."""

    def start(self, points: Mapping[P, int]) -> None:
        """A new assignment: apply each partition from its resume point."""
        self.expected = dict(points)
        self.seeking = {}
        self.behind = {}

    def clear(self) -> None:
        """A rebalance began: nothing is known until the next assignment's points."""
        self.expected = {}
        self.seeking = {}
        self.behind = {}

    def check(self, partition: P, offset: int) -> Verdict:
        expected = self.expected.get(partition)
        if expected is None:
            return Verdict.UNKNOWN
        if offset == expected:
            self.expected[partition] = offset + 1
            self.seeking.pop(partition, None)
            return Verdict.TAKE
        return Verdict.REPEAT if offset < expected else Verdict.AHEAD

    def should_seek(self, partition: P, now: float) -> bool:
        """Whether to seek ``partition`` back now; True at most once per ``retry_after``."""
        last = self.seeking.get(partition)
        if last is not None and now - last < self.retry_after:
            return False
        self.seeking[partition] = now
        return True

    def overdue(self, now: float) -> Iterable[P]:
        """Partitions whose seek brought nothing in ``retry_after``: seek them again.

        Needed when no later record arrives to reveal the gap again (the end
        of a burst): the partition would stall until new input.
        """
        due = [p for p, at in self.seeking.items() if now - at >= self.retry_after]
        for partition in due:
            self.seeking[partition] = now
        return due

    def fetched_past(self, partition: P, position: int | None) -> bool:
        """Whether the consumer's next fetch offset ``position`` is past the partition's
        expected offset: records fetched that the agent has not taken, yet (they are
        still being handed over) or ever (``stalled``)."""
        expected = self.expected.get(partition)
        return position is not None and expected is not None and position > expected

    def stalled(self, positions: Mapping[P, int], now: float) -> list[P]:
        """Partitions fetched past their expected offset (``positions``: the
        consumer's next fetch offset) that took no record for ``stall_after``:
        seek them back to ``expected``. Each is named again only after another
        ``stall_after`` without progress."""
        due = []
        for partition, expected in self.expected.items():
            if not self.fetched_past(partition, positions.get(partition)) or (
                partition in self.seeking
            ):
                self.behind.pop(partition, None)
                continue
            mark = self.behind.get(partition)
            if mark is None or mark[0] != expected:
                self.behind[partition] = (expected, now)
            elif now - mark[1] >= self.stall_after:
                self.behind[partition] = (expected, now)
                due.append(partition)
        return due

"""A worker's input offsets: where each partition resumes, what may be applied next,
and what is committed.

The engine commits its offsets itself, never through Faust's ack bookkeeping
(why: ``streams.faust_compat``). After an assignment it asks the broker where
the group resumes each partition, applies each partition's records strictly
in offset order from there (``streams.delivery``), seeks back a partition
that skipped or stalled, and commits only offsets the checkpoint reports
durable (``streams.checkpoint``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from collections.abc import Set as AbstractSet

from faust.types import TP

from streams.delivery import Delivery, Verdict
from streams.faust_compat import FaustMessage
from streams.ports import Consumer, ResumePoints

__all__ = ["Offsets"]

log = logging.getLogger(__name__)

FirstHeld = Callable[[TP], int | None]
"""The offset of the first message of a topic-partition the merge still holds."""


class Offsets:
    """The offsets of one worker's assignment, from its resume points to its commits."""

    def __init__(
        self,
        consumer: Consumer,
        resume_points: ResumePoints,
        topics: AbstractSet[str],
        resume_timeout: float,
    ) -> None:
        self.consumer = consumer
        self.resume_points = resume_points
        self.topics = topics
        """The topics whose records are applied in order (ticks are not: any one wakes)."""
        self.resume_timeout = resume_timeout
        self.delivery: Delivery[TP] = Delivery()
        self.pending = True
        """The assignment changed: read each partition's resume point from the broker."""
        self.resuming: asyncio.Future[None] | None = None
        self.assignments = 0
        """Counts assignments, so resume points read for an older one are thrown away."""
        self.stalls_checked = 0.0
        """When ``Delivery.stalled`` was last asked (monotonic seconds)."""
        self.ticks_seen: dict[TP, int] = {}
        self.durable: dict[TP, int] = {}
        """The offsets up to which everything is applied and on the broker."""
        self.committed: dict[TP, int] = {}
        self.committed_at = 0.0

    def forget(self) -> None:
        """A rebalance: nothing is known until the new assignment's resume points."""
        self.delivery.clear()
        self.pending = True
        self.resuming = None
        self.assignments += 1
        self.ticks_seen.clear()
        self.durable.clear()
        self.committed.clear()

    def assigned(self) -> None:
        """Ask for the resume points now, so the first message does not wait."""
        self.forget()
        self.resuming = asyncio.ensure_future(self._resume(self.assignments))

    async def _resume(self, assignment: int) -> None:
        """Each assigned partition's resume point: where Faust's seek put the consumer
        (only this worker commits them, and not before this)."""
        tps = [tp for tp in self.consumer.assignment() if tp.topic in self.topics]
        try:
            async with asyncio.timeout(self.resume_timeout):
                points = await self.resume_points(tps)
        except Exception as exc:  # the broker may be away: asked again on the next record
            log.warning("resume points not read (%s); trying again", type(exc).__name__)
            return
        if assignment != self.assignments:
            return  # a later rebalance has begun: its own points will be read
        self.delivery.start({TP(tp.topic, tp.partition): o for tp, o in points.items()})
        self.committed.update(self.delivery.expected)
        self.pending = False

    async def admit(self, message: FaustMessage) -> bool:
        """Whether ``message`` is the next one of its partition (``streams.delivery``)."""
        resuming = self.resume_again()
        if resuming is not None:
            await resuming
        tp = message.tp
        verdict = self.delivery.check(tp, message.offset)
        if verdict is Verdict.AHEAD and self.delivery.should_seek(tp, time.monotonic()):
            await self._seek(tp)
        return verdict is Verdict.TAKE

    def resume_again(self) -> asyncio.Future[None] | None:
        """The ask for the resume points while they are not known (None once they are),
        made again unless one is under way: an ask that failed (the broker away) is
        repeated at the next event, and, since ``/ready`` waits for them, at the next
        tick when no event comes."""
        if not self.pending:
            return None
        if self.resuming is None or self.resuming.done():
            self.resuming = asyncio.ensure_future(self._resume(self.assignments))
        return self.resuming

    def tick_seen(self, message: FaustMessage) -> None:
        self.ticks_seen[message.tp] = message.offset

    async def check_gaps(self) -> None:
        """Seek back partitions whose seek brought nothing, or that were fetched past
        their next record without delivering it (``Delivery.overdue``, ``stalled``)."""
        now = time.monotonic()
        for tp in self.delivery.overdue(now):
            await self._seek(tp)
        if now - self.stalls_checked < 1.0:  # ticks come per partition
            return
        self.stalls_checked = now
        positions = self.consumer.fetch_positions(self.delivery.expected)
        for tp in self.delivery.stalled(positions, now):
            log.info("%s[%d]: fetched past %d but never delivered", *tp, self.delivery.expected[tp])
            await self._seek(tp)

    async def _seek(self, tp: TP) -> None:
        offset = self.delivery.expected[tp]
        log.info("%s[%d]: records before %d skipped by the fetch; seeking back", *tp, offset)
        try:
            await self.consumer.seek({tp: offset})
        except Exception as exc:  # retried while the gap remains (Delivery.overdue)
            log.warning("%s[%d]: seek failed (%s)", *tp, type(exc).__name__)

    def caught_up(self, tp: TP, highwater: int) -> bool:
        expected = self.delivery.expected.get(tp)
        return expected is not None and expected >= highwater

    def safe(self, first_held: FirstHeld) -> dict[TP, int]:
        """Per partition, the next offset to read, or the first one a merge still
        holds: everything before it is applied (durable once its batch is)."""
        offsets = {tp: seen + 1 for tp, seen in self.ticks_seen.items()}
        for tp, expected in self.delivery.expected.items():
            first = first_held(tp)
            offsets[tp] = expected if first is None else first
        return offsets

    async def commit(self, offsets: dict[TP, int] | None = None) -> None:
        """Commit ``offsets`` (by default the durable ones) for this group."""
        self.committed_at = time.monotonic()
        wanted = self.durable if offsets is None else offsets
        todo = {tp: o for tp, o in wanted.items() if o > self.committed.get(tp, -1)}
        if todo and await self.consumer.commit(todo):
            self.committed.update(todo)

    def unsaved(self) -> list[TP]:
        """Partitions whose durable offset the group has not taken."""
        return [tp for tp, o in self.durable.items() if self.committed.get(tp, -1) < o]

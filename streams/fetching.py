"""Which inbound topic-partitions a worker has stopped fetching, and making the consumer agree.

A worker stops fetching a topic-partition while its merge holds many of that
topic-partition's messages unapplied (``LIFECYCLE_READ_AHEAD``): in a replay
Faust hands over all it fetches, and the merge held most of the backlog while
it waited for another topic (1 GB of RSS for 121,610 messages), until its
safety valves released messages out of order.

The pause is aiokafka's, made in the consumer's own thread: aiokafka keeps
the position and fetches from there once resumed, so nothing is skipped (why
not Faust's ``pause_partitions``: ``streams.faust_compat``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from faust.types import TP

from streams.ports import Consumer

__all__ = ["FetchHold"]

log = logging.getLogger(__name__)


class FetchHold:
    """The topic-partitions held back; every change is sent to the consumer's thread
    without waiting for it (the agent's loop must not stall on a thread round trip)."""

    def __init__(self, consumer: Consumer) -> None:
        self.consumer = consumer
        self.held: set[TP] = set()
        self.calls: set[asyncio.Future[None]] = set()
        """Calls under way, kept so none is collected unfinished."""
        self.failed = False
        """A call failed: ``retry`` makes another, lest a held partition stay held."""

    def hold(self, tp: TP) -> bool:
        """Stop fetching ``tp``; whether it was fetched until now."""
        tp = TP(tp.topic, tp.partition)
        if tp in self.held:
            return False
        self.held.add(tp)
        self._sync()
        return True

    def release(self, tps: Iterable[TP]) -> None:
        """Fetch ``tps`` again."""
        released = self.held.intersection(tps)
        if released:
            self.held -= released
            self._sync()

    def clear(self) -> None:
        """A rebalance: fetch everything (a new assignment starts unpaused anyway)."""
        if self.held:
            self.held.clear()
            self._sync()

    def retry(self) -> None:
        """Send the held set again if the last call failed."""
        if self.failed:
            self.failed = False
            self._sync()

    def _sync(self) -> None:
        call = asyncio.ensure_future(self.consumer.hold(self.held))
        self.calls.add(call)
        call.add_done_callback(self._done)

    def _done(self, call: asyncio.Future[None]) -> None:
        self.calls.discard(call)
        if not call.cancelled() and (exc := call.exception()) is not None:
            log.warning("fetching not paused or resumed (%s); trying again", type(exc).__name__)
            self.failed = True

"""Ticks: the messages that wake every partition, and the time they carry.

A tick goes to every partition of the ticks topic: a merge waiting on a topic
re-checks it, and timers due by the tick's time fire there
(docs/architecture.md, Time: timers and the two clocks). A worker's ticks
carry the wall clock, or in event mode the latest event time it released; a
tick of another app carries nothing (a replay next to the live app must not
take the live wall clock).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

from pydantic import ValidationError

from lifecycle.clock import ClockMode
from schemas.codec import encode_model
from schemas.internal import Tick
from streams.ports import Producer
from streams.settings import Settings

__all__ = ["Ticker", "decode_tick", "encode_tick"]

log = logging.getLogger(__name__)


def encode_tick(at: datetime | None, app_id: str) -> bytes:
    return encode_model(Tick(at=at, app=app_id))


def decode_tick(value: bytes | None, app_id: str) -> datetime | None:
    """The time a tick carries; None for an empty tick or another app's: it only
    wakes the merge."""
    try:
        tick = Tick.model_validate_json(value or b"{}")
    except ValidationError:  # not JSON, not an object, or no RFC 3339 time
        return None
    return tick.at if tick.app == app_id else None


class Ticker:
    """Sends one worker's ticks, and a progress line while events flow."""

    def __init__(
        self,
        settings: Settings,
        producer: Producer,
        latest_event: Callable[[], datetime | None],
        applied: Callable[[], tuple[int, int]],
    ) -> None:
        self.settings = settings
        self.producer = producer
        self.latest_event = latest_event
        self.applied = applied
        """Events applied and batches committed so far."""
        self.topic = settings.topic("ticks")
        self.reported = (time.monotonic(), 0, 0)

    def time(self) -> datetime | None:
        """What this worker's ticks carry: the wall clock, or the latest event time released."""
        if self.settings.clock is ClockMode.WALL:
            return datetime.now(UTC)
        return self.latest_event()

    async def tick(self) -> None:
        """One tick to every partition."""
        self.report_progress()
        value = encode_tick(self.time(), self.settings.app_id)
        for partition in range(self.settings.partitions):
            await self.producer.send(self.topic, value, partition=partition)

    def report_progress(self, every: float = 10.0) -> None:
        """A progress line while events flow (what a replay shows), quiet when idle."""
        since, before, batches_before = self.reported
        elapsed = time.monotonic() - since
        applied, batches = self.applied()
        if elapsed < every or applied == before:
            return
        self.reported = (time.monotonic(), applied, batches)
        latest = self.latest_event()
        log.info(
            "progress: %d events applied (%.0f/s, %.0f per batch), event time %s",
            applied,
            (applied - before) / elapsed,
            (applied - before) / max(1, batches - batches_before),
            latest.isoformat() if latest else "-",
        )

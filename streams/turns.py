"""Long synchronous work cut into turns of the event loop.

A worker's one event loop also answers ``/metrics`` and ``/ready``, sends the
ticks, fetches, and hears a stop signal. Three things can run long in one go:
a merge releasing a backlog it held (thousands of messages once its last topic
is caught up), a batch's store writes (encoding hundreds of records), and the
counts of what a batch made durable. Each held the loop for tens of
milliseconds under steady traffic, the tail of event-to-trigger latency, and a
backlog's release held it for seconds on a slow machine. They go through
``in_turns``, which gives the loop a turn every ``SLICE`` items.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Iterable
from typing import TypeVar

__all__ = ["SLICE", "in_turns"]

T = TypeVar("T")

SLICE = 128
"""Items between two turns: about 5 to 20 ms of a batch's work here, where one turn
costs a few microseconds."""


async def in_turns(items: Iterable[T], every: int = SLICE) -> AsyncGenerator[T]:
    """``items`` one by one, the event loop getting a turn after each ``every`` of them
    (once the item before the turn is handled)."""
    left = every
    for item in items:
        yield item
        left -= 1
        if not left:
            left = every
            await asyncio.sleep(0)

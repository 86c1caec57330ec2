"""Long synchronous work cut into turns of the event loop.

A worker's one event loop also answers ``/metrics`` and ``/ready``, sends the
ticks, fetches, and hears a stop signal. Three things can run long in one go:
a merge releasing a backlog it held (thousands of messages once its last topic
is caught up), a batch's store writes (encoding hundreds of records), and the
counts of what a batch made durable. Each held the loop for tens of
milliseconds under steady traffic, the tail of event-to-trigger latency, and a
backlog's release held it for seconds on a slow machine. Each counts what it
handled in a ``Turns``, which gives the loop a turn every ``SLICE`` items.

A counter rather than a wrapping async generator: a merge's release runs for
every message, mostly of one result, and a generator opened and closed per
release costs microseconds per event where the counter costs a few
hundred nanoseconds.
"""

from __future__ import annotations

import asyncio

__all__ = ["SLICE", "Turns"]

SLICE = 128
"""Items between two turns: about 5 to 20 ms of a batch's work here, where one turn
costs a few microseconds."""


class Turns:
    """Counts the items one piece of work has handled, and gives the event loop a turn
    once every ``every`` of them."""

    __slots__ = ("every", "left")

    def __init__(self, every: int = SLICE) -> None:
        self.every = every
        self.left = every

    async def passed(self, items: int = 1) -> None:
        """``items`` more are handled; a turn of the loop if ``every`` have been since
        the last turn."""
        self.left -= items
        if self.left <= 0:
            self.left = self.every
            await asyncio.sleep(0)

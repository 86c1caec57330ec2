"""The worker's own broker client: resume points, lag, and whether the broker answers.

Faust's clients retry quietly for minutes when the broker is gone, so the
worker measures its group's lag itself (for ``/metrics``) and learns from an
answer that does not come in time that the broker is unreachable (``/ready``).
The same client reads each partition's resume point after an assignment
(``streams.offsets``), and in ``repartition`` mode when each re-keyed copy was
complete (``streams.copy_watermark``).
"""

from __future__ import annotations

import asyncio
import logging
import time

from aiokafka import TopicPartition
from faust.types import TP

from agents.metrics import EngineMetrics
from streams.copy_watermark import CopyWatermarks
from streams.lag import lag_probes
from streams.settings import Settings

__all__ = ["BrokerWatch"]

log = logging.getLogger(__name__)


class BrokerWatch:
    """The lag probes of one worker (its agent's group first), opened on first use."""

    def __init__(self, settings: Settings, metrics: EngineMetrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.probes = lag_probes(settings)
        self.opened = False
        self.lock = asyncio.Lock()
        self.reachable = True
        """False from a lag measurement that got no answer in time until one that does."""

    async def started(self) -> None:
        async with self.lock:
            if not self.opened:
                for probe in self.probes:
                    await probe.start()
                self.opened = True

    async def open(self) -> None:
        """At start, so the first assignment's resume points do not wait for a connection."""
        try:
            await self.started()
        except Exception as exc:  # the broker may not be up yet: opened on first use then
            log.warning("broker client not opened at start (%s)", type(exc).__name__)

    async def resume_points(self, tps: list[TP]) -> dict[TP, int]:
        """``streams.ports.ResumePoints`` from the agent's group's committed offsets."""
        await self.started()
        points = await self.probes[0].resume_points([TopicPartition(*tp) for tp in tps])
        return {TP(tp.topic, tp.partition): offset for tp, offset in points.items()}

    async def end_offsets(self, tps: list[TP]) -> dict[TP, int]:
        """``streams.faust_compat.EndOffsets`` on this client's connection, not the
        fetcher's (``FaustConsumer.ask_ends``)."""
        await self.started()
        ends = await self.probes[0].end_offsets([TopicPartition(*tp) for tp in tps])
        return {TP(tp.topic, tp.partition): end for tp, end in ends.items()}

    async def measure_lag(self) -> None:
        """The groups' lag, for /metrics; a failure is logged once, not fatal."""
        try:
            async with asyncio.timeout(max(2.0, self.settings.lag_interval)):
                await self.started()
                measured = {probe.group: await probe.measure() for probe in self.probes}
        except Exception as exc:  # the broker may be restarting: try again next time
            if self.reachable:
                log.warning("broker unreachable: lag not measured (%s)", type(exc).__name__)
            self.reachable = False
            return
        if not self.reachable:
            log.info("broker reachable again")
        self.reachable = True
        self.metrics.lags(measured)

    async def watch_copies(self, copies: CopyWatermarks) -> None:
        """``repartition`` mode: note when (ms) each re-keyed copy was first seen complete,
        its inbound topic committed to its current end by the re-keying group (the
        broker's view, so every worker's share counts). A copy counts as caught up
        only on a fetch after that (``Partitions.caught_up``): in a replay the copies
        fill while the agent reads them, and an empty copy must not let a later event
        of another topic go first.

        The fetch's time is when its request left (``streams.faust_compat.FetchAnswers``),
        and the check's when its answer came, so a fetch that passes read the copy after
        the re-keying group had committed.
        """
        try:
            async with asyncio.timeout(5.0):
                await self.started()
                rows = await self.probes[-1].measure()
        except Exception:  # the broker may be away: the copies stay as last seen
            return
        copies.observe(rows, time.monotonic())

"""Consumer lag of the engine's group: the broker's end offsets minus its committed ones.

The same numbers ops alert on from kafka-exporter or Burrow, computed the
same way: from the broker, not from what a worker believes, so a stuck or
dead worker shows as growing lag. Used by ``lifecycle lag`` and ``/metrics``.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from streams.admin import partition_counts
from streams.kafka import admin_client, consumer
from streams.settings import Settings

__all__ = [
    "COUNTS_MAX_AGE",
    "LagProbe",
    "PartitionLag",
    "lag_probes",
    "per_topic",
    "repartition_group",
]

COUNTS_MAX_AGE = 30.0
"""Seconds a probe keeps the partition counts it read before it reads them again.

Reading them lists every topic of the cluster and decodes its metadata: on a
broker with a few hundred topics that took most of a 0.7 s measurement, and in
``repartition`` mode each worker measures the re-keying group every 0.25 s, in
the loop its agent runs in. The counts of the engine's topics stay as they are
while it runs (each key's partition depends on them); a topic not there yet is
looked for again at every measurement."""


async def per_topic(
    ask: Callable[[list[TopicPartition]], Awaitable[dict[TopicPartition, int]]],
    tps: list[TopicPartition],
) -> dict[TopicPartition, int]:
    """``ask`` (a consumer's ``beginning_offsets`` or ``end_offsets``) of ``tps``, one
    call per topic, all at once.

    A consumer that has not asked about a topic before learns its leaders one topic
    per try, each try after a 100 ms back-off: asked in one call, the first resume
    points of eight topics took 0.83 s, which a worker's first message waited for.
    Asked per topic together, their metadata comes in one update (0.17 s)."""
    by_topic: defaultdict[str, list[TopicPartition]] = defaultdict(list)
    for tp in tps:
        by_topic[tp.topic].append(tp)
    found: dict[TopicPartition, int] = {}
    for answer in await asyncio.gather(*(ask(group) for group in by_topic.values())):
        found.update(answer)
    return found


@dataclass(frozen=True, slots=True)
class PartitionLag:
    topic: str
    partition: int
    end: int
    committed: int | None
    """None when the group has not committed on this partition yet."""
    lag: int


def repartition_group(settings: Settings) -> str:
    """The consumer group that re-keys the inbound topics in ``repartition`` mode."""
    return f"{settings.app_id}-repartition"


def lag_probes(settings: Settings) -> list[LagProbe]:
    """A probe per consumer group of the engine: the lifecycle agent's, and in
    ``repartition`` mode the re-keying stage's on the inbound topics."""
    probes = [LagProbe(settings)]
    if settings.repartitioned:
        probes.append(LagProbe(settings, repartition_group(settings), settings.inbound_topics))
    return probes


class LagProbe:
    """Open clients once, then ``measure()`` as often as needed."""

    def __init__(
        self, settings: Settings, group: str | None = None, topics: list[str] | None = None
    ) -> None:
        """The lifecycle agent's group and topics by default; the re-keying stage of
        ``repartition`` mode measures its own (``repartition_group``)."""
        self.settings = settings
        self.group = group or settings.app_id
        self.topics = topics or [*settings.event_topics, settings.topic("merge")]
        self._admin: AIOKafkaAdminClient | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._counts: dict[str, int] = {}
        self._counted_at = 0.0

    async def start(self) -> None:
        self._admin = admin_client(self.settings)
        await self._admin.start()
        self._consumer = consumer(self.settings, group_id=None, enable_auto_commit=False)
        await self._consumer.start()

    async def stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
        if self._admin is not None:
            await self._admin.close()

    def _clients(self) -> tuple[AIOKafkaAdminClient, AIOKafkaConsumer]:
        if self._admin is None or self._consumer is None:
            msg = "LagProbe.start() first"
            raise RuntimeError(msg)
        return self._admin, self._consumer

    async def committed_topics(self) -> list[str]:
        """The topics the group has committed offsets on: what another group than the
        engine's reads (a mailer's ``lifecycle.triggers``)."""
        admin, _ = self._clients()
        marks = await admin.list_consumer_group_offsets(self.group)
        return sorted({tp.topic for tp in marks})

    async def _marks(
        self, tps: list[TopicPartition]
    ) -> tuple[dict[TopicPartition, int | None], dict[TopicPartition, int]]:
        """The group's committed offset of each partition (None: never committed),
        and the log's start offset."""
        admin, consumer = self._clients()
        starts = await per_topic(consumer.beginning_offsets, tps)
        marks = await admin.list_consumer_group_offsets(self.group, partitions=tps)
        committed = {}
        for tp in tps:
            mark = marks.get(tp)
            committed[tp] = mark.offset if mark is not None and mark.offset >= 0 else None
        return committed, starts

    async def _partition_counts(self, admin: AIOKafkaAdminClient) -> dict[str, int]:
        """The partitions of each topic, read again past ``COUNTS_MAX_AGE`` or while
        a topic is missing."""
        now = time.monotonic()
        if len(self._counts) < len(set(self.topics)) or now - self._counted_at > COUNTS_MAX_AGE:
            self._counts = await partition_counts(admin, self.topics)
            self._counted_at = now
        return self._counts

    async def measure(self) -> list[PartitionLag]:
        admin, consumer = self._clients()
        counts = await self._partition_counts(admin)
        tps = [TopicPartition(t, p) for t in self.topics for p in range(counts.get(t, 0))]
        if not tps:
            return []
        ends = await per_topic(consumer.end_offsets, tps)
        committed, starts = await self._marks(tps)
        rows = []
        for tp in tps:
            offset = committed[tp]
            base = starts[tp] if offset is None else offset
            rows.append(
                PartitionLag(tp.topic, tp.partition, ends[tp], offset, max(0, ends[tp] - base))
            )
        return rows

    async def end_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        """The end (highwater) of each of ``tps``, asked of their leaders now."""
        _, consumer = self._clients()
        return await per_topic(consumer.end_offsets, tps)

    async def resume_points(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        """Where the group resumes each partition: its committed offset, or the log's
        start when it has none or retention has passed it (``auto_offset_reset`` is
        earliest)."""
        if not tps:
            return {}
        committed, starts = await self._marks(tps)
        points = {}
        for tp in tps:
            offset = committed[tp]
            points[tp] = starts[tp] if offset is None else max(offset, starts[tp])
        return points

    async def __aenter__(self) -> LagProbe:
        try:
            await self.start()
        except BaseException:
            await self.stop()  # a refused login must not leave a half-open client behind
            raise
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.stop()

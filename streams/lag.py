"""Consumer lag of the engine's group: the broker's end offsets minus its committed ones.

The same numbers ops alert on from kafka-exporter or Burrow, computed the
same way: from the broker, not from what a worker believes, so a stuck or
dead worker shows as growing lag. Used by ``lifecycle lag`` and ``/metrics``.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from streams.admin import partition_counts
from streams.kafka import admin_client, consumer
from streams.settings import Settings

__all__ = ["LagProbe", "PartitionLag"]


@dataclass(frozen=True, slots=True)
class PartitionLag:
    topic: str
    partition: int
    end: int
    committed: int | None
    """None when the group has not committed on this partition yet."""
    lag: int


class LagProbe:
    """Open clients once, then ``measure()`` as often as needed."""

    def __init__(self, settings: Settings, group: str | None = None) -> None:
        self.settings = settings
        self.group = group or settings.app_id
        self.topics = [*settings.inbound_topics, settings.topic("merge")]
        self._admin: AIOKafkaAdminClient | None = None
        self._consumer: AIOKafkaConsumer | None = None

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

    async def measure(self) -> list[PartitionLag]:
        if self._admin is None or self._consumer is None:
            msg = "LagProbe.start() first"
            raise RuntimeError(msg)
        counts = await partition_counts(self._admin, self.topics)
        tps = [TopicPartition(t, p) for t in self.topics for p in range(counts.get(t, 0))]
        if not tps:
            return []
        ends = await self._consumer.end_offsets(tps)
        starts = await self._consumer.beginning_offsets(tps)
        committed = await self._admin.list_consumer_group_offsets(self.group, partitions=tps)
        rows = []
        for tp in tps:
            mark = committed.get(tp)
            offset = mark.offset if mark is not None and mark.offset >= 0 else None
            base = starts[tp] if offset is None else offset
            rows.append(
                PartitionLag(tp.topic, tp.partition, ends[tp], offset, max(0, ends[tp] - base))
            )
        return rows

    async def resume_points(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        """Where the group resumes each partition: its committed offset, or the log's
        start when it has none or retention has passed it (``auto_offset_reset`` is
        earliest)."""
        if self._admin is None or self._consumer is None:
            msg = "LagProbe.start() first"
            raise RuntimeError(msg)
        if not tps:
            return {}
        starts = await self._consumer.beginning_offsets(tps)
        committed = await self._admin.list_consumer_group_offsets(self.group, partitions=tps)
        points = {}
        for tp in tps:
            mark = committed.get(tp)
            offset = mark.offset if mark is not None else -1
            points[tp] = max(offset, starts[tp])
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

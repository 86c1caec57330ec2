"""Read whole topics from the beginning up to their end offsets at the time of asking.

A bounded read, for reports and checks: what the topics held when the read
began, every partition to its end, then stop (a live consumer never stops).
"""

from __future__ import annotations

from dataclasses import dataclass

from aiokafka import TopicPartition

from streams import kafka
from streams.admin import partition_counts
from streams.settings import Settings

__all__ = ["Message", "read_to_end"]


@dataclass(frozen=True, slots=True)
class Message:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp_ms: int


async def read_to_end(settings: Settings, topics: list[str]) -> list[Message]:
    """Every message of ``topics`` (the missing ones are skipped), in topic, partition
    and offset order. Callers bound it with ``asyncio.wait_for``."""
    consumer = kafka.consumer(settings, group_id=None, enable_auto_commit=False)
    admin = kafka.admin_client(settings)
    try:
        await admin.start()
        counts = await partition_counts(admin, topics)
        await consumer.start()
        tps = [TopicPartition(t, p) for t in topics for p in range(counts.get(t, 0))]
        if not tps:
            return []
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        messages: list[Message] = []
        while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
            batches = await consumer.getmany(timeout_ms=500)
            for tp, batch in batches.items():
                messages.extend(
                    Message(tp.topic, tp.partition, r.offset, r.key, r.value, r.timestamp)
                    for r in batch
                    if r.offset < ends[tp]
                )
        messages.sort(key=lambda m: (topics.index(m.topic), m.partition, m.offset))
        return messages
    finally:
        await consumer.stop()
        await admin.close()

"""Topic administration: the engine's topics, created with the configured partitions.

All inbound topics must share one partition count: the engine relies on a
customer's key landing on the same partition number in every topic.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from aiokafka.structs import TopicPartition

from streams.kafka import admin_client
from streams.kafka import consumer as kafka_consumer
from streams.settings import Settings

__all__ = ["TopicReport", "ensure_topics", "partition_counts", "wait_for_leaders"]


@dataclass(frozen=True, slots=True)
class TopicReport:
    topic: str
    partitions: int
    status: str  # created | exists | mismatch


async def ensure_topics(settings: Settings, timeout_ms: int = 30_000) -> list[TopicReport]:
    """Create every engine topic that is missing; report the ones that differ.

    Idempotent, so workers call it at start-up and ``lifecycle topics create``
    is safe to run twice.
    """
    names = settings.inbound_topics + settings.outbound_topics + settings.internal_topics
    admin = admin_client(settings, request_timeout_ms=timeout_ms)
    try:
        await admin.start()
        existing = await partition_counts(admin, names)
        missing = [n for n in names if n not in existing]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):  # another worker was first
                await admin.create_topics(
                    [NewTopic(n, settings.partitions, settings.replication) for n in missing]
                )
        reports = []
        for name in names:
            if name in missing:
                reports.append(TopicReport(name, settings.partitions, "created"))
            else:
                count = existing[name]
                status = "exists" if count == settings.partitions else "mismatch"
                reports.append(TopicReport(name, count, status))
        return reports
    finally:
        await admin.close()


async def partition_counts(admin: AIOKafkaAdminClient, names: list[str]) -> dict[str, int]:
    """Partitions of each of ``names`` that exists (missing topics are left out)."""
    present = set(await admin.list_topics()) & set(names)
    if not present:
        return {}
    described = await admin.describe_topics(sorted(present))
    return {d["topic"]: len(d["partitions"]) for d in described if not d.get("error_code")}


async def wait_for_leaders(settings: Settings, reports: list[TopicReport]) -> None:
    """Return once every partition of the reported topics answers an offsets request.

    A new topic is listed a moment before each partition's leader serves it;
    a client that reads in that moment logs ``NotLeaderForPartitionError`` (at
    ERROR, from aiokafka's fetcher) and retries. The end-offsets request used
    here is retried quietly until every leader answers, so clients started
    after it see no such line. Bounded by the client's request timeout.
    """
    partitions = [TopicPartition(r.topic, p) for r in reports for p in range(r.partitions)]
    if not partitions:
        return
    consumer = kafka_consumer(settings, group_id=None, enable_auto_commit=False)
    try:
        await consumer.start()
        await consumer.end_offsets(partitions)
    finally:
        await consumer.stop()

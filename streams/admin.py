"""Topic administration: the engine's topics, created with the configured partitions.

All inbound topics must share one partition count: the engine relies on a
customer's key landing on the same partition number in every topic.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from streams.kafka import admin_client
from streams.settings import Settings

__all__ = ["TopicReport", "ensure_topics", "partition_counts"]


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

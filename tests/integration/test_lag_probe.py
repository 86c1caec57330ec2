"""A lag probe measures every partition of its topics, reading their counts only when needed.

Listing the cluster's topics decodes the metadata of all of them, and in
``repartition`` mode a worker measures every 0.25 s: the probe keeps the counts
while every topic is there (``streams.lag.COUNTS_MAX_AGE``), and looks again at
every measurement for a topic not there yet.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import pytest
from aiokafka import AIOKafkaClient, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import GroupCoordinatorNotAvailableError

from bench.measure import create_topic
from streams.lag import LagProbe
from streams.settings import Settings

pytestmark = pytest.mark.integration


async def _coordinated(probe: LagProbe) -> None:
    """Measure until the group's coordinator answers (a new broker creates the offsets
    topic on the first group asked for)."""
    deadline = time.monotonic() + 60
    while True:
        try:
            await probe.measure()
            return
        except GroupCoordinatorNotAvailableError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)


async def test_counts_are_read_again_only_while_a_topic_is_missing(
    kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    listed = 0
    list_topics = AIOKafkaAdminClient.list_topics

    async def counted(self: AIOKafkaAdminClient) -> Any:
        nonlocal listed
        listed += 1
        return await list_topics(self)

    monkeypatch.setattr(AIOKafkaAdminClient, "list_topics", counted)
    first, later = (f"lag-{name}-{uuid.uuid4().hex[:8]}" for name in ("first", "later"))
    await create_topic(kafka_bootstrap, first, 2)
    settings = Settings(broker=kafka_bootstrap)
    async with LagProbe(settings, f"group-{uuid.uuid4().hex[:8]}", [first, later]) as probe:
        await _coordinated(probe)
        listed = 0
        for _ in range(2):
            rows = await probe.measure()
            assert {(row.topic, row.partition) for row in rows} == {(first, 0), (first, 1)}
        assert listed == 2  # ``later`` is missing: looked for at each measurement

        await create_topic(kafka_bootstrap, later, 3)
        for _ in range(3):
            rows = await probe.measure()
            assert len(rows) == 5
            assert {row.topic for row in rows} == {first, later}
        assert listed == 3  # both there: the counts are kept


async def test_a_fresh_probe_learns_its_topics_together_not_one_by_one(
    kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker's first message waits for its resume points. aiokafka's consumer learns
    the topics of one offsets call one per metadata update, each after a 100 ms
    back-off; asked per topic at once (``streams.lag.per_topic``), they come together."""
    topics = [f"lag-many-{n}-{uuid.uuid4().hex[:8]}" for n in range(8)]
    for topic in topics:
        await create_topic(kafka_bootstrap, topic, 2)
    group = f"group-{uuid.uuid4().hex[:8]}"
    settings = Settings(broker=kafka_bootstrap)
    async with LagProbe(settings, group, topics) as coordinated:
        await _coordinated(coordinated)  # the group's coordinator exists from here
    updates: list[list[str]] = []
    update = AIOKafkaClient._metadata_update  # noqa: SLF001

    async def counted(self: AIOKafkaClient, cluster: Any, asked: Any) -> Any:
        updates.append(sorted(asked))
        return await update(self, cluster, asked)

    monkeypatch.setattr(AIOKafkaClient, "_metadata_update", counted)
    tps = [TopicPartition(topic, p) for topic in topics for p in range(2)]
    async with LagProbe(settings, group, topics) as probe:
        updates.clear()  # what starting the clients asked
        points = await probe.resume_points(tps)
    assert points == dict.fromkeys(tps, 0)
    # One topic may start the update before the others join it: then a second has all.
    assert len(updates) <= 2
    assert updates[-1] == sorted(topics)

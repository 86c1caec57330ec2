"""A producer keeps delivering to a topic it knew before another topic was added.

aiokafka's client refreshes the metadata of every topic until it is told of one
(``add_topic``), and of the topics it was told of after that; a producer tells it
only of topics it does not know yet. A topic known from an all-topics refresh
therefore vanished from the metadata once a topic created later was first
written, and a batch queued for it waited for a leader nobody asked for any
more: the agent of a worker stalled behind such a batch, its client refreshing
metadata without pause. ``streams.kafka.track_topic`` tells the client of every
topic written; here, the real broker and both of the engine's producers show it
keeps them all.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import faust
import pytest

from bench.measure import create_topic
from streams import kafka
from streams.app import create_app
from streams.faust_compat import FaustProducer, kafka_producer
from streams.settings import Settings

pytestmark = pytest.mark.integration

LINGER_MS = 1500
"""Long enough for the second topic's first write to refresh the metadata while the
first topic's batch still waits in the producer."""

REQUEST_TIMEOUT_MS = 15_000
"""When a batch whose leader stays unknown fails, and a producer's stop gives up on it:
a producer that lost the topic fails the test, rather than wait 20 minutes (Faust's)."""


async def _deliver_across_a_refresh(
    bootstrap: str,
    client: Any,
    send: Callable[[str, bytes], Awaitable[asyncio.Future[Any]]],
) -> None:
    """Queue a record for a topic the client knows from an all-topics refresh, then
    write a topic created after it; the first record must still be delivered."""
    known, later = f"known-{uuid.uuid4().hex[:8]}", f"later-{uuid.uuid4().hex[:8]}"
    await create_topic(bootstrap, known, 1)
    await client.force_metadata_update()  # told of no topic yet: it reads them all
    assert known in client.cluster.topics()
    queued = await send(known, b"first")  # lingers in the producer's accumulator
    await create_topic(bootstrap, later, 1)
    await asyncio.wait_for(await send(later, b"second"), timeout=10)
    assert known in client.cluster.topics()
    delivered = await asyncio.wait_for(queued, timeout=10)
    assert delivered.topic == known
    assert delivered.offset == 0


async def test_the_engines_aiokafka_producer_keeps_a_topic_known_before(
    kafka_bootstrap: str,
) -> None:
    producer = kafka.producer(
        Settings(broker=kafka_bootstrap),
        linger_ms=LINGER_MS,
        request_timeout_ms=REQUEST_TIMEOUT_MS,
    )
    await producer.start()
    try:

        async def send(topic: str, value: bytes) -> asyncio.Future[Any]:
            sent: asyncio.Future[Any] = await producer.send(topic, value, partition=0)
            return sent

        await _deliver_across_a_refresh(kafka_bootstrap, producer.client, send)
    finally:
        await producer.stop()


async def test_the_workers_faust_producer_keeps_a_topic_known_before(
    kafka_bootstrap: str, tmp_path: Any
) -> None:
    settings = Settings(
        broker=kafka_bootstrap, app_id=f"meta-{uuid.uuid4().hex[:8]}", data_dir=tmp_path
    )
    app: faust.App = create_app(settings).app
    changelog = app.tables["customers"].changelog_topic.get_topic_name()
    await create_topic(kafka_bootstrap, changelog, 1)
    app.conf.producer_linger = LINGER_MS / 1000
    app.conf.producer_request_timeout = REQUEST_TIMEOUT_MS / 1000
    await app.producer.start()
    try:
        port = FaustProducer(app)

        async def send(topic: str, value: bytes) -> asyncio.Future[Any]:
            batch = port.create_batch()
            batch.append(key=None, value=value, timestamp=None)
            return await port.send_batch(batch, topic, partition=0)

        await _deliver_across_a_refresh(kafka_bootstrap, kafka_producer(app.producer).client, send)
        # Faust's router finds a customer's worker by the changelog's partitions, read
        # from this producer's metadata: the changelog, never written here, stays in it.
        assert app.producer.key_partition(changelog, b"cust-1").topic == changelog
    finally:
        await app.producer.stop()

"""Publishing events the way a shop backend should: right topic, customer key, JSON value."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from typing import Any

from aiokafka.partitioner import murmur2

from schemas.codec import dumps
from schemas.events import TOPIC_OF_TYPE
from streams.kafka import producer as kafka_producer
from streams.settings import Settings

__all__ = ["default_partition", "partitioner", "publish_events", "route"]


def default_partition(key: bytes, partitions: int) -> int:
    """Kafka's default partition of a key (murmur2, as the Java client and aiokafka)."""
    return int(murmur2(key) & 0x7FFFFFFF) % partitions


def partitioner(partitions: int) -> Callable[[str], int]:
    """``default_partition`` of a string key."""

    def partition_of(key: str) -> int:
        return default_partition(key.encode("utf-8"), partitions)

    return partition_of


def route(event: dict[str, Any], settings: Settings) -> tuple[str, bytes]:
    """Topic and key of a well-formed event dict (the contract's routing rule)."""
    topic = settings.topic(TOPIC_OF_TYPE[event["type"]])
    key = event.get("customer_id") or event["anonymous_id"]
    return topic, str(key).encode("utf-8")


async def publish_events(
    settings: Settings,
    events: Iterable[dict[str, Any]],
    *,
    rate: float = 0.0,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Publish ``events`` in order; ``rate`` > 0 paces them at that many per second.

    Returns the number sent once every send is acknowledged by the broker.
    ``progress`` is called with the number acknowledged so far, once for each
    acknowledgement, so a live count (``lifecycle dev``'s) moves event by event
    with what the broker holds, not in steps behind it.

    Paced (a live shop), each event is acknowledged before the next is sent, so
    the broker holds them in event order across topics too, as one customer's
    actions reach a real shop's backend: Kafka orders nothing across
    partitions, and batches for two topics may be appended in either order.
    """
    producer = kafka_producer(settings, acks="all", linger_ms=5, enable_idempotence=True)
    sent = 0
    acknowledged = 0

    def count(delivery: asyncio.Future[Any]) -> None:
        nonlocal acknowledged
        if progress is not None and not delivery.cancelled() and delivery.exception() is None:
            acknowledged += 1
            progress(acknowledged)

    started = time.monotonic()
    try:
        await producer.start()
        pending = []
        for event in events:
            topic, key = route(event, settings)
            delivery = await producer.send(topic, dumps(event), key=key)
            delivery.add_done_callback(count)
            if rate > 0:
                await delivery
            else:
                pending.append(delivery)
            sent += 1
            if rate > 0:
                ahead = sent / rate - (time.monotonic() - started)
                if ahead > 0:
                    await asyncio.sleep(ahead)
            if len(pending) >= 10_000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return sent

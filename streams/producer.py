"""Publishing events the way a shop backend should: right topic, customer key, JSON value."""

from __future__ import annotations

import asyncio
import functools
import random
import time
import zlib
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal

from aiokafka.partitioner import murmur2

from schemas.codec import dumps
from schemas.events import TOPIC_OF_TYPE
from streams.kafka import producer as kafka_producer
from streams.settings import Settings

__all__ = [
    "SCHEMES",
    "PartitionOrder",
    "Scheme",
    "crc32_partition",
    "default_partition",
    "kafka_partitioner",
    "key_partition",
    "partitioner",
    "partitioner_of",
    "publish_events",
    "route",
    "scheme_of",
]

Scheme = Literal["murmur2", "crc32"]
"""How a producer maps a key to a partition: the two families of Kafka clients."""


def default_partition(key: bytes, partitions: int) -> int:
    """Kafka's default partition of a key (murmur2, as the Java client and aiokafka)."""
    return int(murmur2(key) & 0x7FFFFFFF) % partitions


def crc32_partition(key: bytes, partitions: int) -> int:
    """librdkafka's ``consistent`` and ``consistent_random`` partition of a non-empty key:
    the CRC-32 of its bytes (zlib's: IEEE, reflected, as librdkafka's ``rd_crc32``),
    unsigned, modulo the partition count. kcat, confluent-kafka (Python, Go, .NET) and
    node-rdkafka use it unless told ``partitioner=murmur2_random``."""
    return zlib.crc32(key) % partitions


SCHEMES: dict[Scheme, Callable[[bytes, int], int]] = {
    "murmur2": default_partition,
    "crc32": crc32_partition,
}


def scheme_of(input_partitioner: str) -> Scheme:
    """The scheme the engine routes keys by for a ``LIFECYCLE_INPUT_PARTITIONER`` value:
    in ``repartition`` mode the engine writes its own topics, with murmur2."""
    return "crc32" if input_partitioner == "crc32" else "murmur2"


@functools.lru_cache(maxsize=1 << 16)
def key_partition(key: bytes, partitions: int, scheme: Scheme = "murmur2") -> int:
    """The partition of ``key`` under ``scheme``: the one function everything that routes
    by customer key uses (merge messages, outputs, the publisher, the backtest, table
    lookups, the misrouting check). Cached: murmur2 is pure Python, and a customer's
    key comes back with each of its events."""
    return SCHEMES[scheme](key, partitions)


def partitioner(partitions: int, scheme: Scheme = "murmur2") -> Callable[[str], int]:
    """``key_partition`` of a string key, for the backtest."""

    def partition_of(key: str) -> int:
        return key_partition(key.encode("utf-8"), partitions, scheme)

    return partition_of


def partitioner_of(settings: Settings) -> Callable[[str], int]:
    """``partitioner`` of the engine's topics: ``LIFECYCLE_PARTITIONS`` partitions, keys
    routed as ``LIFECYCLE_INPUT_PARTITIONER`` says (the backtest's partitioning)."""
    return partitioner(settings.partitions, scheme_of(settings.input_partitioner))


KafkaPartitioner = Callable[[bytes | None, Sequence[int], Sequence[int]], int]


def kafka_partitioner(scheme: Scheme) -> KafkaPartitioner:
    """``key_partition`` as an aiokafka (and Faust ``producer_partitioner``) partitioner:
    ``(key, all_partitions, available) -> partition``; a keyless message goes to a
    random available partition, as every client does."""

    def partition(
        key: bytes | None, all_partitions: Sequence[int], available: Sequence[int]
    ) -> int:
        if key is None:
            return random.choice(list(available or all_partitions))  # noqa: S311 - not secret
        ids = sorted(all_partitions)
        return ids[key_partition(key, len(ids), scheme)]

    return partition


def route(event: dict[str, Any], settings: Settings) -> tuple[str, bytes]:
    """Topic and key of a well-formed event dict (the contract's routing rule)."""
    topic = settings.topic(TOPIC_OF_TYPE[event["type"]])
    key = event.get("customer_id") or event["anonymous_id"]
    return topic, str(key).encode("utf-8")


LINKING = frozenset({"signup", "identify"})
"""The event types whose ``anonymous_id``, beside a ``customer_id``, starts an identity
merge: the engine then sends a message to that id's partition (``lifecycle.core``)."""


class PartitionOrder:
    """What a paced publish waits for before its next send, so the broker holds the
    events in the order the engine's merges need without an acknowledgement per
    event.

    Kafka keeps the order of one topic-partition (the idempotent producer keeps it
    through retries) and none across them. The engine merges the topics of one
    partition number by what each holds, so an event must not reach the broker
    before an event published earlier to the same partition number of another
    topic: a send to partition p of topic T first awaits the last send to p if that
    went to another topic (acknowledgements of one topic-partition come in order,
    so the last one covers the ones before it). A signup or identify that links an
    anonymous id reaches that id's partition too, through the merge message the
    engine sends there, so it first awaits the last send to that partition, of any
    topic. Every other send goes on meanwhile: one acknowledgement per event (a
    round trip each) held a paced publish to about 150 events/s whatever rate was
    asked.
    """

    def __init__(self) -> None:
        self._last: dict[int, tuple[str, asyncio.Future[Any]]] = {}

    def before(
        self, topic: str, partition: int, linked: int | None = None
    ) -> list[asyncio.Future[Any]]:
        """The sends to await before one to ``topic``'s ``partition`` (and, for an
        identity link, to the anonymous id's partition ``linked``)."""
        waits = []
        last = self._last.get(partition)
        if last is not None and last[0] != topic and not last[1].done():
            waits.append(last[1])
        if linked is not None and linked != partition:
            last = self._last.get(linked)
            if last is not None and not last[1].done():
                waits.append(last[1])
        return waits

    def sent(self, topic: str, partition: int, delivery: asyncio.Future[Any]) -> None:
        self._last[partition] = (topic, delivery)


async def publish_events(
    settings: Settings,
    events: Iterable[dict[str, Any]],
    *,
    rate: float = 0.0,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Publish ``events`` in order; ``rate`` > 0 paces them at that many per second.

    Returns the number sent once every send is acknowledged by the broker. Keys are
    partitioned as ``LIFECYCLE_INPUT_PARTITIONER`` says producers do (murmur2 in
    ``repartition`` mode), so the engine finds them where it expects them.
    ``progress`` is called with the number acknowledged so far, once for each
    acknowledgement, so a live count (``lifecycle dev``'s) moves event by event
    with what the broker holds, not in steps behind it.

    Paced (a live shop), each event leaves as it is sent (no linger) and the broker
    holds each partition number's events in publish order across topics too
    (``PartitionOrder``), as one customer's actions reach a real shop's backend:
    Kafka orders nothing across partitions, and batches for two topics may be
    appended in either order.
    """
    scheme = scheme_of(settings.input_partitioner)
    choose = kafka_partitioner(scheme)
    producer = kafka_producer(
        settings,
        acks="all",
        linger_ms=0 if rate > 0 else 5,
        enable_idempotence=True,
        partitioner=choose,
    )
    order = PartitionOrder() if rate > 0 else None
    partitions_of: dict[str, list[int]] = {}
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
            partition = None
            if order is not None:
                ids = partitions_of.get(topic)
                if ids is None:
                    ids = partitions_of[topic] = sorted(await producer.partitions_for(topic))
                partition = choose(key, ids, ids)
                links = event.get("type") in LINKING and event.get("customer_id")
                anonymous = event.get("anonymous_id") if links else None
                linked = None if anonymous is None else choose(str(anonymous).encode(), ids, ids)
                for earlier in order.before(topic, partition, linked):
                    await earlier
            delivery = await producer.send(topic, dumps(event), key=key, partition=partition)
            delivery.add_done_callback(count)
            if order is not None and partition is not None:
                order.sent(topic, partition, delivery)
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

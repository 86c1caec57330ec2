"""A batch's outputs, sent as one record batch per topic-partition.

aiokafka's ``send`` costs a partitioner call, an accumulator lookup and a
future per message, and the engine sends one to three messages per event.
Collected for a few milliseconds, they go out as a few record batches
(``create_batch``/``send_batch``), each acknowledged as a whole.

Keyed messages land where the engine's ``send`` would put them: the
configured scheme (``streams.producer.key_partition``, murmur2 unless
LIFECYCLE_INPUT_PARTITIONER is crc32) of the key over the topic's sorted
partitions, so the outputs are partitioned like the customers' events.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from streams.ports import Producer
from streams.producer import Scheme, key_partition

__all__ = ["OutboundBatch", "send_records"]


class OutboundBatch:
    """Messages to send, grouped by topic and key until ``dispatch``."""

    def __init__(self) -> None:
        self._keyed: dict[str, list[tuple[bytes, bytes]]] = defaultdict(list)
        self._unkeyed: list[tuple[str, bytes]] = []
        self.held = 0
        """Messages added since the last ``dispatch``."""
        self.held_since = 0.0
        """When (``time.monotonic``) the oldest of those was added."""

    def add(self, topic: str, key: bytes | None, value: bytes) -> None:
        if key is None:
            self._unkeyed.append((topic, value))
        else:
            self._keyed[topic].append((key, value))
        if not self.held:
            self.held_since = time.monotonic()
        self.held += 1

    async def dispatch(
        self, producer: Producer, partitions: dict[str, list[int]], scheme: Scheme = "murmur2"
    ) -> list[asyncio.Future[Any]]:
        """Hand every held message to ``producer``; the
        futures of their acknowledgements. ``partitions`` caches each topic's sorted
        partition ids (read from the producer's metadata on first use).

        aiokafka keeps one request in flight per partition and appends a
        partition's batches in the order they were handed over, so messages
        dispatched in several rounds keep their order within a partition.
        """
        keyed, unkeyed = self._keyed, self._unkeyed
        self._keyed, self._unkeyed, self.held = defaultdict(list), [], 0
        delivered: list[asyncio.Future[Any]] = []
        for topic, messages in keyed.items():
            ids = partitions.get(topic)
            if ids is None:
                ids = partitions[topic] = sorted(await producer.partitions_for(topic))
            by_partition: dict[int, list[tuple[bytes, bytes]]] = defaultdict(list)
            count = len(ids)
            for key, value in messages:
                by_partition[ids[key_partition(key, count, scheme)]].append((key, value))
            for partition, records in by_partition.items():
                sent = await send_records(producer, topic, partition, records)
                delivered.extend(future for future, _ in sent)
        for topic, value in unkeyed:  # no key, no partition of its own: aiokafka picks
            delivered.append(await producer.send(topic, value))
        return delivered


async def send_records(
    producer: Producer, topic: str, partition: int, records: Sequence[tuple[bytes, bytes | None]]
) -> list[tuple[asyncio.Future[Any], int]]:
    """Send ``records`` (key, value; None is a tombstone) to one partition as few
    record batches as fit: each batch's acknowledgement and how many records it holds
    (the acknowledgement gives the first one's offset)."""
    sent = []
    batch, count = producer.create_batch(), 0
    for key, value in records:
        if batch.append(key=key, value=value, timestamp=None) is None:  # full: send it
            sent.append((await producer.send_batch(batch, topic, partition=partition), count))
            batch, count = producer.create_batch(), 0
            batch.append(key=key, value=value, timestamp=None)  # the first always fits
        count += 1
    sent.append((await producer.send_batch(batch, topic, partition=partition), count))
    return sent

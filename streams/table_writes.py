"""A batch's table writes: each to its store at once, their changelog as record batches.

A Faust table write (``table[key] = value``) sends its changelog message on
its own: Faust's buffer, a ``send`` and a future per key, and a callback
that writes the partition's persisted offset to rocksdb per message. The
engine writes a few hundred keys per batch, and that was a sixth of a
worker's time (the commit's ``producer.flush``). Here the store is written
as Faust would (the same store, key and partition, the partition named by
Faust's current event: ``streams.faust_compat``), the changelog records go
out as one record batch per changelog partition (``streams.outbound``), and
each partition's persisted offset is written once, from the acknowledgement,
as Faust's callback does.

The records are exactly Faust's: the tables store raw bytes (``bytes`` key
and value types), a changelog partition is the partition of the event that
wrote it, and a deletion is a tombstone. A worker recovering from the
changelog cannot tell who wrote it (``tests/integration/test_crash.py``).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict

from faust.types import TP

from streams.faust_compat import FaustEvent
from streams.outbound import send_records
from streams.ports import Producer, Store

__all__ = ["TableWrites"]


class TableWrites:
    """The changes of one batch to Faust tables, until ``send`` makes them durable."""

    def __init__(self) -> None:
        self._records: dict[tuple[Store, int], list[tuple[bytes, bytes | None]]] = defaultdict(list)

    def __len__(self) -> int:
        return sum(len(records) for records in self._records.values())

    def put(self, store: Store, event: FaustEvent, key: bytes, value: bytes | None) -> None:
        """Write ``key`` in the partition of ``event`` (None: delete it) and keep the
        changelog record. Deleting a key the store does not hold writes nothing."""
        if store.write(event, key, value):
            self._records[(store, event.message.partition)].append((key, value))

    async def send(self, producer: Producer) -> None:
        """Send the changelog records to ``producer``, wait
        for the broker to have all of them, then record each partition's persisted
        offset, as Faust does after each of its own changelog messages."""
        records, self._records = self._records, defaultdict(list)
        sent = []
        for (store, partition), changes in records.items():
            topic = store.changelog
            batches = await send_records(producer, topic, partition, changes)
            sent.append((store, TP(topic, partition), batches))
        await asyncio.gather(*(future for _, _, batches in sent for future, _ in batches))
        for store, tp, batches in sent:
            last, count = batches[-1]  # a partition's batches are written in order
            store.persisted(tp, last.result().offset + count - 1)

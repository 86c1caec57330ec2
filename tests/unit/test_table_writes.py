"""A batch's table writes: in the store at once, in the changelog as record batches, and
each partition's persisted offset from the acknowledgement, as Faust's own writes leave them."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import faust
import pytest
from faust.types import TP

from streams.faust_compat import FaustStore, in_partition_of, partition_stores
from streams.table_writes import TableWrites
from tests.unit.test_outbound import RecordBatch

CHANGELOG = "writes-test-customers-changelog"


class Event:
    """What a store asks of Faust's current event: the partition of its message."""

    def __init__(self, partition: int) -> None:
        self.message = SimpleNamespace(partition=partition)


class Producer:
    """What ``TableWrites.send`` uses of an ``AIOKafkaProducer``: the broker appends each
    batch at the partition's end and acknowledges it with the first record's offset."""

    def __init__(self, room: int = 1000) -> None:
        self.room = room
        self.batches: list[tuple[str, int, list[tuple[bytes | None, bytes | None]]]] = []
        self.ends: dict[int, int] = {0: 100, 2: 7}

    def create_batch(self) -> RecordBatch:
        return RecordBatch(self.room)

    async def send_batch(self, batch: RecordBatch, topic: str, *, partition: int) -> Any:
        self.batches.append((topic, partition, batch.records))
        future = asyncio.get_running_loop().create_future()
        future.set_result(SimpleNamespace(offset=self.ends[partition]))
        self.ends[partition] += len(batch.records)
        return future


@pytest.fixture
def table(tmp_path: Path) -> Any:
    """The engine's kind of table (raw bytes in a rocksdb store); no broker is touched."""
    app = faust.App(
        "writes-test",
        broker="kafka://127.0.0.1:1",
        broker_credentials=None,
        web_enabled=False,
        store="rocksdb://",
        datadir=str(tmp_path),
    )
    return app.Table("customers", default=None, partitions=4, key_type=bytes, value_type=bytes)


@pytest.fixture
def store(table: Any) -> FaustStore:
    return FaustStore(table)


def test_writes_land_in_the_store_and_the_changelog_partition_of_their_event(
    table: Any, store: FaustStore
) -> None:
    writes = TableWrites()
    zero, two = Event(0), Event(2)
    writes.put(store, zero, b"a", b"1")
    writes.put(store, two, b"b", b"2")
    writes.put(store, zero, b"c", b"3")
    writes.put(store, zero, b"a", None)  # erased in the same batch: a tombstone
    writes.put(store, two, b"never-stored", None)  # nothing to delete: nothing written
    assert len(writes) == 4

    producer = Producer()
    asyncio.run(writes.send(producer))

    assert sorted(producer.batches) == [
        (CHANGELOG, 0, [(b"a", b"1"), (b"c", b"3"), (b"a", None)]),
        (CHANGELOG, 2, [(b"b", b"2")]),
    ]
    data = table.data
    assert b"a" not in data
    assert (data[b"b"], data[b"c"]) == (b"2", b"3")
    dbs = partition_stores(data)
    assert dbs is not None
    assert dbs[2][b"b"] == b"2"  # the partition's own database, as Faust's would
    # The last record's offset, which a recovering worker reads the changelog after.
    assert data.persisted_offset(TP(CHANGELOG, 0)) == 102
    assert data.persisted_offset(TP(CHANGELOG, 2)) == 7
    assert len(writes) == 0  # sent: the next batch starts empty


def test_a_partition_sent_in_several_batches_persists_the_offset_of_its_last_record(
    table: Any, store: FaustStore
) -> None:
    writes = TableWrites()
    for i in range(5):
        writes.put(store, Event(0), f"k{i}".encode(), b"v")
    producer = Producer(room=2)
    asyncio.run(writes.send(producer))
    assert [len(records) for _, _, records in producer.batches] == [2, 2, 1]
    assert table.data.persisted_offset(TP(CHANGELOG, 0)) == 104


def test_the_records_are_the_bytes_faust_would_send(table: Any) -> None:
    """Faust serializes a bytes-typed table's keys and values raw: what is written here is
    what its own write would have sent, so its recovery reads either the same way."""
    assert (table.key_serializer, table.value_serializer) == ("raw", "raw")


def test_a_read_finds_what_fausts_get_finds_in_one_read(table: Any, store: FaustStore) -> None:
    """``FaustStore.get`` reads the current event's partition as Faust's ``get`` does,
    and without a current event it is Faust's ``get``, which looks in every partition."""
    writes = TableWrites()
    writes.put(store, Event(0), b"a", b"1")
    writes.put(store, Event(2), b"b", b"2")
    for partition in range(4):
        with in_partition_of(Event(partition)):  # type: ignore[arg-type]
            found = [store.get(key) for key in (b"a", b"b", b"absent")]
            assert found == [table.get(key) for key in (b"a", b"b", b"absent")]
        assert found == [
            b"1" if partition == 0 else None,
            b"2" if partition == 2 else None,
            None,
        ]
    assert [store.get(key) for key in (b"a", b"b", b"absent")] == [b"1", b"2", None]

"""A batch's outputs: where each message goes, in which order, in how many record batches."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from streams.outbound import OutboundBatch
from streams.producer import partitioner


class RecordBatch:
    """What aiokafka's ``BatchBuilder`` does for ``send_records``: hold up to ``room``
    records (None values are tombstones), then refuse the next one."""

    def __init__(self, room: int) -> None:
        self.room = room
        self.records: list[tuple[bytes | None, bytes | None]] = []

    def append(self, *, key: bytes | None, value: bytes | None, timestamp: None) -> object | None:
        if self.records and len(self.records) >= self.room:
            return None
        self.records.append((key, value))
        return object()


class Producer:
    """What ``OutboundBatch.dispatch`` uses of an ``AIOKafkaProducer``, recorded."""

    def __init__(self, partitions: int, room: int = 1000) -> None:
        self.partitions = partitions
        self.room = room
        self.batches: list[tuple[str, int, list[tuple[bytes | None, bytes | None]]]] = []
        self.single: list[tuple[str, bytes]] = []
        self.metadata_asked: list[str] = []

    async def partitions_for(self, topic: str) -> set[int]:
        self.metadata_asked.append(topic)
        return set(range(self.partitions))

    def create_batch(self) -> RecordBatch:
        return RecordBatch(self.room)

    async def send_batch(self, batch: RecordBatch, topic: str, *, partition: int) -> Any:
        self.batches.append((topic, partition, batch.records))
        return _done()

    async def send(self, topic: str, value: bytes) -> Any:
        self.single.append((topic, value))
        return _done()


def send(outputs: OutboundBatch, producer: Producer, known: dict[str, list[int]]) -> None:
    """What the agent's commit does: dispatch what is held, wait for the acknowledgements."""

    async def dispatched() -> None:
        await asyncio.gather(*await outputs.dispatch(producer, known))

    asyncio.run(dispatched())


def _done() -> asyncio.Future[None]:
    future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    future.set_result(None)
    return future


def test_keyed_messages_go_where_kafkas_default_partitioner_puts_them_in_order() -> None:
    outputs = OutboundBatch()
    sent = [(f"c{i % 7}".encode(), f"v{i}".encode()) for i in range(40)]
    for key, value in sent:
        outputs.add("lifecycle.triggers", key, value)
    producer = Producer(partitions=6)
    send(outputs, producer, {})

    partition_of = partitioner(6)
    assert sum(len(records) for _, _, records in producer.batches) == 40
    assert {p for _, p, _ in producer.batches} == {partition_of(k.decode()) for k, _ in sent}
    for topic, partition, records in producer.batches:
        assert topic == "lifecycle.triggers"
        expected = [(k, v) for k, v in sent if partition_of(k.decode()) == partition]
        assert records == expected  # one batch each, in the order they were added


def test_a_full_batch_is_sent_and_the_rest_follows_in_the_next() -> None:
    outputs = OutboundBatch()
    for i in range(5):
        outputs.add("t", b"same-key", str(i).encode())
    producer = Producer(partitions=3, room=2)
    send(outputs, producer, {})
    assert [[v for _, v in records] for _, _, records in producer.batches] == [
        [b"0", b"1"],
        [b"2", b"3"],
        [b"4"],
    ]


def test_unkeyed_messages_are_sent_one_by_one_and_metadata_is_asked_once_per_topic() -> None:
    producer = Producer(partitions=2)
    known: dict[str, list[int]] = {}
    for _ in range(2):
        outputs = OutboundBatch()
        outputs.add("dead", None, b"x")
        outputs.add("t", b"k", b"1")
        send(outputs, producer, known)
    assert producer.single == [("dead", b"x"), ("dead", b"x")]
    assert producer.metadata_asked == ["t"]
    assert known == {"t": [0, 1]}


def test_dispatch_hands_over_only_what_is_held_and_keeps_each_partitions_order() -> None:
    async def rounds() -> tuple[Producer, list[int]]:
        outputs = OutboundBatch()
        producer = Producer(partitions=1)
        handed = []
        for first in (0, 3):
            for i in range(first, first + 3):
                outputs.add("t", b"k", str(i).encode())
            assert outputs.held == 3
            handed.append(len(await outputs.dispatch(producer, {})))
            assert outputs.held == 0
        assert await outputs.dispatch(producer, {}) == []  # nothing held: nothing sent
        return producer, handed

    producer, handed = asyncio.run(rounds())
    assert handed == [1, 1]  # one record batch a round
    assert [v for _, _, records in producer.batches for _, v in records] == [
        str(i).encode() for i in range(6)
    ]


def test_held_since_is_when_the_oldest_held_message_came(monkeypatch: pytest.MonkeyPatch) -> None:
    outputs = OutboundBatch()
    with monkeypatch.context() as patched:
        clock = iter([10.0, 11.0])
        patched.setattr("streams.outbound.time.monotonic", lambda: next(clock))
        outputs.add("t", b"k", b"1")
        outputs.add("t", b"k", b"2")
    assert outputs.held_since == 10.0
    asyncio.run(outputs.dispatch(Producer(partitions=1), {}))
    monkeypatch.setattr("streams.outbound.time.monotonic", lambda: 50.0)
    outputs.add("t", b"k", b"3")
    assert outputs.held_since == 50.0

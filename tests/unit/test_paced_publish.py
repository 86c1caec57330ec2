"""A paced publish holds its rate and each partition number's order across topics.

The producer here records when each send is made and acknowledged; the real
broker's side (every event arrives, once, with a count per acknowledgement) is
tests/integration/test_publish_progress.py.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import streams.producer as producing
from analytics.simulation import simulate
from streams.producer import LINKING, PartitionOrder, key_partition, publish_events, route
from streams.settings import Settings

PARTITIONS = 3
ACK_AFTER = 0.002
"""Seconds from a send to its acknowledgement: a broker's round trip."""
SLOW_ACK = 0.5
"""An acknowledgement later than any stall of a slow machine between two paced sends, for
the tests that ask whether a send waited for another: with ``ACK_AFTER`` a send made late
would find the earlier one acknowledged, wait or not."""


@dataclass
class Send:
    topic: str
    partition: int
    index: int
    delivery: asyncio.Future[Any]
    unacknowledged: list[int] = field(default_factory=list)
    """Earlier sends not acknowledged when this one was made."""


class RecordingProducer:
    """aiokafka's producer as ``publish_events`` uses it, acknowledging each send
    ``ack_after`` seconds later, in order per topic-partition."""

    ack_after = ACK_AFTER

    def __init__(self, **options: Any) -> None:
        self.options = options
        self.sends: list[Send] = []

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def partitions_for(self, topic: str) -> set[int]:
        return set(range(PARTITIONS))

    async def send(
        self, topic: str, value: bytes, *, key: bytes, partition: int | None = None
    ) -> asyncio.Future[Any]:
        assert partition is not None, "a paced send names its partition"
        loop = asyncio.get_running_loop()
        delivery: asyncio.Future[Any] = loop.create_future()
        waiting = [s.index for s in self.sends if not s.delivery.done()]
        self.sends.append(Send(topic, partition, len(self.sends), delivery, waiting))
        loop.call_later(self.ack_after, delivery.set_result, None)
        return delivery


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> list[RecordingProducer]:
    made: list[RecordingProducer] = []

    def make(_settings: Settings, **options: Any) -> RecordingProducer:
        made.append(RecordingProducer(**options))
        return made[-1]

    monkeypatch.setattr(producing, "kafka_producer", make)
    return made


async def test_a_send_waits_only_for_another_topics_send_to_its_partition_number(
    recorded: list[RecordingProducer], tmp_path: Path
) -> None:
    settings = Settings(partitions=PARTITIONS, data_dir=tmp_path)
    events = list(simulate(40, seed=2))[:300]
    counts: list[int] = []
    sent = await publish_events(settings, events, rate=5_000.0, progress=counts.append)
    [producer] = recorded
    assert sent == len(events) == len(producer.sends)
    assert counts == list(range(1, len(events) + 1))
    assert producer.options["linger_ms"] == 0  # a live shop's event leaves as it happens

    links = 0
    for event, send in zip(events, producer.sends, strict=True):
        topic, key = route(event, settings)
        assert (send.topic, send.partition) == (topic, key_partition(key, PARTITIONS))
        links_ids = event["type"] in LINKING and event.get("customer_id")
        anonymous = event.get("anonymous_id") if links_ids else None
        linked = None if anonymous is None else key_partition(anonymous.encode(), PARTITIONS)
        links += linked is not None and linked != send.partition
        for earlier in send.unacknowledged:
            before = producer.sends[earlier]
            assert before.partition != send.partition or before.topic == send.topic, (
                f"send {send.index} to {send.topic}[{send.partition}] overtook "
                f"send {earlier} to {before.topic}[{before.partition}]"
            )
            assert before.partition != linked or linked == send.partition, (
                f"the link {send.index} overtook send {earlier} to its anonymous id's "
                f"partition {linked}"
            )
    assert links > 0  # the input links anonymous ids in other partitions
    # Sends overlap: the publish does not wait for every acknowledgement.
    assert max(len(s.unacknowledged) for s in producer.sends) > 1


async def test_only_a_signup_or_identify_waits_for_its_anonymous_ids_partition(
    recorded: list[RecordingProducer], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Other events may name both ids (a purchase from a logged-in session): no merge
    follows them, so they do not wait for the anonymous id's partition."""
    monkeypatch.setattr(RecordingProducer, "ack_after", SLOW_ACK)
    settings = Settings(partitions=PARTITIONS, data_dir=tmp_path)
    anon = "anon-1"
    customer = next(
        name
        for name in (f"cust-{i}" for i in range(20))
        if key_partition(name.encode(), PARTITIONS) != key_partition(anon.encode(), PARTITIONS)
    )
    at = "2025-01-01T00:00:00Z"
    browse = {"type": "browse", "event_id": "e0", "occurred_at": at, "anonymous_id": anon}
    both = {"customer_id": customer, "anonymous_id": anon, "occurred_at": at}
    events = [
        browse,
        {**both, "type": "purchase", "event_id": "e1", "order_id": "o1"},
        {**browse, "event_id": "e2"},
        {**both, "type": "identify", "event_id": "e3"},
    ]
    await publish_events(settings, events, rate=5_000.0)
    sends = recorded[0].sends
    assert 0 in sends[1].unacknowledged  # the purchase went on
    assert 2 not in sends[3].unacknowledged  # the identify waited for the anon's partition


async def test_unpaced_sends_let_the_producer_partition_and_linger(
    recorded: list[RecordingProducer], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(partitions=PARTITIONS, data_dir=tmp_path)
    partitions: list[int | None] = []
    original = RecordingProducer.send

    async def send(
        self: RecordingProducer,
        topic: str,
        value: bytes,
        *,
        key: bytes,
        partition: int | None = None,
    ) -> asyncio.Future[Any]:
        partitions.append(partition)
        return await original(self, topic, value, key=key, partition=0)

    monkeypatch.setattr(RecordingProducer, "send", send)
    events = list(simulate(5, seed=2))
    assert await publish_events(settings, events) == len(events)
    assert set(partitions) == {None}
    assert recorded[0].options["linger_ms"] == 5


async def test_the_order_names_the_sends_a_send_must_not_overtake() -> None:
    loop = asyncio.get_running_loop()
    order = PartitionOrder()
    first, second, other = loop.create_future(), loop.create_future(), loop.create_future()
    assert order.before("a", 0) == []
    order.sent("a", 0, first)
    assert order.before("a", 0) == []  # one topic-partition keeps its own order
    assert order.before("b", 1) == []  # another partition number: no relation
    assert order.before("b", 0) == [first]
    order.sent("a", 0, second)
    order.sent("a", 1, other)
    assert order.before("b", 0) == [second]
    # A link to an anonymous id in partition 1 waits for partition 1, whatever the topic.
    assert order.before("a", 0, linked=1) == [other]
    assert order.before("b", 0, linked=1) == [second, other]
    assert order.before("a", 1, linked=1) == []
    second.set_result(None)
    other.set_result(None)
    assert order.before("b", 0, linked=1) == []  # acknowledged already

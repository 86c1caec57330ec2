"""A signup that claims a visitor on another partition waits for the visitor's history.

The visitor's partition answers every claim, with the visitor's runs and views or
with nothing, and the customer's partition releases nothing after the signup until
that answer is in (``lifecycle.ordering``). So the customer's later events meet the
visitor's runs as in event-time order, however the two partitions are read: here the
worker reads the customer's partition first, as a replay may, and its outputs are
the backtest's.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

import pytest
from faust.types import TP

from lifecycle.backtest import Backtest, Output
from lifecycle.clock import ClockMode
from lifecycle.playbook import parse_playbook
from schemas.codec import dumps, encode_model, to_jsonable
from schemas.internal import Claim
from schemas.records import Trigger
from streams.producer import partitioner_of, route
from streams.settings import Settings
from tests.fakes import Event as FakeEvent
from tests.fakes import MemoryWorker, Message
from tests.scenarios.flows import WISHLIST_PLAYBOOK as WISHLIST

SETTINGS = Settings(partitions=4, clock=ClockMode.EVENT, batch_linger=0.0, output_hold=0.0)


def keys() -> tuple[str, str, str]:
    """A visitor, the customer it becomes on another partition, and a customer on the
    visitor's partition whose later event keeps that partition's merge waiting."""
    partition_of = partitioner_of(SETTINGS)
    visitor = "anon-1"
    customer = next(
        f"cust-{i}" for i in range(100) if partition_of(f"cust-{i}") != partition_of(visitor)
    )
    other = next(
        f"other-{i}" for i in range(100) if partition_of(f"other-{i}") == partition_of(visitor)
    )
    return visitor, customer, other


def events() -> list[dict[str, Any]]:
    visitor, customer, other = keys()
    item = {"product_id": "p1", "quantity": 1, "unit_price": "10.00"}
    return [
        {"type": "signup", "event_id": "s1", "occurred_at": "2026-03-01T10:00:00Z",
         "customer_id": customer, "anonymous_id": visitor, "email": "c1@mail.example",
         "marketing_consent": True},
        {"type": "purchase", "event_id": "p1", "occurred_at": "2026-03-01T10:30:00Z",
         "customer_id": customer, "order_id": "o1", "total": "10.00", "currency": "EUR",
         "items": [item]},
        {"type": "custom", "event_id": "w1", "occurred_at": "2026-03-01T08:00:00Z",
         "anonymous_id": visitor, "name": "wishlist_add"},
        {"type": "browse", "event_id": "b1", "occurred_at": "2026-03-05T10:00:00Z",
         "customer_id": other, "product_id": "p2"},
    ]  # fmt: skip


def published_first_for_the_customer() -> MemoryWorker:
    """The customer's signup and order read before the visitor's wishlist_add."""
    worker = MemoryWorker.of(SETTINGS, parse_playbook(WISHLIST))
    for event in events():
        topic, key = route(event, SETTINGS)
        at = datetime.fromisoformat(event["occurred_at"]).timestamp()
        worker.broker.append(topic, key, dumps(event), timestamp=at)
    return worker


def triggers(worker: MemoryWorker) -> list[tuple[str, str, str]]:
    return [
        (value["customer_id"], value["campaign"], value["created_at"])
        for _, value in worker.broker.values(SETTINGS.topic("triggers"))
    ]


def test_the_customers_order_waits_for_the_visitors_run_and_ends_it() -> None:
    worker = published_first_for_the_customer()

    async def run() -> None:
        await worker.start()
        await worker.run()
        await worker.tick()  # the worker's latest event time, to every partition
        await worker.run()

    asyncio.run(run())
    _, customer, _ = keys()
    lines = [dumps(e) for e in sorted(events(), key=lambda e: e["occurred_at"])]
    backtest = [
        (o.value.customer_id, o.value.campaign, to_jsonable(o.value)["created_at"])
        for o in Backtest(parse_playbook(WISHLIST), partitioner_of(SETTINGS)).run(lines)
        if isinstance(o, Output) and isinstance(o.value, Trigger)
    ]
    assert triggers(worker) == [
        (customer, "welcome", "2026-03-01T10:00:00Z"),
        (customer, "order_thank_you", "2026-03-01T10:30:00Z"),
    ]
    assert triggers(worker) == backtest


def test_a_claim_never_answered_is_given_up_after_max_idle_and_said(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The visitor's partition never answers (its merge message lost): past
    ``LIFECYCLE_MAX_IDLE`` the customer's partition releases the order anyway, and the
    log names the merge topic it waited for."""
    now = [100.0]
    monkeypatch.setattr("agents.partitions.time.monotonic", lambda: now[0])
    caplog.set_level(logging.WARNING, logger="agents.partitions")
    worker = published_first_for_the_customer()
    merge = SETTINGS.topic("merge")
    _, customer, _ = keys()
    customer_partition = partitioner_of(SETTINGS)(customer)

    async def run() -> list[str]:
        await worker.start()
        for _ in range(2):  # the signup, then the order, which waits
            message = worker.consumer.next()
            assert message is not None
            await worker.processor.step(_event(message), worker.buffered)
        partitions = worker.processor.partitions
        merger = partitions.runtime_of(customer_partition).merger
        assert (merger.buffered, merger.horizon is not None) == (1, True)
        partitions.release(customer_partition)  # the claim is never read: lost on its way
        now[0] += SETTINGS.max_idle + 1
        partitions.release(customer_partition)
        assert merger.buffered == 0
        assert await worker.processor.drain()
        return [campaign for _, campaign, _ in triggers(worker)]

    sent = asyncio.run(run())
    assert sent == ["welcome", "order_thank_you"]
    said = [r.getMessage() for r in caplog.records]
    assert said == [
        f"partition {customer_partition}: waited {SETTINGS.max_idle:.0f}s for {merge}; "
        "releasing without it"
    ]


def _event(message: Any) -> Any:
    return FakeEvent(message)


def test_a_worker_restarted_after_the_claim_still_waits_for_its_answer() -> None:
    """The claim is sent and the signup committed; the worker stops before the claim is
    read. The record keeps the claim (``awaiting``), so the worker started over the same
    table waits for the answer before the customer's order, as the first one would."""
    signup, purchase, wishlist, browse = events()
    playbook = parse_playbook(WISHLIST)
    first = MemoryWorker.of(SETTINGS, playbook)

    def publish(worker: MemoryWorker, event: dict[str, Any]) -> None:
        topic, key = route(event, SETTINGS)
        at = datetime.fromisoformat(event["occurred_at"]).timestamp()
        worker.broker.append(topic, key, dumps(event), timestamp=at)

    async def stop_after_the_signup() -> None:
        await first.start()
        publish(first, signup)
        message = first.consumer.next()
        assert message is not None
        await first.processor.step(_event(message), first.buffered)
        assert await first.processor.drain()  # a clean stop: the signup's offset committed

    asyncio.run(stop_after_the_signup())
    _, customer, _ = keys()
    waiting = partitioner_of(SETTINGS)(customer)
    second = MemoryWorker(SETTINGS, playbook, first.broker)
    for partition, stored in first.customers.data.items():
        second.customers.data[partition].update(stored)
    for event in (purchase, wishlist, browse):
        publish(second, event)

    async def start_over() -> None:
        await second.start()
        second.processor.partitions.rebuild_timers()
        assert second.processor.partitions.runtime_of(waiting).merger.horizon is not None
        await second.run()
        await second.tick()
        await second.run()

    asyncio.run(start_over())
    assert [campaign for _, campaign, _ in triggers(second)] == ["welcome", "order_thank_you"]
    [(_, record)] = [
        (key, raw)
        for key, raw in second.customers.data[waiting].items()
        if key == customer.encode()
    ]
    assert b'"awaiting"' not in record  # the answer came and was folded in


def test_the_offset_committed_never_passes_a_reply_held_behind_a_later_one() -> None:
    """The merge topic's queue is in key order: a reply read after another may sort
    before it. The offsets committed stop at the lowest offset held, not at the first
    queued, or a crash would lose the one read first (found by the crash test: a claim
    never answered, its partitions waiting ``LIFECYCLE_MAX_IDLE``)."""
    worker = MemoryWorker.of(SETTINGS, parse_playbook(WISHLIST))
    partitions = worker.processor.partitions
    merge = SETTINGS.topic("merge")
    runtime = partitions.runtime_of(0)
    late = Claim(anonymous_id="anon-9", customer_id="c9", at=datetime(2026, 3, 2, tzinfo=UTC),
                 cause="s9")  # fmt: skip
    early = Claim(anonymous_id="anon-8", customer_id="c8", at=datetime(2026, 3, 1, tzinfo=UTC),
                  cause="s8")  # fmt: skip
    runtime.merger.expect((datetime(2026, 2, 1, tzinfo=UTC), 10, "earlier\x1fanon-0"))
    for offset, claim in ((10, late), (11, early)):
        message = Message(merge, 0, offset, b"k", encode_model(claim), 0.0)
        runtime.offer(merge, FakeEvent(message), claim)  # type: ignore[arg-type]
    assert [item for item, _ in runtime.merger.queued(merge)] == [early, late]
    assert partitions.first_held(TP(merge, 0)) == 10

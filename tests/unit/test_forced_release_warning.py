"""The merge's safety valves, which release messages without waiting for a topic.

Past its bound, the worker's warning is the only sign that a replay's outputs may
differ, so it must name what ops need and not flood the log. Past
``LIFECYCLE_MAX_IDLE``, a partition releases without a topic whose records have not
reached the worker (a topic that stalls), and goes on waiting for one whose records
have and are only queued behind other messages, so the order stays the backtest's (a
worker replaying a large backlog queues its own merge messages behind it)."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

import pytest
from faust.types import TP

from lifecycle.backtest import Backtest
from lifecycle.ordering import EventOrder, PartitionMerger
from lifecycle.playbook import default_playbook
from lifecycle.state import decode_record
from schemas.codec import dumps
from streams.settings import Settings
from tests.fakes import Event, MemoryWorker

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def at(minutes: int) -> EventOrder:
    return (T0 + timedelta(minutes=minutes), 0, f"cust-{minutes}")


class Clock:
    def __init__(self) -> None:
        self.now = 5.0  # soon after boot: the first warning must still be said

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr("agents.partitions.time.monotonic", clock)
    return clock


def overflow(merger: PartitionMerger[str], start: int, count: int) -> None:
    """Queue ``count`` browses past the bound while signup still blocks, and release them."""
    for i in range(start, start + count):
        merger.push("browse", at(i), f"cust-{i}")
    list(merger.pop_ready(lambda _topic: False))


def blocked(topic: str) -> bool:
    """Whether ``topic`` is caught up: signup is not, so it blocks the merge."""
    return topic == "browse"


def test_the_warning_names_partition_count_and_topic_at_most_every_ten_seconds(
    clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    partitions = MemoryWorker.of(Settings(), default_playbook()).processor.partitions
    merger: PartitionMerger[str] = PartitionMerger(["browse", "signup"], max_buffered=2)
    other: PartitionMerger[str] = PartitionMerger(["browse", "signup"], max_buffered=2)
    caplog.set_level(logging.WARNING, logger="agents.partitions")

    overflow(merger, 0, 5)
    partitions.warn_forced(3, merger, blocked)
    clock.now += 5
    overflow(merger, 10, 4)
    partitions.warn_forced(3, merger, blocked)  # too soon: counted, not said
    overflow(other, 0, 3)
    partitions.warn_forced(4, other, blocked)  # another partition has its own clock
    clock.now += 6
    partitions.warn_forced(3, merger, blocked)

    said = [r.getMessage() for r in caplog.records]
    assert said == [
        "partition 3: the merge held over 2 messages; 3 released without waiting "
        "for signup, so their order may differ from a replay's",
        "partition 4: the merge held over 2 messages; 1 released without waiting "
        "for signup, so their order may differ from a replay's",
        "partition 3: the merge held over 2 messages; 4 released without waiting "
        "for signup, so their order may differ from a replay's",
    ]
    assert (merger.forced, other.forced) == (0, 0)  # each count starts again once said
    assert not any("cust-" in line for line in said)  # no customer id in the log


SIGNUP = {"type": "signup", "event_id": "s1", "occurred_at": "2026-03-01T10:00:00Z",
          "customer_id": "c1", "email": "c1@example.com"}  # fmt: skip
BROWSE = {"type": "browse", "event_id": "b1", "occurred_at": "2026-03-01T10:05:00Z",
          "customer_id": "c1", "product_id": "teapot"}  # fmt: skip


def stages(outputs: list[tuple[bytes | None, dict[str, object]]]) -> list[object]:
    return [value["to_stage"] for _, value in outputs]


def backtest_stages() -> list[object]:
    lines = [dumps(SIGNUP), dumps(BROWSE)]
    outputs = Backtest(default_playbook()).run(lines)
    return [o.value.to_stage for o in outputs if o.topic == "transitions"]  # type: ignore[union-attr]


def run(clock: Clock, *, on_its_way: bool) -> tuple[int, list[object]]:
    """The browse handed over while the signup, published before it, is not: past the
    wait, what the merge still holds; then, every message handed over, the stages."""
    settings = Settings(partitions=1, batch_linger=0.0)
    worker = MemoryWorker.of(settings, default_playbook())
    signup_tp, browse_tp = TP(settings.topic("signup"), 0), TP(settings.topic("browse"), 0)
    at = datetime(2026, 3, 1, 10, 10, tzinfo=UTC).timestamp()  # when the broker took them
    worker.broker.append(signup_tp.topic, b"c1", dumps(SIGNUP), timestamp=at)
    browse = worker.broker.append(browse_tp.topic, b"c1", dumps(BROWSE), timestamp=at)

    async def scenario() -> int:
        await worker.start()
        worker.consumer.position[browse_tp] = 1
        if on_its_way:
            worker.consumer.fetched_ahead.add(signup_tp)
        await worker.processor.step(Event(browse), worker.buffered)  # type: ignore[arg-type]
        partitions = worker.processor.partitions
        merger = partitions.runtime_of(0).merger
        assert merger.buffered == 1  # the browse waits for the signup topic
        clock.now += settings.max_idle + 1
        await partitions.release(0)
        held = merger.buffered
        worker.consumer.fetched_ahead.clear()
        await worker.run()
        return held

    held = asyncio.run(scenario())
    return held, stages(worker.broker.values(settings.topic("transitions")))


@pytest.mark.parametrize("on_its_way", [True, False])
def test_past_max_idle_a_partition_waits_only_for_records_already_in_the_worker(
    clock: Clock, caplog: pytest.LogCaptureFixture, on_its_way: bool
) -> None:
    """On its way: the signup, fetched before the browse, is still applied first. Never
    reached the worker: the valve releases the browse alone and says so."""
    caplog.set_level(logging.WARNING, logger="agents.partitions")
    held, stages = run(clock, on_its_way=on_its_way)
    said = [r.getMessage() for r in caplog.records if "releasing without it" in r.getMessage()]
    in_order = backtest_stages()
    assert in_order == ["lead"]
    if on_its_way:
        assert (held, said, stages) == (1, [], in_order)
    else:
        signup = Settings().topic("signup")
        assert (held, said) == (0, [f"partition 0: waited 30s for {signup}; releasing without it"])
        assert stages != in_order  # the browse went first: why the wait matters


def test_past_max_idle_only_the_stalled_topic_is_given_up(
    clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    """The signup topic stalls (its record never reaches the worker); the browse topic
    has one record held and the next one published but not yet handed over. Past the
    wait the merge gives up the signup topic alone: once the held browse is applied it
    waits for the next one, which comes before the purchase, as in event-time order.
    Releasing without every topic applied the purchase first (the crash tests' worry:
    a takeover's merge topic stalled past the wait on a slow machine)."""
    caplog.set_level(logging.WARNING, logger="agents.partitions")
    settings = Settings(partitions=1, batch_linger=0.0)
    worker = MemoryWorker.of(settings, default_playbook())
    base = {"customer_id": "c1", "product_id": "teapot"}
    lines = [
        ("signup", {**SIGNUP, "event_id": "s1", "occurred_at": "2026-03-01T10:00:00Z"}),
        ("browse", {"type": "browse", "event_id": "b1",
                    "occurred_at": "2026-03-01T10:05:00Z", **base}),
        ("browse", {"type": "browse", "event_id": "b2",
                    "occurred_at": "2026-03-01T10:15:00Z", **base}),
        ("purchase", {"type": "purchase", "event_id": "p1", "occurred_at": "2026-03-01T10:20:00Z",
                      "customer_id": "c1", "order_id": "o1", "total": "10.00", "currency": "EUR",
                      "items": [{"product_id": "teapot", "quantity": 1, "unit_price": "10.00"}]}),
    ]  # fmt: skip
    at = datetime(2026, 3, 1, 10, 30, tzinfo=UTC).timestamp()
    appended = {
        body["event_id"]: worker.broker.append(
            settings.topic(topic), b"c1", dumps(body), timestamp=at
        )
        for topic, body in lines
    }

    async def scenario() -> list[str]:
        await worker.start()
        for event_id in ("b1", "p1"):  # the signup and the second browse not handed over yet
            message = appended[event_id]
            worker.consumer.position[message.tp] = message.offset + 1
            await worker.processor.step(Event(message), worker.buffered)  # type: ignore[arg-type]
        partitions = worker.processor.partitions
        assert partitions.runtime_of(0).merger.buffered == 2
        clock.now += settings.max_idle + 1
        await partitions.release(0)
        worker.consumer.position.update({appended["s1"].tp: 0, appended["b2"].tp: 1})
        await worker.run()
        assert await worker.processor.drain()  # the batch made durable: its records written
        record = worker.customers.get(b"c1")
        assert record is not None
        return list(decode_record(record).recent_event_ids)

    applied = asyncio.run(scenario())
    signup = settings.topic("signup")
    said = [r.getMessage() for r in caplog.records]
    assert said == [f"partition 0: waited 30s for {signup}; releasing without it"]
    assert applied == ["b1", "s1", "b2", "p1"]  # the stalled signup late; b2 before p1

"""A sealed batch settles while the agent handles the next one: the next batch reads
its records as pending ones, and nothing of it is in the store, nor any offset
committed, before the broker has acknowledged its outputs."""

from __future__ import annotations

import asyncio
import gc
from datetime import datetime
from typing import Any

import pytest
from faust.types import TP

import lifecycle.runtime
from agents.metrics import BatchCounts
from lifecycle.core import Outcome
from lifecycle.playbook import default_playbook
from lifecycle.state import CustomerState, decode_record
from schemas.codec import dumps, encode_model
from schemas.inbound import Rejection, parse_event
from schemas.records import Stage
from streams.checkpoint import LOGGED
from streams.producer import route
from streams.settings import Settings
from tests.fakes import Event, MemoryWorker

SETTINGS = Settings(batch_linger=0.0, output_hold=0.0)

SIGNUP = {
    "event_id": "s1",
    "type": "signup",
    "occurred_at": "2026-03-01T10:00:00Z",
    "customer_id": "c1",
    "email": "c1@mail.example",
    "marketing_consent": True,
}
PURCHASE = {
    "event_id": "p1",
    "type": "purchase",
    "occurred_at": "2026-03-01T10:05:00Z",
    "customer_id": "c1",
    "order_id": "o1",
    "total": "30.00",
    "currency": "EUR",
}


class HeldAcks:
    """The producer's acknowledgements, held until ``release``: the broker is slow,
    then answers again."""

    def __init__(self, worker: MemoryWorker) -> None:
        self.waiting: list[tuple[asyncio.Future[Any], Any]] = []
        self.released = False
        self.send_batch = worker.producer.send_batch
        worker.producer.send_batch = self.held  # type: ignore[method-assign]

    async def held(self, batch: Any, topic: str, *, partition: int) -> asyncio.Future[Any]:
        sent: asyncio.Future[Any] = await self.send_batch(batch, topic, partition=partition)
        if self.released:
            return sent
        future = asyncio.get_running_loop().create_future()
        self.waiting.append((future, sent.result()))
        return future

    def release(self) -> None:
        self.released = True
        for future, answer in self.waiting:
            future.set_result(answer)
        self.waiting.clear()


def publish(worker: MemoryWorker, body: dict[str, Any]) -> None:
    topic, key = route(body, SETTINGS)
    at = datetime.fromisoformat(body["occurred_at"]).timestamp()
    worker.broker.append(topic, key, dumps(body), timestamp=at)


async def step_signup(worker: MemoryWorker) -> None:
    """Start the worker and hand it the signup: its batch is sealed and on its way."""
    await worker.start()
    publish(worker, SIGNUP)
    message = worker.consumer.next()
    assert message is not None
    await worker.processor.step(Event(message), worker.buffered)  # type: ignore[arg-type]


def test_the_next_batch_reads_a_settling_batch_and_it_is_written_once_acknowledged() -> None:
    worker = MemoryWorker.of(SETTINGS, default_playbook())
    processor = worker.processor
    acks = HeldAcks(worker)

    async def run() -> None:
        await step_signup(worker)
        # Sealed and on its way: its welcome left, unacknowledged; nothing is stored.
        assert processor.settling is not None
        assert acks.waiting
        await asyncio.sleep(0)
        assert not processor.settling.done()
        assert worker.customers.data == {}
        assert worker.broker.committed == {}

        publish(worker, PURCHASE)
        message = worker.consumer.next()
        assert message is not None
        # The stream ran dry, but the batch before has not settled: the step does not
        # wait for it (the messages behind it would), and its batch stays open.
        await processor.step(Event(message), worker.buffered)  # type: ignore[arg-type]
        # The purchase was applied to the sealed signup's record, not to a new customer.
        partition, pending = processor.checkpoint.batch.records[b"c1"]
        assert pending is not None
        assert pending.stage is Stage.FIRST_TIME_BUYER
        assert processor.checkpoint.pending == 1
        assert not processor.settling.done()
        assert worker.customers.data == {}
        assert worker.broker.committed == {}
        assert processor.revisit_wanted.is_set()  # to seal it once the settle is done
        await processor.revisit_once()
        assert processor.checkpoint.pending == 1  # not yet: still settling

        acks.release()
        await processor.settled()
        await processor.revisit_once()  # sealed with no message to come
        assert processor.checkpoint.idle
        assert await processor.drain()  # what is durable, offsets committed at once

        stored = decode_record(worker.customers.data[partition][b"c1"])
        assert stored.stage is Stage.FIRST_TIME_BUYER
        assert set(stored.recent_event_ids) >= {"s1", "p1"}
        ends = {
            TP(tp.topic, tp.partition): len(log)
            for tp, log in worker.broker.logs.items()
            if tp.topic in SETTINGS.event_topics and log
        }
        assert {tp: o for tp, o in worker.broker.committed.items() if o} == ends

    asyncio.run(run())


def test_a_stop_waits_for_the_settling_batch() -> None:
    worker = MemoryWorker.of(SETTINGS, default_playbook())
    processor = worker.processor
    acks = HeldAcks(worker)

    async def run() -> bool:
        await worker.start()
        publish(worker, SIGNUP)
        await worker.run()
        assert processor.settling is not None
        assert worker.customers.data == {}
        draining = asyncio.ensure_future(processor.drain())
        for _ in range(5):
            await asyncio.sleep(0)
        assert not draining.done()  # the batch on its way is not given up
        acks.release()
        return await draining

    assert asyncio.run(run())
    assert any(b"c1" in stored for stored in worker.customers.data.values())
    assert worker.broker.committed


def test_a_batch_keeps_what_its_outcomes_count_and_not_the_outcomes() -> None:
    """Until it is durable a batch holds its counts (``BatchCounts``): no outcome, so
    neither its lists nor its output models stay alive for the garbage collector."""
    worker = MemoryWorker.of(SETTINGS, default_playbook())
    processor = worker.processor
    acks = HeldAcks(worker)

    async def run() -> None:
        await step_signup(worker)
        sealed = processor.checkpoint.sealed
        assert sealed is not None
        tally = sealed.tally
        assert isinstance(tally, BatchCounts)
        assert dict(tally.moves) == {(None, "lead"): 1}
        metrics = processor.metrics
        assert tally.due[metrics.transitions, ("none", "lead")] == 1
        assert tally.due[metrics.triggers, ("welcome", "emitted", "")] == 1
        assert len(tally.caused) == 1  # the welcome's latency, from its event's arrival
        gc.collect()
        assert not [o for o in gc.get_objects() if isinstance(o, Outcome)]
        assert sealed.records[b"c1"][1] is not None
        exposition = metrics.exposition().decode()
        assert 'lifecycle_customers{stage="lead"}' not in exposition  # not durable yet
        acks.release()
        await processor.settled()

    asyncio.run(run())
    exposition = processor.metrics.exposition().decode()
    assert 'lifecycle_customers{stage="lead"} 1.0' in exposition
    assert 'lifecycle_triggers_total{campaign="welcome",outcome="emitted",reason=""} 1.0' in (
        exposition
    )
    assert 'lifecycle_event_to_trigger_seconds_count{cause="event"} 1.0' in exposition


def test_a_rebalance_makes_the_open_batch_durable_before_the_partitions_go() -> None:
    """Its outputs may have left already: read again after the rebalance, they would
    leave twice."""
    worker = MemoryWorker.of(SETTINGS, default_playbook())
    processor = worker.processor
    acks = HeldAcks(worker)

    async def run() -> None:
        await step_signup(worker)
        publish(worker, PURCHASE)
        message = worker.consumer.next()
        assert message is not None
        await processor.step(Event(message), worker.buffered)  # type: ignore[arg-type]
        assert processor.checkpoint.pending == 1  # the purchase's batch is open
        acks.release()
        await processor.on_revoked()

    asyncio.run(run())
    [stored] = [s for s in worker.customers.data.values() if b"c1" in s]
    assert decode_record(stored[b"c1"]).stage is Stage.FIRST_TIME_BUYER
    committed = {tp.topic: o for tp, o in worker.broker.committed.items() if o}
    assert committed[route(PURCHASE, SETTINGS)[0]] == 1


@pytest.mark.parametrize("logged", [LOGGED, 1])
@pytest.mark.parametrize("before", ["table", "sealed"])
def test_an_input_that_fails_halfway_on_the_batchs_own_record_is_undone(
    before: str, logged: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The open batch's record is changed in place, not copied: when the core fails on
    it after changing it, the record is built again from the one before the batch (the
    table's, or the sealed batch's while that settles) and the batch's other inputs,
    and the record written is the one without the failed input. Past ``LOGGED`` inputs
    kept, the batch's records are copied before each change, and a failure drops the
    copy."""
    monkeypatch.setattr("streams.checkpoint.LOGGED", logged)
    worker = MemoryWorker.of(SETTINGS, default_playbook())
    processor = worker.processor
    acks = HeldAcks(worker)
    real = lifecycle.runtime.apply
    in_place: dict[str, bool] = {}

    def failing(state: CustomerState | None, cause: Any, *args: Any, **kwargs: Any) -> Outcome:
        outcome = real(state, cause, *args, **kwargs)  # changes ``state`` when in place
        event_id = getattr(cause, "event_id", "")
        in_place.setdefault(event_id, kwargs["in_place"])
        if event_id == "b2":
            raise ZeroDivisionError
        return outcome

    browses = [
        {"event_id": f"b{n}", "type": "browse", "occurred_at": f"2026-03-01T10:0{n}:00Z",
         "customer_id": "c1", "product_id": product}
        for n, product in ((1, "teapot"), (2, "kettle"), (3, "cup"))
    ]  # fmt: skip

    async def run() -> None:
        await step_signup(worker)
        if before == "table":
            acks.release()
            await processor.settled()
            assert worker.customers.data
        monkeypatch.setattr("lifecycle.runtime.apply", failing)
        for body in browses:
            publish(worker, body)
        await worker.run()  # b1 to b3 in one batch: the stream holds all three
        acks.release()
        await processor.settled()
        await processor.revisit_once()
        assert processor.checkpoint.idle
        assert await processor.drain()

    asyncio.run(run())
    kept = logged > 1  # with LOGGED 1, b1 is the one input this batch keeps
    assert in_place == {"b1": before == "table", "b2": kept, "b3": kept}
    letters = [letter for _, letter in worker.broker.values(SETTINGS.topic("deadletter"))]
    assert [(letter["reason"], letter["offset"]) for letter in letters] == [("processing_error", 1)]
    expected = None
    for body in [SIGNUP, browses[0], browses[2]]:
        event = parse_event(dumps(body))
        assert not isinstance(event, Rejection)
        expected = real(expected, event, processor.playbook).state
    assert expected is not None
    (stored,) = [data[b"c1"] for data in worker.customers.data.values() if b"c1" in data]
    assert stored == encode_model(expected)
    assert "b2" not in decode_record(stored).recent_event_ids

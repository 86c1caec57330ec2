"""A merge lets a message go ahead of an empty topic only on that topic's highwater
read after the message was appended: a request sent after the answer that brought it
(``Partitions.caught_up``). The same answer does not do, as the broker reads its
partitions one after another; and once a later answer comes, the agent's ``revisit``
releases the message without waiting for the partition's next message."""

from __future__ import annotations

import asyncio

from faust.types import TP

from agents.lifecycle import LifecycleProcessor
from lifecycle.playbook import default_playbook
from streams.producer import key_partition, route
from streams.settings import Settings
from tests.fakes import MemoryWorker
from tests.unit.test_pipelined_commit import PURCHASE, SIGNUP, publish

SETTINGS = Settings(batch_linger=0.0)
TRANSITIONS = SETTINGS.topic("transitions")


def lagging(worker: MemoryWorker) -> None:
    """Each fetch's request leaves half a poll before its answer comes (the fake's polls
    are otherwise instant snapshots of every partition)."""
    consumer = worker.consumer

    def fetched(tp: TP) -> tuple[int, float] | None:
        return len(consumer.broker.logs[tp]), consumer.polls - 0.5

    consumer.fetched = fetched  # type: ignore[method-assign]


def transitions(worker: MemoryWorker) -> list[str]:
    return [value["to_stage"] for _, value in worker.broker.values(SETTINGS.topic("transitions"))]


async def hand_over(worker: MemoryWorker) -> None:
    """The next message, as the stream hands it to the agent."""
    message = worker.consumer.next()
    assert message is not None
    await worker.hand_over(message)


async def revisit(processor: LifecycleProcessor) -> None:
    """A revisit once the batch before has settled: the open batch is sealed then."""
    await processor.settled()
    await processor.revisit_once()
    await processor.settled()


def test_a_message_waits_for_an_answer_sent_after_its_own_then_goes_on_a_revisit() -> None:
    worker = MemoryWorker.of(SETTINGS, default_playbook())
    lagging(worker)
    processor = worker.processor
    partitions = processor.partitions

    async def run() -> None:
        await worker.start()
        publish(worker, SIGNUP)
        await hand_over(worker)
        # every other topic's highwater was read by a request sent before the signup's
        # answer came: held, and awaiting a later answer
        assert transitions(worker) == []
        (partition,) = partitions.awaiting
        assert processor.revisit_wanted.is_set()
        assert worker.consumer.asked == []
        await processor.revisit_once()  # no answer came since: still held
        assert transitions(worker) == []
        # so the revisit asks for the ends of the partition's topics (ListOffsets)
        assert worker.consumer.asked == [sorted(TP(t, partition) for t in partitions.topics)]
        worker.consumer.polls += 1  # a later answer for every partition
        await revisit(processor)
        assert transitions(worker) == ["lead"]
        assert len(worker.consumer.asked) == 1  # released: nothing more to ask
        assert partitions.awaiting == {}
        assert processor.checkpoint.idle
        assert partitions.runtimes[partition].merger.buffered == 0

    asyncio.run(run())


def test_a_revisit_releases_in_the_merges_order() -> None:
    """A purchase read before the signup that came first waits for the signup (its
    topic shows a record not read yet), then both wait for a later answer, and go in
    the order they happened."""
    worker = MemoryWorker.of(SETTINGS, default_playbook())
    lagging(worker)
    processor = worker.processor

    async def run() -> None:
        await worker.start()
        publish(worker, PURCHASE)  # published first, happened after the signup
        publish(worker, SIGNUP)
        await hand_over(worker)  # the purchase
        await hand_over(worker)  # the signup
        assert transitions(worker) == []
        worker.consumer.polls += 1
        await revisit(processor)
        assert transitions(worker) == ["lead", "first_time_buyer"]

    asyncio.run(run())


def test_the_same_instant_answer_still_counts_in_memory() -> None:
    """The fake's polls are snapshots: a topic's highwater from the poll that brought a
    message counts, so the in-memory worker releases at once, as before."""
    worker = MemoryWorker.of(SETTINGS, default_playbook())

    async def run() -> None:
        await worker.start()
        publish(worker, SIGNUP)
        await hand_over(worker)
        await worker.processor.settled()
        assert transitions(worker) == ["lead"]
        assert worker.processor.partitions.awaiting == {}

    asyncio.run(run())


def test_a_message_of_another_partition_releases_one_awaiting_an_answer() -> None:
    """The answer that brings a message of another partition is a later answer: the
    awaiting partition goes on in that message's step, without a revisit, reading its
    own partition's records (the tables read the current event's partition)."""
    worker = MemoryWorker.of(SETTINGS, default_playbook())
    lagging(worker)
    processor, partitions = worker.processor, worker.processor.partitions
    first = key_partition(route(SIGNUP, SETTINGS)[1], SETTINGS.partitions)
    other = next(
        f"c{n}"
        for n in range(2, 100)
        if key_partition(f"c{n}".encode(), SETTINGS.partitions) != first
    )

    async def run() -> None:
        await worker.start()
        publish(worker, SIGNUP)
        await hand_over(worker)
        worker.consumer.polls += 1
        await revisit(processor)
        assert transitions(worker) == ["lead"]  # c1's record is in the store now
        publish(worker, PURCHASE)
        await hand_over(worker)
        assert list(partitions.awaiting) == [first]
        publish(worker, {**SIGNUP, "event_id": "s2", "customer_id": other, "email": "o@x.example"})
        await hand_over(worker)  # the other customer's signup, in a later answer
        await processor.settled()
        moves = [(v["from_stage"], v["to_stage"]) for _, v in worker.broker.values(TRANSITIONS)]
        assert moves == [(None, "lead"), ("lead", "first_time_buyer")]  # c1's, from its record
        assert list(partitions.awaiting) == [key_partition(other.encode(), SETTINGS.partitions)]

    asyncio.run(run())

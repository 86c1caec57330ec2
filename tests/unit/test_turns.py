"""Long work gives the event loop turns (``streams.turns``): a merge releasing a large
backlog at once (``Outcomes.hand_on``), a batch's store writes and its latencies, so
/metrics, the ticks, fetches and a stop signal are served meanwhile; and a stop that
comes during a release ends it at a message, leaving the rest held and uncommitted,
for the next start to apply once."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import TypeVar

from faust.types import TP

from lifecycle.backtest import Backtest
from lifecycle.playbook import default_playbook
from schemas.codec import dumps
from streams.settings import Settings
from streams.turns import SLICE, Turns
from tests.fakes import MemoryWorker
from tests.unit.test_fresh_answers import hand_over, lagging
from tests.unit.test_pipelined_commit import SIGNUP, publish

SETTINGS = Settings(partitions=1, batch_linger=0.0, output_hold=0.0)
TRANSITIONS = SETTINGS.topic("transitions")
COUNT = 3 * SLICE + 10
T = TypeVar("T")


def signups() -> list[dict[str, object]]:
    """One signup per customer, a minute apart."""
    return [
        {
            **SIGNUP,
            "event_id": f"s{n}",
            "customer_id": f"c{n}",
            "email": f"c{n}@mail.example",
            "occurred_at": f"2026-03-01T{10 + n // 60:02d}:{n % 60:02d}:00Z",
        }
        for n in range(COUNT)
    ]


async def pile_up(worker: MemoryWorker) -> None:
    """Every signup handed over and held, each awaiting a later fetch answer; then that
    answer comes: the next revisit may release all of them."""
    await worker.start()
    for body in signups():
        publish(worker, body)
    for _ in range(COUNT):
        await hand_over(worker)
    await worker.processor.settled()
    assert worker.processor.partitions.runtime_of(0).merger.buffered == COUNT
    worker.consumer.polls += 1


def transition_ids(worker: MemoryWorker) -> Counter[str]:
    return Counter(value["transition_id"] for _, value in worker.broker.values(TRANSITIONS))


async def sampled(work: Awaitable[None], probe: Callable[[], T]) -> list[T]:
    """``probe()`` at each turn the event loop gives other tasks while ``work`` runs."""
    seen: list[T] = []

    async def watch() -> None:
        while True:
            seen.append(probe())
            await asyncio.sleep(0)

    watcher = asyncio.ensure_future(watch())
    await asyncio.sleep(0)
    try:
        await work
    finally:
        watcher.cancel()
    return seen


def turns_over(sizes: list[int], every: int = SLICE) -> tuple[int, list[int]]:
    """Chunks of ``sizes`` passed to ``Turns(every)`` one by one: how many items were
    handled, and how many another task saw handled at each of its turns."""
    handled: list[int] = []

    async def work() -> None:
        turns = Turns(every)
        for size in sizes:
            handled.append(size)
            await turns.passed(size)

    seen = asyncio.run(sampled(work(), lambda: sum(handled)))
    return sum(handled), sorted(set(seen))


def test_turns_give_the_loop_a_turn_after_every_slice() -> None:
    assert turns_over([1] * (2 * SLICE + 1)) == (2 * SLICE + 1, [0, SLICE, 2 * SLICE])


def test_turns_count_a_chunk_as_its_items() -> None:
    """A chunk passes as many items as it holds: a turn once ``every`` items are handled
    since the last turn, however they were chunked."""
    assert turns_over([4, 4, 4, 9, 1, 3, 10], every=10) == (35, [0, 12, 22, 35])


def test_a_large_release_gives_the_loop_turns() -> None:
    worker = MemoryWorker.of(SETTINGS, default_playbook())
    lagging(worker)
    outcomes = worker.processor.outcomes

    async def run() -> list[int]:
        await pile_up(worker)
        seen = await sampled(worker.processor.revisit_once(), lambda: outcomes.applied)
        assert outcomes.applied == COUNT
        assert worker.processor.partitions.runtime_of(0).merger.buffered == 0
        return seen

    seen = asyncio.run(run())
    midway = sorted({n for n in seen if 0 < n < COUNT})
    assert midway == [SLICE, 2 * SLICE, 3 * SLICE]


def test_a_stop_during_a_release_leaves_the_rest_for_the_next_start() -> None:
    """The stop comes at the first turn: the release ends at the next message, what it
    applied is made durable, the offsets committed stop before the first message still
    held, and a worker started on the same broker and store applies the rest: every
    transition exactly once, the backtest's."""
    worker = MemoryWorker.of(SETTINGS, default_playbook())
    lagging(worker)
    processor = worker.processor
    signup_tp = TP(SETTINGS.topic("signup"), 0)

    async def stop_at_first_turn() -> None:
        assert processor.outcomes.applied > 0  # first run at the release's first turn
        assert await processor.drain()

    async def first() -> None:
        await pile_up(worker)
        stopper = asyncio.ensure_future(stop_at_first_turn())
        async with processor.busy:  # as ``revisit`` runs it: the stop waits for it
            await processor.revisit_once()
        await stopper

    asyncio.run(first())
    applied = SLICE + 1  # the message after the turn is applied when the stop is seen
    assert processor.outcomes.applied == applied
    assert processor.partitions.runtime_of(0).merger.buffered == COUNT - applied
    assert worker.broker.committed[signup_tp] == applied
    assert sum(transition_ids(worker).values()) == applied

    restarted = MemoryWorker(SETTINGS, default_playbook(), worker.broker)
    restarted.customers.data = worker.customers.data  # as the changelog restores it

    async def second() -> None:
        await restarted.start()
        await restarted.run()
        assert await restarted.processor.drain()

    asyncio.run(second())
    assert restarted.processor.outcomes.applied == COUNT - applied
    expected = Counter(
        output.value.transition_id  # type: ignore[union-attr]
        for output in Backtest(default_playbook()).run([dumps(body) for body in signups()])
        if output.topic == "transitions"
    )
    assert transition_ids(restarted) == expected


def test_a_large_batch_settles_in_turns() -> None:
    """The batch of every signup: its store writes, then its latencies, each give the
    loop turns; its counts, summed as its outcomes were handed on, are counted at once
    once every record is written; every record is written and every signup counted."""
    worker = MemoryWorker.of(SETTINGS, default_playbook())
    lagging(worker)
    processor = worker.processor
    registry = processor.metrics.registry

    def leads() -> float:
        labels = {"from_stage": "none", "to_stage": "lead"}
        return registry.get_sample_value("lifecycle_transitions_total", labels) or 0.0

    def latencies() -> float:
        labels = {"cause": "event"}
        return registry.get_sample_value("lifecycle_event_to_trigger_seconds_count", labels) or 0.0

    async def settle() -> None:
        async with processor.busy:
            await processor.revisit_once()  # every signup applied, and the batch sealed
        await processor.settled()

    async def run() -> list[tuple[int, float, float]]:
        await pile_up(worker)
        return await sampled(settle(), probe)

    def probe() -> tuple[int, float, float]:
        return len(worker.customers.data[0]), leads(), latencies()

    seen = asyncio.run(run())
    stored = sorted({n for n, _, _ in seen if 0 < n < COUNT})
    assert stored == [SLICE, 2 * SLICE, 3 * SLICE]
    assert {c for n, c, _ in seen if n < COUNT} == {0}  # nothing counted before it is durable
    assert {c for _, c, _ in seen} <= {0, COUNT}  # and then all of it at once
    observed = sorted({int(x) for _, _, x in seen if 0 < x < COUNT})
    assert observed == [SLICE, 2 * SLICE, 3 * SLICE]
    assert len(worker.customers.data[0]) == COUNT
    assert leads() == COUNT
    assert latencies() == COUNT  # a welcome per signup

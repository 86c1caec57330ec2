"""What a worker holds back from fetching, and what the consumer's thread is asked to do."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka.consumer.fetcher import Fetcher
from aiokafka.structs import TopicPartition
from faust.exceptions import ConsumerNotStarted
from faust.types import TP

from streams.app import create_app
from streams.faust_compat import FETCH_WAIT_MS, FaustConsumer, FetchAnswers
from streams.fetching import FetchHold
from streams.kafka import consumer as consumer_of
from streams.settings import Settings

CART = TP("shop.cart", 1)
BROWSE = TP("shop.browse", 1)


class Client:
    """aiokafka's pause API over a fixed assignment; refuses an unassigned partition as it does."""

    def __init__(self, *assigned: TP) -> None:
        self.assigned = {TopicPartition(tp.topic, tp.partition) for tp in assigned}
        self.paused_now: set[TopicPartition] = set()

    def assignment(self) -> set[TopicPartition]:
        return set(self.assigned)

    def paused(self) -> set[TopicPartition]:
        return set(self.paused_now)

    def pause(self, *tps: TopicPartition) -> None:
        assert all(isinstance(tp, TopicPartition) and tp in self.assigned for tp in tps)
        self.paused_now.update(tps)

    def resume(self, *tps: TopicPartition) -> None:
        self.paused_now.difference_update(tps)


class Thread:
    """Faust's consumer thread: calls wait in a queue until the test runs them."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.queued: list[tuple[Callable[..., None], tuple[Any, ...], asyncio.Future[None]]] = []
        self.stopped = False

    def assignment(self) -> set[TP]:
        return {TP(tp.topic, tp.partition) for tp in self.client.assigned}

    def _ensure_consumer(self) -> Client:
        if self.stopped:
            msg = "Consumer thread not yet started"
            raise ConsumerNotStarted(msg)  # as Faust's does
        return self.client

    async def call_thread(self, fun: Callable[..., None], *args: Any) -> None:
        done = asyncio.get_running_loop().create_future()
        self.queued.append((fun, args, done))
        await done

    async def run(self, order: Callable[[list[Any]], list[Any]] = list) -> None:
        await asyncio.sleep(0)  # let the hold's calls reach the queue
        calls, self.queued = order(self.queued), []
        for fun, args, done in calls:
            try:
                fun(*args)
            except Exception as exc:  # the thread hands the caller the exception
                done.set_exception(exc)
            else:
                done.set_result(None)
        for _ in range(3):  # the answer reaches the call, its task, then the hold
            await asyncio.sleep(0)


@pytest.fixture
def thread() -> Thread:
    return Thread(Client(CART, BROWSE))


@pytest.fixture
def hold(thread: Thread) -> FetchHold:
    app = SimpleNamespace(consumer=SimpleNamespace(_thread=thread, quiet=frozenset()))
    return FetchHold(FaustConsumer(app))


async def test_a_held_partition_is_paused_in_aiokafka_and_resumed_on_release(
    thread: Thread, hold: FetchHold
) -> None:
    assert hold.hold(CART) is True
    assert hold.hold(TopicPartition(*CART)) is False  # the same partition, as aiokafka names it
    await thread.run()
    assert thread.client.paused_now == {TopicPartition(*CART)}
    hold.release([CART, BROWSE])
    await thread.run()
    assert thread.client.paused_now == set()
    assert hold.held == set()
    assert hold.calls == set()


async def test_calls_that_overtake_each_other_leave_the_latest_wish(
    thread: Thread, hold: FetchHold
) -> None:
    """The thread runs queued calls as it can: a release run before its hold must
    not leave the partition paused for good (it would never be fetched again)."""
    hold.hold(CART)
    hold.release([CART])
    hold.hold(BROWSE)
    await thread.run(order=lambda calls: calls[::-1])
    assert thread.client.paused_now == {TopicPartition(*BROWSE)}


async def test_a_partition_no_longer_assigned_is_not_paused(
    thread: Thread, hold: FetchHold
) -> None:
    hold.hold(TP("shop.cart", 4))
    hold.hold(CART)
    await thread.run()
    assert thread.client.paused_now == {TopicPartition(*CART)}


async def test_a_failed_call_is_made_again_on_retry(thread: Thread, hold: FetchHold) -> None:
    hold.hold(CART)
    thread.stopped = True
    await thread.run()
    assert thread.client.paused_now == set()
    assert hold.failed
    thread.stopped = False
    hold.retry()
    await thread.run()
    assert thread.client.paused_now == {TopicPartition(*CART)}
    assert not hold.failed
    hold.retry()  # nothing failed since: no call
    assert not thread.queued


async def test_clear_resumes_everything(thread: Thread, hold: FetchHold) -> None:
    hold.hold(CART)
    hold.hold(BROWSE)
    await thread.run()
    hold.clear()
    await thread.run()
    assert thread.client.paused_now == set()
    assert hold.held == set()


async def test_a_stopped_consumer_fails_the_call_not_its_caller(
    thread: Thread, hold: FetchHold
) -> None:
    """A rebalance at shutdown clears the hold from Faust's revoke callback: a stopped
    consumer must not raise there, only fail the call (logged, retried)."""
    hold.hold(CART)
    await thread.run()
    thread.stopped = True
    hold.clear()
    await thread.run()
    assert hold.failed
    assert hold.held == set()


async def test_a_changelog_faust_pauses_is_not_fetched_by_aiokafka(tmp_path: Path) -> None:
    """Faust pauses a partition only in its own set of active partitions: aiokafka
    fetched a changelog partition the bulk read recovers from its start as soon as
    it was assigned, and kept what it fetched. Faust's consumer pauses a changelog in
    aiokafka as well, resumes it when Faust reads it, and the agent's holds keep
    working beside it."""
    topology = create_app(Settings(data_dir=tmp_path, topic_prefix="u."))
    changelog = TP(topology.customers.changelog_topic.get_topic_name(), 1)
    thread = Thread(Client(changelog, CART, BROWSE))
    consumer: Any = topology.app.consumer
    consumer._thread = thread  # noqa: SLF001 - Faust's consumer thread, stood in for
    consumer.pause_partitions([changelog, CART])  # as Faust does at each assignment
    await thread.run()
    assert thread.client.paused_now == {TopicPartition(*changelog)}  # CART: Faust's own pause
    hold = FetchHold(FaustConsumer(topology.app))
    hold.hold(BROWSE)
    await thread.run()
    assert thread.client.paused_now == {TopicPartition(*changelog), TopicPartition(*BROWSE)}
    consumer.resume_partitions([changelog])  # a recovery the bulk read left unfinished
    await thread.run()
    assert thread.client.paused_now == {TopicPartition(*BROWSE)}
    consumer.pause_partitions([changelog])  # Faust has read it
    hold.release([BROWSE])
    await thread.run()
    assert thread.client.paused_now == {TopicPartition(*changelog)}
    thread.client.paused_now.clear()  # a new assignment of the same partitions: unpaused
    consumer.pause_partitions([changelog, CART])  # as Faust does at each assignment
    await thread.run()
    assert thread.client.paused_now == {TopicPartition(*changelog)}


async def test_the_merge_reads_a_partitions_highwater_and_its_times_from_aiokafka() -> None:
    """``FaustConsumer.fetched`` and ``appended_by``, what the merge asks: the highwater
    of the last fetch answer with when its request left, and by when a record had been
    appended, kept by the wrapped client of a real aiokafka consumer's fetcher (wrapped
    once, at the first assignment); nothing before an answer."""
    client = consumer_of(Settings(broker="localhost:1"))  # never connects
    fetcher = client._fetcher = Fetcher(client._client, client._subscription)  # noqa: SLF001
    try:
        faust_consumer = SimpleNamespace(_thread=SimpleNamespace(_ensure_consumer=lambda: client))
        consumer = FaustConsumer(SimpleNamespace(consumer=faust_consumer))
        consumer.keep_answers()  # at each assignment
        answers = fetcher._client  # noqa: SLF001
        assert isinstance(answers, FetchAnswers)
        assert fetcher._fetch_max_wait_ms == FETCH_WAIT_MS  # noqa: SLF001
        assert consumer.fetched(CART) is None
        consumer.keep_answers()
        assert fetcher._client is answers  # noqa: SLF001
        tp = TopicPartition(*CART)
        answers.latest[tp], answers.rises[tp] = (42, 10.0, 10.25), deque([(42, 10.25)])
        assert consumer.fetched(CART) == (42, 10.0)
        assert consumer.appended_by(CART, 41) == 10.25
        assert consumer.fetched(BROWSE) is None
    finally:
        await fetcher.close()
        await client.stop()


async def test_an_ask_for_the_ends_still_on_its_way_at_an_assignment_is_cancelled() -> None:
    """``FaustConsumer.ask_ends`` asks on a client of its own, one ask at a time; a new
    assignment (``keep_answers``) cancels one still on its way rather than leave it
    pending, and the next round may ask again at once."""
    client = consumer_of(Settings(broker="localhost:1"))  # never connects
    client._fetcher = Fetcher(client._client, client._subscription)  # noqa: SLF001
    asked: list[list[TP]] = []
    never = asyncio.Event()

    async def ends(tps: list[TP]) -> dict[TP, int]:
        asked.append(tps)
        await never.wait()
        return {}

    try:
        faust_consumer = SimpleNamespace(_thread=SimpleNamespace(_ensure_consumer=lambda: client))
        consumer = FaustConsumer(SimpleNamespace(consumer=faust_consumer), ends)
        consumer.keep_answers()
        consumer.ask_ends([TP(*CART)])
        consumer.ask_ends([TP(*BROWSE)])  # one ask at a time: nothing asked
        await asyncio.sleep(0)
        first = consumer.asking
        assert first is not None
        assert asked == [[TP(*CART)]]
        consumer.keep_answers()
        await asyncio.sleep(0)
        assert first.cancelled()
        consumer.ask_ends([TP(*BROWSE)])
        await asyncio.sleep(0)
        assert asked == [[TP(*CART)], [TP(*BROWSE)]]
        consumer.keep_answers()
        await asyncio.sleep(0)
    finally:
        await client._fetcher.close()  # noqa: SLF001
        await client.stop()

"""When the consumer hands a message straight to the stream, and when it keeps Faust's way."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import faust
import pytest
from faust.types import TP

from streams.faust_compat import HandOffConsumer, lean_hand_off, subscription_lock

TOPIC = "shop.cart"
TP0 = TP(TOPIC, 0)


async def make_app(ordered: frozenset[str] = frozenset()) -> Any:
    """A real Faust app with the lean hand-off; nothing connects until a worker starts it."""
    application = faust.App(
        "handoff-test",
        broker="kafka://127.0.0.1:1",
        broker_credentials=None,
        stream_buffer_maxsize=10,
        web_enabled=False,
    )
    lean_hand_off(application, ordered)
    topic = application.topic(TOPIC, key_serializer="raw", value_serializer="raw", acks=False)
    application.topics.add(topic)
    await application.topics.on_partitions_assigned({TP0})  # what the conductor streams
    application.flow_control.resume()  # as a worker does once its partitions are assigned
    return application


@pytest.fixture
async def app() -> Any:
    return await make_app()


def _consumer(app: Any) -> HandOffConsumer:
    consumer = app.consumer
    assert isinstance(consumer, HandOffConsumer)
    return consumer


def _queue(app: Any) -> Any:
    (topic,) = app.topics  # the stream buffer of TP0 is its topic's
    return topic.queue


async def test_the_app_consumes_with_the_hand_off_consumer(app: Any) -> None:
    assert type(app.transport).Consumer is HandOffConsumer
    assert _consumer(app).can_hand_off(TP0)


async def test_anything_that_could_make_the_callback_wait_keeps_fausts_way(app: Any) -> None:
    consumer = _consumer(app)
    consumer.suspend_flow.set()
    assert not consumer.can_hand_off(TP0)
    consumer.suspend_flow.clear()

    app.flow_control.suspend()
    assert not consumer.can_hand_off(TP0)
    app.flow_control.resume()

    async with subscription_lock(app):
        assert not consumer.can_hand_off(TP0)

    queue = _queue(app)
    for n in range(queue.maxsize):
        queue.put_nowait(n)
    assert not consumer.can_hand_off(TP0)
    queue.get_nowait()
    assert consumer.can_hand_off(TP0)


async def test_a_full_buffer_is_waited_on_until_it_has_drained_to_the_pressure_drop(
    app: Any,
) -> None:
    consumer = _consumer(app)
    queue = _queue(app)
    for n in range(queue.maxsize):
        queue.put_nowait(n)
    waiting = asyncio.ensure_future(consumer.wait_for_room(TP0))
    while queue.qsize() > queue.pressure_drop_size + 1:
        queue.get_nowait()
        await asyncio.sleep(0.02)
        assert not waiting.done(), f"returned with {queue.qsize()} of {queue.maxsize} queued"
    queue.get_nowait()
    await asyncio.wait_for(waiting, timeout=1.0)
    assert consumer.can_hand_off(TP0)


async def test_a_suspended_flow_ends_the_wait_for_room(app: Any) -> None:
    """At a rebalance Faust's own path takes over, which gives up on the message."""
    consumer = _consumer(app)
    queue = _queue(app)
    for n in range(queue.maxsize):
        queue.put_nowait(n)
    waiting = asyncio.ensure_future(consumer.wait_for_room(TP0))
    await asyncio.sleep(0.05)
    assert not waiting.done()
    consumer.suspend_flow.set()
    await asyncio.wait_for(waiting, timeout=1.0)
    assert queue.full()


class Fetcher:
    """Stands in for Faust's fetcher service: the fetch loop runs until it stops."""

    def __init__(self) -> None:
        self._stopped = asyncio.Event()


async def fetch_with_a_seek_back(ordered: frozenset[str]) -> list[int]:
    """The offsets the copied fetch loop hands over from two fetches of TP0: 0 to 9, and
    2 to 9 again. At offset 5 the agent seeks back to 2 (as ``Offsets`` does when a
    record comes ahead of the one it expects); Faust's ``seek_wait`` sets the read
    offset to 2, and the loop still has 6 to 9 of the first fetch in hand."""
    consumer = _consumer(await make_app(ordered))
    fetcher = Fetcher()
    fetches = [list(range(10)), list(range(2, 10))]
    handed: list[int] = []

    async def getmany(**_: float) -> AsyncIterator[tuple[TP, Any]]:  # timeout=1.0
        if not fetches:
            fetcher._stopped.set()  # noqa: SLF001 - the stand-in's own flag
            return
        for offset in fetches.pop(0):
            yield TP0, SimpleNamespace(topic=TOPIC, offset=offset)

    async def deliver(tp: TP, message: Any) -> None:
        handed.append(message.offset)
        if message.offset == 5 and len(handed) == 6:
            consumer._read_offset[tp] = 2  # noqa: SLF001 - what Faust's seek_wait sets

    consumer.getmany = getmany
    consumer.deliver = deliver
    await asyncio.wait_for(consumer._drain_messages(fetcher), timeout=5)  # noqa: SLF001
    return handed


async def test_a_seek_back_on_an_ordered_topic_gets_its_records_even_behind_the_read_offset() -> (
    None
):
    """The records the seek brings back are handed over although 6 to 9, fetched
    before it, moved Faust's read offset past them again: ``streams.delivery`` takes
    2 to 9 in order and skips what it applied before."""
    handed = await fetch_with_a_seek_back(frozenset({TOPIC}))
    assert handed == [*range(10), *range(2, 10)]


async def test_faust_drops_what_a_seek_brings_back_on_a_topic_not_ordered() -> None:
    """Faust's own rule for any other topic (a changelog, say): a record below the read
    offset is dropped, so after the seek only 9 comes again."""
    handed = await fetch_with_a_seek_back(frozenset())
    assert handed == [*range(10), 9]


async def test_fausts_fetch_check_skips_what_the_engine_keeps_from_being_fetched(
    app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A paused changelog and a held inbound partition are not fetched on purpose:
    Faust's check of each assigned partition would log an ERROR for them."""
    consumer = _consumer(app)
    checked: list[TP] = []
    thread = SimpleNamespace(verify_event_path=lambda now, tp: checked.append(tp))
    monkeypatch.setattr(consumer, "_thread", thread)  # Faust's check runs in its thread
    changelog, held, other = TP("app-customers-changelog", 0), TP(TOPIC, 1), TP(TOPIC, 2)
    consumer.quiet = frozenset({changelog})
    consumer.held = frozenset({held})
    for tp in (changelog, held, other):
        consumer.verify_event_path(0.0, tp)
    assert checked == [other]

"""When the consumer hands a message straight to the stream, and when it keeps Faust's way."""

from __future__ import annotations

import asyncio
import hashlib
import inspect
from typing import Any

import faust
import pytest
from faust.transport.consumer import Consumer as FaustConsumer
from faust.types import TP

from streams.handoff import HandOffConsumer, lean_hand_off

TOPIC = "shop.cart"
TP0 = TP(TOPIC, 0)


@pytest.fixture
def app() -> Any:
    """A real Faust app with the lean hand-off; nothing connects until a worker starts it."""
    application = faust.App(
        "handoff-test",
        broker="kafka://127.0.0.1:1",
        broker_credentials=None,
        stream_buffer_maxsize=10,
        web_enabled=False,
    )
    lean_hand_off(application)
    topic = application.topic(TOPIC, key_serializer="raw", value_serializer="raw")
    application.topics._tp_index[TP0].add(topic)
    application.flow_control.resume()  # as a worker does once its partitions are assigned
    return application


def _consumer(app: Any) -> HandOffConsumer:
    consumer = app.consumer
    assert isinstance(consumer, HandOffConsumer)
    return consumer


def _queue(app: Any) -> Any:
    (channel,) = app.topics._tp_index[TP0]
    return channel.queue


async def test_the_app_consumes_with_the_hand_off_consumer(app: Any) -> None:
    assert type(app.transport).Consumer is HandOffConsumer
    assert _consumer(app)._can_hand_off(TP0)


async def test_anything_that_could_make_the_callback_wait_keeps_fausts_way(app: Any) -> None:
    consumer = _consumer(app)
    consumer.suspend_flow.set()
    assert not consumer._can_hand_off(TP0)
    consumer.suspend_flow.clear()

    app.flow_control.suspend()
    assert not consumer._can_hand_off(TP0)
    app.flow_control.resume()

    async with app.topics._tp_to_callback_lock:
        assert not consumer._can_hand_off(TP0)

    queue = _queue(app)
    for n in range(queue.maxsize):
        queue.put_nowait(n)
    assert not consumer._can_hand_off(TP0)
    queue.get_nowait()
    assert consumer._can_hand_off(TP0)


async def test_a_full_buffer_is_waited_on_until_it_has_drained_to_the_pressure_drop(
    app: Any,
) -> None:
    consumer = _consumer(app)
    queue = _queue(app)
    for n in range(queue.maxsize):
        queue.put_nowait(n)
    waiting = asyncio.ensure_future(consumer._wait_for_room(TP0))
    while queue.qsize() > queue.pressure_drop_size + 1:
        queue.get_nowait()
        await asyncio.sleep(0.02)
        assert not waiting.done(), f"returned with {queue.qsize()} of {queue.maxsize} queued"
    queue.get_nowait()
    await asyncio.wait_for(waiting, timeout=1.0)
    assert consumer._can_hand_off(TP0)


async def test_a_suspended_flow_ends_the_wait_for_room(app: Any) -> None:
    """At a rebalance Faust's own path takes over, which gives up on the message."""
    consumer = _consumer(app)
    queue = _queue(app)
    for n in range(queue.maxsize):
        queue.put_nowait(n)
    waiting = asyncio.ensure_future(consumer._wait_for_room(TP0))
    await asyncio.sleep(0.05)
    assert not waiting.done()
    consumer.suspend_flow.set()
    await asyncio.wait_for(waiting, timeout=1.0)
    assert queue.full()


def test_fausts_fetch_loop_is_the_one_the_hand_off_was_written_against() -> None:
    """``HandOffConsumer._drain_messages`` repeats Faust's loop but for the hand-off:
    a Faust release that changes that loop must be read before it is run, since
    the copy would silently drop whatever it added."""
    source = inspect.getsource(FaustConsumer._drain_messages)
    assert hashlib.sha256(source.encode()).hexdigest()[:16] == "44a2500309e83c63", (
        "faust-streaming changed Consumer._drain_messages: bring streams/handoff.py in line"
    )

"""When the consumer hands a message straight to the stream, and when it keeps Faust's way."""

from __future__ import annotations

import asyncio
from typing import Any

import faust
import pytest
from faust.types import TP

from streams.faust_compat import HandOffConsumer, lean_hand_off, subscription_lock

TOPIC = "shop.cart"
TP0 = TP(TOPIC, 0)


@pytest.fixture
async def app() -> Any:
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
    application.topics.add(topic)
    await application.topics.on_partitions_assigned({TP0})  # what the conductor streams
    application.flow_control.resume()  # as a worker does once its partitions are assigned
    return application


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

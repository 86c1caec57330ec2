"""The hand-off from Faust's fetch loop to the agents, without four tasks per message.

Faust's consumer passes each fetched message on with ``wait_first(callback,
suspend_flow.wait())``: four tasks (the callback, the flow event, the
consumer's stopped and crashed events), an ``asyncio.wait`` and three
cancellations, per message, so that a callback blocked on a full stream
buffer or a suspended flow can be abandoned at a rebalance or shutdown.
Almost always neither is the case and the callback finishes without ever
suspending; this consumer then awaits it directly and keeps Faust's path for
the rest. Under load the stream buffer is full most of the time, so it also
waits for room for many messages at once (``_wait_for_room``). The benchmark's
counting agent (``bench.contenders``, variants ``lean-hand-off`` and
``engine``) measures what it is worth.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

import faust
from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

__all__ = ["HandOffConsumer", "HandOffTransport", "lean_hand_off"]

ROOM_POLL = 0.005
"""Seconds between looks at a full stream buffer: a full buffer is seconds of work."""


class HandOffConsumer(faust_aiokafka.Consumer):
    """Faust's aiokafka consumer with a direct hand-off when nothing can block it."""

    def _can_hand_off(self, tp: TP) -> bool:
        """Whether the conductor's callback for ``tp`` cannot be left waiting: no
        rebalance under way (suspended flow, flow control, the subscription
        lock) and room in its stream buffers. Its wait for a full producer
        buffer is a flush, which ends on its own, so it is not checked (the
        check reads Faust's settings, a tenth of the hand-off's cost)."""
        app: Any = self.app
        topics = app.topics
        if (
            self.suspend_flow.is_set()
            or not app.flow_control.is_active()
            or topics._tp_to_callback_lock.locked()
        ):
            return False
        return not any(channel.queue.full() for channel in topics._tp_index.get(tp, ()))

    async def _wait_for_room(self, tp: TP) -> None:
        """Wait until the stream buffers of ``tp`` have drained to Faust's
        pressure-drop size (40 %), unless the flow is suspended or the consumer stops.

        A full buffer is the usual state under load (the agent is slower than
        the fetch): Faust then hands each message over as soon as one slot is
        free, a task switch and a ``put`` task per message. Waiting for room
        for many lets them all go the direct way; the agent has a full buffer
        to work on meanwhile, so the polling costs it nothing.
        """
        channels = self.app.topics._tp_index.get(tp, ())  # type: ignore[attr-defined]
        while (  # noqa: ASYNC110 - polled: Faust's queue signals only its own drop callback
            not self.should_stop
            and not self.suspend_flow.is_set()
            and any(ch.queue.qsize() > ch.queue.pressure_drop_size for ch in channels)
        ):
            await asyncio.sleep(ROOM_POLL)

    async def _deliver(self, tp: TP, message: Any) -> None:
        """Hand ``message`` to its stream: directly if nothing can make it wait,
        else (a rebalance, a buffer still full) Faust's way, which can give up."""
        if not self._can_hand_off(tp):
            await self._wait_for_room(tp)
        if self._can_hand_off(tp):
            await self.callback(message)
        else:
            await self.wait_first(self.callback(message), self.suspend_flow.wait())

    async def _drain_messages(self, fetcher: Any) -> None:  # pragma: no cover - Faust's loop
        """Faust's ``Consumer._drain_messages``, with the direct hand-off.

        Otherwise it does what Faust's does (read offsets, gaps for acking
        topics, ``broker_commit_every``, a yield to the loop every 100 messages),
        so Faust's bookkeeping stays what it expects; a unit test fails when
        Faust's loop changes.
        """
        deliver = self._deliver
        getmany = self.getmany
        consumer_should_stop = self._stopped.is_set
        fetcher_should_stop = cast(Any, fetcher)._stopped.is_set
        get_read_offset = self._read_offset.__getitem__
        set_read_offset = self._read_offset.__setitem__
        set_flag = self.diag.set_flag
        unset_flag = self.diag.unset_flag
        commit_every = self._commit_every
        acks_enabled_for = self.app.topics.acks_enabled_for
        yield_every = 100
        since_yield = 0
        try:
            while not (consumer_should_stop() or fetcher_should_stop()):
                set_flag(CONSUMER_FETCHING)
                batch = getmany(timeout=1.0)
                await self.sleep(0)
                if not self.should_stop:
                    async for tp, message in batch:
                        since_yield += 1
                        if since_yield > yield_every:
                            await self.sleep(0)
                            since_yield = 0
                        offset = message.offset
                        read = get_read_offset(tp)
                        if read is not None and offset < read:
                            continue  # Faust drops what precedes its read offset, too
                        if read and offset - read > 1 and acks_enabled_for(message.topic):
                            await self._add_gap(tp, read + 1, offset)
                        if commit_every is not None and self._n_acked >= commit_every:
                            self._n_acked = 0
                            await self.commit()
                        await deliver(tp, message)
                        set_read_offset(tp, offset)
                    unset_flag(CONSUMER_FETCHING)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                self.log.info("Broker stopped consumer, shutting down...")
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                self.log.info("Consumer shutting down for user cancel.")
                return
            raise
        except Exception as exc:
            self.log.exception("Drain messages raised: %r", exc)
            raise
        finally:
            unset_flag(CONSUMER_FETCHING)


class HandOffTransport(faust_aiokafka.Transport):
    Consumer = HandOffConsumer


def lean_hand_off(app: faust.App) -> None:
    """Make ``app`` consume with ``HandOffConsumer``; before anything uses its transport."""
    app._new_transport = lambda: HandOffTransport(  # type: ignore[method-assign]
        app.conf.broker_consumer, app
    )

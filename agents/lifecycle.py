"""The lifecycle agent: Kafka in, ``lifecycle.core.apply`` in the middle, Kafka out.

I/O only. Validation (the ingest step) runs inline in the same agent: a
separate ingest hop would double Faust's per-message cost for no gain in
safety, since a bad message is dead-lettered here before it touches state.

Three rules keep it exact under at-least-once delivery:

- concurrency 1 and manual acks: a message is acked only once applied, so a
  message held back by the cross-topic merge is never committed early
  (faust-streaming issue 606 is the same hazard with concurrency > 1);
- outputs before state: a customer's outputs are acknowledged by the broker
  before the new record is written, so a crash in between replays the event
  from the old record and re-sends the same ids, instead of losing them;
- per-partition merge (``lifecycle.ordering``): events of one customer are
  applied in event-time order whichever topic brought them.
"""

from __future__ import annotations

import asyncio
import logging
import time
import traceback
from datetime import UTC, datetime
from typing import Any

from faust.types import TP

from lifecycle.core import apply
from lifecycle.ordering import PartitionMerger, order_key
from lifecycle.playbook import Playbook
from lifecycle.state import CustomerState
from schemas.codec import encode_model
from schemas.events import Event
from schemas.inbound import Reason, Rejection, check_routing, dead_letter, parse_event
from streams.app import Topology

__all__ = ["LifecycleProcessor", "register"]

log = logging.getLogger(__name__)

Held = tuple[bytes, Event, Any]  # (key, event, faust event to ack)


def _where(message: Any) -> tuple[str, int, int]:
    """Where a message sits, for logs: never its key or value (personal data)."""
    return message.topic, message.partition, message.offset


class LifecycleProcessor:
    """Everything the agent does with one message; the agent loop only feeds it."""

    def __init__(self, topology: Topology, playbook: Playbook) -> None:
        self.topology = topology
        self.playbook = playbook
        self.table = topology.customers
        self.settings = topology.settings
        self.inbound_topics = self.settings.inbound_topics
        self.ticks_topic = self.settings.topic("ticks")
        self.mergers: dict[int, PartitionMerger[Held]] = {}
        self.last_seen: dict[TP, int] = {}
        self.blocked_since: dict[int, float] = {}

    async def handle(self, stream: Any, event: Any) -> None:
        message = event.message
        partition = message.partition
        if message.topic != self.ticks_topic:
            self.last_seen[message.tp] = message.offset
            held = await self._accept(message, event, stream)
            if held is not None:
                merger = self._merger(partition)
                merger.push(message.topic, order_key(held[1]), held)
        else:
            await stream.ack(event)
        await self._release(stream, partition)

    def _merger(self, partition: int) -> PartitionMerger[Held]:
        merger = self.mergers.get(partition)
        if merger is None:
            merger = self.mergers[partition] = PartitionMerger(self.inbound_topics)
        return merger

    async def _accept(self, message: Any, event: Any, stream: Any) -> Held | None:
        """The validated event, or None once the message is dead-lettered and acked."""
        parsed = parse_event(message.value, max_bytes=self.settings.max_message_bytes)
        if not isinstance(parsed, Rejection):
            logical = self.topology.logical_topic.get(message.topic)
            rejection = check_routing(parsed, message.key, logical)
            if rejection is None:
                return (message.key, parsed, event)
            parsed = rejection
        await self._dead_letter(message, parsed)
        await stream.ack(event)
        return None

    def _caught_up(self, partition: int) -> Any:
        consumer: Any = self.topology.app.consumer

        def caught_up(topic: str) -> bool:
            tp = TP(topic, partition)
            highwater = consumer.highwater(tp)
            if highwater is None:
                return False
            seen = self.last_seen.get(tp)
            if seen is not None:
                return seen + 1 >= int(highwater)
            # Nothing read yet: where this group starts is its committed offset.
            start = consumer._committed_offset.get(tp)  # private: no public accessor
            return (start or 0) >= int(highwater)

        return caught_up

    async def _release(self, stream: Any, partition: int) -> None:
        merger = self.mergers.get(partition)
        if merger is None or not merger.buffered:
            return
        caught_up = self._caught_up(partition)
        if merger.blocking(caught_up):
            # How long this partition has made no progress waiting for a topic.
            since = self.blocked_since.setdefault(partition, time.monotonic())
            if time.monotonic() - since > self.settings.max_idle:
                log.warning(
                    "partition %d: waited %.0fs for %s; releasing without it",
                    partition,
                    self.settings.max_idle,
                    ", ".join(merger.blocking(caught_up)),
                )
                caught_up = lambda _topic: True  # noqa: E731
        released = 0
        for key, parsed, source in merger.pop_ready(caught_up):
            await self._apply(key, parsed, source.message)
            await stream.ack(source)
            released += 1
        if released or not merger.buffered:
            self.blocked_since.pop(partition, None)

    async def _apply(self, key: bytes, event: Event, message: Any) -> None:
        raw = self.table.get(key)
        try:
            state = None if raw is None else CustomerState.model_validate_json(raw)
            outcome = apply(state, event, self.playbook)
        except Exception as exc:  # a bug must not stop the partition: park the event
            # Frames, not the message: exception texts can quote personal fields.
            log.error(
                "lifecycle core failed on %s[%d]@%d with %s:\n%s",
                *_where(message),
                type(exc).__name__,
                "".join(traceback.format_tb(exc.__traceback__)),
            )
            await self._dead_letter(
                message, Rejection(Reason.PROCESSING_ERROR, f"{type(exc).__name__} in core")
            )
            return
        if outcome.duplicate and outcome.state is state:
            return
        sends = [
            await self.topology.transitions.send(key=key, value=encode_model(t), force=True)
            for t in outcome.transitions
        ]
        sends += [
            await self.topology.triggers.send(key=key, value=encode_model(t), force=True)
            for t in outcome.triggers
        ]
        if sends:
            await asyncio.gather(*sends)
        if outcome.state is None:
            if key in self.table:
                del self.table[key]  # a tombstone in the changelog
        else:
            self.table[key] = encode_model(outcome.state)

    async def _dead_letter(self, message: Any, rejection: Rejection) -> None:
        record = dead_letter(
            topic=message.topic,
            partition=message.partition,
            offset=message.offset,
            key=message.key,
            value=message.value,
            rejection=rejection,
            at=datetime.fromtimestamp(message.timestamp, UTC),
        )
        log.warning("dead-lettered %s[%d]@%d: %s", *_where(message), rejection.reason.value)
        await self.topology.deadletter.send(key=message.key, value=encode_model(record), force=True)

    async def tick(self) -> None:
        """Wake every partition: a merge waiting on a topic re-checks it."""
        for partition in range(self.settings.partitions):
            await self.topology.ticks.send(value=b"", partition=partition, force=True)


def register(topology: Topology, playbook: Playbook) -> LifecycleProcessor:
    """Attach the lifecycle agent and its tick timer to the app."""
    processor = LifecycleProcessor(topology, playbook)
    app = topology.app

    async def lifecycle(stream: Any) -> None:
        manual = stream.noack()
        async for event in manual.events():
            await processor.handle(manual, event)

    app.agent(topology.inbound, name="lifecycle", concurrency=1)(lifecycle)
    app.timer(interval=topology.settings.tick_interval, on_leader=False)(processor.tick)
    return processor

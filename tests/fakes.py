"""Kafka in memory, behind the agent's ports (``streams.ports``).

``MemoryBroker`` keeps each topic-partition's log; ``MemoryConsumer``,
``MemoryProducer`` and ``MemoryStore`` are the consumer, producer and table
stores a worker gets from Faust, so ``LifecycleProcessor`` runs its whole
wiring (admission in offset order, merges, ticks, the checkpoint's commit
sequence, offsets) on one thread, without a broker. ``MemoryWorker`` feeds it
every published message in publish order, as the stream would hand them over.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import defaultdict
from collections.abc import Awaitable, Collection, Iterable, Iterator, Mapping, Set
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from faust.streams import current_event
from faust.types import TP

from agents.lifecycle import LifecycleProcessor
from lifecycle.playbook import Playbook
from schemas.codec import loads
from streams.faust_compat import in_partition_of
from streams.ports import Ports, put_or_delete
from streams.producer import key_partition, scheme_of
from streams.settings import Settings

__all__ = ["MemoryBroker", "MemoryWorker", "Message"]


@dataclass(frozen=True, slots=True)
class Message:
    """A record as Faust hands it over (``streams.faust_compat.FaustMessage``)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: float
    headers: tuple[tuple[str, bytes], ...] = ()

    @property
    def tp(self) -> TP:
        return TP(self.topic, self.partition)


@dataclass(frozen=True, slots=True, weakref_slot=True)
class Event:
    """A Faust stream event: the agent reads only its message. Faust's stream makes it
    the current event while the agent handles it (``handling``)."""

    message: Message


@dataclass
class MemoryBroker:
    """Topic-partition logs, the group's committed offsets, and the publish order."""

    partitions: int
    scheme: Any = "murmur2"
    logs: dict[TP, list[Message]] = field(default_factory=lambda: defaultdict(list))
    committed: dict[TP, int] = field(default_factory=dict)
    order: itertools.count[int] = field(default_factory=itertools.count)
    published: dict[tuple[TP, int], int] = field(default_factory=dict)
    """(topic-partition, offset) -> its place in the publish order."""

    def append(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        partition: int | None = None,
        timestamp: float = 0.0,
    ) -> Message:
        if partition is None:
            partition = 0 if key is None else key_partition(key, self.partitions, self.scheme)
        tp = TP(topic, partition)
        log = self.logs[tp]
        message = Message(topic, partition, len(log), key, value, timestamp)
        log.append(message)
        self.published[(tp, message.offset)] = next(self.order)
        return message

    def values(self, topic: str) -> list[tuple[bytes | None, Any]]:
        """(key, decoded value) of every record of ``topic``, in publish order."""
        found = [m for tp, log in self.logs.items() if tp.topic == topic for m in log]
        found.sort(key=lambda m: self.published[(m.tp, m.offset)])
        return [(m.key, None if m.value is None else loads(m.value)) for m in found]


def _done(result: Any) -> asyncio.Future[Any]:
    future = asyncio.get_running_loop().create_future()
    future.set_result(result)
    return future


class MemoryConsumer:
    """``streams.ports.Consumer``: every partition of ``topics`` assigned, fetched to its end."""

    def __init__(self, broker: MemoryBroker, topics: Iterable[str]) -> None:
        self.broker = broker
        self.assigned = [TP(t, p) for t in topics for p in range(broker.partitions)]
        self.position: dict[TP, int] = dict.fromkeys(self.assigned, 0)
        self.held: frozenset[TP] = frozenset()
        self.fetched_ahead: set[TP] = set()
        """Partitions whose next records the client holds, fetched and not yet handed
        over (``buffered``): a test sets it, as a backlog ahead of them would."""
        self.asked: list[list[TP]] = []
        """Each ``ask_ends`` call's partitions."""
        self.polls = 0
        """Fetches so far: every fetch answers for all partitions, empty ones too, at
        once (each reads every partition at the same instant, ``polls``)."""

    def assignment(self) -> Iterable[TP]:
        return list(self.assigned)

    def fetched(self, tp: TP) -> tuple[int, float] | None:
        return len(self.broker.logs[tp]), float(self.polls)

    def keep_answers(self) -> None:
        """Every poll answers at once: nothing to keep."""

    def ask_ends(self, tps: Collection[TP]) -> None:
        """Every poll answers at once: nothing to ask; the asks are counted."""
        self.asked.append(sorted(tps))

    def appended_by(self, tp: TP, offset: int) -> float:
        return float(self.polls)

    def fetch_positions(self, tps: Iterable[TP]) -> dict[TP, int]:
        return {tp: self.position[tp] for tp in tps if tp in self.position}

    def buffered(self, tp: TP) -> bool:
        return tp in self.fetched_ahead

    async def seek(self, offsets: Mapping[TP, int]) -> None:
        self.position.update(offsets)

    async def commit(self, offsets: Mapping[TP, int]) -> bool:
        self.broker.committed.update(offsets)
        return True

    def hold(self, held: Set[TP]) -> Awaitable[None]:
        self.held = frozenset(held)
        return _done(None)

    def next(self) -> Message | None:
        """The earliest-published message not yet fetched of a partition not held."""
        best: Message | None = None
        rank = -1
        for tp, position in self.position.items():
            log = self.broker.logs[tp]
            if tp in self.held or position >= len(log):
                continue
            order = self.broker.published[(tp, position)]
            if best is None or order < rank:
                best, rank = log[position], order
        self.polls += 1
        if best is not None:
            self.position[best.tp] = best.offset + 1
        return best


class Batch:
    def __init__(self) -> None:
        self.records: list[tuple[bytes | None, bytes | None]] = []

    def append(self, *, key: bytes | None, value: bytes | None, timestamp: int | None) -> Any:
        self.records.append((key, value))
        return SimpleNamespace(key=key)


class MemoryProducer:
    """``streams.ports.Producer`` appending to the broker's logs."""

    def __init__(self, broker: MemoryBroker) -> None:
        self.broker = broker

    async def partitions_for(self, topic: str) -> Set[int]:
        return set(range(self.broker.partitions))

    def create_batch(self) -> Batch:
        return Batch()

    async def send_batch(self, batch: Any, topic: str, *, partition: int) -> asyncio.Future[Any]:
        first = len(self.broker.logs[TP(topic, partition)])
        for key, value in batch.records:
            self.broker.append(topic, key, value, partition)
        return _done(SimpleNamespace(offset=first))

    async def send(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        partition: int | None = None,
    ) -> asyncio.Future[Any]:
        message = self.broker.append(topic, key, value, partition)
        return _done(SimpleNamespace(offset=message.offset))


class MemoryStore:
    """``streams.ports.Store``: one dict per partition, like Faust's rocksdb store."""

    def __init__(self, changelog: str) -> None:
        self._changelog = changelog
        self.data: dict[int, dict[bytes, bytes]] = defaultdict(dict)
        self.persisted_offsets: dict[TP, int] = {}

    @property
    def changelog(self) -> str:
        return self._changelog

    def get(self, key: bytes) -> bytes | None:
        """As Faust's rocksdb store reads: the current event's partition only, or every
        partition without one."""
        event = current_event()
        if event is not None:
            stored = self.data.get(event.message.partition)
            return None if stored is None else stored.get(key)
        for stored in self.data.values():
            if key in stored:
                return stored[key]
        return None

    def write(self, event: Any, key: bytes, value: bytes | None) -> bool:
        return put_or_delete(self.data[event.message.partition], key, value)

    def persisted(self, tp: TP, offset: int) -> None:
        self.persisted_offsets[tp] = offset

    def scan(self) -> Iterator[tuple[int | None, bytes, bytes]]:
        for partition, stored in list(self.data.items()):
            for key, raw in list(stored.items()):
                yield partition, key, raw

    def holder(self, key: bytes) -> int | None:
        return next((p for p, stored in self.data.items() if key in stored), None)


class _Buffered:
    """What the stream still holds for the agent: the agent commits when it is empty."""

    def __init__(self, worker: MemoryWorker) -> None:
        self.worker = worker

    def empty(self) -> bool:
        return not self.worker.has_more()


class MemoryWorker:
    """One worker's agent wired to a ``MemoryBroker``, fed message by message."""

    def __init__(self, settings: Settings, playbook: Playbook, broker: MemoryBroker) -> None:
        self.settings = settings
        self.broker = broker
        topics = [*settings.event_topics, settings.topic("ticks"), settings.topic("merge")]
        self.consumer = MemoryConsumer(broker, topics)
        self.producer = MemoryProducer(broker)
        self.customers = MemoryStore(f"{settings.app_id}-customers-changelog")
        self.copurchase = MemoryStore(f"{settings.app_id}-copurchase-changelog")

        async def resume_points(tps: list[TP]) -> dict[TP, int]:
            return {tp: broker.committed.get(tp, 0) for tp in tps}

        ports = Ports(self.consumer, self.producer, self.customers, self.copurchase, resume_points)
        self.processor = LifecycleProcessor(settings, playbook, ports)
        self.buffered = _Buffered(self)

    @classmethod
    def of(cls, settings: Settings, playbook: Playbook) -> MemoryWorker:
        return cls(
            settings,
            playbook,
            MemoryBroker(settings.partitions, scheme_of(settings.input_partitioner)),
        )

    def has_more(self) -> bool:
        consumer = self.consumer
        return any(
            tp not in consumer.held and position < len(self.broker.logs[tp])
            for tp, position in consumer.position.items()
        )

    async def start(self) -> None:
        """The first assignment: every partition, resumed from the committed offsets."""
        for tp in self.consumer.assigned:
            self.consumer.position[tp] = self.broker.committed.get(tp, 0)
        self.processor.on_partitions_assigned(set(self.consumer.assigned))

    async def run(self) -> int:
        """Hand over every message there is, including what handling them publishes
        (merge messages); how many were handed over."""
        handed = 0
        while (message := self.consumer.next()) is not None:
            await self.hand_over(message)
            handed += 1
        return handed

    async def hand_over(self, message: Message) -> None:
        """``message`` to the agent, the current event while it is handled, as Faust's
        stream makes it."""
        event = Event(message)
        with in_partition_of(event):  # type: ignore[arg-type]
            await self.processor.step(event, self.buffered)  # type: ignore[arg-type]

    async def tick(self) -> None:
        """The worker's tick timer: one tick to every partition."""
        await self.processor.ticker.tick()

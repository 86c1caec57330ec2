"""What the agent asks of Kafka: a consumer, a producer and its two stores.

The agent's wiring (``agents.lifecycle``) and the checkpoint
(``streams.checkpoint``) name only these Protocols. A worker fills them with
Faust's consumer, the aiokafka producer under Faust's, and Faust's tables
(``streams.faust_compat``: ``FaustConsumer``, ``FaustProducer``,
``FaustStore``); the unit tests fill them with in-memory fakes
(``tests/fakes.py``), so the whole journey suite runs through the agent's
wiring without a broker.
"""

from __future__ import annotations

import asyncio
from collections.abc import (
    Awaitable,
    Callable,
    Collection,
    Iterable,
    Iterator,
    Mapping,
    MutableMapping,
    Set,
)
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from faust.types import TP

if TYPE_CHECKING:
    from streams.faust_compat import FaustEvent

__all__ = ["Consumer", "Ports", "Producer", "RecordBatch", "ResumePoints", "Store"]


class Consumer(Protocol):
    """The group member's consumer, as the agent uses it between the messages it is handed."""

    def assignment(self) -> Iterable[TP]: ...

    def fetched(self, tp: TP) -> tuple[int, float] | None:
        """The end of ``tp`` as of the last fetch answer, and a time (``time.monotonic``)
        such that it counts every record appended to ``tp`` before then: when the
        request left (None: no answer yet). One call: the merge asks it of every empty
        topic."""
        ...

    def keep_answers(self) -> None:
        """Keep every fetch answer from now on, for ``fetched`` and ``appended_by`` (a
        client's fetcher exists once it has started: called at each assignment)."""
        ...

    def ask_ends(self, tps: Collection[TP]) -> None:
        """Ask, without waiting, for the ends of ``tps`` now: their answer counts for
        ``fetched`` as a fetch answer sent now would (a merge waiting for one)."""
        ...

    def appended_by(self, tp: TP, offset: int) -> float:
        """A time (``time.monotonic``) by which the record at ``offset`` of ``tp``, handed
        over, had been appended: when the first fetch answer whose highwater passed it
        came (a backlog's records long before the answers that bring them)."""
        ...

    def fetch_positions(self, tps: Iterable[TP]) -> dict[TP, int]:
        """The next offset the consumer fetches, per partition it has one for."""
        ...

    def buffered(self, tp: TP) -> bool:
        """Whether the client holds records of ``tp`` it fetched and has not yet handed
        over (its answer to ``fetch_positions`` does not count them yet)."""
        ...

    async def seek(self, offsets: Mapping[TP, int]) -> None: ...

    async def commit(self, offsets: Mapping[TP, int]) -> bool:
        """Commit exactly ``offsets`` for the group; whether the coordinator took them."""
        ...

    def hold(self, held: Set[TP]) -> Awaitable[None]:
        """Fetch nothing of ``held`` and everything else assigned (read when it runs)."""
        ...


class RecordBatch(Protocol):
    def append(self, *, key: bytes | None, value: bytes | None, timestamp: int | None) -> Any:
        """The appended record's metadata, or None when the batch is full."""
        ...


class Producer(Protocol):
    """The subset of ``aiokafka.AIOKafkaProducer`` the engine sends through."""

    async def partitions_for(self, topic: str) -> Set[int]: ...

    def create_batch(self) -> RecordBatch: ...

    async def send_batch(
        self, batch: RecordBatch, topic: str, *, partition: int
    ) -> asyncio.Future[Any]: ...

    async def send(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        partition: int | None = None,
    ) -> asyncio.Future[Any]: ...


class Store(Protocol):
    """A table: its store of raw records and its changelog topic."""

    @property
    def changelog(self) -> str: ...

    def get(self, key: bytes) -> bytes | None: ...

    def write(self, event: FaustEvent, key: bytes, value: bytes | None) -> bool:
        """Write ``key`` in the partition of ``event`` (None deletes it); False when
        there was nothing to delete, so no changelog record is due."""
        ...

    def persisted(self, tp: TP, offset: int) -> None:
        """The changelog of ``tp`` is on the broker up to ``offset``."""
        ...

    def scan(self) -> Iterator[tuple[int | None, bytes, bytes]]:
        """(partition, key, record) of everything stored; partition None where the
        store keeps all partitions together (Faust's memory store)."""
        ...

    def holder(self, key: bytes) -> int | None:
        """The partition whose store holds ``key``; None if unknown or nowhere."""
        ...


def put_or_delete(store: MutableMapping[bytes, bytes], key: bytes, value: bytes | None) -> bool:
    """``Store.write``'s rule for one partition's mapping: write ``value``, or delete
    ``key`` when value is None; False when there was nothing to delete (no changelog
    record is due)."""
    if value is not None:
        store[key] = value
    elif key in store:
        del store[key]
    else:
        return False
    return True


ResumePoints = Callable[[list[TP]], Awaitable[dict[TP, int]]]
"""Where the group resumes each partition: its committed offset, or the log's start."""


@dataclass
class Ports:
    """Everything of Kafka one agent uses."""

    consumer: Consumer
    producer: Producer
    customers: Store
    copurchase: Store
    resume_points: ResumePoints

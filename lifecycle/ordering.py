"""Deterministic order across the inbound topics of one partition.

A customer's signup and purchase travel on different topics, and Kafka only
orders messages within one topic-partition: a consumer may see the purchase
first. So each partition keeps one FIFO queue per inbound topic and releases
the head with the earliest (occurred_at, type, event_id) -- but only once
every topic either has a message queued or is known to have nothing more
(caught up). That is the merge Kafka Streams does for co-partitioned topics.

Given the whole input (a replay, or the backtest), the result depends only on
each topic-partition's message order, never on fetch timing, which is why
the backtest and the Kafka path give the same outputs.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

from schemas.events import Event
from schemas.internal import Claim, ProspectHistory

__all__ = ["EventOrder", "PartitionMerger", "merge_order", "order_key"]

T = TypeVar("T")

_TYPE_RANK = {
    "signup": 0,
    "identify": 1,
    "browse": 2,
    "cart": 3,
    "purchase": 4,
    "refund": 5,
    "engagement": 6,
    "privacy": 7,
    "custom": 8,
}

_MERGE_RANK = {"claim": 9, "history": 10}

EventOrder = tuple[datetime, int, str]


def order_key(event: Event) -> EventOrder:
    """Event time first; at the same instant a signup precedes a purchase, and so on."""
    return (event.occurred_at, _TYPE_RANK[event.type], event.event_id)


def merge_order(message: Claim | ProspectHistory) -> EventOrder:
    """An identity-merge message sorts at the time of the signup that caused it,
    after every event of that instant."""
    rank = _MERGE_RANK[message.kind]
    return (message.at, rank, f"{message.cause}\x1f{message.anonymous_id}")


@dataclass(slots=True)
class _Queued(Generic[T]):
    key: EventOrder
    item: T


class PartitionMerger(Generic[T]):
    """Merges the per-topic queues of one partition in event-time order.

    ``max_buffered`` bounds memory when one topic runs far ahead of another:
    past it, the earliest head is released without waiting.
    """

    def __init__(self, topics: Sequence[str], max_buffered: int = 100_000) -> None:
        self.topics = tuple(topics)
        self._queues: dict[str, deque[_Queued[T]]] = {t: deque() for t in topics}
        self.max_buffered = max_buffered
        self.buffered = 0
        self.forced = 0
        """Messages released past ``max_buffered`` while a topic was still blocking
        (their order may differ from a replay's), since the worker last said so and
        set it back to 0."""

    def push(self, topic: str, key: EventOrder, item: T) -> None:
        self._queues[topic].append(_Queued(key, item))
        self.buffered += 1

    def queued(self, topic: str) -> Iterator[T]:
        """The messages still queued on ``topic``, in the order they were read."""
        return (entry.item for entry in self._queues[topic])

    def depth(self, topic: str) -> int:
        """How many messages ``topic`` has queued."""
        return len(self._queues[topic])

    def tail_key(self, topic: str) -> EventOrder | None:
        """The order key of the last message queued on ``topic``, if any is waiting."""
        queue = self._queues[topic]
        return queue[-1].key if queue else None

    def blocking(self, caught_up: Callable[[str], bool]) -> list[str]:
        """Topics whose empty queue may still receive an earlier event."""
        return [t for t, q in self._queues.items() if not q and not caught_up(t)]

    def pop_ready(self, caught_up: Callable[[str], bool]) -> Iterator[T]:
        """Release, in order, every message no queued or future message can precede."""
        queues = self._queues.items()
        while self.buffered:
            # One pass: the earliest head (on a tie, the first topic's), and whether an
            # empty topic may still receive an earlier event (what ``blocking`` says).
            first: deque[_Queued[T]] | None = None
            head: EventOrder | None = None
            blocked = False
            for topic, queue in queues:
                if queue:
                    key = queue[0].key
                    if head is None or key < head:
                        first, head = queue, key
                elif not blocked and not caught_up(topic):
                    blocked = True
            if blocked:
                if self.buffered <= self.max_buffered:
                    return
                self.forced += 1
            assert first is not None
            self.buffered -= 1
            yield first.popleft().item

    def drain(self) -> Iterator[T]:
        """Release everything: the input is complete (end of a file or a replay)."""
        return self.pop_ready(lambda _topic: True)

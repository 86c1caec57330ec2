"""One partition, driven the one way the backtest, the journeys and the worker share.

A partition's history must be a function of its input alone, whichever
process runs it. So one object per partition owns everything that decides
that history: the merge of its topics (``lifecycle.ordering``), its clock
(``lifecycle.clock``), its timer heap (``lifecycle.timers``) and its
co-purchase counts (``lifecycle.recommend``); and one loop, here, makes the
driver's steps in one order:

1. release from the merge what no queued or future message can precede;
2. advance the clock to a released event (or a tick, or the end of input);
3. sweep the timers due before the clock, earliest first, each through ``apply``;
4. apply the released message;
5. write the record, reschedule its timers, count its orders' co-purchases.

The caller queues messages (``offer``) and moves the partition on (``drain``,
``tick``, ``end``); each move yields what every input did: ``Applied``, a
``(key, Outcome)`` pair with what caused it. Records are read and written
through a ``RecordStore``: a dict in the backtest and the journeys
(``tests/scenarios/run.py``), a batch over the table in a worker. A record the
store says is the runtime's own is changed in place (the core's ``in_place``: a
copy per input is a tenth of the core's time, and more in a worker, whose
batch holds most of the records it reads); only a record the core changed is
written back. When an input fails on such a record, halfway through changing
it, the store builds the record again from what it kept (``RecordStore.redo``).
Routing a merge's claims and histories to the partition of their key is the
caller's: it alone knows the partitioner and the other partitions. Nothing
here knows Kafka.

A failing core call never escapes: ``drain`` yields it as ``Failed``, so the
worker dead-letters the message (or, for a timer, drops it) and carries on,
whichever input it was, while the backtest, the reference answer, raises it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, MutableMapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Generic, NamedTuple, Protocol, TypeVar

from lifecycle.clock import ClockMode, PartitionClock
from lifecycle.core import Due, Input, Outcome, apply
from lifecycle.ordering import PartitionMerger, merge_order, order_key
from lifecycle.playbook import Playbook
from lifecycle.recommend import Recommender
from lifecycle.state import CustomerState
from lifecycle.timers import TimerHeap, next_due
from schemas.events import Event
from schemas.inbound import Rejection
from schemas.internal import Claim, ProspectHistory
from schemas.records import Stage

__all__ = [
    "Applied",
    "DictStore",
    "Failed",
    "Item",
    "PartitionRuntime",
    "RecordStore",
    "Refused",
    "Replay",
    "Result",
    "complete",
]

P = TypeVar("P")
"""Where the caller says an item sat in its topic (an offset, a line number, a message)."""

Item = Event | Claim | ProspectHistory | Rejection
"""What one of a partition's topics carries: an accepted event, an identity-merge
message, or a message refused, released in its place in its topic's order."""


Replay = Callable[[CustomerState | None, Input], CustomerState | None]
"""An input applied again to a record the caller owns: the record it gives."""


class RecordStore(Protocol):
    """Customer records by key, as the runtime reads and writes them."""

    def get(self, key: str) -> tuple[CustomerState | None, bool]:
        """The record of ``key`` (None: no record), and whether it is the runtime's
        own to change in place: nothing else reads it while it changes, and a failed
        change is dropped or undone (``redo``)."""
        ...

    def put(self, key: str, state: CustomerState | None, cause: Input, position: object) -> None:
        """The record of ``key`` is now ``state`` (None: delete it), changed by ``cause``,
        read where the caller's ``position`` says (None: a timer)."""
        ...

    def redo(self, key: str, replay: Replay) -> None:
        """An input failed on the record of ``key`` that ``get`` gave as the runtime's
        own, and may have changed it halfway: make it what it was before that input,
        by ``replay`` of the inputs it was ``put`` with, from the record it kept from
        before them. A store that drops such a record anyway, or whose run ends at a
        failure, does nothing."""
        ...


class DictStore:
    """Records in a dict the caller owns: the backtest's and the journeys' store.

    Every record is the runtime's own to change in place: nothing else holds
    one, and a core failure ends their run before a half-changed one is read.
    """

    def __init__(self, records: MutableMapping[str, CustomerState]) -> None:
        self.records = records

    def get(self, key: str) -> tuple[CustomerState | None, bool]:
        return self.records.get(key), True

    def put(self, key: str, state: CustomerState | None, cause: Input, position: object) -> None:
        if state is None:
            self.records.pop(key, None)
        else:
            self.records[key] = state

    def redo(self, key: str, replay: Replay) -> None:
        """Nothing: a failure ends the backtest's run, and a journey's."""


class Applied(NamedTuple, Generic[P]):
    """What ``input`` did to the record of ``key``; the store has the new record."""

    key: str
    outcome: Outcome
    input: Input
    position: P | None
    """Where the input sat in its topic; None for a timer."""
    before: Stage | None
    """The record's stage before the input, for the stage gauges."""


@dataclass(frozen=True, slots=True)
class Failed(Generic[P]):
    """The core raised on ``input``: the store and the timers are as they were (a
    record it was changing in place is built again: ``RecordStore.redo``), except
    that a failed timer is out of the heap until the record changes again."""

    key: str
    input: Input
    position: P | None
    error: Exception


@dataclass(frozen=True, slots=True)
class Refused(Generic[P]):
    """A refused message, released in its topic's order: the caller dead-letters it."""

    position: P
    rejection: Rejection


Result = Applied[P] | Failed[P] | Refused[P]


def complete(_topic: str) -> bool:
    """Every topic is caught up: the input is whole (a file, or a test's steps)."""
    return True


@dataclass(slots=True)
class PartitionRuntime(Generic[P]):
    """The merge, the clock, the timers and the co-purchase counts of one partition."""

    playbook: Playbook
    store: RecordStore
    merger: PartitionMerger[tuple[Item, P]]
    clock: PartitionClock
    recommender: Recommender
    timers: TimerHeap[str] = field(default_factory=TimerHeap)

    @classmethod
    def open(
        cls,
        topics: Sequence[str],
        mode: ClockMode,
        lateness: timedelta,
        playbook: Playbook,
        store: RecordStore,
        recommender: Recommender,
    ) -> PartitionRuntime[P]:
        return cls(
            playbook, store, PartitionMerger(topics), PartitionClock(mode, lateness), recommender
        )

    def offer(self, topic: str, position: P, item: Item) -> Refused[P] | None:
        """Queue ``item``, read at ``position`` of ``topic``, for the merge.

        A refused message waits behind what its topic still holds, so it is
        released (and its offset passed) only after them; with nothing held it
        is handed straight back, for the caller to dead-letter now.
        """
        match item:
            case Rejection():
                order = self.merger.tail_key(topic)
                if order is None:
                    return Refused(position, item)
            case Claim() | ProspectHistory():
                order = merge_order(item)
            case _:
                order = order_key(item)
        self.merger.push(topic, order, (item, position))
        return None

    def drain(self, caught_up: Callable[[str], bool] = complete) -> Iterator[Result[P]]:
        """Release, in order, what no queued or future message can precede, and apply
        it: each event first moves the clock and fires the timers due before it.

        ``caught_up(topic)``: the topic has nothing more to read for now. The
        default says so of every topic: everything offered is released.
        """
        for item, position in self.merger.pop_ready(caught_up):
            match item:
                case Rejection():
                    yield Refused(position, item)
                    continue
                case Claim():
                    key = item.anonymous_id
                case ProspectHistory():
                    key = item.customer_id
                case _:
                    key = item.key
                    if self.clock.on_event(item.occurred_at):
                        yield from self.sweep()
            result = self._apply(key, item, position)
            if result is not None:
                yield result

    def tick(self, at: datetime, caught_up: Callable[[str], bool]) -> Iterator[Result[P]]:
        """A tick carrying ``at``: in wall mode the clock moves to it; in event mode
        only once the partition is idle (nothing held, no topic left to read).
        When the clock moves, the timers due before it fire."""
        idle = not self.merger.buffered and not self.merger.blocking(caught_up)
        if self.clock.on_tick(at, idle=idle):
            yield from self.sweep()

    def end(self, until: datetime) -> Iterator[Result[P]]:
        """Everything is consumed: fire every timer due up to ``until`` itself, even
        where the clock had passed ``until`` already (a late event's new timer)."""
        self.clock.end_of_input(until)
        return self.sweep()

    def sweep(self) -> Iterator[Result[P]]:
        """Fire the timers due before the clock, earliest first (ties by key)."""
        now = self.clock.now
        if now is None:
            return
        due = Due(now)
        for key in self.timers.pop_due(now):
            result = self._apply(key, due, None)
            if result is not None:
                yield result

    def _apply(self, key: str, input: Input, position: P | None) -> Applied[P] | Failed[P] | None:
        """Apply ``input`` to the record of ``key``; then write it, reschedule it and
        count its orders (once the record is written: a crash before that replays
        the event, and the record's dedup keeps the order from counting twice).
        None for a timer of a record erased since it was scheduled."""
        owned = False
        try:
            state, owned = self.store.get(key)
            if state is None and isinstance(input, Due):
                return None
            before = None if state is None else state.stage
            outcome = apply(state, input, self.playbook, self.recommender, in_place=owned)
        except Exception as exc:  # a bug must not stop the partition: the caller decides
            if owned:
                self.store.redo(key, self._replay)
            return Failed(key, input, position, exc)
        if outcome.changed:
            self.store.put(key, outcome.state, input, position)
        self.timers.set(key, next_due(outcome.state))
        for products in outcome.orders:
            self.recommender.record(products)
        return Applied(key, outcome, input, position, before)

    def _replay(self, state: CustomerState | None, input: Input) -> CustomerState | None:
        """``input`` applied again, in place, as it was applied once before: the core
        is a function of the record, the input and the playbook, so it gives the same
        record (recommendations, which the co-purchase counts since may change, are
        only ever in outputs, and these are dropped)."""
        return apply(state, input, self.playbook, self.recommender, in_place=True).state

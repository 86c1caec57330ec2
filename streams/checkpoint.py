"""A batch of the agent's work, and the one sequence that makes it durable.

Modelled on quix-streams' checkpoint: the agent hands each outcome's records,
outputs and identity-merge messages here as it goes; a commit then runs

1. produce: the outputs still held go to the producer (``streams.outbound``);
2. acknowledge: wait until the broker has every output and merge message;
3. store: write each changed record once, then the co-purchase counts, and
   wait for their changelog records (``streams.table_writes``);
4. commit: the offsets before the first message a merge still holds
   (``streams.offsets``), at most every ``LIFECYCLE_COMMIT_INTERVAL``.

and reports what became durable (``Durable``), which metrics observe.
``seal`` makes step 1 and closes the batch; ``settle`` makes steps 2 to 4. The
agent handles the next messages while the sealed batch settles (a round trip
for its outputs' acknowledgements, another for its changelog): the next
batch reads the sealed batch's records as pending ones, and seals only once
the one before it has settled, so one batch at a time is on its way.

Why this order keeps the engine exact under at-least-once delivery:

- outputs before state: a crash between 2 and 3 replays the events from the
  old records and re-sends the same trigger ids, instead of losing them;
- state before commit: no offset is committed past a state change that a
  crash could still lose (Faust commits acked offsets without waiting for
  table writes: a kill -9 in between lost the change, found by test_crash);
- one write per customer per batch: later events of the batch read the
  pending record (``BatchRecords``), so the store sees only its last state;
- a settling batch is read, never the store's older record, and its
  co-purchase counts are taken as they were when it was sealed, so nothing
  of the next batch becomes durable before that batch's own commit.

Outputs held for ``LIFECYCLE_OUTPUT_HOLD`` leave before the commit
(``after_message``): under a steady flow a batch stays open while messages
keep coming, and its first triggers would otherwise wait for all of it.
Identity-merge messages leave as soon as the message that made them is
handled: the other side of the merge should see them while the events around
the signup are still to come, as it does in the backtest.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

from faust.types import TP
from pydantic import TypeAdapter

from lifecycle.core import Input, Outcome
from lifecycle.runtime import Replay
from lifecycle.state import CustomerState, decode_record, deep_copy
from schemas.codec import dumps, encode_model, loads
from schemas.events import EventAdapter
from schemas.internal import Claim, MergeAdapter, ProspectHistory
from streams.faust_compat import FaustEvent
from streams.offsets import FirstHeld, Offsets
from streams.outbound import OutboundBatch
from streams.ports import Ports, Store
from streams.producer import Scheme
from streams.table_writes import TableWrites
from streams.turns import Turns

__all__ = [
    "LOGGED",
    "Batch",
    "BatchRecords",
    "Checkpoint",
    "Durable",
    "Kept",
    "Sealed",
    "TablePairs",
    "Tally",
]

log = logging.getLogger(__name__)


class Tally(Protocol):
    """What a batch's outcomes add to the metrics (``agents.metrics.BatchCounts``): summed
    as each outcome is handed on, applied once the batch is durable.

    A batch does not keep the outcomes themselves until then. Under a backlog it applies
    tens of thousands of inputs, and each kept outcome would hold its lists and its
    output models, encoded already: a third of a worker's objects, walked again by the
    garbage collector at every collection until the commit."""

    def add(
        self, outcome: Outcome, before: str | None, after: str | None, arrived: float | None
    ) -> None:
        """One outcome, the stage its customer had before and after it, and when its
        event reached the broker (None: a timer's or a merge's)."""

    async def apply(self, now: float, wall: bool) -> None:
        """Count it all: the batch is durable at ``now``."""


@dataclass
class Batch:
    """What the agent did since the last commit."""

    tally: Tally
    """What its outcomes add to the metrics."""
    records: dict[bytes, tuple[int, CustomerState | None]] = field(default_factory=dict)
    """The partition and latest record of every customer the batch changed (None: erase)."""
    events: dict[int, FaustEvent] = field(default_factory=dict)
    """A Faust event of each partition the batch handled, the one it is in now last."""
    partition: int = -1
    """The partition of the message being handled."""
    outputs: OutboundBatch = field(default_factory=OutboundBatch)
    merges: OutboundBatch = field(default_factory=OutboundBatch)
    """Identity-merge messages not handed to the producer yet."""
    sends: list[asyncio.Future[Any]] = field(default_factory=list)
    """Acknowledgements of the outputs and merge messages handed to the producer."""
    handled: int = 0
    """Messages handled in this batch."""
    applied: dict[bytes, list[Kept]] = field(default_factory=dict)
    """Per record in ``records``, the inputs that changed it in this batch, in order:
    what ``BatchRecords.redo`` applies again (emptied once the batch is sealed)."""
    logged: int = 0
    """Inputs in ``applied``, up to ``LOGGED``."""


@dataclass(frozen=True)
class Durable:
    """What one commit (``seal``, then ``settle``) made durable."""

    messages: int
    records: int
    tally: Tally
    """What the batch's outcomes add to the metrics, now that they are on the broker."""
    offsets: dict[TP, int]
    """Per partition, the offset everything before which is applied and durable."""


@dataclass
class Sealed:
    """A batch closed to new work, on its way to being durable (``Checkpoint.settle``)."""

    batch: Batch
    pairs: list[tuple[Store, FaustEvent, bytes, bytes]]
    """The co-purchase counts it changed, as they were when it closed, with their event."""
    safe: dict[TP, int]
    """Per partition, the offset everything before which it applied."""


Kept = Input | tuple[TypeAdapter[Any], bytes]
"""An input a batch keeps to apply again: a timer as it is, a message as the bytes it was
read from and the adapter that reads them (a parsed event is about 1.7 KB, its bytes a
few hundred, and a merge releasing a backlog can apply tens of thousands of inputs in one
batch)."""

_MERGES = (Claim, ProspectHistory)
"""The inputs an identity-merge message is read as (``MergeAdapter``)."""

LOGGED = 100_000
"""Inputs a batch keeps to redo a record (``BatchRecords``); past them, its records are
copied before each change instead, so what a batch keeps stays bounded."""


class BatchRecords:
    """The runtime's ``RecordStore`` in a worker: the batch's pending records over the table.

    A stored record is decoded once per batch (``decode_record``: the engine
    wrote it, so it is not validated again); later reads in the batch get the
    pending one. Both are the runtime's own to change in place: nothing else
    reads them while the core changes them, and most of a worker's inputs find
    their record in the batch, where a copy before each one was about a fifth
    of the core's time. A record of the sealed batch (``Checkpoint.seal``) is
    not: it is being written, so the core works on a copy, which the open batch
    then holds.

    If the core fails on a record, halfway through changing it, a record just read
    from the table is dropped (the table still has it), and the open batch's record
    is built again (``redo``): from the record as it was before this batch first
    changed it (the sealed batch's, or the table's, which has the sealed batch's
    once it is written), through the inputs the batch applied to it since. Once a
    batch has kept ``LOGGED`` inputs, its records are copied before each change, as
    a sealed batch's are, and nothing more is kept.
    """

    def __init__(self, checkpoint: Checkpoint) -> None:
        self.checkpoint = checkpoint

    def get(self, key: str) -> tuple[CustomerState | None, bool]:
        name = key.encode()
        batch = self.checkpoint.batch
        found = batch.records.get(name)
        if found is not None:
            return found[1], batch.logged < LOGGED
        return self._before(name)

    def put(self, key: str, state: CustomerState | None, cause: Input, position: object) -> None:
        name = key.encode()
        batch = self.checkpoint.batch
        batch.records[name] = (batch.partition, state)
        if batch.logged < LOGGED:
            batch.logged += 1
            kept: Kept = cause
            value = None if position is None else cast(FaustEvent, position).message.value
            if value is not None:  # a message: its bytes, read again by its adapter
                merge = isinstance(cause, _MERGES)
                adapter: TypeAdapter[Any] = MergeAdapter if merge else EventAdapter
                kept = (adapter, value)
            applied = batch.applied.get(name)
            if applied is None:
                batch.applied[name] = [kept]
            else:
                applied.append(kept)

    def redo(self, key: str, replay: Replay) -> None:
        name = key.encode()
        batch = self.checkpoint.batch
        inputs = batch.applied.get(name)
        if inputs is None:  # read from the table, not the batch's: dropped with the failure
            return
        state, owned = self._before(name)
        if state is not None and not owned:
            state = deep_copy(state)  # the sealed batch's, being written
        try:
            for kept in inputs:
                cause = kept[0].validate_json(kept[1]) if isinstance(kept, tuple) else kept
                state = replay(state, cause)
        except Exception as exc:  # the core is a function of its inputs: never seen
            log.error(
                "record not rebuilt after a core failure (%s): it keeps the failed input's changes",
                type(exc).__name__,
            )
            return
        batch.records[name] = (batch.records[name][0], state)

    def _before(self, name: bytes) -> tuple[CustomerState | None, bool]:
        """The record as it was before the open batch: the sealed batch's (a copy is
        the caller's to make), else the table's, decoded."""
        found = self.checkpoint.sealed_record(name)
        if found is not None:
            return found[1], False
        raw = self.checkpoint.customers.get(name)
        return (None, False) if raw is None else (decode_record(raw), True)


class TablePairs:
    """A partition's co-purchase counts in the ``copurchase`` table.

    Keys carry the partition, so a memory store (one dict for all partitions)
    keeps them apart; they are written while a message of that partition is
    processed, so rocksdb and the changelog keep them in that partition too.
    Counts are decoded once and kept (this partition's runtime is their only
    writer), and written at the commit, after the batch's records: an order
    is counted once its record is safely written.
    """

    def __init__(self, store: Store, partition: int) -> None:
        self.store = store
        self.prefix = f"{partition}|"
        self.known: dict[str, dict[str, int] | None] = {}
        self.dirty: set[str] = set()

    def get(self, product: str) -> dict[str, int] | None:
        if product not in self.known:
            raw = self.store.get((self.prefix + product).encode())
            self.known[product] = None if raw is None else dict(loads(raw))
        return self.known[product]

    def put(self, product: str, counts: dict[str, int]) -> None:
        self.known[product] = counts
        self.dirty.add(product)

    def take(self) -> list[tuple[bytes, bytes]]:
        """The changed counts, encoded as they are now (the next batch may change them
        before these are written)."""
        changed = [
            ((self.prefix + product).encode(), dumps(self.known[product])) for product in self.dirty
        ]
        self.dirty.clear()
        return changed


class Checkpoint:
    """The open batch, its records and co-purchase counts, and its way to the broker."""

    def __init__(
        self,
        ports: Ports,
        offsets: Offsets,
        *,
        scheme: Scheme,
        commit_interval: float,
        output_hold: float,
        tally: Callable[[], Tally],
    ) -> None:
        self.new_tally = tally
        """Makes each batch's ``Tally``."""
        self.producer = ports.producer
        self.customers = ports.customers
        self.copurchase = ports.copurchase
        self.offsets = offsets
        self.scheme = scheme
        self.commit_interval = commit_interval
        self.output_hold = output_hold
        self.batch = Batch(tally())
        self.sealed: Batch | None = None
        """The batch sealed and not yet written to the store: its records are read as
        pending ones (``BatchRecords``)."""
        self.records = BatchRecords(self)
        self.pairs: dict[int, TablePairs] = {}
        self.partitions: dict[str, list[int]] = {}
        """Each output topic's partition ids, from the producer's metadata."""
        self.commits = 0

    def forget(self) -> None:
        """A rebalance: the open batch and the cached counts go (all is read again)."""
        self.batch = Batch(self.new_tally())
        self.sealed = None
        self.pairs.clear()
        self.partitions.clear()
        self.offsets.forget()

    def begin(self, event: FaustEvent) -> None:
        """A message of ``event``'s partition is being handled."""
        self.enter(event)
        self.batch.handled += 1

    def enter(self, event: FaustEvent) -> None:
        """What follows is the work of ``event``'s partition (a message of it, or what
        its merge releases later)."""
        partition = self.batch.partition = event.message.partition
        self.batch.events[partition] = event

    @property
    def idle(self) -> bool:
        """Whether the open batch holds nothing to make durable."""
        batch = self.batch
        return not (
            batch.handled or batch.records or batch.sends or batch.outputs.held or batch.merges.held
        )

    def pairs_of(self, partition: int) -> TablePairs:
        pairs = self.pairs[partition] = TablePairs(self.copurchase, partition)
        return pairs

    def send(self, topic: str, key: bytes | None, value: bytes) -> None:
        self.batch.outputs.add(topic, key, value)

    def merge(self, topic: str, key: bytes, value: bytes) -> None:
        self.batch.merges.add(topic, key, value)

    def observe(
        self, outcome: Outcome, before: str | None, after: str | None, arrived: float | None
    ) -> None:
        """Add what ``outcome`` counts to the batch's tally (``Tally.add``), counted once
        the batch is durable; the outcome itself is not kept."""
        self.batch.tally.add(outcome, before, after, arrived)

    @property
    def pending(self) -> int:
        """Messages handled since the last commit."""
        return self.batch.handled

    def pending_record(self, key: bytes) -> tuple[int, CustomerState | None] | None:
        """The partition and record of ``key`` the open or the sealed batch holds (a
        None record: erased), or None when the store has its latest."""
        found = self.batch.records.get(key)
        return self.sealed_record(key) if found is None else found

    def sealed_record(self, key: bytes) -> tuple[int, CustomerState | None] | None:
        """The partition and record of ``key`` the sealed batch holds, not yet written."""
        sealed = self.sealed
        return None if sealed is None else sealed.records.get(key)

    async def after_message(self) -> None:
        """Merge messages leave now; outputs once held ``output_hold`` (the module's docstring)."""
        batch = self.batch
        if batch.merges.held:
            await self._dispatch(batch.merges)
        await self._release(self.output_hold)

    async def release_outputs(self) -> None:
        """The agent ran out of messages: the outputs held for a quarter of
        ``output_hold`` go now, without waiting out the rest of it."""
        await self._release(self.output_hold / 4)

    async def _release(self, held_for: float) -> None:
        """The outputs go if they have been held ``held_for`` seconds."""
        outputs = self.batch.outputs
        if outputs.held and time.monotonic() - outputs.held_since >= held_for:
            await self._dispatch(outputs)

    async def _dispatch(self, outbound: OutboundBatch) -> None:
        sent = await outbound.dispatch(self.producer, self.partitions, self.scheme)
        self.batch.sends.extend(sent)

    async def seal(self, first_held: FirstHeld) -> Sealed:
        """Close the batch: its held outputs go to the producer (step 1), and what it
        applied is noted; a new batch takes the messages that follow, and reads this
        one's records until ``settle`` has written them."""
        if self.batch.outputs.held:  # 1. produce
            await self._dispatch(self.batch.outputs)
        batch, self.batch = self.batch, Batch(self.new_tally())
        batch.applied.clear()  # its records are read, and copied, until written: never redone
        self.sealed = batch
        self.commits += 1
        pairs = [
            (self.copurchase, batch.events[partition], key, value)
            for partition, counts in self.pairs.items()
            if counts.dirty and partition in batch.events
            for key, value in counts.take()
        ]
        return Sealed(batch, pairs, self.offsets.safe(first_held))

    async def settle(self, sealed: Sealed, *, offsets_now: bool = False) -> Durable:
        """Steps 2 to 4 for a sealed batch, the next batch may be under way meanwhile;
        the offsets are committed when ``commit_interval`` has passed since the last
        time, or ``offsets_now``."""
        batch = sealed.batch
        if batch.sends:  # 2. acknowledge
            await asyncio.gather(*batch.sends)
        writes = TableWrites()  # 3. store, in turns of the event loop (``streams.turns``)
        turns = Turns()
        for key, (partition, state) in batch.records.items():
            value = None if state is None else encode_model(state)  # None: a tombstone
            writes.put(self.customers, batch.events[partition], key, value)
            await turns.passed()
        for store, event, key, value in sealed.pairs:
            writes.put(store, event, key, value)
        if self.sealed is batch:
            self.sealed = None  # the store has its records now
        await writes.send(self.producer)
        offsets = self.offsets
        offsets.durable = sealed.safe
        if offsets_now or time.monotonic() - offsets.committed_at >= self.commit_interval:
            await offsets.commit()  # 4. commit
        return Durable(batch.handled, len(batch.records), batch.tally, dict(offsets.durable))

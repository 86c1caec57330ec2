"""The lifecycle agent: Kafka in, a ``lifecycle.runtime`` per partition in the middle, Kafka out.

I/O only. Validation (the ingest step) runs inline in the same agent: a
separate ingest hop would double Faust's per-message cost for no gain in
safety, since a bad message is dead-lettered here before it touches state.

Messages are handled in batches: whatever the stream has buffered (and gets
within ``LIFECYCLE_BATCH_LINGER`` once it runs dry), up to
``LIFECYCLE_BATCH_MAX``. Per-message work is only the merge; everything that
costs a broker round trip is paid once per batch (``commit``): Faust's own
per-message machinery is the ceiling, and a flush per event was most of the
time left under it. Outputs go out as a few record batches
(``streams.outbound``) once they have waited ``LIFECYCLE_OUTPUT_HOLD`` or at
the commit, whichever comes first, so a long batch does not delay its first
triggers; the commit waits for their acknowledgements.

These rules keep it exact under at-least-once delivery:

- records of each topic-partition applied strictly in offset order from the
  group's resume point (``streams.delivery``): Faust may hand out records
  fetched before its post-rebalance seek, then drop the earlier ones;
- concurrency 1 and offsets committed by the agent itself, only up to the
  oldest message the cross-topic merge still holds and only once the batch
  that applied the rest is durable, so a held message is never committed
  early (faust-streaming issue 606 is the same hazard with concurrency > 1),
  and never by Faust's ack bookkeeping, which skips a single unacked offset
  and forgets what it tracked at each rebalance (the inbound topics record
  no acks: ``streams.faust_compat``);
- outputs before state: a batch's outputs are acknowledged by the broker
  before its new records are written, so a crash in between replays the
  events from the old records and re-sends the same ids, instead of losing them;
- state before commit: the records' changelog messages are acknowledged by
  the broker (once per batch) before the batch's offsets may be committed, so no
  offset is committed past a state change that a crash could still lose;
- one write per customer per batch: later events of the batch read the
  pending record, so the table sees only the batch's last state of each key;
- per-partition merge (``lifecycle.ordering``): events of one customer are
  applied in event-time order whichever topic brought them;
- one partition runtime (``lifecycle.runtime``) per partition makes the
  driver's steps (merge release, clock, timer sweep, apply) exactly as the
  backtest makes them; this agent feeds it messages and ticks, reads and
  writes records for it (``BatchRecords``) and hands on what it yields;
- a rebalance starts over: the partitions' runtimes, the pending batch and what
  the merges hold are dropped once the message in flight is handled, and the
  durable offsets committed; Faust seeks every partition it assigns back to
  its committed offset, so all of it is read again, in the same order.

Timers follow DESIGN.md's processing model: deadlines live in the customer
record (changelogged with it); each partition has an in-memory heap of
(due, customer), rebuilt from the table after a rebalance, and its timers
fire here, while a message of that same partition (an event, or a tick
sent to that partition) is being processed, so fired timers write the
table and its changelog exactly like events do, in one serial order.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
import traceback
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

from aiokafka import TopicPartition
from faust.types import TP
from pydantic import ValidationError

from agents.metrics import EngineMetrics
from agents.misrouting import RouteCheck
from agents.web import serve
from lifecycle.clock import ClockMode
from lifecycle.core import Due, Outcome
from lifecycle.ordering import PartitionMerger
from lifecycle.playbook import Playbook
from lifecycle.recommend import Recommender
from lifecycle.runtime import Applied, Failed, Item, PartitionRuntime, Refused, Result
from lifecycle.state import CustomerState
from schemas.codec import dumps, encode_model, loads
from schemas.events import Event
from schemas.inbound import Reason, Rejection, check_routing, dead_letter, parse_event
from schemas.internal import Claim, MergeAdapter, ProspectHistory, RecordSummary, Tick
from schemas.records import topic_of
from streams.app import Topology, scan_uncached
from streams.copy_watermark import CopyWatermarks
from streams.delivery import Delivery, Verdict
from streams.faust_compat import (
    FaustEvent,
    FaustMessage,
    commit_exactly,
    fetch_positions,
    kafka_producer,
    partition_stores,
    polled_at,
)
from streams.fetching import FetchHold
from streams.lag import LagProbe, lag_probes
from streams.outbound import OutboundBatch
from streams.producer import partitioner
from streams.rekey import read_source
from streams.table_writes import TableWrites

__all__ = ["LifecycleProcessor", "register"]

log = logging.getLogger(__name__)

Runtime = PartitionRuntime[FaustEvent]
"""A partition's runtime; an item's position is the Faust event that brought it."""


class OffsetsNotCommittedError(Exception):
    """The group coordinator did not take the commit of some partitions' offsets."""


def _where(message: FaustMessage) -> tuple[str, int, int]:
    """Where a message sits, for logs: never its key or value (personal data)."""
    return message.topic, message.partition, message.offset


class TablePairs:
    """A partition's co-purchase counts in the ``copurchase`` table.

    Keys carry the partition, so a memory store (one dict for all partitions)
    keeps them apart; they are written while a message of that partition is
    processed, so rocksdb and the changelog keep them in that partition too.
    Counts are decoded once and kept (this runtime is their only writer), and
    written back once per batch (``flush``), after the batch's records: an
    order is counted once its record is safely written.
    """

    def __init__(self, table: Any, partition: int) -> None:
        self.table = table
        self.prefix = f"{partition}|"
        self.known: dict[str, dict[str, int] | None] = {}
        self.dirty: set[str] = set()

    def get(self, product: str) -> dict[str, int] | None:
        if product not in self.known:
            raw = self.table.get((self.prefix + product).encode())
            self.known[product] = None if raw is None else dict(loads(raw))
        return self.known[product]

    def put(self, product: str, counts: dict[str, int]) -> None:
        self.known[product] = counts
        self.dirty.add(product)

    def flush(self, writes: TableWrites, event: FaustEvent) -> None:
        """Write the changed counts, in the partition of ``event`` (one of this runtime's)."""
        for product in self.dirty:
            writes.put(
                self.table, event, (self.prefix + product).encode(), dumps(self.known[product])
            )
        self.dirty.clear()


@dataclass
class Batch:
    """What a batch did, kept until ``LifecycleProcessor.commit`` makes it durable."""

    records: dict[bytes, tuple[int, CustomerState | None]] = field(default_factory=dict)
    """The partition and latest record of every customer the batch changed (None: erase)."""
    events: dict[int, FaustEvent] = field(default_factory=dict)
    """A Faust event of each partition the batch handled, the one it is in now last."""
    partition: int = -1
    """The partition of the message being handled."""
    outputs: OutboundBatch = field(default_factory=OutboundBatch)
    merges: list[tuple[bytes | None, bytes]] = field(default_factory=list)
    """Identity-merge messages not sent yet (``LifecycleProcessor._send``)."""
    sends: list[Awaitable[Any]] = field(default_factory=list)
    """Acknowledgements of the outputs and merge messages handed to the producer."""
    observed: list[tuple[Outcome, str | None, float | None]] = field(default_factory=list)
    """Each outcome, the stage its customer had before it, and when its event arrived."""
    handled: int = 0
    """Messages handled in this batch."""


def _received_at(message: FaustMessage) -> datetime | None:
    """The record's timestamp (Faust gives seconds): the anchor of the future bound."""
    stamp = message.timestamp
    return None if stamp is None or stamp < 0 else datetime.fromtimestamp(stamp, UTC)


def _stage_of(state: CustomerState | None) -> str | None:
    return state.stage.value if state is not None and state.stage else None


class BatchRecords:
    """The runtime's ``RecordStore`` in a worker: the batch's pending records over the table.

    A record just read from the table is the runtime's own to change in place:
    if the core fails halfway, it is dropped and the table still has the old
    one. A pending record is not: the batch writes it at commit, so the core
    must work on a copy. A record put is pending until ``commit`` writes it.
    """

    def __init__(self, processor: LifecycleProcessor) -> None:
        self.processor = processor

    def get(self, key: str) -> tuple[CustomerState | None, bool]:
        batch = self.processor.batch
        pending = batch.records.get(key.encode())
        if pending is not None:
            return pending[1], False
        raw = self.processor.table.get(key.encode())
        return (None, False) if raw is None else (CustomerState.model_validate_json(raw), True)

    def put(self, key: str, state: CustomerState | None) -> None:
        batch = self.processor.batch
        batch.records[key.encode()] = (batch.partition, state)


def _log_core_failure(doing: str, exc: Exception) -> None:
    """Type and frames only: exception texts can quote personal fields."""
    log.error(
        "lifecycle core failed %s with %s:\n%s",
        doing,
        type(exc).__name__,
        "".join(traceback.format_tb(exc.__traceback__)),
    )


def encode_tick(at: datetime | None, app_id: str) -> bytes:
    return encode_model(Tick(at=at, app=app_id))


def decode_tick(value: bytes | None, app_id: str) -> datetime | None:
    """The time a tick carries; None for an empty tick or another app's (a replay
    next to the live app must not take the live wall clock): it only wakes the merge."""
    try:
        tick = Tick.model_validate_json(value or b"{}")
    except ValidationError:  # not JSON, not an object, or no RFC 3339 time
        return None
    return tick.at if tick.app == app_id else None


def earliest_timer(raw: bytes) -> datetime | None:
    """A stored record's next deadline, read without validating the whole record."""
    return RecordSummary.model_validate_json(raw).earliest_timer


class LifecycleProcessor:
    """Everything the agent does with one message; the agent loop only feeds it."""

    def __init__(  # noqa: PLR0915 - one statement per attribute
        self, topology: Topology, playbook: Playbook, metrics: EngineMetrics | None = None
    ) -> None:
        self.metrics = metrics or EngineMetrics()
        self.topology = topology
        self.playbook = playbook
        self.table = topology.customers
        self.settings = topology.settings
        self.inbound_topics = self.settings.event_topics  # re-keyed copies in repartition mode
        self.routes = RouteCheck(self.settings, self.metrics)
        self.copies = CopyWatermarks(self.settings.repartition_of)  # see ``watch_copies``
        self.ticks_topic = self.settings.topic("ticks")
        self.merge_topic = self.settings.topic("merge")
        self.runtime_topics = {*self.inbound_topics, self.merge_topic}
        self.limits = self.settings.input_limits
        self.read_ahead = self.settings.read_ahead
        self.runtimes: dict[int, Runtime] = {}
        """Each input partition's runtime, by partition number."""
        self.records = BatchRecords(self)
        self.pairs: dict[int, TablePairs] = {}
        self.output_partitions: dict[str, list[int]] = {}
        """Each output topic's partition ids, from the producer's metadata."""
        self.batch = Batch()
        self.delivery: Delivery[TP] = Delivery()
        self.resume_pending = True
        """The assignment changed: read each partition's resume point from the broker."""
        self.resuming: asyncio.Future[None] | None = None
        self.assignments = 0
        """Counts assignments, so resume points read for an older one are thrown away."""
        self.probes = lag_probes(self.settings)  # the agent's group first
        self.probe: LagProbe = self.probes[0]
        self._probe_started = False
        self._probe_lock = asyncio.Lock()
        self.blocked_since: dict[int, float] = {}
        self.stalls_checked = 0.0
        """When ``Delivery.stalled`` was last asked (monotonic seconds)."""
        self.forced_warned: dict[int, float] = {}
        """When each partition last warned of messages released past the merge's bound."""
        self.latest_event: datetime | None = None
        self.timers_stale = True
        """The heaps must be rebuilt from the table: at start and after a rebalance."""
        self.applied = 0
        self.batches = 0
        self.busy = asyncio.Lock()
        """Held while a message is handled and its batch committed, so a rebalance
        waits for both to finish."""
        self.broker_reachable = True
        """False from a lag measurement that got no answer in time until one that does."""
        self.fresh_after: dict[int, int] = {}
        """Per partition, the newest fetch (ms, ``polled_at``) that brought a message now
        held: an empty topic counts as caught up only on a fetch at least that recent.
        Kafka orders nothing across partitions: a highwater read from an older fetch
        than the one that brought another topic's message may miss an event published
        before that message (found by the rebalance test, a browse applied after the
        cart event published after it)."""
        self.fetch_hold = FetchHold(topology.app)
        """Inbound topic-partitions this worker stopped fetching (``_read_less``)."""
        self.ticks_seen: dict[TP, int] = {}
        self.durable: dict[TP, int] = {}
        """The offsets up to which everything is applied and on the broker."""
        self.committed: dict[TP, int] = {}
        self.committed_at = 0.0
        self._reported = (time.monotonic(), 0, 0)
        self.stopping = False
        """Set by ``drain``: messages handed over after it are left for the next start."""

    async def on_revoked(self) -> None:
        """Commit what is durable, then start over (see the module's rules).

        Faust seeks every partition it assigns after a rebalance, kept ones too,
        back to the committed offset, so what the merges hold and the pending
        batch are read again. Keeping them would apply them twice; keeping a
        runtime's cached co-purchase counts would count their orders twice.
        """
        await self.commit_offsets(self.durable)
        self._forget()

    async def drain(self) -> bool:
        """Finish the message in flight and make its batch durable, then take no more.

        Called when the worker is told to stop (SIGTERM, SIGINT), before Faust
        stops its consumer and tables: outputs acknowledged, records and their
        changelog written, offsets committed, as at any commit. Without it a
        clean stop dropped the pending batch whose outputs had already left, so
        the next start applied those events again and re-sent their outputs (a
        rolling deploy did that on every worker). Bounded by
        ``LIFECYCLE_STOP_TIMEOUT``: past it, or if the broker refuses, the
        batch is read again on the next start (at-least-once, as after a kill).
        Returns whether everything handled is durable.
        """
        self.stopping = True
        started = time.monotonic()
        try:
            async with asyncio.timeout(self.settings.stop_timeout):
                async with self.busy:
                    handled = self.pending
                    await self.commit()
                    await self.commit_offsets(self.durable)
            unsaved = [tp for tp, o in self.durable.items() if self.committed.get(tp, -1) < o]
            if unsaved:
                raise OffsetsNotCommittedError(len(unsaved))
        except Exception as exc:  # the broker may be gone: the next start reads it again
            log.warning(
                "stop: pending batch not made durable within %.0f s (%s); "
                "the next start reads it again",
                self.settings.stop_timeout,
                type(exc).__name__,
            )
            return False
        log.info(
            "stop: last batch of %d message(s) written and offsets committed in %.1f s",
            handled,
            time.monotonic() - started,
        )
        return True

    def _forget(self) -> None:
        dropped = sum(runtime.merger.buffered for runtime in self.runtimes.values())
        self.batch = Batch()
        self.runtimes.clear()
        self.pairs.clear()
        self.output_partitions.clear()
        self.delivery.clear()
        self.resume_pending = True
        self.resuming = None
        self.assignments += 1
        self.ticks_seen.clear()
        self.fetch_hold.clear()
        self.durable.clear()
        self.committed.clear()
        self.blocked_since.clear()
        self.fresh_after.clear()
        self.timers_stale = True
        if dropped:
            log.info("rebalance: %d held message(s) dropped, to be read again", dropped)

    def on_partitions_assigned(self, _assigned: set[TP]) -> None:
        """Start over even if no revocation came first: every partition resumes from
        the group's committed offset, and the heaps are rebuilt from the table.
        The resume points are asked for now, so the first message does not wait."""
        self._forget()
        self.resuming = asyncio.ensure_future(self._resume(self.assignments))

    async def started_probe(self) -> LagProbe:
        """The broker client for lag and resume points, opened on first use."""
        async with self._probe_lock:
            if not self._probe_started:
                for probe in self.probes:
                    await probe.start()
                self._probe_started = True
        return self.probe

    async def watch_copies(self) -> None:
        """``repartition`` mode: note when (ms) each re-keyed copy was first seen complete,
        its inbound topic committed to its current end by the re-keying group (the
        broker's view, so every worker's share counts; ``streams.copy_watermark``). A copy
        counts as caught up only on a fetch after that (``_caught_up``): in a replay the
        copies fill while the agent reads them, and an empty copy must not let a later
        event of another topic go first.

        The fetch's time is taken when its answer arrives, so one built before the last
        copies and answered after this check could still pass: a window of one answer's
        transit, which the check's own round trips make wider than that in practice.
        """
        probe = self.probes[-1]
        try:
            async with asyncio.timeout(5.0):
                await self.started_probe()
                rows = await probe.measure()
        except Exception:  # the broker may be away: the copies stay as last seen
            return
        self.copies.observe(rows, int(time.time() * 1000))

    async def _resume(self, assignment: int) -> None:
        """Each assigned partition's resume point, from the broker: where Faust's
        seek put the consumer (only this worker commits them, and not before this)."""
        consumer: Any = self.topology.app.consumer
        tps = [
            TopicPartition(tp.topic, tp.partition)
            for tp in consumer.assignment()
            if tp.topic in self.runtime_topics
        ]
        try:
            async with asyncio.timeout(self.settings.lag_interval + 5.0):
                probe = await self.started_probe()
                points = await probe.resume_points(tps)
        except Exception as exc:  # the broker may be away: asked again on the next record
            log.warning("resume points not read (%s); trying again", type(exc).__name__)
            return
        if assignment != self.assignments:
            return  # a later rebalance has begun: its own points will be read
        self.delivery.start({TP(tp.topic, tp.partition): offset for tp, offset in points.items()})
        self.committed.update(self.delivery.expected)
        self.resume_pending = False

    async def _admit(self, message: FaustMessage) -> bool:
        """Whether ``message`` is the next one of its partition (see ``streams.delivery``)."""
        if self.resume_pending:
            if self.resuming is None or self.resuming.done():
                self.resuming = asyncio.ensure_future(self._resume(self.assignments))
            await self.resuming
        tp = message.tp
        verdict = self.delivery.check(tp, message.offset)
        if verdict is Verdict.AHEAD and self.delivery.should_seek(tp, time.monotonic()):
            await self._seek(tp)
        return verdict is Verdict.TAKE

    async def _seek(self, tp: TP) -> None:
        offset = self.delivery.expected[tp]
        log.info("%s[%d]: records before %d skipped by the fetch; seeking back", *tp, offset)
        consumer: Any = self.topology.app.consumer
        try:
            await consumer.seek_wait({tp: offset})
        except Exception as exc:  # retried while the gap remains (Delivery.overdue)
            log.warning("%s[%d]: seek failed (%s)", *tp, type(exc).__name__)

    async def handle(self, event: FaustEvent) -> None:
        """Merge one message in, apply what it releases; durable only at ``commit``.

        Outputs held for ``LIFECYCLE_OUTPUT_HOLD`` go to the producer now, before
        the commit: under a steady flow a batch stays open while messages keep
        coming, and its first triggers would otherwise wait for all of it.
        """
        await self._handle(event)
        if self.batch.merges:
            await self._send_merges()
        outputs = self.batch.outputs
        if outputs.held and time.monotonic() - outputs.held_since >= self.settings.output_hold:
            await self._dispatch_outputs()

    async def _dispatch_outputs(self) -> None:
        producer: Any = self.topology.app.producer
        outputs = self.batch.outputs
        sent = await outputs.dispatch(
            kafka_producer(producer), self.output_partitions, self.routes.scheme
        )
        self.batch.sends.extend(sent)

    async def _handle(self, event: FaustEvent) -> None:
        if self.timers_stale:
            self.rebuild_timers()
        message = event.message
        tick = message.topic == self.ticks_topic
        if not tick and not await self._admit(message):
            return
        partition = self.batch.partition = message.partition
        self.batch.events[partition] = event
        self.batch.handled += 1
        runtime = self.runtime_of(partition)
        if not tick:
            item = (
                self._internal(message)
                if message.topic == self.merge_topic
                else self._accept(message)
            )
            # A refusal is dead-lettered in offset order, behind what its topic still
            # holds, so the committed offset never passes an event not yet applied.
            refused = runtime.offer(message.topic, event, item)
            if refused is not None:
                self._dead_letter(message, refused.rejection)
                return
            if runtime.merger.depth(message.topic) >= self.read_ahead:
                self._read_less(message.tp)
            polled = polled_at(self.topology.app.consumer, message.tp)
            if polled is not None and polled > self.fresh_after.get(partition, 0):
                self.fresh_after[partition] = polled
            self._release(partition)
            return
        now = time.monotonic()
        for tp in self.delivery.overdue(now):
            await self._seek(tp)
        if now - self.stalls_checked >= 1.0:  # ticks come per partition
            self.stalls_checked = now
            positions = fetch_positions(self.topology.app.consumer, self.delivery.expected)
            for tp in self.delivery.stalled(positions, now):
                log.info(
                    "%s[%d]: fetched past %d but never delivered", *tp, self.delivery.expected[tp]
                )
                await self._seek(tp)
        self.fetch_hold.retry()
        self._release(partition)
        at = decode_tick(message.value, self.settings.app_id)
        if at is not None:
            self.hand_on(runtime.tick(at, self._caught_up(partition)))
        self.ticks_seen[message.tp] = message.offset

    def runtime_of(self, partition: int) -> Runtime:
        """The runtime of ``partition``, opened on its first input after a rebalance."""
        runtime = self.runtimes.get(partition)
        if runtime is None:
            pairs = self.pairs[partition] = TablePairs(self.topology.copurchase, partition)
            runtime = self.runtimes[partition] = PartitionRuntime.open(
                [*self.inbound_topics, self.merge_topic],
                self.settings.clock,
                self.settings.lateness,
                self.playbook,
                self.records,
                Recommender(pairs, self.playbook.recommendations),
            )
        return runtime

    def stored_by_partition(self) -> Iterator[tuple[int, bytes, bytes]]:
        """(partition, key, record) of every customer this worker holds."""
        store: Any = self.table.data
        dbs = partition_stores(store)  # rocksdb keeps one db per partition: exact
        if dbs is not None:
            for partition, db in list(dbs.items()):
                for key, raw in scan_uncached(db, store.offset_key):
                    yield partition, key, raw
            return
        partition_of = partitioner(self.settings.partitions, self.routes.scheme)  # memory: one dict
        for key, raw in self.table.items():
            yield partition_of(key.decode()), key, raw

    def rebuild_timers(self) -> None:
        """Every partition's heap from the table: O(customers held), once per rebalance.

        It also restores ``latest_event`` from the records' last event times: in
        event mode the ticks carry it, and only they move an idle partition's
        clock at the end of input. A worker restarted after its last events were
        committed reads none of them again; its ticks must still carry that
        time, or the timers due between a partition's last event and the
        input's would wait for the next event.
        """
        started = time.monotonic()
        entries: dict[int, list[tuple[str, datetime]]] = defaultdict(list)
        stages: Counter[str] = Counter()
        latest = self.latest_event
        for partition, key, raw in self.stored_by_partition():
            summary = RecordSummary.model_validate_json(raw)
            due, stage, last_event_at = summary.earliest_timer, summary.stage, summary.last_event_at
            if due is not None:
                entries[partition].append((key.decode(), due))
            if stage is not None:
                stages[stage] += 1
            if last_event_at is not None and (latest is None or last_event_at > latest):
                latest = last_event_at
        self.latest_event = latest
        self.metrics.stages(stages.items())
        for partition, runtime in self.runtimes.items():
            runtime.timers.rebuild(entries.pop(partition, []))
        for partition, found in entries.items():
            self.runtime_of(partition).timers.rebuild(found)
        self.timers_stale = False
        log.info(
            "timer heaps rebuilt: %d pending in %.2fs",
            sum(len(runtime.timers) for runtime in self.runtimes.values()),
            time.monotonic() - started,
        )

    def _internal(self, message: FaustMessage) -> Item:
        try:
            return MergeAdapter.validate_json(message.value or b"")  # no value: invalid too
        except ValidationError:  # not ours: only the engine writes this topic
            return Rejection(Reason.INVALID_FIELD, "not a merge message")

    def _accept(self, message: FaustMessage) -> Item:
        """The validated event, or the reason it is refused (counted here, once)."""
        parsed = parse_event(message.value, limits=self.limits, received_at=_received_at(message))
        if not isinstance(parsed, Rejection):
            logical = self.topology.logical_topic.get(message.topic)
            rejection = check_routing(parsed, message.key, logical)
            if rejection is None:
                self.routes.check(message)
                return parsed
            self.metrics.event(parsed.type, "dead_lettered", rejection.reason.value)
            return rejection
        self.metrics.event(parsed.event_type or "unknown", "dead_lettered", parsed.reason.value)
        return parsed

    def _caught_up(self, partition: int) -> Callable[[str], bool]:
        """Whether a topic of ``partition`` has nothing more to read, asked of the
        consumer once per topic: the answer holds while the merge releases (the
        agent reads nothing meanwhile), and the merge asks it for every message."""
        consumer: Any = self.topology.app.consumer
        fresh_after = self.fresh_after.get(partition, 0)
        copies = self.copies if self.settings.repartitioned else None

        @functools.cache
        def caught_up(topic: str) -> bool:
            tp = TP(topic, partition)
            highwater = consumer.highwater(tp)
            if highwater is None:
                return False
            polled = polled_at(consumer, tp)
            if polled is None or polled < fresh_after:
                return False  # its highwater may predate a message held from another topic
            if (
                copies is not None
                and topic != self.merge_topic
                and not copies.complete_before(topic, polled)
            ):
                return False  # its inbound topic may hold records not copied yet
            expected = self.delivery.expected.get(tp)
            return expected is not None and expected >= int(highwater)

        return caught_up

    def _release(self, partition: int) -> None:
        runtime = self.runtimes.get(partition)
        if runtime is None or not runtime.merger.buffered:
            return
        merger = runtime.merger
        caught_up = self._caught_up(partition)
        released = self.hand_on(runtime.drain(caught_up))
        if merger.forced:
            self.warn_forced(partition, merger, caught_up)
        if released or not merger.buffered:
            self.blocked_since.pop(partition, None)
        else:
            # How long this partition has made no progress waiting for a topic.
            since = self.blocked_since.setdefault(partition, time.monotonic())
            if time.monotonic() - since > self.settings.max_idle:
                log.warning(
                    "partition %d: waited %.0fs for %s; releasing without it",
                    partition,
                    self.settings.max_idle,
                    ", ".join(merger.blocking(caught_up)),
                )
                self.hand_on(runtime.drain())
                self.blocked_since.pop(partition, None)
        if not merger.buffered:
            self.fresh_after.pop(partition, None)
        if self.fetch_hold.held:
            self._read_more(partition, merger)

    def _read_less(self, tp: TP) -> None:
        """Stop fetching ``tp``: the merge holds ``LIFECYCLE_READ_AHEAD`` of its messages.

        Faust hands over all it fetches, and the merge holds a topic's messages
        until every other topic of the partition can say what comes first: in a
        replay it held most of the backlog (94,000 of 121,610 messages, 1 GB of
        RSS). A topic with messages queued never blocks the merge, so pausing it
        cannot stall its partition. Merge messages are never paused: the
        partition may be waiting for them.
        """
        if tp.topic == self.merge_topic:
            return
        if self.fetch_hold.hold(tp):
            self.metrics.fetch_pauses.inc()

    def _read_more(self, partition: int, merger: PartitionMerger[Any]) -> None:
        """Fetch again the held topics of ``partition`` half applied since."""
        low = self.read_ahead // 2
        self.fetch_hold.release(
            [
                tp
                for tp in self.fetch_hold.held
                if tp.partition == partition and merger.depth(tp.topic) <= low
            ]
        )

    def warn_forced(
        self, partition: int, merger: PartitionMerger[Any], caught_up: Callable[[str], bool]
    ) -> None:
        """Say, at most every ten seconds per partition, that the merge released
        messages past its bound (``PartitionMerger.forced``): a replay may differ."""
        now = time.monotonic()
        last = self.forced_warned.get(partition)
        if last is not None and now - last < 10.0:
            return
        self.forced_warned[partition] = now
        log.warning(
            "partition %d: the merge held over %d messages; %d released without "
            "waiting for %s, so their order may differ from a replay's",
            partition,
            merger.max_buffered,
            merger.forced,
            ", ".join(merger.blocking(caught_up)) or "a topic",
        )
        merger.forced = 0

    def hand_on(self, results: Iterator[Result[FaustEvent]]) -> int:
        """Hand on what the runtime did, in its order; how many messages it released
        (the timers it fired are not messages)."""
        released = 0
        for result in results:
            if result.position is not None:
                released += 1
            match result:
                case Applied():
                    self._applied(result)
                case Failed():
                    self._failed(result)
                case Refused():
                    self._dead_letter(result.position.message, result.rejection)
        return released

    def _applied(self, result: Applied[FaustEvent]) -> None:
        """The outputs of what the runtime applied (its record is pending already)."""
        key, outcome, cause = result.key.encode(), result.outcome, result.input
        before = None if result.before is None else result.before.value
        match cause:
            case Due():
                self._emit(key, outcome, before)
            case Claim():
                history = outcome.history
                if history is None:
                    return  # merged before, or never seen: nothing to do
                self._send(self.merge_topic, history.customer_id.encode(), encode_model(history))
                self._emit(key, outcome, before)
            case ProspectHistory():
                if not outcome.duplicate:
                    self._emit(key, outcome, before)
            case _:
                self._saw(cause)
                self.metrics.event(cause.type, "duplicate" if outcome.duplicate else "accepted")
                self.applied += 1
                if outcome.changed:
                    arrived = None if result.position is None else result.position.message.timestamp
                    self._emit(key, outcome, before, arrived)

    def _failed(self, result: Failed[FaustEvent]) -> None:
        """A bug must not stop the partition: a timer is dropped, a message parked."""
        cause, exc = result.input, result.error
        if result.position is None:  # a timer: no message to park
            _log_core_failure("firing timers", exc)
            return
        message = result.position.message
        _log_core_failure("on {}[{}]@{}".format(*_where(message)), exc)
        if not isinstance(cause, Due | Claim | ProspectHistory):
            self._saw(cause)
            self.metrics.event(cause.type, "dead_lettered", Reason.PROCESSING_ERROR.value)
        self._dead_letter(
            message, Rejection(Reason.PROCESSING_ERROR, f"{type(exc).__name__} in core")
        )

    def _saw(self, event: Event) -> None:
        """The latest event time released, which ticks carry in event mode."""
        if self.latest_event is None or event.occurred_at > self.latest_event:
            self.latest_event = event.occurred_at

    def load(self, key: bytes) -> CustomerState | None:
        """The record of ``key`` (validated), or None for a new or erased customer:
        the current batch's pending one if it changed it, else the stored one."""
        return self.records.get(key.decode())[0]

    def clock_of(self, key: bytes) -> datetime | None:
        """The clock of the partition that holds ``key`` on this worker (None before
        its first input): what ``/customers/{id}`` reads scores at in event mode."""
        runtime = self.runtimes.get(self._partition_holding(key))
        return None if runtime is None else runtime.clock.now

    def _partition_holding(self, key: bytes) -> int:
        """The partition of ``key``'s record: the batch's, the store's that has it, or
        the producers' partitioner for a key stored nowhere yet."""
        pending = self.batch.records.get(key)
        if pending is not None:
            return pending[0]
        dbs = partition_stores(self.table.data)  # rocksdb: one db per partition
        for partition, db in list((dbs or {}).items()):
            if db.get(key) is not None:
                return int(partition)
        return partitioner(self.settings.partitions)(key.decode())

    def _emit(
        self,
        key: bytes,
        outcome: Outcome,
        before: str | None,
        arrived: float | None = None,
    ) -> None:
        """Hold the outputs (and identity claims) for the producer; the new record is
        pending already (``BatchRecords.put``), and ``commit`` writes it once the
        broker has the outputs: a crash in between re-sends the same ids.

        ``arrived`` is when the causing event reached the broker (None for timers),
        the start of the event-to-trigger latency.
        """
        for claim in outcome.claims:
            self._send(self.merge_topic, claim.anonymous_id.encode(), encode_model(claim))
        for record in outcome.emitted:
            self._send(self.settings.topic(topic_of(record)), key, encode_model(record))
        self.batch.observed.append((outcome, before, arrived))

    def _send(self, topic: str, key: bytes | None, value: bytes) -> None:
        """Held a few milliseconds (``handle``), then sent as record batches
        (``streams.outbound``): Faust's ``Topic.send`` adds a future, a callback chain
        and sensor calls per message, and aiokafka's ``send`` a future of its own.

        Identity-merge messages go once the message that made them is handled
        (``_send_merges``): the other side of the merge should see them while the
        events around the signup are still to come, as it would in the backtest.
        """
        if topic == self.merge_topic:
            self.batch.merges.append((key, value))
        else:
            self.batch.outputs.add(topic, key, value)

    async def _send_merges(self) -> None:
        producer: Any = self.topology.app.producer
        for key, value in self.batch.merges:
            sent = await producer.send(self.merge_topic, key, value, None, None, None)
            self.batch.sends.append(sent)
        self.batch.merges.clear()

    async def step(self, event: FaustEvent, buffered: asyncio.Queue[Any]) -> None:
        """Handle one message the stream handed over; commit when the batch is full or
        the stream's buffer ran dry. After ``drain`` nothing more is applied: what
        comes is left uncommitted, for the next start."""
        async with self.busy:
            if self.stopping:
                return
            await self.handle(event)
            if self.pending < self.settings.batch_max and buffered.empty():
                # Faust hands fetched messages over one by one, between the
                # agent's steps: let it hand over what it has before paying a
                # commit's round trips (outputs leave on their own hold; only the
                # records' writes and the offsets wait).
                await asyncio.sleep(self.settings.batch_linger)
            if self.pending >= self.settings.batch_max or buffered.empty():
                await self.commit()

    @property
    def pending(self) -> int:
        """Messages handled since the last commit."""
        return self.batch.handled

    async def commit(self) -> None:
        """Make the batch durable: outputs on the broker, then each changed record
        written once and its changelog record acknowledged (``streams.table_writes``);
        then its offsets may be committed.

        Faust commits acked offsets without waiting for table writes, so without
        that wait a kill -9 in between lost the state change (found by test_crash).
        """
        if self.batch.outputs.held:
            await self._dispatch_outputs()
        batch, self.batch = self.batch, Batch()
        self.batches += 1
        if batch.sends:
            await asyncio.gather(*batch.sends)
        for outcome, before, arrived in batch.observed:
            self._observe(outcome, before, arrived)
        writes = TableWrites()
        for key, (partition, state) in batch.records.items():
            value = None if state is None else encode_model(state)  # None: a tombstone
            writes.put(self.table, batch.events[partition], key, value)
        for partition, pairs in self.pairs.items():
            if pairs.dirty and partition in batch.events:
                pairs.flush(writes, batch.events[partition])
        producer: Any = self.topology.app.producer
        await writes.send(kafka_producer(producer))
        self.durable = self.safe_offsets()
        if time.monotonic() - self.committed_at >= self.settings.commit_interval:
            await self.commit_offsets(self.durable)

    def safe_offsets(self) -> dict[TP, int]:
        """Per partition, the next offset to read, or the first one a merge still
        holds: everything before it is applied (durable once the batch is)."""
        offsets = {tp: seen + 1 for tp, seen in self.ticks_seen.items()}
        for tp, expected in self.delivery.expected.items():
            runtime = self.runtimes.get(tp.partition)
            first = next(iter(runtime.merger.queued(tp.topic)), None) if runtime else None
            offsets[tp] = expected if first is None else int(first[1].message.offset)
        return offsets

    async def commit_offsets(self, offsets: dict[TP, int]) -> None:
        """Commit ``offsets`` for this group: the engine's own commits (see the rules;
        why not Faust's: ``streams.faust_compat``)."""
        self.committed_at = time.monotonic()
        todo = {tp: o for tp, o in offsets.items() if o > self.committed.get(tp, -1)}
        if todo and await commit_exactly(self.topology.app.consumer, todo):
            self.committed.update(todo)

    def _observe(self, outcome: Outcome, before: str | None, arrived: float | None) -> None:
        metrics = self.metrics
        metrics.count(outcome)
        metrics.moved(before, _stage_of(outcome.state))
        now = time.time()
        for trigger in outcome.triggers:
            if arrived is not None:
                metrics.latency.labels("event").observe(max(0.0, now - arrived))
            elif self.settings.clock is ClockMode.WALL:
                metrics.latency.labels("timer").observe(
                    max(0.0, now - trigger.created_at.timestamp())
                )

    def _dead_letter(self, message: FaustMessage, rejection: Rejection) -> None:
        """The dead letter names the record the shop sent: a re-keyed copy's original."""
        topic, partition, offset = message.topic, message.partition, message.offset
        key = message.key
        source = read_source(message.headers) if self.settings.repartitioned else None
        if source is not None:
            topic, partition, offset = source.topic, source.partition, source.offset
            key = key if source.keyed else None
        record = dead_letter(
            topic=topic,
            partition=partition,
            offset=offset,
            key=key,
            value=message.value,
            rejection=rejection,
            at=datetime.fromtimestamp(message.timestamp, UTC),
        )
        log.warning("dead-lettered %s[%d]@%d: %s", *_where(message), rejection.reason.value)
        self._send(self.settings.topic("deadletter"), message.key, encode_model(record))

    def tick_time(self) -> datetime | None:
        """What this worker's ticks carry: the wall clock, or the latest event time it released."""
        if self.settings.clock is ClockMode.WALL:
            return datetime.now(UTC)
        return self.latest_event

    def report_progress(self, every: float = 10.0) -> None:
        """A progress line while events flow (what a replay shows), quiet when idle."""
        since, before, batches = self._reported
        elapsed = time.monotonic() - since
        if elapsed < every or self.applied == before:
            return
        self._reported = (time.monotonic(), self.applied, self.batches)
        log.info(
            "progress: %d events applied (%.0f/s, %.0f per batch), event time %s",
            self.applied,
            (self.applied - before) / elapsed,
            (self.applied - before) / max(1, self.batches - batches),
            self.latest_event.isoformat() if self.latest_event else "-",
        )

    async def tick(self) -> None:
        """Wake every partition: a merge waiting on a topic re-checks it, and timers
        due by the tick's time fire there (DESIGN.md, Processing model: ticks)."""
        self.report_progress()
        value = encode_tick(self.tick_time(), self.settings.app_id)
        for partition in range(self.settings.partitions):
            await self.topology.ticks.send(value=value, partition=partition, force=True)


def register(topology: Topology, playbook: Playbook) -> LifecycleProcessor:
    """Attach the lifecycle agent and its tick timer to the app."""
    processor = LifecycleProcessor(topology, playbook)
    app = topology.app
    processor.metrics.serve(app)
    serve(app, processor)

    async def lifecycle(stream: Any) -> None:
        """One batch is what the stream has buffered, and what it gets within
        ``linger`` once it runs dry, at most ``batch_max``: large under load, a
        single message when traffic is light.

        Under ``noack()``, as the topics are declared (``acks=False``): the engine
        commits its offsets itself, and an ack Faust recorded would let Faust's
        own commit move them (``streams.faust_compat``).
        """
        manual = stream.noack()
        buffered = manual.channel.queue
        async for event in manual.events():
            await processor.step(event, buffered)

    app.agent(topology.inbound, name="lifecycle", concurrency=1)(lifecycle)

    def assigned(_sender: Any, *args: Any, **_kwargs: Any) -> None:
        processor.on_partitions_assigned(set(args[0]))

    async def revoked(_sender: Any, *_args: Any, **_kwargs: Any) -> None:
        async with processor.busy:  # the message in flight is handled first
            await processor.on_revoked()

    app.on_partitions_assigned.connect(cast(Any, assigned))
    app.on_partitions_revoked.connect(cast(Any, revoked))
    app.timer(interval=topology.settings.tick_interval, on_leader=False)(processor.tick)
    processor.metrics.pending(
        lambda: sum(len(runtime.timers) for runtime in processor.runtimes.values())
    )
    processor.metrics.holding(
        lambda: sum(runtime.merger.buffered for runtime in processor.runtimes.values())
    )

    async def measure_lag() -> None:
        """The group's lag from the broker, for /metrics; a failure is logged, not fatal.

        It is also how the worker learns the broker is gone: Faust's clients retry
        quietly for minutes, so without an answer in time ``/ready`` says so.
        """
        try:
            async with asyncio.timeout(max(2.0, topology.settings.lag_interval)):
                await processor.started_probe()
                measured = {probe.group: await probe.measure() for probe in processor.probes}
        except Exception as exc:  # the broker may be restarting: try again next time
            if processor.broker_reachable:
                log.warning("broker unreachable: lag not measured (%s)", type(exc).__name__)
            processor.broker_reachable = False
            return
        if not processor.broker_reachable:
            log.info("broker reachable again")
        processor.broker_reachable = True
        processor.metrics.lags(measured)

    app.timer(interval=topology.settings.lag_interval, on_leader=False)(measure_lag)

    async def open_probe() -> None:
        """At start, so the first assignment's resume points do not wait for a connection."""
        try:
            await processor.started_probe()
        except Exception as exc:  # the broker may not be up yet: opened on first use then
            log.warning("broker client not opened at start (%s)", type(exc).__name__)

    app.task(open_probe)
    return processor

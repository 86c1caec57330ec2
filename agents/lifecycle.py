"""The lifecycle agent: Kafka in, a ``lifecycle.runtime`` per partition, Kafka out.

Wiring only. Each message the stream hands over is admitted in offset order
(``streams.offsets``), read (``agents.intake``), offered to its partition's
runtime (``agents.partitions``), and what the runtime yields is handed to the
checkpoint (``agents.outcomes``, ``streams.checkpoint``), which makes a batch
durable in one sequence. Kafka is reached only through ``streams.ports``:
Faust's consumer, producer and tables in a worker (``register``), in-memory
fakes in the unit tests.

Batches are what the stream has buffered, and what it gets within
``LIFECYCLE_BATCH_LINGER`` once it runs dry, up to ``LIFECYCLE_BATCH_MAX``:
large under load, a single message when traffic is light. Per-message work
is only the merge; what costs a broker round trip is paid once per batch.

Concurrency 1, and a rebalance starts over: the partitions' runtimes, the
pending batch and what the merges hold are dropped once the message in
flight is handled, and the durable offsets committed; Faust seeks every
partition it assigns back to its committed offset, so all of it is read
again, in the same order.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, cast

from faust.types import TP

from agents.broker_watch import BrokerWatch
from agents.intake import Intake
from agents.metrics import BatchCounts, EngineMetrics
from agents.outcomes import Outcomes
from agents.partitions import Partitions
from agents.ticks import Ticker, decode_tick
from agents.web import serve
from lifecycle.playbook import Playbook
from lifecycle.state import CustomerState
from streams.app import Topology
from streams.checkpoint import Checkpoint, Sealed
from streams.faust_compat import (
    EndOffsets,
    FaustConsumer,
    FaustEvent,
    FaustProducer,
    FaustStore,
)
from streams.offsets import Offsets
from streams.ports import Ports, ResumePoints
from streams.producer import scheme_of
from streams.settings import Settings

__all__ = ["LifecycleProcessor", "faust_ports", "register"]

log = logging.getLogger(__name__)


class OffsetsNotCommittedError(Exception):
    """The group coordinator did not take the commit of some partitions' offsets."""


class LifecycleProcessor:
    """Everything the agent does with one message; the agent loop only feeds it."""

    def __init__(
        self,
        settings: Settings,
        playbook: Playbook,
        ports: Ports,
        metrics: EngineMetrics | None = None,
        watch: BrokerWatch | None = None,
    ) -> None:
        self.settings = settings
        self.watch = watch
        """The worker's own broker client (None in memory): lag, reachability, copies."""
        self.playbook = playbook
        self.ports = ports
        self.metrics = metrics or EngineMetrics()
        self.metrics.flows_known(name for name, flow in playbook.flows.items() if flow.enabled)
        self.ticks_topic = settings.topic("ticks")
        offsets = Offsets(
            ports.consumer,
            ports.resume_points,
            settings.ordered_topics,
            settings.lag_interval + 5.0,
        )
        self.checkpoint = Checkpoint(
            ports,
            offsets,
            scheme=scheme_of(settings.input_partitioner),
            commit_interval=settings.commit_interval,
            output_hold=settings.output_hold,
            tally=lambda: BatchCounts(self.metrics),
        )
        self.offsets = offsets
        self.intake = Intake(settings, self.metrics)
        self.outcomes = Outcomes(settings, self.intake, self.checkpoint, self.metrics)
        self.partitions = Partitions(
            settings, playbook, ports.consumer, self.checkpoint, self.outcomes, self.metrics
        )
        self.ticker = Ticker(
            settings,
            ports.producer,
            lambda: self.outcomes.latest_event,
            lambda: (self.outcomes.applied, self.checkpoint.commits),
        )
        self.busy = asyncio.Lock()
        """Held while a message is handled and its batch committed, so a rebalance
        waits for both to finish."""
        self.stopping = False
        """Set by ``drain``: messages handed over after it are left for the next start."""
        self.rebuilding: asyncio.Future[None] | None = None
        """The timer heaps' rebuild waiting for the tables' recovery (held so it is
        not collected before it runs)."""
        self.after_recovery: Callable[[], None] | None = None
        """Called once a recovery and the rebuild after it are done: the end of a
        rebalance's reading (``agents.worker`` returns the freed heap pages then)."""
        self.revisit_wanted = asyncio.Event()
        """Set when a merge awaits a later fetch answer, or a batch stays open while the
        one before settles: ``revisit`` has work."""
        self.partitions.on_awaiting = self.revisit_wanted.set
        self.partitions.stopping = lambda: self.stopping
        self.buffered: asyncio.Queue[Any] | None = None
        """The stream's buffer of messages not yet handed over (from the first step)."""
        self.settling: asyncio.Task[None] | None = None
        """The last batch's way to durability (steps 2 to 4 of ``streams.checkpoint``),
        run while the agent handles the next batch."""

    @property
    def timers_stale(self) -> bool:
        return self.partitions.stale

    @property
    def resumed(self) -> bool:
        """Whether the assigned partitions' resume points are read: a message handed
        over before waits for them."""
        return not self.offsets.pending

    @property
    def before_settled(self) -> bool:
        """Whether the batch before the open one has settled (or none is on its way):
        sealing the open one would not wait."""
        return self.settling is None or self.settling.done()

    @property
    def broker_reachable(self) -> bool:
        return self.watch is None or self.watch.reachable

    async def watch_copies(self) -> None:
        """``BrokerWatch.watch_copies`` for this worker's merges."""
        if self.watch is not None:
            await self.watch.watch_copies(self.partitions.copies)

    async def revisit(self) -> None:
        """Release what the merges hold only for want of a fresh enough fetch answer
        (``Partitions.awaiting``), and seal a batch left open while the one before
        settled, every ``LIFECYCLE_BATCH_LINGER`` while there is such work.

        The answers, and the settle, come without a message, and the next message, or
        the next tick, may be far off: a lone event would wait for it."""
        wanted = self.revisit_wanted
        while not self.stopping:
            await wanted.wait()
            await asyncio.sleep(max(self.settings.batch_linger, 0.001))
            async with self.busy:
                await self.revisit_once()
            dry = self.buffered is None or self.buffered.empty()
            if not self.partitions.awaiting and (self.checkpoint.idle or not dry):
                wanted.clear()  # else the next step seals the batch

    async def revisit_once(self) -> None:
        """One round of ``revisit``: each awaiting partition releases what it can, the
        ends of the topics of those still awaiting are asked for (``Partitions.ask_ends``,
        for the next round), and the batch is committed as a step's would be once the
        stream has run dry."""
        if self.stopping:
            return
        checkpoint = self.checkpoint
        await self.partitions.release_awaiting()
        self.partitions.ask_ends()
        await checkpoint.after_message()
        buffered = self.buffered
        if (buffered is None or buffered.empty()) and not checkpoint.idle:
            await checkpoint.release_outputs()
            if self.before_settled:
                await self.commit(wait=False)

    async def step(self, event: FaustEvent, buffered: asyncio.Queue[Any]) -> None:
        """Handle one message the stream handed over; commit when the batch is full, or
        when the stream's buffer ran dry and the batch before has settled. Sealing
        waits for that settle (two round trips), and messages coming meanwhile would
        wait with it, the tail of event-to-trigger latency under steady traffic: the
        batch stays open and the next message (a tick, or a revisit, at the latest)
        seals it. After ``drain`` nothing more is applied: what comes is left
        uncommitted, for the next start."""
        self.buffered = buffered
        async with self.busy:
            if self.stopping:
                return
            await self.handle(event)
            batch_max = self.settings.batch_max
            if self.checkpoint.pending < batch_max and buffered.empty():
                # Faust hands fetched messages over one by one, between the agent's
                # steps: let it hand over what it has before paying a commit's round
                # trips. The outputs held leave now: the agent has nothing else to do.
                await self.checkpoint.release_outputs()
                await asyncio.sleep(self.settings.batch_linger)
            if self.checkpoint.pending >= batch_max or (buffered.empty() and self.before_settled):
                await self.commit(wait=False)
            elif buffered.empty():  # sealed by the next message, or once the settle is done
                self.revisit_wanted.set()

    async def handle(self, event: FaustEvent) -> None:
        """Offer one message to its partition's runtime and hand on what it releases;
        durable only at ``commit``."""
        partitions = self.partitions
        if partitions.stale:
            partitions.rebuild_timers()
        message = event.message
        tick = message.topic == self.ticks_topic
        if not tick and not await self.offsets.admit(message):
            return
        self.checkpoint.begin(event)
        partition = message.partition
        runtime = partitions.runtime_of(partition)
        if tick:
            self.offsets.resume_again()
            await self.offsets.check_gaps()
            partitions.fetch_hold.retry()
            await partitions.release(partition)
            at = decode_tick(message.value, self.settings.app_id)
            if at is not None:
                await self.outcomes.hand_on(runtime.tick(at, partitions.caught_up(partition)))
            self.offsets.tick_seen(message)
        else:
            # A refusal is dead-lettered in offset order, behind what its topic still
            # holds, so the committed offset never passes an event not yet applied.
            refused = runtime.offer(message.topic, event, self.intake.item(message))
            if refused is not None:
                self.outcomes.dead_letter(message, refused.rejection)
            else:
                partitions.offered(event, runtime)
                await partitions.release(partition)
        if partitions.awaiting:
            await partitions.release_awaiting(handled=partition)
        await self.checkpoint.after_message()

    async def commit(self, *, offsets_now: bool = False, wait: bool = True) -> None:
        """Make the batch durable (``streams.checkpoint``), and count what it made so.

        The batch before it settles first: one batch at a time is on its way, so
        records, counts and offsets become durable in batch order. ``wait=False``
        returns once the batch is sealed: its acknowledgements and store writes are
        awaited while the agent handles the next messages, which read its records as
        pending ones; the next commit, a rebalance or the stop waits for them.
        """
        await self.settled()
        sealed = await self.checkpoint.seal(self.partitions.first_held)
        if wait:
            await self._settle(sealed, offsets_now)
        else:
            self.settling = asyncio.ensure_future(self._settle(sealed, offsets_now))

    async def _settle(self, sealed: Sealed, offsets_now: bool) -> None:
        await self.outcomes.observe(await self.checkpoint.settle(sealed, offsets_now=offsets_now))

    async def settled(self) -> None:
        """Wait until the batch on its way is durable; its failure is raised here."""
        settling, self.settling = self.settling, None
        if settling is not None:
            await settling

    async def on_revoked(self) -> None:
        """Make the batches handled durable and commit, then start over (see the
        module's docstring).

        Faust seeks every partition it assigns after a rebalance, kept ones too,
        back to the committed offset, so what the merges hold is read again, and so
        would be an open batch, whose outputs may have left already: read again, they
        would leave twice. Keeping what the merges hold would apply it twice;
        keeping a runtime's cached co-purchase counts would count their orders twice.
        """
        try:
            async with asyncio.timeout(self.settings.stop_timeout):  # as a stop is bounded
                await self.commit(offsets_now=True)
        except Exception as exc:  # its messages are read again after the rebalance
            log.warning("rebalance: last batch not made durable (%s)", type(exc).__name__)
            await self.offsets.commit()
        self._forget()

    def on_partitions_assigned(self, _assigned: set[TP]) -> None:
        """Start over even if no revocation came first: every partition resumes from
        the group's committed offset, and the heaps are rebuilt from the table. A batch
        still on its way is given up: its messages are read again too."""
        if self.settling is not None:
            self.settling.cancel()
            self.settling = None
        self._forget()
        self.offsets.assigned()
        self.ports.consumer.keep_answers()

    async def rebuild_when_recovered(self, recovered: Any) -> None:
        """Rebuild the timer heaps once the tables are recovered (``recovered`` is
        set), rather than at the first message after them.

        ``/ready`` waits for the heaps, and an idle worker's first message is the
        next tick, up to ``LIFECYCLE_TICK_INTERVAL`` later. A rebuild finds the
        store as the first message would: nothing is handled until the recovery
        resumes the streams, and a message already being handled (``busy``)
        rebuilds them itself."""
        await recovered.wait()
        if self.partitions.stale and not self.busy.locked():
            self.partitions.rebuild_timers()
        if self.after_recovery is not None:
            self.after_recovery()

    def _forget(self) -> None:
        dropped = self.partitions.forget()
        self.checkpoint.forget()
        if dropped:
            log.info("rebalance: %d held message(s) dropped, to be read again", dropped)

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
                    handled = self.checkpoint.pending
                    await self.commit(offsets_now=True)
            unsaved = self.offsets.unsaved()
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

    def load(self, key: bytes) -> CustomerState | None:
        """The record of ``key``: the current batch's pending one, else the stored one."""
        return self.checkpoint.records.get(key.decode())[0]

    def clock_of(self, key: bytes) -> datetime | None:
        """The clock of the partition that holds ``key`` (``Partitions.clock_of``)."""
        return self.partitions.clock_of(key)


def faust_ports(
    topology: Topology, resume_points: ResumePoints, ends: EndOffsets | None = None
) -> Ports:
    """The ports of a worker: Faust's consumer, producer and tables."""
    app = topology.app
    return Ports(
        consumer=FaustConsumer(app, ends),
        producer=FaustProducer(app),
        customers=FaustStore(topology.customers),
        copurchase=FaustStore(topology.copurchase),
        resume_points=resume_points,
    )


def register(topology: Topology, playbook: Playbook) -> LifecycleProcessor:
    """Attach the lifecycle agent, its tick and lag timers and its web views to the app."""
    settings, app = topology.settings, topology.app
    metrics = EngineMetrics()
    watch = BrokerWatch(settings, metrics)
    ports = faust_ports(topology, watch.resume_points, watch.end_offsets)
    processor = LifecycleProcessor(settings, playbook, ports, metrics, watch)
    metrics.serve(app)
    serve(app, processor, topology.customers)

    async def lifecycle(stream: Any) -> None:
        """Under ``noack()``, as the topics are declared (``acks=False``): the engine
        commits its offsets itself (``streams.faust_compat``)."""
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

    async def recovered(_sender: Any, **_kwargs: Any) -> None:
        # Sent before Faust seeks the streams and sets ``completed``: awaited here,
        # it would never be set.
        processor.rebuilding = asyncio.ensure_future(
            processor.rebuild_when_recovered(cast(Any, app.tables).recovery.completed)
        )

    app.on_partitions_assigned.connect(cast(Any, assigned))
    app.on_partitions_revoked.connect(cast(Any, revoked))
    app.on_rebalance_complete.connect(cast(Any, recovered))
    app.timer(interval=settings.tick_interval, on_leader=False)(processor.ticker.tick)
    app.timer(interval=settings.lag_interval, on_leader=False)(watch.measure_lag)
    app.task(watch.open)
    app.task(processor.revisit)
    runtimes = processor.partitions.runtimes
    metrics.pending(lambda: sum(len(r.timers) for r in runtimes.values()))
    metrics.holding(lambda: sum(r.merger.buffered for r in runtimes.values()))
    return processor

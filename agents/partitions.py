"""The partition runtimes of one worker, and the flow of messages through their merges.

One ``lifecycle.runtime`` per input partition makes the driver's steps (merge
release, clock, timer sweep, apply) exactly as the backtest makes them; this
module opens them, rebuilds their timer heaps from the table, tells their
merges which topics are caught up, and holds back the fetch of a topic whose
messages a merge keeps piling up.

Timers follow the processing model (docs/architecture.md, Time): deadlines
live in the customer record (changelogged with it); each partition has an
in-memory heap of (due, customer), rebuilt from the table after a rebalance,
and its timers fire while a message of that same partition (an event, or a
tick sent to that partition) is handled, so fired timers write the table and
its changelog exactly like events do, in one serial order.
"""

from __future__ import annotations

import logging
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from faust.types import TP

from agents.metrics import EngineMetrics
from agents.outcomes import Outcomes
from lifecycle.flows.interpreter import date_traits
from lifecycle.ordering import PartitionMerger
from lifecycle.playbook import Playbook
from lifecycle.recommend import Recommender
from lifecycle.runtime import PartitionRuntime
from schemas.internal import DatedSummary, RecordSummary
from streams.checkpoint import Checkpoint
from streams.copy_watermark import CopyWatermarks
from streams.faust_compat import FaustEvent, in_partition_of
from streams.fetching import FetchHold
from streams.offsets import Offsets
from streams.ports import Consumer
from streams.producer import partitioner_of
from streams.settings import Settings

__all__ = ["Partitions", "Runtime"]

log = logging.getLogger(__name__)

Runtime = PartitionRuntime[FaustEvent]
"""A partition's runtime; an item's position is the Faust event that brought it."""


class Partitions:
    """Each assigned partition's runtime and the state of its merge."""

    def __init__(
        self,
        settings: Settings,
        playbook: Playbook,
        consumer: Consumer,
        checkpoint: Checkpoint,
        outcomes: Outcomes,
        metrics: EngineMetrics,
    ) -> None:
        self.settings = settings
        self.playbook = playbook
        self.consumer = consumer
        self.checkpoint = checkpoint
        self.offsets: Offsets = checkpoint.offsets
        self.outcomes = outcomes
        self.metrics = metrics
        self.merge_topic = settings.topic("merge")
        self.topics = [*settings.event_topics, self.merge_topic]
        self.copies = CopyWatermarks(settings.repartition_of)
        self.partition_of = partitioner_of(settings)
        """The producers' partition of a key, as ``LIFECYCLE_INPUT_PARTITIONER`` routes it."""
        self.runtimes: dict[int, Runtime] = {}
        self.stale = True
        """The heaps must be rebuilt from the table: at start and after a rebalance."""
        self.fetch_hold = FetchHold(consumer)
        """Inbound topic-partitions this worker stopped fetching (``read_less``)."""
        self.blocked_since: dict[int, float] = {}
        self.forced_warned: dict[int, float] = {}
        """When each partition last warned of messages released past the merge's bound."""
        self.fresh_after: dict[int, float] = {}
        """Per partition, a time by which every message now held had been appended
        (``appended_by``): an empty topic counts as caught up only on a highwater read
        by a request sent since. Kafka orders nothing across partitions: a
        highwater read before another topic's message was appended may miss an event
        published before that message (found by the rebalance test, a browse applied
        after the cart event published after it). The same answer does not do: the
        broker reads its partitions one after another (found by the broker-faults test
        after a restart, a browse again)."""
        self.last_offered: dict[int, FaustEvent] = {}
        self.awaiting: dict[int, FaustEvent] = {}
        """Partitions whose merge waits only for such a highwater, each with its last
        message offered: the agent's ``revisit`` releases them once the answers come,
        without waiting for the partition's next message."""
        self.on_awaiting: Callable[[], None] = lambda: None
        """Called when a partition joins ``awaiting`` (the agent wakes its ``revisit``)."""
        self.stopping: Callable[[], bool] = lambda: False
        """Whether the worker is stopping: a release ends at its next message."""
        self.generation = 0
        """Counts ``forget``: a release that gave the event loop a turn meanwhile ends."""

    def forget(self) -> int:
        """A rebalance: drop the runtimes and what their merges hold; how many messages."""
        dropped = sum(runtime.merger.buffered for runtime in self.runtimes.values())
        self.runtimes.clear()
        self.fetch_hold.clear()
        self.blocked_since.clear()
        self.fresh_after.clear()
        self.last_offered.clear()
        self.awaiting.clear()
        self.stale = True
        self.generation += 1
        return dropped

    def runtime_of(self, partition: int) -> Runtime:
        """The runtime of ``partition``, opened on its first input after a rebalance."""
        runtime = self.runtimes.get(partition)
        if runtime is None:
            pairs = self.checkpoint.pairs_of(partition)
            runtime = self.runtimes[partition] = PartitionRuntime.open(
                self.topics,
                self.settings.clock,
                self.settings.lateness,
                self.playbook,
                self.checkpoint.records,
                Recommender(pairs, self.playbook.recommendations),
            )
        return runtime

    def first_held(self, tp: TP) -> int | None:
        """The offset of the first message of ``tp`` its merge still holds."""
        runtime = self.runtimes.get(tp.partition)
        first = next(iter(runtime.merger.queued(tp.topic)), None) if runtime else None
        return None if first is None else int(first[1].message.offset)

    def clock_of(self, key: bytes) -> datetime | None:
        """The clock of the partition that holds ``key`` on this worker (None before
        its first input): what ``/customers/{id}`` reads scores at in event mode."""
        runtime = self.runtimes.get(self.holding(key))
        return None if runtime is None else runtime.clock.now

    def holding(self, key: bytes) -> int:
        """The partition of ``key``'s record: the batch's, the store's that has it, or
        the producers' partitioner for a key stored nowhere yet."""
        pending = self.checkpoint.pending_record(key)
        if pending is not None:
            return pending[0]
        held = self.checkpoint.customers.holder(key)
        if held is not None:
            return held
        return self.partition_of(key.decode())

    def stored(self) -> Iterator[tuple[int, bytes, bytes]]:
        """(partition, key, record) of every customer this worker holds."""
        for partition, key, raw in self.checkpoint.customers.scan():
            yield (self.partition_of(key.decode()) if partition is None else partition), key, raw

    def rebuild_timers(self) -> None:
        """Every partition's heap from the table: O(customers held), once per rebalance.

        It also restores the latest event time from the records' last event times:
        in event mode the ticks carry it, and only they move an idle partition's
        clock at the end of input. A worker restarted after its last events were
        committed reads none of them again; its ticks must still carry that
        time, or the timers due between a partition's last event and the
        input's would wait for the next event.

        Under a playbook with date flows it also wakes, at its last event time, each
        record that lacks one of them though it has the trait: the wake-up schedules
        the flows the playbook gained since the record last changed.
        """
        started = time.monotonic()
        entries: dict[int, list[tuple[str, datetime]]] = defaultdict(list)
        stages: Counter[str] = Counter()
        latest = self.outcomes.latest_event
        dated = date_traits(self.playbook)
        reader = DatedSummary if dated else RecordSummary
        for partition, key, raw in self.stored():
            summary = reader.model_validate_json(raw)
            due, stage, last_event_at = summary.wake_at(dated), summary.stage, summary.last_event_at
            if due is not None:
                entries[partition].append((key.decode(), due))
            if stage is not None:
                stages[stage] += 1
            if last_event_at is not None and (latest is None or last_event_at > latest):
                latest = last_event_at
        self.outcomes.latest_event = latest
        self.metrics.stages(stages.items())
        for partition, runtime in self.runtimes.items():
            runtime.timers.rebuild(entries.pop(partition, []))
        for partition, found in entries.items():
            self.runtime_of(partition).timers.rebuild(found)
        self.stale = False
        log.info(
            "timer heaps rebuilt: %d pending in %.2fs",
            sum(len(runtime.timers) for runtime in self.runtimes.values()),
            time.monotonic() - started,
        )

    def offered(self, event: FaustEvent, runtime: Runtime) -> None:
        """``event``'s message joined its merge: read less of a topic it piles up in,
        and note by when it had been appended (``fresh_after``)."""
        message = event.message
        if runtime.merger.depth(message.topic) >= self.settings.read_ahead:
            self.read_less(message.tp)
        appended = self.consumer.appended_by(message.tp, message.offset)
        partition = message.partition
        self.last_offered[partition] = event
        if appended > self.fresh_after.get(partition, 0.0):
            self.fresh_after[partition] = appended

    def caught_up(
        self, partition: int, unanswered: list[str] | None = None
    ) -> Callable[[str], bool]:
        """Whether a topic of ``partition`` has nothing more to read, asked of the
        consumer once per topic: the answer holds while the merge releases (the
        agent reads nothing meanwhile), and the merge asks it for every message.
        A topic refused only until a later fetch answer is added to ``unanswered``."""
        if unanswered is None:
            unanswered = []
        consumer = self.consumer
        fresh_after = self.fresh_after.get(partition, 0.0)
        copies = self.copies if self.settings.repartitioned else None
        answers: dict[str, bool] = {}  # not functools.cache: one is made per message

        def ask(topic: str) -> bool:
            tp = TP(topic, partition)
            mark = consumer.fetched(tp)
            if mark is None:
                unanswered.append(topic)
                return False
            highwater, asked = mark
            if not self.offsets.caught_up(tp, highwater):
                return False  # records not read yet
            if asked < fresh_after or (
                copies is not None
                and topic != self.merge_topic
                and not copies.complete_before(topic, asked)
            ):
                # its highwater may predate a message held from another topic, or its
                # inbound topic may hold records not copied yet: a later answer will say
                unanswered.append(topic)
                return False
            return True

        def caught_up(topic: str) -> bool:
            answer = answers.get(topic)
            if answer is None:
                answer = answers[topic] = ask(topic)
            return answer

        return caught_up

    async def release(self, partition: int) -> None:
        """Apply what ``partition``'s merge can release now; past ``LIFECYCLE_MAX_IDLE``
        without progress, release without the topic it waits for.

        A large release gives the event loop turns (``Outcomes.hand_on``), and ends
        early once the worker stops or forgets its partitions meanwhile."""
        runtime = self.runtimes.get(partition)
        if runtime is None or not runtime.merger.buffered:
            self.awaiting.pop(partition, None)
            return
        merger = runtime.merger
        unanswered: list[str] = []
        caught_up = self.caught_up(partition, unanswered)
        generation = self.generation

        def ended() -> bool:
            return self.ended_since(generation)

        released = await self.outcomes.hand_on(runtime.drain(caught_up), ended)
        if ended():
            return
        if merger.forced:
            self.warn_forced(partition, merger, caught_up)
        if released or not merger.buffered:
            self.blocked_since.pop(partition, None)
        else:
            now = time.monotonic()
            since = self.blocked_since.setdefault(partition, now)
            if now - since > self.settings.max_idle:
                waiting = merger.blocking(caught_up)
                stalled = [t for t in waiting if not self.on_its_way(TP(t, partition))]
                if waiting and not stalled:
                    self.blocked_since[partition] = now  # not a stall: see ``on_its_way``
                else:
                    log.warning(
                        "partition %d: waited %.0fs for %s; releasing without it",
                        partition,
                        self.settings.max_idle,
                        ", ".join(stalled),
                    )
                    # Only the stalled topics are given up: another topic whose queue
                    # runs dry meanwhile is waited for as always, or its records on
                    # their way would come after later events of the same customers.
                    given_up = set(stalled)
                    without = runtime.drain(lambda topic: topic in given_up or caught_up(topic))
                    await self.outcomes.hand_on(without, ended)
                    if ended():
                        return
                    self.blocked_since.pop(partition, None)
        if not merger.buffered:
            self.fresh_after.pop(partition, None)
        if merger.buffered and unanswered:
            self.awaiting[partition] = self.last_offered[partition]
            self.on_awaiting()
        else:
            self.awaiting.pop(partition, None)
        if self.fetch_hold.held:
            self.read_more(partition, merger)

    async def release_awaiting(self, handled: int | None = None) -> None:
        """``release`` each partition awaiting a later fetch answer (``awaiting``) but
        ``handled``, the partition of the message just handled: the answer that brought
        a message of another partition may be that later answer.

        Each releases as in a message of its own: the tables read the partition of
        Faust's current event, and the batch files its records under it."""
        generation = self.generation
        for partition, event in list(self.awaiting.items()):
            if self.ended_since(generation):
                return
            if partition != handled:
                with in_partition_of(event):
                    self.checkpoint.enter(event)
                    await self.release(partition)

    def ended_since(self, generation: int) -> bool:
        """Whether the worker is stopping, or its partitions changed since ``generation``
        (a rebalance): then a release under way ends at its next message."""
        return self.stopping() or self.generation != generation

    def ask_ends(self) -> None:
        """Ask for the ends of the topics of each partition ``awaiting`` (the consumer's
        ``ask_ends``): their answer counts at the next revisit, one round trip away, where
        the fetcher's next answer may be a fetch wait away, or wait for the agent to
        take what was fetched before."""
        if self.awaiting:
            self.consumer.ask_ends([TP(t, p) for p in self.awaiting for t in self.topics])

    def on_its_way(self, tp: TP) -> bool:
        """Whether records of ``tp`` the merge has not seen are in this worker already:
        fetched and held by the client, or handed to Faust and not yet to the agent.

        Then a wait for ``tp`` is no stall, and ``release`` goes on waiting past
        ``LIFECYCLE_MAX_IDLE``: the records come once the messages fetched before them
        are handed over. A worker replaying a large backlog fetches more than it
        applies in that time, and the merge messages its own signups produce queue
        behind it: releasing without them would apply events out of the backtest's
        order. Records the client skipped past are sought again (``Delivery.stalled``);
        a topic whose records never reached the worker still releases after the wait."""
        if self.consumer.buffered(tp):
            return True
        position = self.consumer.fetch_positions([tp]).get(tp)
        return self.offsets.delivery.fetched_past(tp, position)

    def read_less(self, tp: TP) -> None:
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

    def read_more(self, partition: int, merger: PartitionMerger[Any]) -> None:
        """Fetch again the held topics of ``partition`` half applied since."""
        low = self.settings.read_ahead // 2
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

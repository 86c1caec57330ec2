"""Run the core over a sequence of raw events, in memory: the reference answer.

A marketer dry-runs a playbook on history with it, and the Kafka path is
tested against it: same ``parse_event``, same ``apply``, same outputs.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import orjson
from pydantic import BaseModel

from lifecycle.clock import ClockMode
from lifecycle.core import Due, Outcome, apply
from lifecycle.ordering import merge_order, order_key
from lifecycle.partition import Lane
from lifecycle.playbook import Playbook
from lifecycle.recommend import MemoryPairs, Recommender
from lifecycle.state import CustomerState
from lifecycle.timers import next_due
from schemas.events import INBOUND_TOPICS, TOPIC_OF_TYPE, Event
from schemas.inbound import DEFAULT_LIMITS, InputLimits, Rejection, parse_event
from schemas.internal import Claim, ProspectHistory
from schemas.records import Transition, Trigger, topic_of

__all__ = ["Backtest", "LineRejected", "Output", "Summary"]


@dataclass(frozen=True, slots=True)
class Output:
    """One output message; ``topic`` is the logical name (``transitions``, ``triggers``,
    ``attribution``)."""

    topic: str
    key: str
    value: BaseModel


@dataclass(frozen=True, slots=True)
class LineRejected:
    line: int
    rejection: Rejection


@dataclass
class Summary:
    lines: int = 0
    events: int = 0
    rejected: int = 0
    duplicates: int = 0
    erased: int = 0
    merges: int = 0
    transitions: int = 0
    triggers: int = 0
    timers_fired: int = 0
    held_out: int = 0
    suppressed: Counter[str] = field(default_factory=Counter)
    triggers_by_campaign: Counter[str] = field(default_factory=Counter)
    held_out_by_campaign: Counter[str] = field(default_factory=Counter)
    stages: Counter[str] = field(default_factory=Counter)

    def line(self) -> str:
        """The one-line summary the CLI prints on stderr."""
        suppressed = sum(self.suppressed.values())
        stages = " ".join(f"{k}={v}" for k, v in sorted(self.stages.items())) or "none"
        reasons = ",".join(f"{k}={v}" for k, v in sorted(self.suppressed.items()))
        return (
            f"backtest: {self.lines} lines, {self.events} events, {self.rejected} rejected, "
            f"{self.duplicates} duplicates, {self.timers_fired} timers fired, "
            f"{self.transitions} transitions, "
            f"{self.triggers} triggers ({self.held_out} held out), "
            f"{suppressed} suppressed{f' ({reasons})' if reasons else ''}; stages: {stages}"
        )

    def as_dict(self) -> dict[str, object]:
        """The summary for programs (``--json``)."""
        return {
            "lines": self.lines,
            "events": self.events,
            "rejected": self.rejected,
            "duplicates": self.duplicates,
            "erased": self.erased,
            "merges": self.merges,
            "timers_fired": self.timers_fired,
            "transitions": self.transitions,
            "triggers": self.triggers,
            "held_out": self.held_out,
            "suppressed": dict(sorted(self.suppressed.items())),
            "triggers_by_campaign": dict(sorted(self.triggers_by_campaign.items())),
            "held_out_by_campaign": dict(sorted(self.held_out_by_campaign.items())),
            "stages": dict(sorted(self.stages.items())),
        }

    def campaigns(self) -> str:
        """Per campaign: sent, held out, and suppressed by reason; then per stage."""
        names = sorted(set(self.triggers_by_campaign) | {k.split(":")[0] for k in self.suppressed})
        rows = [f"{'campaign':<24}{'sent':>8}{'held out':>10}  suppressed"]
        for name in names:
            held = self.held_out_by_campaign[name]
            sent = self.triggers_by_campaign[name] - held
            reasons = ", ".join(
                f"{k.split(':')[1]} {v}"
                for k, v in sorted(self.suppressed.items())
                if k.split(":")[0] == name
            )
            rows.append(f"{name:<24}{sent:>8}{held:>10}  {reasons or '-'}")
        rows.append(f"{'stage':<24}{'customers':>8}")
        rows += [f"{stage:<24}{count:>8}" for stage, count in sorted(self.stages.items())]
        return "\n".join(rows)


PartitionOf = Callable[[str], int]
Item = Event | Claim | ProspectHistory
MERGE_TOPIC = "merge"
"""The logical name of the internal topic that carries identity merges."""


def _single_partition(_key: str) -> int:
    return 0


def _memoized(partition_of: PartitionOf) -> PartitionOf:
    """``partition_of`` remembered per key: a customer's every event, merge message and
    line count asks again, and Kafka's murmur2 is pure Python (a twentieth of the core)."""
    return functools.cache(partition_of)


def _route(raw: bytes, partition_of: PartitionOf) -> tuple[str, int] | None:
    """Cheap (topic, partition) of a line, for counting what is still to come."""
    try:
        body = orjson.loads(raw)
        topic = TOPIC_OF_TYPE[body["type"]]
        key = body.get("customer_id") or body["anonymous_id"]
        return topic, partition_of(str(key))
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return None


class Backtest:
    """Customer records in a dict; each partition run exactly as a worker runs it.

    ``partition_of`` must be the partitioner the worker routes keys by, for the
    topics' partition count (the CLI passes ``LIFECYCLE_INPUT_PARTITIONER``'s:
    murmur2, crc32, or murmur2 for ``repartition``), so that each customer's
    events are merged, and their timers swept, with the same neighbours as on
    the broker. Time is event time: each partition's clock
    is its watermark minus ``lateness``, as a worker's in event mode.
    """

    def __init__(
        self,
        playbook: Playbook,
        partition_of: PartitionOf = _single_partition,
        lateness: timedelta = timedelta(0),
        limits: InputLimits = DEFAULT_LIMITS,
        received_at: datetime | None = None,
    ) -> None:
        """``received_at`` stands for every line's Kafka record timestamp (the
        future bound of ``limits``); the CLI passes the wall clock at start."""
        self.playbook = playbook
        self.limits = limits
        self.received_at = received_at
        self.partition_of = _memoized(partition_of)
        self.lateness = lateness
        self.states: dict[str, CustomerState] = {}
        self.summary = Summary()
        self.partitions: dict[int, Lane[Item, str]] = {}
        self.latest_event: datetime | None = None
        self._remaining: Counter[tuple[str, int]] = Counter()

    def _partition(self, number: int) -> Lane[Item, str]:
        part = self.partitions.get(number)
        if part is None:
            part = self.partitions[number] = Lane.open(
                [*INBOUND_TOPICS, MERGE_TOPIC],
                ClockMode.EVENT,
                self.lateness,
                Recommender(MemoryPairs(), self.playbook.recommendations),
            )
        return part

    def _caught_up(self, partition: int) -> Callable[[str], bool]:
        def caught_up(topic: str) -> bool:
            # Merge messages exist only once sent: none is ever still to come.
            return topic == MERGE_TOPIC or self._remaining[(topic, partition)] <= 0

        return caught_up

    def _pump(self, partition: int, drain: bool = False) -> Iterator[Output]:
        part = self._partition(partition)
        ready = part.merger.drain() if drain else part.merger.pop_ready(self._caught_up(partition))
        for item in ready:
            match item:
                case Claim():
                    yield from self._retire(item)
                case ProspectHistory():
                    yield from self._fold(item)
                case _:
                    yield from self.feed_event(part, item)

    def _send(self, key: str, message: Claim | ProspectHistory) -> Iterator[Output]:
        """The in-memory stand-in for the ``lifecycle.merge`` topic."""
        partition = self.partition_of(key)
        self._partition(partition).merger.push(MERGE_TOPIC, merge_order(message), message)
        yield from self._pump(partition)

    def _retire(self, claim: Claim) -> Iterator[Output]:
        outcome = apply(self.states.get(claim.anonymous_id), claim, self.playbook)
        history = outcome.history
        self.summary.merges += int(history is not None)
        yield from self._record(claim.anonymous_id, outcome)
        part = self._partition(self.partition_of(claim.anonymous_id))
        part.timers.set(claim.anonymous_id, next_due(outcome.state))
        if history is not None:
            yield from self._send(claim.customer_id, history)

    def _fold(self, history: ProspectHistory) -> Iterator[Output]:
        outcome = apply(self.states.get(history.customer_id), history, self.playbook)
        yield from self._record(history.customer_id, outcome)

    def feed_event(self, part: Lane[Item, str], event: Event) -> Iterator[Output]:
        """Advance the partition's clock to this event, fire what is due, apply it."""
        if self.latest_event is None or event.occurred_at > self.latest_event:
            self.latest_event = event.occurred_at
        if part.clock.on_event(event.occurred_at):
            yield from self.sweep(part)
        key = event.key
        outcome = apply(self.states.get(key), event, self.playbook, part.recommender, in_place=True)
        self.summary.events += 1
        yield from self._record(key, outcome)
        part.timers.set(key, next_due(outcome.state))
        for products in outcome.orders:
            part.recommender.record(products)
        for claim in outcome.claims:
            yield from self._send(claim.anonymous_id, claim)

    def sweep(self, part: Lane[Item, str]) -> Iterator[Output]:
        """Fire the timers of the partition due before its clock, earliest first."""
        now = part.clock.now
        if now is None:
            return
        for key in part.timers.pop_due(now):
            outcome = apply(
                self.states[key], Due(now), self.playbook, part.recommender, in_place=True
            )
            yield from self._record(key, outcome)
            part.timers.set(key, next_due(outcome.state))

    def run(
        self, lines: Sequence[bytes], until: datetime | None = None
    ) -> Iterator[Output | LineRejected]:
        """Feed every non-blank line, then fire the timers due up to ``until``.

        ``until`` defaults to the latest event time in the input. Lines are
        read twice: once to count what each topic-partition still has to come
        (a worker learns that from the broker's highwater), then to merge and
        apply.
        """
        routes = [_route(raw, self.partition_of) if raw.strip() else None for raw in lines]
        self._remaining = Counter(route for route in routes if route is not None)
        for number, (raw, route) in enumerate(zip(lines, routes, strict=True), start=1):
            if not raw.strip():
                continue
            self.summary.lines += 1
            if route is not None:
                self._remaining[route] -= 1
            parsed = parse_event(raw, limits=self.limits, received_at=self.received_at)
            if isinstance(parsed, Rejection):
                self.summary.rejected += 1
                yield LineRejected(number, parsed)
                continue
            partition = self.partition_of(parsed.key)
            self._partition(partition).merger.push(
                TOPIC_OF_TYPE[parsed.type], order_key(parsed), parsed
            )
            yield from self._pump(partition)
        while any(part.merger.buffered for part in self.partitions.values()):
            for partition in sorted(self.partitions):
                yield from self._pump(partition, drain=True)
        end = until or self.latest_event
        if end is not None:
            for partition in sorted(self.partitions):
                part = self.partitions[partition]
                part.clock.end_of_input(end)
                yield from self.sweep(part)
        self.summary.stages = Counter(
            s.stage.value for s in self.states.values() if s.stage is not None
        )

    def _record(self, key: str, outcome: Outcome) -> list[Output]:
        summary = self.summary
        if outcome.duplicate:
            summary.duplicates += 1
        if outcome.state is None:
            self.states.pop(key, None)
            summary.erased += int(outcome.erased)
        else:
            self.states[key] = outcome.state
        summary.timers_fired += len(outcome.fired)
        outputs = []
        for record in outcome.emitted:  # one pass: most outcomes emit nothing or one record
            if isinstance(record, Transition):
                summary.transitions += 1
            elif isinstance(record, Trigger):
                summary.triggers += 1
                summary.held_out += int(record.holdout)
                summary.triggers_by_campaign[record.campaign.value] += 1
                summary.held_out_by_campaign[record.campaign.value] += int(record.holdout)
            outputs.append(Output(topic_of(record), key, record))
        for s in outcome.suppressed:
            summary.suppressed[f"{s.campaign.value}:{s.reason}"] += 1
        return outputs

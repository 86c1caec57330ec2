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
from lifecycle.core import Due, Outcome
from lifecycle.flows.tally import FlowCounts
from lifecycle.playbook import Playbook
from lifecycle.recommend import MemoryPairs, Recommender
from lifecycle.runtime import Applied, DictStore, Failed, PartitionRuntime, Result, complete
from lifecycle.state import CustomerState
from schemas.events import INBOUND_TOPICS, TOPIC_OF_TYPE
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
    """A line refused as a worker refuses a message: what its dead letter says."""

    line: int
    rejection: Rejection
    raw: bytes = b""
    topic: str | None = None
    """The logical inbound topic of the line's type, when it has a known one."""
    partition: int = 0
    key: str | None = None
    """The line's customer_id, or anonymous_id, when it reads as an object with one."""
    after: datetime | None = None
    """The latest event time of the lines accepted before it: the file's time for it."""


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
    flows: FlowCounts = field(default_factory=FlowCounts)
    """Per flow: runs entered and exited, sends sent, held out and suppressed, starts skipped."""

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
            "flows": self.flows.as_dict(),
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
MERGE_TOPIC = "merge"
"""The logical name of the internal topic that carries identity merges."""


def _single_partition(_key: str) -> int:
    return 0


def _memoized(partition_of: PartitionOf) -> PartitionOf:
    """``partition_of`` remembered per key: a customer's every event, merge message and
    line count asks again, and Kafka's murmur2 is pure Python (a twentieth of the core)."""
    return functools.cache(partition_of)


def _fields(raw: bytes) -> tuple[str | None, object]:
    """A line's topic (by its type) and its key's value, as far as the line says: the one
    read of a line before its validation, for routing it and for placing its dead letter."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None, None
    if not isinstance(body, dict):
        return None, None
    kind = body.get("type")
    topic = TOPIC_OF_TYPE.get(kind) if isinstance(kind, str) else None
    return topic, body.get("customer_id") or body.get("anonymous_id")


def _route(raw: bytes, partition_of: PartitionOf) -> tuple[str, int] | None:
    """Cheap (topic, partition) of a line, for counting what is still to come."""
    topic, key = _fields(raw)
    if topic is None or key is None:
        return None
    return topic, partition_of(str(key))


def _rejected(
    number: int,
    raw: bytes,
    rejection: Rejection,
    partition_of: PartitionOf,
    after: datetime | None,
) -> LineRejected:
    """Where a refused line would have been on the broker: its type's topic and its key's
    partition, as far as the line says."""
    topic, given = _fields(raw)
    key = given if isinstance(given, str) else None
    partition = partition_of(key) if key else 0
    return LineRejected(number, rejection, raw, topic, partition, key, after)


class Backtest:
    """Customer records in a dict; each partition run exactly as a worker runs it.

    ``partition_of`` must be the partitioner the worker routes keys by, for the
    topics' partition count (the CLI passes ``LIFECYCLE_INPUT_PARTITIONER``'s:
    murmur2, crc32, or murmur2 for ``repartition``), so that each customer's
    events are merged, and their timers swept, with the same neighbours as on
    the broker. Time is event time: each partition's clock
    is its watermark minus ``lateness``, as a worker's in event mode.

    Each partition is a ``PartitionRuntime`` (positions are line numbers); this
    class only reads the lines, counts what each partition still has to come,
    carries merge messages between partitions and keeps the summary.
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
        future bound of ``limits``); None, the CLI's default, bounds nothing, so the
        output is a function of the file alone."""
        self.playbook = playbook
        self.limits = limits
        self.received_at = received_at
        self.partition_of = _memoized(partition_of)
        self.lateness = lateness
        self.states: dict[str, CustomerState] = {}
        self.store = DictStore(self.states)
        self.summary = Summary(
            flows=FlowCounts(name for name, flow in playbook.flows.items() if flow.enabled)
        )
        self.runtimes: dict[int, PartitionRuntime[int]] = {}
        """Each input partition's runtime, by partition number."""
        self._remaining: Counter[tuple[str, int]] = Counter()
        self._line = 0

    @property
    def latest_event(self) -> datetime | None:
        """The latest event time any partition has released."""
        times = [r.clock.latest_event for r in self.runtimes.values()]
        return max((t for t in times if t is not None), default=None)

    def _runtime(self, partition: int) -> PartitionRuntime[int]:
        runtime = self.runtimes.get(partition)
        if runtime is None:
            runtime = self.runtimes[partition] = PartitionRuntime.open(
                [*INBOUND_TOPICS, MERGE_TOPIC],
                ClockMode.EVENT,
                self.lateness,
                self.playbook,
                self.store,
                Recommender(MemoryPairs(), self.playbook.recommendations),
            )
        return runtime

    def _caught_up(self, partition: int) -> Callable[[str], bool]:
        def caught_up(topic: str) -> bool:
            # Merge messages exist only once sent: none is ever still to come.
            return topic == MERGE_TOPIC or self._remaining[(topic, partition)] <= 0

        return caught_up

    def _pump(self, partition: int, everything: bool = False) -> Iterator[Output]:
        caught_up = complete if everything else self._caught_up(partition)
        for result in self._runtime(partition).drain(caught_up):
            yield from self._take(result)

    def _take(self, result: Result[int]) -> Iterator[Output]:
        """Count and record what one input did, and carry its merge messages on."""
        if not isinstance(result, Applied):
            # The reference answer: a core bug ends the run (refusals never reach
            # the runtime here: ``run`` yields them in line order).
            assert isinstance(result, Failed)
            raise result.error
        key, outcome, cause = result.key, result.outcome, result.input
        if isinstance(cause, Claim):
            self.summary.merges += int(outcome.history is not None)
        elif not isinstance(cause, Due | ProspectHistory):
            self.summary.events += 1
            self.summary.duplicates += int(outcome.duplicate)  # as the worker counts them
        yield from self._record(key, outcome)
        for claim in outcome.claims:
            yield from self._send(claim.anonymous_id, claim)
        if outcome.history is not None:
            yield from self._send(outcome.history.customer_id, outcome.history)

    def _send(self, key: str, message: Claim | ProspectHistory) -> Iterator[Output]:
        """The in-memory stand-in for the ``lifecycle.merge`` topic."""
        partition = self.partition_of(key)
        self._runtime(partition).offer(MERGE_TOPIC, self._line, message)
        yield from self._pump(partition)

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
        read: datetime | None = None  # the latest event time accepted so far
        self._remaining = Counter(route for route in routes if route is not None)
        for number, (raw, route) in enumerate(zip(lines, routes, strict=True), start=1):
            if not raw.strip():
                continue
            self._line = number
            self.summary.lines += 1
            if route is not None:
                self._remaining[route] -= 1
            parsed = parse_event(raw, limits=self.limits, received_at=self.received_at)
            if isinstance(parsed, Rejection):
                self.summary.rejected += 1
                yield _rejected(number, raw, parsed, self.partition_of, read)
                continue
            if read is None or parsed.occurred_at > read:
                read = parsed.occurred_at
            partition = self.partition_of(parsed.key)
            self._runtime(partition).offer(TOPIC_OF_TYPE[parsed.type], number, parsed)
            yield from self._pump(partition)
        while any(runtime.merger.buffered for runtime in self.runtimes.values()):
            for partition in sorted(self.runtimes):
                yield from self._pump(partition, everything=True)
        end = until or self.latest_event
        if end is not None:
            for partition in sorted(self.runtimes):
                for result in self.runtimes[partition].end(end):
                    yield from self._take(result)
        self.summary.stages = Counter(
            s.stage.value for s in self.states.values() if s.stage is not None
        )

    def _record(self, key: str, outcome: Outcome) -> list[Output]:
        summary = self.summary
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
                summary.triggers_by_campaign[record.campaign] += 1
                summary.held_out_by_campaign[record.campaign] += int(record.holdout)
            outputs.append(Output(topic_of(record), key, record))
        for s in outcome.suppressed:
            summary.suppressed[f"{s.campaign}:{s.reason}"] += 1
        summary.flows.count(outcome)
        return outputs

"""Run the core over a sequence of raw events, in memory: the reference answer.

A marketer dry-runs a playbook on history with it, and the Kafka path is
tested against it: same ``parse_event``, same ``apply``, same outputs.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import orjson
from pydantic import BaseModel

from lifecycle.core import Outcome, apply
from lifecycle.ordering import PartitionMerger, order_key
from lifecycle.playbook import Playbook
from lifecycle.state import CustomerState
from schemas.events import INBOUND_TOPICS, TOPIC_OF_TYPE, Event
from schemas.inbound import Rejection, parse_event

__all__ = ["Backtest", "LineRejected", "Output", "Summary"]


@dataclass(frozen=True, slots=True)
class Output:
    """One output message; ``topic`` is the logical name (``transitions``, ``triggers``)."""

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
    transitions: int = 0
    triggers: int = 0
    held_out: int = 0
    suppressed: Counter[str] = field(default_factory=Counter)
    triggers_by_campaign: Counter[str] = field(default_factory=Counter)
    stages: Counter[str] = field(default_factory=Counter)

    def line(self) -> str:
        """The one-line summary the CLI prints on stderr."""
        suppressed = sum(self.suppressed.values())
        stages = " ".join(f"{k}={v}" for k, v in sorted(self.stages.items())) or "none"
        reasons = ",".join(f"{k}={v}" for k, v in sorted(self.suppressed.items()))
        return (
            f"backtest: {self.lines} lines, {self.events} events, {self.rejected} rejected, "
            f"{self.duplicates} duplicates, {self.transitions} transitions, "
            f"{self.triggers} triggers ({self.held_out} held out), "
            f"{suppressed} suppressed{f' ({reasons})' if reasons else ''}; stages: {stages}"
        )


PartitionOf = Callable[[str], int]


def _single_partition(_key: str) -> int:
    return 0


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
    """Customer records in a dict; events merged per partition exactly as a worker does.

    ``partition_of`` must be the Kafka partitioner for the topics' partition
    count (the CLI passes murmur2, as every Kafka client uses), so that each
    customer's events are merged with the same neighbours as on the broker.
    """

    def __init__(self, playbook: Playbook, partition_of: PartitionOf = _single_partition) -> None:
        self.playbook = playbook
        self.partition_of = partition_of
        self.states: dict[str, CustomerState] = {}
        self.summary = Summary()

    def feed_event(self, event: Event) -> list[Output]:
        outcome = apply(self.states.get(event.key), event, self.playbook)
        self.summary.events += 1
        return self._record(event.key, outcome)

    def run(
        self, lines: Sequence[bytes], until: datetime | None = None
    ) -> Iterator[Output | LineRejected]:
        """Feed every non-blank line; ``until`` bounds the timers fired at the end.

        Lines are read twice: once to count what each topic-partition still
        has to come (a worker learns that from the broker's highwater), then
        to merge and apply. No rule of this playbook version schedules
        timers yet, so ``until`` takes effect once time-based moves exist.
        """
        del until
        remaining: Counter[tuple[str, int]] = Counter(
            route for raw in lines if raw.strip() and (route := _route(raw, self.partition_of))
        )
        mergers: dict[int, PartitionMerger[Event]] = {}
        for number, raw in enumerate(lines, start=1):
            if not raw.strip():
                continue
            self.summary.lines += 1
            route = _route(raw, self.partition_of)
            if route is not None:
                remaining[route] -= 1
            parsed = parse_event(raw)
            if isinstance(parsed, Rejection):
                self.summary.rejected += 1
                yield LineRejected(number, parsed)
                continue
            partition = self.partition_of(parsed.key)
            merger = mergers.setdefault(partition, PartitionMerger(INBOUND_TOPICS))
            merger.push(TOPIC_OF_TYPE[parsed.type], order_key(parsed), parsed)

            def caught_up(topic: str, partition: int = partition) -> bool:
                return remaining[(topic, partition)] <= 0

            for event in merger.pop_ready(caught_up):
                yield from self.feed_event(event)
        for partition in sorted(mergers):
            for event in mergers[partition].drain():
                yield from self.feed_event(event)
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
        summary.transitions += len(outcome.transitions)
        summary.triggers += len(outcome.triggers)
        for trigger in outcome.triggers:
            summary.held_out += int(trigger.holdout)
            summary.triggers_by_campaign[trigger.campaign.value] += 1
        for s in outcome.suppressed:
            summary.suppressed[f"{s.campaign.value}:{s.reason}"] += 1
        return [Output("transitions", key, t) for t in outcome.transitions] + [
            Output("triggers", key, t) for t in outcome.triggers
        ]

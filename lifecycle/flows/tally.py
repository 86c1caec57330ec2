"""What each flow did, counted one way for every view: the backtest's table and JSON,
``/metrics``, the dashboard and the cluster summary.

``flow_counts`` turns one core ``Outcome`` into increments (``FlowCount``): the
interpreter's ``FlowEvent`` (entered, exited, skipped), each trigger (sent, or
held out), each suppression (by the policy's reason). ``FlowCounts`` adds them up
per flow; the worker's metrics add the very same increments to Prometheus
counters named after the measure (``lifecycle_flow_<measure>_total``), so the
two cannot disagree. Labels stay bounded: flow names come from the playbook,
reasons from the fixed lists of the interpreter and the policies.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from lifecycle.core import Outcome

__all__ = [
    "MEASURES",
    "REASONED",
    "FlowCount",
    "FlowCounts",
    "FlowTally",
    "Measure",
    "flow_counts",
]

Measure = Literal["entered", "exited", "sent", "held_out", "suppressed", "skipped"]

MEASURES: tuple[Measure, ...] = ("entered", "exited", "sent", "held_out", "suppressed", "skipped")
"""Every measure, in the order the table and the JSON show them."""

REASONED: frozenset[Measure] = frozenset({"exited", "suppressed", "skipped"})
"""The measures counted by reason (the others have none)."""

_HEADINGS: dict[Measure, str] = {
    "entered": "entered",
    "exited": "exited",
    "sent": "sent",
    "held_out": "held out",
    "suppressed": "suppressed",
    "skipped": "skipped",
}


@dataclass(frozen=True, slots=True)
class FlowCount:
    """One increment of one flow's counter; ``reason`` is empty for unreasoned measures."""

    measure: Measure
    flow: str
    reason: str = ""


def flow_counts(outcome: Outcome) -> Iterator[FlowCount]:
    """Every flow counter one outcome moves, once each.

    Sends and suppressions are read from the records themselves (both carry
    their flow), never from the interpreter's events, so nothing is counted
    twice. A suppression without a flow (none is made so today) is not a flow's.
    """
    for event in outcome.flow_events:
        yield FlowCount(event.kind, event.flow, event.reason)
    for trigger in outcome.triggers:
        yield FlowCount("held_out" if trigger.holdout else "sent", trigger.flow)
    for suppression in outcome.suppressed:
        if suppression.flow:
            yield FlowCount("suppressed", suppression.flow, suppression.reason)


@dataclass(slots=True)
class FlowTally:
    """One flow's figures: runs entered, sends sent and held out, and by reason the runs
    exited, the sends suppressed and the starts skipped."""

    entered: int = 0
    sent: int = 0
    held_out: int = 0
    exited: Counter[str] = field(default_factory=Counter)
    suppressed: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)

    def add(self, measure: Measure, reason: str = "", n: int = 1) -> None:
        if measure in REASONED:
            by_reason: Counter[str] = getattr(self, measure)
            by_reason[reason] += n
        else:
            setattr(self, measure, getattr(self, measure) + n)

    def as_dict(self) -> dict[str, Any]:
        """Totals as numbers, reasoned measures as ``{reason: count}`` (sorted, no zeros)."""
        return {
            measure: _reasons(getattr(self, measure))
            if measure in REASONED
            else getattr(self, measure)
            for measure in MEASURES
        }

    def merge(self, figures: Mapping[str, Any]) -> None:
        """Add the figures of an ``as_dict`` (another worker's, say) to these."""
        for measure in MEASURES:
            value = figures.get(measure)
            if value is None:
                continue
            if measure in REASONED:
                for reason, n in value.items():
                    self.add(measure, reason, int(n))
            else:
                self.add(measure, n=int(value))

    def cell(self, measure: Measure) -> str:
        if measure not in REASONED:
            return str(getattr(self, measure))
        by_reason = _reasons(getattr(self, measure))
        return ", ".join(f"{reason} {n}" for reason, n in by_reason.items()) or "-"


def _reasons(counts: Counter[str]) -> dict[str, int]:
    return {reason: n for reason, n in sorted(counts.items()) if n}


class FlowCounts:
    """Every flow's ``FlowTally``; flows named at the start show even if nothing happened."""

    def __init__(self, flows: Iterable[str] = ()) -> None:
        self.flows: dict[str, FlowTally] = {name: FlowTally() for name in flows}

    def __getitem__(self, flow: str) -> FlowTally:
        tally = self.flows.get(flow)
        if tally is None:
            tally = self.flows[flow] = FlowTally()
        return tally

    def add(self, count: FlowCount, n: int = 1) -> None:
        self[count.flow].add(count.measure, count.reason, n)

    def count(self, outcome: Outcome) -> None:
        """The increments of ``flow_counts``, added without making each one: the backtest
        counts every outcome, and most move a counter or two."""
        if not (outcome.flow_events or outcome.emitted or outcome.suppressed):  # most do nothing
            return
        flows = self.flows
        for event in outcome.flow_events:
            tally = flows.get(event.flow) or self[event.flow]
            kind = event.kind
            if kind == "entered":
                tally.entered += 1
            else:
                by_reason: Counter[str] = getattr(tally, kind)
                by_reason[event.reason] += 1
        for trigger in outcome.triggers:
            tally = flows.get(trigger.flow) or self[trigger.flow]
            if trigger.holdout:
                tally.held_out += 1
            else:
                tally.sent += 1
        for suppression in outcome.suppressed:
            if suppression.flow:
                tally = flows.get(suppression.flow) or self[suppression.flow]
                tally.suppressed[suppression.reason] += 1

    def as_dict(self) -> dict[str, dict[str, Any]]:
        """By flow name (sorted): each flow's ``FlowTally.as_dict``."""
        return {name: self.flows[name].as_dict() for name in sorted(self.flows)}

    @classmethod
    def of(cls, summaries: Iterable[Mapping[str, Mapping[str, Any]]]) -> FlowCounts:
        """The sum of several ``as_dict`` answers (each worker's)."""
        counts = cls()
        for flows in summaries:
            for name, figures in flows.items():
                counts[name].merge(figures)
        return counts

    def table(self) -> str:
        """Per flow, one line: entered, exited by reason, sent, held out, suppressed by
        reason, skipped by reason. Columns are as wide as their longest cell."""
        header = ["flow", *(_HEADINGS[m] for m in MEASURES)]
        rows = [
            [name, *(self.flows[name].cell(m) for m in MEASURES)] for name in sorted(self.flows)
        ]
        widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
        lines = []
        for row in [header, *rows]:
            cells = []
            for i, text in enumerate(row):
                if i == 0 or MEASURES[i - 1] in REASONED:
                    cells.append(text.ljust(widths[i]))
                else:
                    cells.append(text.rjust(widths[i]))
            lines.append("  ".join(cells).rstrip())
        return "\n".join(lines)

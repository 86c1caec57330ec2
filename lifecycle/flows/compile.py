"""What an event, a stage move or a segment turn can touch: the playbook's flows, indexed.

The interpreter (a later step) asks the index, so an event pays only for the
flows keyed by its type; the record keeps a bought or view log only when some
condition of an enabled flow reads one, for the longest ``within`` it asks.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from lifecycle.flows.model import (
    Activity,
    AllOf,
    AnyOf,
    Branch,
    Cond,
    DateTrigger,
    EventMatch,
    FlowDef,
    Not,
    SegmentDef,
    SegmentEnter,
    StageEnter,
    Step,
)
from lifecycle.flows.parse import segments_used
from schemas.records import Stage

__all__ = ["FlowIndex", "LogNeed", "build_index", "step_table"]


@dataclass(frozen=True, slots=True)
class LogNeed:
    """Whether a log is read at all, and how far back (None: everything that is kept)."""

    needed: bool = False
    window: timedelta | None = timedelta(0)

    def widen(self, within: timedelta | None) -> LogNeed:
        if not self.needed:
            return LogNeed(True, within)
        if self.window is None or within is None:
            return LogNeed(True, None)
        return LogNeed(True, max(self.window, within))


@dataclass(frozen=True)
class FlowIndex:
    """The enabled flows by what starts or ends them, in playbook order."""

    flows: Mapping[str, FlowDef]
    triggers_by_event: Mapping[str, tuple[str, ...]]
    exits_by_event: Mapping[str, tuple[str, ...]]
    by_stage: Mapping[Stage, tuple[str, ...]]
    by_segment: Mapping[str, tuple[str, ...]]
    tracked_segments: tuple[str, ...]
    """Segments some ``segment_enter`` names: evaluated after every change of a record."""
    date_flows: tuple[str, ...]
    steps: Mapping[str, Mapping[str, Step]]
    """Per flow, each step by its index path (``"1"``, ``"3.then.0"``)."""
    bought_log: LogNeed
    view_log: LogNeed


def step_table(steps: tuple[Step, ...], prefix: str = "") -> dict[str, Step]:
    """Every step of a flow by its index path, branches' steps included."""
    table: dict[str, Step] = {}
    for n, step in enumerate(steps):
        path = f"{prefix}{n}"
        table[path] = step
        if isinstance(step, Branch):
            table |= step_table(step.then, f"{path}.then.")
            table |= step_table(step.else_, f"{path}.else.")
    return table


def _activities(cond: Cond | None) -> list[Activity]:
    match cond:
        case Activity():
            return [cond]
        case AllOf(items=items) | AnyOf(items=items):
            return [a for c in items for a in _activities(c)]
        case Not(cond=inner):
            return _activities(inner)
        case _:
            return []


def _conditions(flow: FlowDef) -> list[Cond]:
    conds: list[Cond] = list(flow.filters)
    conds += [s.if_ for s in step_table(flow.steps).values() if isinstance(s, Branch)]
    return conds


def _add(table: dict[str, list[str]], key: str, name: str) -> None:
    table.setdefault(key, []).append(name)


def build_index(segments: Mapping[str, SegmentDef], flows: Mapping[str, FlowDef]) -> FlowIndex:
    enabled = {name: flow for name, flow in flows.items() if flow.enabled}
    triggers: dict[str, list[str]] = {}
    exits: dict[str, list[str]] = {}
    stages: dict[Stage, list[str]] = {}
    by_segment: dict[str, list[str]] = {}
    dates: list[str] = []
    bought, viewed = LogNeed(), LogNeed()
    for name, flow in enabled.items():
        trigger = flow.trigger
        if isinstance(trigger, EventMatch):
            _add(triggers, trigger.event, name)
        elif isinstance(trigger, StageEnter):
            stages.setdefault(trigger.stage_enter, []).append(name)
        elif isinstance(trigger, SegmentEnter):
            _add(by_segment, trigger.segment_enter, name)
        elif isinstance(trigger, DateTrigger):
            dates.append(name)
        for event in dict.fromkeys(e.event for e in flow.exit_on):
            _add(exits, event, name)
        # segments_used: the trigger's segment, those of filters and branches, and theirs
        conds = _conditions(flow) + [
            c for s in segments_used(flow, segments) if (c := segments[s].cond) is not None
        ]
        for activity in (a for c in conds for a in _activities(c)):
            if activity.kind == "bought":
                bought = bought.widen(activity.within)
            else:
                viewed = viewed.widen(activity.within)
    return FlowIndex(
        flows=enabled,
        triggers_by_event={k: tuple(v) for k, v in triggers.items()},
        exits_by_event={k: tuple(v) for k, v in exits.items()},
        by_stage={k: tuple(v) for k, v in stages.items()},
        by_segment={k: tuple(v) for k, v in by_segment.items()},
        tracked_segments=tuple(by_segment),
        date_flows=tuple(dates),
        steps={name: step_table(flow.steps) for name, flow in enabled.items()},
        bought_log=bought,
        view_log=viewed,
    )

"""What a run of a flow did, as the interpreter reports it and the counters read it.

One ``FlowEvent`` per entry, exit or skipped start; sends, hold-outs and
suppressions are read from the trigger and suppression records themselves
(both carry ``flow``), so nothing is counted twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["EXIT_REASONS", "SKIP_REASONS", "FlowEvent", "FlowEventKind", "flow_event"]

FlowEventKind = Literal["entered", "exited", "skipped"]

EXIT_REASONS = (
    "completed",
    "exit_on",
    "filters",
    "restarted",
    "flow_changed",
    "erased",
    "merged",
)
"""Why a run ended: its last step ran; an ``exit_on`` event came; a filter failed
(at entry or before a send); a retrigger restarted it; the playbook changed
under it; the customer was erased; an identity merge brought a visitor's run
to a customer who already had a run of the flow (for the same key), which goes on."""

SKIP_REASONS = ("re_entry", "running", "per_missing")
"""Why a trigger started no run: ``re_entry`` forbids it (once, or too soon); a
run is active and ``on_retrigger: ignore``; the trigger event lacks the ``per`` field."""


@dataclass(frozen=True, slots=True)
class FlowEvent:
    flow: str
    kind: FlowEventKind
    reason: str = ""
    """Empty for ``entered``; one of ``EXIT_REASONS`` or ``SKIP_REASONS`` otherwise."""


_MADE: dict[tuple[str, str, str], FlowEvent] = {}


def flow_event(flow: str, kind: FlowEventKind, reason: str = "") -> FlowEvent:
    """The ``FlowEvent`` of these values, made once: it is frozen, and a busy playbook
    reports a few per cause (each start and end), so every cause shares the same few
    (a flow's name times the reasons: a bounded set)."""
    made = _MADE.get((flow, kind, reason))
    if made is None:
        made = _MADE[(flow, kind, reason)] = FlowEvent(flow, kind, reason)
    return made

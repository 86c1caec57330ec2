"""Deadlines: which timers a record has pending, and a partition's heap of them.

A record's timers are not set and cancelled by hand: ``schedule`` derives them
from the record after every change (the stage deadlines, the attribution
windows, the waiting flow runs and date flows), so a run that ended has no
timer by construction, and a fired timer that no longer applies simply is not
there any more.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Generic, TypeVar

from lifecycle.attribution import ATTRIBUTION_PREFIX
from lifecycle.flows.interpreter import schedule_flows
from lifecycle.playbook import Playbook, StageRules
from lifecycle.state import CustomerState
from schemas.records import Stage

__all__ = [
    "AT_RISK",
    "BUYER_STAGES",
    "CHURNED",
    "TimerHeap",
    "at_risk_after",
    "churned_after",
    "next_due",
    "schedule",
    "typical_gap",
]

AT_RISK = "at_risk"
CHURNED = "churned"

BUYER_STAGES = frozenset(
    {Stage.FIRST_TIME_BUYER, Stage.REPEAT_CUSTOMER, Stage.LOYAL, Stage.ADVOCATE, Stage.REACTIVATED}
)
"""Stages that slide to at_risk when purchases stop."""


def typical_gap(state: CustomerState) -> timedelta | None:
    """The median gap between the customer's recent purchases; None before a second one."""
    times = state.purchase_times
    if len(times) < 2:
        return None
    gaps = sorted(b - a for a, b in itertools.pairwise(times))
    middle = len(gaps) // 2
    return gaps[middle] if len(gaps) % 2 else (gaps[middle - 1] + gaps[middle]) / 2


def at_risk_after(state: CustomerState, rules: StageRules) -> timedelta:
    gap = typical_gap(state)
    if gap is None:
        return rules.at_risk.after
    return max(rules.at_risk.after, gap * rules.at_risk.gap_multiple)


def churned_after(state: CustomerState, rules: StageRules) -> timedelta:
    """Churn waits its own days, and never less than ``min_at_risk`` past going at risk."""
    return _churn_wait(at_risk_after(state, rules) if rules.at_risk.enabled else None, rules)


def _churn_wait(at_risk: timedelta | None, rules: StageRules) -> timedelta:
    """``churned_after`` from the at-risk wait already worked out (None: at risk is off)."""
    if at_risk is None:
        return rules.churned.after
    return max(rules.churned.after, at_risk + rules.churned.min_at_risk)


def schedule(state: CustomerState, playbook: Playbook) -> dict[str, datetime]:
    """Every deadline the record has pending under the playbook, by timer name."""
    rules = playbook.stages
    timers: dict[str, datetime] = {}
    last = state.last_order_at
    buyer = state.stage in BUYER_STAGES
    if last is not None and (buyer or state.stage is Stage.AT_RISK):
        # The typical gap (a sort) is read once, for both deadlines.
        at_risk = at_risk_after(state, rules) if rules.at_risk.enabled else None
        if at_risk is not None and buyer:
            timers[AT_RISK] = last + at_risk
        if rules.churned.enabled:
            timers[CHURNED] = last + _churn_wait(at_risk, rules)
    if state.runs or state.dates or state.segments_due is not None:
        schedule_flows(state, timers)
    for window in state.windows:
        timers[ATTRIBUTION_PREFIX + window.trigger_id] = window.closes_at
    return timers


K = TypeVar("K", str, bytes)


def next_due(state: CustomerState | None) -> datetime | None:
    if state is None or not state.timers:
        return None
    return min(state.timers.values())


class TimerHeap(Generic[K]):
    """(due, key) of one partition's customers, so a sweep costs O(timers due).

    ``_due`` holds each customer's earliest deadline; the heap holds, for each
    of them, at least one entry at or before it. Moving a deadline later (what
    almost every event does) pushes nothing: the old, earlier entry surfaces
    first and is pushed again at the current deadline. Moving it earlier pushes
    a new entry and leaves the old one to be skipped. So the heap stays close
    to one entry per customer and every operation is O(log n), with no scan.
    """

    def __init__(self) -> None:
        self._heap: list[tuple[datetime, K]] = []
        self._due: dict[K, datetime] = {}

    def __len__(self) -> int:
        return len(self._due)

    @property
    def entries(self) -> Sequence[tuple[datetime, K]]:
        """The heap itself, stale entries included (read-only): how compact it stays
        is what the benchmark and the tests measure."""
        return self._heap

    @property
    def deadlines(self) -> Mapping[K, datetime]:
        """Each customer's earliest deadline (read-only), what a sweep goes by."""
        return self._due

    def set(self, key: K, due: datetime | None) -> None:
        """The customer's earliest deadline is now ``due`` (None: nothing pending)."""
        if due is None:
            self._due.pop(key, None)
            return
        old = self._due.get(key)
        self._due[key] = due
        if old is None or due < old:
            heapq.heappush(self._heap, (due, key))
            if len(self._heap) > 2 * len(self._due) + 1024:
                self._compact()

    def rebuild(self, entries: Iterable[tuple[K, datetime]]) -> None:
        """Replace the contents at once: O(n) heapify instead of n pushes."""
        self._due = dict(entries)
        self._heap = [(due, key) for key, due in self._due.items()]
        heapq.heapify(self._heap)

    def peek(self) -> datetime | None:
        self._settle()
        return self._heap[0][0] if self._heap else None

    def pop_due(self, now: datetime) -> Iterator[K]:
        """Customers with a deadline before ``now``, earliest first (ties by key).

        A popped customer is out of the heap until ``set`` puts them back,
        which the caller does after firing their timers.
        """
        while True:
            self._settle()
            if not self._heap or self._heap[0][0] >= now:
                return
            _, key = heapq.heappop(self._heap)
            del self._due[key]
            yield key

    def _settle(self) -> None:
        """Bring a current entry to the top: drop stale ones, re-push postponed ones."""
        heap = self._heap
        while heap:
            at, key = heap[0]
            due = self._due.get(key)
            if due == at:
                return
            if due is not None and due > at:
                heapq.heapreplace(heap, (due, key))  # postponed: move it to its deadline
            else:
                heapq.heappop(heap)  # cancelled, or an earlier entry exists

    def _compact(self) -> None:
        self.rebuild(list(self._due.items()))

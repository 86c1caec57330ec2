"""Timers: what a record has pending, and a heap whose sweeps cost O(timers due)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from lifecycle.core import apply
from lifecycle.playbook import default_playbook, parse_playbook
from lifecycle.state import CustomerState, FlowRun
from lifecycle.timers import (
    TimerHeap,
    at_risk_after,
    churned_after,
    next_due,
    schedule,
    typical_gap,
)
from schemas.records import Stage
from tests.unit.test_core import purchase

T0 = datetime(2026, 1, 1, tzinfo=UTC)
DAY = timedelta(days=1)


def buyer(*days: float, stage: Stage = Stage.REPEAT_CUSTOMER) -> CustomerState:
    times = [T0 + d * DAY for d in days]
    return CustomerState(
        customer_id="c1",
        stage=stage,
        first_seen_at=T0,
        last_event_at=times[-1],
        orders=len(times),
        first_order_at=times[0],
        last_order_at=times[-1],
        purchase_times=times,
    )


def test_heap_pops_due_keys_earliest_first_and_keeps_the_rest() -> None:
    heap: TimerHeap[str] = TimerHeap()
    heap.set("b", T0 + 2 * DAY)
    heap.set("a", T0 + DAY)
    heap.set("c", T0 + 5 * DAY)
    assert list(heap.pop_due(T0 + 3 * DAY)) == ["a", "b"]
    assert len(heap) == 1
    assert heap.peek() == T0 + 5 * DAY


def test_heap_due_strictly_before_now() -> None:
    heap: TimerHeap[str] = TimerHeap()
    heap.set("a", T0)
    assert list(heap.pop_due(T0)) == []
    assert list(heap.pop_due(T0 + timedelta(microseconds=1))) == ["a"]


def test_heap_rescheduling_and_cancelling_leave_no_stale_firing() -> None:
    heap: TimerHeap[str] = TimerHeap()
    heap.set("a", T0 + DAY)
    heap.set("a", T0 + 10 * DAY)  # rescheduled later: the old entry must not fire
    heap.set("b", T0 + DAY)
    heap.set("b", None)  # cancelled
    assert list(heap.pop_due(T0 + 5 * DAY)) == []
    assert list(heap.pop_due(T0 + 11 * DAY)) == ["a"]
    assert len(heap) == 0
    assert heap.peek() is None


def test_heap_rebuild_replaces_the_contents() -> None:
    heap: TimerHeap[bytes] = TimerHeap()
    heap.set(b"old", T0)
    heap.rebuild([(b"x", T0 + 3 * DAY), (b"y", T0 + DAY)])
    assert list(heap.pop_due(T0 + 10 * DAY)) == [b"y", b"x"]


def test_heap_ties_break_by_key() -> None:
    heap: TimerHeap[str] = TimerHeap()
    for key in ("m", "a", "z"):
        heap.set(key, T0)
    assert list(heap.pop_due(T0 + DAY)) == ["a", "m", "z"]


def test_heap_stays_compact_under_many_reschedules() -> None:
    heap: TimerHeap[str] = TimerHeap()
    for n in range(50_000):
        heap.set("a", T0 + n * timedelta(seconds=1))
    assert len(heap.entries) < 3000
    assert list(heap.pop_due(T0 + DAY)) == ["a"]


def test_typical_gap_is_the_median_gap() -> None:
    assert typical_gap(buyer(0)) is None
    assert typical_gap(buyer(0, 10, 40)) == 20 * DAY  # gaps 10 and 30
    assert typical_gap(buyer(0, 10, 20, 100)) == 10 * DAY  # gaps 10, 10, 80


def test_inactivity_windows_stretch_for_slow_buyers() -> None:
    rules = default_playbook().stages
    fast = buyer(0, 10, 20)
    assert (at_risk_after(fast, rules), churned_after(fast, rules)) == (60 * DAY, 120 * DAY)
    slow = buyer(0, 45, 90)  # typical gap 45 days
    assert (at_risk_after(slow, rules), churned_after(slow, rules)) == (90 * DAY, 120 * DAY)
    slower = buyer(0, 90, 180)  # at risk after 180 days; churn 7 days later at the earliest
    assert (at_risk_after(slower, rules), churned_after(slower, rules)) == (180 * DAY, 187 * DAY)


def run(flow: str, key: str, wake: datetime) -> FlowRun:
    return FlowRun(
        flow=flow, key=key, run_id="r", started_at=T0, step="0", wake_at=wake, holdout=False
    )


def test_schedule_derives_each_deadline_from_the_record() -> None:
    book = default_playbook()
    state = buyer(0, stage=Stage.FIRST_TIME_BUYER)
    state.runs = {
        "cart_abandonment": run("cart_abandonment", "", T0 + 2 * DAY + timedelta(hours=1)),
        "review_request:o1": run("review_request", "o1", T0 + 7 * DAY),
    }
    state.dates = {"birthday": T0 + 100 * DAY}
    assert schedule(state, book) == {
        "at_risk": T0 + 60 * DAY,
        "churned": T0 + 120 * DAY,
        "flow:cart_abandonment": T0 + 2 * DAY + timedelta(hours=1),
        "flow:review_request:o1": T0 + 7 * DAY,
        "date:birthday": T0 + 100 * DAY,
    }


def test_schedule_follows_the_playbook_switches() -> None:
    book = parse_playbook(
        "stages:\n  at_risk: {enabled: false}\n"
        "campaigns:\n  review_request: {enabled: false}\n  second_purchase_nudge: {delay: 14d}\n"
    )
    bought = apply(None, purchase("c1", "e1", T0.isoformat(), "o1", "10"), book)
    assert bought.state is not None
    assert bought.state.timers == {
        "churned": T0 + 120 * DAY,
        "flow:second_purchase_nudge": T0 + 14 * DAY,
    }


def test_schedule_gives_each_stage_its_own_deadlines() -> None:
    """At risk already: only churn is pending, still ``min_at_risk`` past the slow
    buyer's at-risk day; with churn off, a buyer has only the at-risk deadline."""
    book = default_playbook()
    slower = buyer(0, 90, 180, stage=Stage.AT_RISK)  # last order on day 180, gap 90 days
    assert schedule(slower, book) == {"churned": T0 + (180 + 187) * DAY}
    no_churn = parse_playbook("stages:\n  churned: {enabled: false}\n")
    assert schedule(buyer(0, 90, 180, stage=Stage.LOYAL), no_churn) == {
        "at_risk": T0 + (180 + 180) * DAY
    }
    assert schedule(slower, no_churn) == {}


def test_churned_customers_and_leads_have_no_inactivity_timer() -> None:
    book = default_playbook()
    assert schedule(buyer(0, stage=Stage.CHURNED), book) == {}
    lead = CustomerState(customer_id="c1", stage=Stage.LEAD, first_seen_at=T0, last_event_at=T0)
    assert schedule(lead, book) == {}
    assert next_due(lead) is None
    assert next_due(None) is None

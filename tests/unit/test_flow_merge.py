"""An identity merge and flows: the visitor's views and waiting runs reach the customer.

The journeys (tests/scenarios/flows.py) show the outputs end to end; these pin the
two hops themselves: what the retired visitor hands on, how the customer folds it
in (once), and that a message written before the new fields still decodes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from lifecycle.core import Due, Outcome, apply
from lifecycle.flows.counts import FlowEvent
from lifecycle.playbook import Playbook
from lifecycle.state import ActivityMark, CustomerState, ViewMark
from schemas.codec import encode_model
from schemas.events import Event, EventAdapter
from schemas.internal import Claim, MergeAdapter, ProspectHistory
from tests.unit.test_flows import T0, D, H, book, ev, signup

WISH = (
    "  wish:\n"
    "    trigger: {event: custom, where: {name: wishlist_add}}\n"
    "    steps: [{wait: 1d}, {send: {campaign: wish}}]\n"
)
TEA = "  tea: {viewed: {category: tea, within: 30d}}\n"
TEA_FLOW = "  tea_fan:\n    trigger: {segment_enter: tea}\n    steps: [{send: {campaign: tea}}]\n"


def visitor(type_: str, n: int, at: datetime, **fields: Any) -> Event:
    body = {"type": type_, "event_id": f"v{n}", "occurred_at": at.isoformat()}
    return EventAdapter.validate_python({**body, "anonymous_id": "a1", **fields})


def merged(playbook: Playbook, *before: Event) -> tuple[ProspectHistory, CustomerState]:
    """The visitor's events, then the signup of c1 claiming it: the history and the customer."""
    state: CustomerState | None = None
    for event in before:
        state = apply(state, event, playbook).state
    customer = apply(None, signup(1, T0, anonymous_id="a1"), playbook)
    assert customer.state is not None
    (claim,) = customer.claims
    retired = apply(state, claim, playbook)
    assert retired.state is None
    assert retired.history is not None
    return retired.history, customer.state


def test_the_retired_visitor_hands_on_its_view_marks_and_waiting_runs() -> None:
    playbook = book(WISH + TEA_FLOW, segments=TEA)
    history, _ = merged(
        playbook,
        visitor("browse", 1, T0 - 3 * H, product_id="p-tea", category="tea"),
        visitor("custom", 2, T0 - 2 * H, name="wishlist_add"),
    )
    assert history.view_log == (ActivityMark(at=T0 - 3 * H, product_id="p-tea", category="tea"),)
    (run,) = history.runs
    assert (run.flow, run.key, run.step, run.wake_at) == ("wish", "", "0", T0 - 2 * H + D)
    assert MergeAdapter.validate_json(encode_model(history)) == history


def test_a_history_an_older_version_wrote_still_decodes() -> None:
    older = (
        b'{"kind":"history","anonymous_id":"a1","customer_id":"c1",'
        b'"at":"2025-03-03T10:00:00+00:00","cause":"e1",'
        b'"first_seen_at":"2025-03-03T07:00:00+00:00","views":["p-tea"]}'
    )
    history = MergeAdapter.validate_json(older)
    assert isinstance(history, ProspectHistory)
    assert (history.views, history.view_log, history.runs) == (("p-tea",), (), ())


def test_a_history_with_nothing_new_to_carry_is_the_message_an_older_version_wrote() -> None:
    history, _ = merged(book(WISH), visitor("browse", 1, T0 - 3 * H, product_id="p-tea"))
    assert encode_model(history) == (
        b'{"kind":"history","anonymous_id":"a1","customer_id":"c1",'
        b'"at":"2025-03-03T10:00:00Z","cause":"e1",'
        b'"first_seen_at":"2025-03-03T07:00:00Z","views":["p-tea"]}'
    )


def test_a_flow_run_once_by_the_visitor_does_not_run_again_for_the_customer() -> None:
    playbook = book(WISH.replace("    steps:", "    re_entry: once\n    steps:"))
    history, customer = merged(playbook, visitor("custom", 2, T0 - 2 * H, name="wishlist_add"))
    assert history.entered == {"wish": T0 - 2 * H}
    state = apply(customer, history, playbook).state
    again = apply(state, ev("custom", 3, T0 + 2 * D, name="wishlist_add"), playbook)
    assert [t.campaign for t in again.triggers] == ["wish"]  # the visitor's run, due first
    assert again.flow_events == [
        FlowEvent("wish", "exited", "completed"),
        FlowEvent("wish", "skipped", "re_entry"),
    ]


def test_the_customer_gets_the_views_and_the_run_and_a_second_fold_changes_nothing() -> None:
    playbook = book(WISH + TEA_FLOW, segments=TEA)
    history, customer = merged(
        playbook,
        visitor("browse", 1, T0 - 3 * H, product_id="p-tea", category="tea"),
        visitor("custom", 2, T0 - 2 * H, name="wishlist_add"),
    )
    folded = apply(customer, history, playbook)
    state = folded.state
    assert state is not None
    assert state.view_log == [ActivityMark(at=T0 - 3 * H, product_id="p-tea", category="tea")]
    assert state.views == [ViewMark(product="p-tea", at=T0 - 3 * H)]
    assert list(state.runs) == ["wish"]
    assert state.timers["flow:wish"] == T0 - 2 * H + D
    assert [t.campaign for t in folded.triggers] == ["tea"]  # the segment turned true
    again = apply(state, history, playbook)
    assert (again.changed, again.state, again.flow_events) == (False, state, [])
    woken = apply(state, Due(T0 + D), playbook)
    assert [(t.campaign, t.customer_id) for t in woken.triggers] == [("wish", "c1")]
    assert woken.flow_events == [FlowEvent("wish", "exited", "completed")]


def test_a_visitors_run_sends_the_products_viewed_since_it_began_before_and_after_signup() -> None:
    """flows.md: a send's ``viewed_products`` are those viewed since the run began; the
    visitor's run goes on as the customer's, and so do the visitor's views in it. Views
    before the run, or of a visitor with no run waiting, are not carried."""
    playbook = book(
        "  look:\n    trigger: {event: custom, where: {name: look}}\n"
        "    steps: [{wait: 2h}, {send: {campaign: look, include: [viewed_products]}}]\n"
    )
    history, customer = merged(
        playbook,
        visitor("browse", 1, T0 - 3 * H, product_id="p-old"),
        visitor("custom", 2, T0 - H, name="look"),
        visitor("browse", 3, T0 - H / 2, product_id="p-py"),
    )
    assert [m.product for m in history.view_marks] == ["p-py"]
    state = apply(customer, history, playbook).state
    state = apply(state, ev("browse", 4, T0 + H / 2, product_id="p-pz"), playbook).state
    woken = apply(state, Due(T0 + 2 * H), playbook)
    [trigger] = [t for t in woken.triggers if t.campaign == "look"]
    assert trigger.payload["viewed_products"] == ["p-pz", "p-py"]


def test_the_customers_own_run_wins_and_the_visitors_ends_merged() -> None:
    playbook = book(WISH)
    history, customer = merged(playbook, visitor("custom", 2, T0 - 2 * H, name="wishlist_add"))
    own = apply(customer, ev("custom", 3, T0 + H, name="wishlist_add"), playbook).state
    assert own is not None
    folded = apply(own, history, playbook)
    assert folded.flow_events == [FlowEvent("wish", "exited", "merged")]
    assert folded.state is not None
    assert folded.state.runs == own.runs


def test_a_visitors_runs_end_erased_when_the_customer_is_gone() -> None:
    playbook = book(WISH)
    history, _ = merged(playbook, visitor("custom", 2, T0 - 2 * H, name="wishlist_add"))
    gone: Outcome = apply(None, history, playbook)
    assert (gone.state, gone.flow_events) == (None, [FlowEvent("wish", "exited", "erased")])
    assert not gone.duplicate  # a worker counts what a duplicate outcome did not do


def test_a_claim_on_a_missing_visitor_hands_on_nothing() -> None:
    claim = Claim(anonymous_id="a1", customer_id="c1", at=T0, cause="e1")
    outcome = apply(None, claim, book(WISH))
    assert (outcome.history, outcome.changed, outcome.flow_events) == (None, False, [])


def test_a_history_arriving_after_the_customers_later_events_decides_at_the_records_time() -> None:
    """The history crosses two partitions and may come after the customer's next
    events: a segment it turns true then starts its flow at the record's own latest
    time, not back at the signup (which would put a send before mails already decided,
    and let the caps judge it against the wrong moment)."""
    playbook = book(TEA_FLOW, segments=TEA.replace("within: 30d", "within: 30d, min_count: 2"))
    history, customer = merged(
        playbook, visitor("browse", 1, T0 - 3 * H, product_id="p-tea", category="tea")
    )
    later = ev("browse", 5, T0 + D, product_id="p-tea", category="tea")
    browsed = apply(customer, later, playbook)
    assert browsed.triggers == []  # one tea view of the customer's own: not yet a tea fan
    assert browsed.state is not None
    folded = apply(browsed.state, history, playbook)
    [trigger] = folded.triggers
    assert (trigger.campaign, trigger.created_at) == ("tea", T0 + D)

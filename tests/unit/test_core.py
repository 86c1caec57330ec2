"""The pure core: lifecycle.core.apply with the default playbook (docs/campaigns.md)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from lifecycle.core import Due, Outcome, apply
from lifecycle.playbook import Playbook, PlaybookError, parse_playbook
from lifecycle.policy import Suppression
from lifecycle.state import CustomerState
from schemas.events import Event, EventAdapter
from schemas.records import Campaign, Rfm, Snapshot, Stage, Transition, Trigger

HEX32 = re.compile(r"^[0-9a-f]{32}$")


def event(type_: str, event_id: str, at: str, **fields: Any) -> Event:
    return EventAdapter.validate_python(
        {"type": type_, "event_id": event_id, "occurred_at": at, **fields}
    )


def signup(customer: str, event_id: str, at: str, *, consent: bool = True, **fields: Any) -> Event:
    return event(
        "signup",
        event_id,
        at,
        customer_id=customer,
        email=f"{customer}@mail.example",
        marketing_consent=consent,
        **fields,
    )


def purchase(customer: str, event_id: str, at: str, order_id: str, total: str) -> Event:
    return event(
        "purchase",
        event_id,
        at,
        customer_id=customer,
        order_id=order_id,
        total=total,
        currency="EUR",
        items=[{"product_id": "p1", "category": "tea", "quantity": 1, "unit_price": total}],
    )


def unsubscribe(customer: str, event_id: str, at: str) -> Event:
    return event(
        "engagement", event_id, at, customer_id=customer, action="unsubscribe", channel="email"
    )


def privacy_consent(customer: str, event_id: str, at: str, *, granted: bool) -> Event:
    return event("privacy", event_id, at, customer_id=customer, action="consent", granted=granted)


class Shop:
    """Customer records keyed like a worker's table: one per event key, erase deletes."""

    def __init__(self, playbook: Playbook) -> None:
        self.playbook = playbook
        self.states: dict[str, CustomerState] = {}

    def feed(self, *events: Event) -> list[Outcome]:
        outcomes = []
        for e in events:
            outcome = apply(self.states.get(e.key), e, self.playbook)
            if outcome.state is None:
                self.states.pop(e.key, None)
            else:
                self.states[e.key] = outcome.state
            outcomes.append(outcome)
        return outcomes

    def transitions(self, outcomes: Iterable[Outcome]) -> list[Transition]:
        return [t for o in outcomes for t in o.transitions]


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def without_id(record: Transition | Trigger) -> dict[str, Any]:
    data = record.model_dump()
    data.pop("transition_id" if isinstance(record, Transition) else "trigger_id")
    return data


def empty_snapshot() -> Snapshot:
    return Snapshot(orders=0, revenue=Decimal(0), clv=Decimal(0), aov=Decimal("0.00"), rfm=None)


# --- stages ------------------------------------------------------------------------------


def test_anonymous_browse_makes_a_prospect(playbook: Playbook) -> None:
    browse = event("browse", "e1", "2025-01-10T09:00:00Z", anonymous_id="a1", product_id="p1")
    outcome = apply(None, browse, playbook)
    assert outcome.triggers == []
    assert outcome.suppressed == []
    assert not outcome.duplicate
    assert not outcome.erased
    [transition] = outcome.transitions
    assert HEX32.match(transition.transition_id)
    assert without_id(transition) == {
        "customer_id": "a1",
        "from_stage": None,
        "to_stage": Stage.PROSPECT,
        "reason": "browse_without_signup",
        "at": utc("2025-01-10T09:00:00Z"),
        "caused_by": "e1",
        "snapshot": empty_snapshot().model_dump(),
    }
    assert outcome.state is not None
    assert (outcome.state.customer_id, outcome.state.stage) == ("a1", Stage.PROSPECT)


def test_second_browse_moves_nothing(playbook: Playbook) -> None:
    shop = Shop(playbook)
    first, second = shop.feed(
        event("browse", "e1", "2025-01-10T09:00:00Z", anonymous_id="a1"),
        event(
            "cart",
            "e2",
            "2025-01-10T09:05:00Z",
            anonymous_id="a1",
            action="checkout_started",
            cart_id="k1",
        ),
    )
    assert len(first.transitions) == 1
    assert (second.transitions, second.triggers) == ([], [])


def test_consenting_signup_makes_a_lead_and_sends_welcome(playbook: Playbook) -> None:
    e = signup(
        "c1",
        "e1",
        "2025-01-10T12:00:00+01:00",
        first_name="Ada",
        locale="de-DE",
        timezone="Europe/Berlin",
    )
    outcome = apply(None, e, playbook)
    [transition] = outcome.transitions
    assert without_id(transition) == {
        "customer_id": "c1",
        "from_stage": None,
        "to_stage": Stage.LEAD,
        "reason": "signup",
        "at": utc("2025-01-10T11:00:00Z"),
        "caused_by": "e1",
        "snapshot": empty_snapshot().model_dump(),
    }
    [trigger] = outcome.triggers
    assert HEX32.match(trigger.trigger_id)
    assert without_id(trigger) == {
        "customer_id": "c1",
        "campaign": Campaign.WELCOME,
        "flow": Campaign.WELCOME,
        "step": "0",
        "channel": "email",
        "stage": Stage.LEAD,
        "created_at": utc("2025-01-10T11:00:00Z"),
        "send_after": utc("2025-01-10T11:00:00Z"),
        "variant": "A",
        "holdout": False,  # c1's deterministic welcome bucket is outside the 10% holdout
        "payload": {
            "email": "c1@mail.example",
            "first_name": "Ada",
            "locale": "de-DE",
            "segment": None,  # no order yet, no RFM
            "clv": "0.00",
            "clv_tier": "low",
            "p_alive": None,
            "predicted_clv": None,
        },
    }
    assert outcome.suppressed == []


def test_signup_without_consent_suppresses_welcome(playbook: Playbook) -> None:
    outcome = apply(None, signup("c1", "e1", "2025-01-10T11:00:00Z", consent=False), playbook)
    assert [t.to_stage for t in outcome.transitions] == [Stage.LEAD]
    assert outcome.triggers == []
    assert outcome.suppressed == [Suppression("c1", Campaign.WELCOME, "no_consent", "e1")]


def test_second_signup_sends_no_second_welcome(playbook: Playbook) -> None:
    shop = Shop(playbook)
    _, again = shop.feed(
        signup("c1", "e1", "2025-01-10T11:00:00Z"),
        signup("c1", "e2", "2025-01-11T11:00:00Z", first_name="Ada"),
    )
    assert (again.transitions, again.triggers, again.suppressed) == ([], [], [])
    assert shop.states["c1"].profile.first_name == "Ada"


def test_prospect_and_signed_up_customer_are_separate_records(playbook: Playbook) -> None:
    shop = Shop(playbook)
    outcomes = shop.feed(
        event("browse", "e1", "2025-01-10T09:00:00Z", anonymous_id="a1"),
        signup("c1", "e2", "2025-01-10T09:10:00Z", anonymous_id="a1"),
    )
    assert [(t.customer_id, t.from_stage, t.to_stage) for t in shop.transitions(outcomes)] == [
        ("a1", None, Stage.PROSPECT),
        ("c1", None, Stage.LEAD),
    ]
    assert {k: s.stage for k, s in shop.states.items()} == {"a1": Stage.PROSPECT, "c1": Stage.LEAD}


@pytest.mark.parametrize(("first", "loyal"), [("10:00:00", True), ("09:59:59", False)])
def test_the_loyal_window_includes_its_first_instant(first: str, loyal: bool) -> None:
    """ "4+ purchases in 365 days" counts a purchase exactly 365 days before the fourth, as
    every ``within`` of the playbook includes its bound (here 30 days, so no lapse between)."""
    book = parse_playbook("stages:\n  loyal: {within: 30d}\n")
    shop = Shop(book)
    shop.feed(signup("c1", "e0", "2025-01-01T08:00:00Z"))
    shop.feed(purchase("c1", "e1", f"2025-01-02T{first}Z", "o1", "10.00"))
    shop.feed(purchase("c1", "e2", "2025-01-12T10:00:00Z", "o2", "10.00"))
    shop.feed(purchase("c1", "e3", "2025-01-22T10:00:00Z", "o3", "10.00"))
    [fourth] = shop.feed(purchase("c1", "e4", "2025-02-01T10:00:00Z", "o4", "10.00"))
    moves = [(t.to_stage, t.reason) for t in fourth.transitions]
    assert moves == ([(Stage.LOYAL, "loyal_orders")] if loyal else [])


def test_purchases_move_lead_to_first_time_then_repeat(playbook: Playbook) -> None:
    shop = Shop(playbook)
    shop.feed(signup("c1", "e1", "2025-01-10T11:00:00Z", consent=False))
    [first] = shop.feed(purchase("c1", "e2", "2025-01-12T10:00:00Z", "o1", "10.10"))
    [move] = first.transitions
    assert without_id(move) == {
        "customer_id": "c1",
        "from_stage": Stage.LEAD,
        "to_stage": Stage.FIRST_TIME_BUYER,
        "reason": "first_purchase",
        "at": utc("2025-01-12T10:00:00Z"),
        "caused_by": "e2",
        "snapshot": Snapshot(
            orders=1,
            revenue=Decimal("10.10"),
            clv=Decimal("10.10"),
            aov=Decimal("10.10"),
            rfm=Rfm(r=5, f=1, m=1),
            p_alive=1.0,  # BG/NBD: no repeat purchase, no evidence of drop-out
            predicted_clv=move.snapshot.predicted_clv,  # its value: test_clv
        ).model_dump(),
    }
    # transactional: sent although the customer never consented to marketing
    [thanks] = first.triggers
    assert first.suppressed == []
    assert without_id(thanks) == {
        "customer_id": "c1",
        "campaign": Campaign.ORDER_THANK_YOU,
        "flow": Campaign.ORDER_THANK_YOU,
        "step": "0",
        "channel": "email",
        "stage": Stage.FIRST_TIME_BUYER,
        "created_at": utc("2025-01-12T10:00:00Z"),
        "send_after": utc("2025-01-12T10:00:00Z"),
        "variant": "A",
        "holdout": False,
        "payload": {
            "email": "c1@mail.example",
            "first_name": None,
            "locale": None,
            "segment": "new_customers",  # r 5 (today), f 1
            "clv": "10.10",
            "clv_tier": "low",
            "p_alive": 1.0,  # no repeat purchase yet: BG/NBD cannot have seen a drop-out
            "predicted_clv": thanks.payload["predicted_clv"],
            "recommendations": [],  # no co-purchase store given: see test_recommend
            "order_id": "o1",
            "total": "10.10",
            "currency": "EUR",
            "items": [
                {"product_id": "p1", "quantity": 1, "unit_price": "10.10", "category": "tea"}
            ],
            "products": ["p1"],  # include: order gives the products too (the review reads them)
            "order": {  # and the order whole, under its own name
                "order_id": "o1",
                "total": "10.10",
                "currency": "EUR",
                "items": [
                    {"product_id": "p1", "quantity": 1, "unit_price": "10.10", "category": "tea"}
                ],
                "products": ["p1"],
            },
        },
    }

    [second] = shop.feed(purchase("c1", "e3", "2025-02-01T10:00:00Z", "o2", "20.20"))
    [move] = second.transitions
    assert (move.from_stage, move.to_stage, move.reason, move.caused_by) == (
        Stage.FIRST_TIME_BUYER,
        Stage.REPEAT_CUSTOMER,
        "repeat_purchase",
        "e3",
    )
    assert move.snapshot.model_dump() == {
        "orders": 2,
        "revenue": Decimal("30.30"),
        "clv": Decimal("30.30"),
        "aov": Decimal("15.15"),
        "rfm": {"r": 5, "f": 2, "m": 1},
        "typical_gap_days": 20.0,  # 12 January to 1 February
        # One repeat purchase, observed up to it (t_x = T): 1 / (1 + a / b).
        "p_alive": round(1 / (1 + 0.793 / 2.426), 4),
        "predicted_clv": move.snapshot.predicted_clv,
    }
    assert move.snapshot.predicted_clv is not None
    assert move.snapshot.predicted_clv > 0
    assert [t.campaign for t in second.triggers] == [Campaign.ORDER_THANK_YOU]

    [third] = shop.feed(purchase("c1", "e4", "2025-03-01T10:00:00Z", "o3", "0.05"))
    assert third.transitions == []
    assert [(t.campaign, t.stage) for t in third.triggers] == [
        (Campaign.ORDER_THANK_YOU, Stage.REPEAT_CUSTOMER)
    ]
    state = shop.states["c1"]
    assert (state.orders, state.revenue, state.average_order_value) == (
        3,
        Decimal("30.35"),
        Decimal("10.12"),
    )
    assert state.first_order_at == utc("2025-01-12T10:00:00Z")
    assert state.last_order_at == utc("2025-03-01T10:00:00Z")


def test_purchase_by_unknown_customer(playbook: Playbook) -> None:
    outcome = apply(None, purchase("g1", "e1", "2025-01-12T10:00:00Z", "o1", "5"), playbook)
    assert [(t.from_stage, t.to_stage, t.reason) for t in outcome.transitions] == [
        (None, Stage.FIRST_TIME_BUYER, "first_purchase")
    ]
    assert [t.campaign for t in outcome.triggers] == [Campaign.ORDER_THANK_YOU]


def test_transactional_trigger_is_never_held_out(playbook: Playbook) -> None:
    held = [
        apply(None, purchase(f"g{n}", "e1", "2025-01-12T10:00:00Z", "o1", "5"), playbook)
        .triggers[0]
        .holdout
        for n in range(500)
    ]
    assert not any(held)


def cart(customer: str, event_id: str, at: str, action: str, **line: Any) -> Event:
    return event("cart", event_id, at, customer_id=customer, action=action, cart_id="k1", **line)


@pytest.mark.parametrize("added", [False, True])
def test_a_checkout_with_no_purchase_in_an_hour_sends_cart_abandonment_with_its_line(
    playbook: Playbook, added: bool
) -> None:
    """A checkout naming its product is a cart to remind of, whether or not an add came
    first; it states the line, so an add of the same product is not counted twice."""
    line = {"product_id": "p1", "quantity": 2, "unit_price": "12.50", "currency": "EUR"}
    shop = Shop(playbook)
    shop.feed(signup("c1", "e1", "2025-01-10T09:00:00Z"))
    if added:
        shop.feed(cart("c1", "e2", "2025-01-12T09:00:00Z", "add", **line))
    shop.feed(cart("c1", "e3", "2025-01-12T10:00:00Z", "checkout_started", **line))
    due = apply(shop.states["c1"], Due(utc("2025-01-12T11:00:01Z")), playbook)
    [trigger] = due.triggers
    assert (trigger.campaign, trigger.created_at) == (
        Campaign.CART_ABANDONMENT,
        utc("2025-01-12T11:00:00Z"),
    )
    assert (trigger.payload["items"], trigger.payload["value"]) == (
        [{"product_id": "p1", "quantity": 2, "unit_price": "12.50"}],
        "25.00",
    )


# --- duplicates ---------------------------------------------------------------------------


def test_duplicate_event_id_changes_nothing(playbook: Playbook) -> None:
    shop = Shop(playbook)
    e = purchase("c1", "e1", "2025-01-12T10:00:00Z", "o1", "10")
    shop.feed(e)
    before = shop.states["c1"].model_dump()
    again = apply(shop.states["c1"], e, playbook)
    assert again.duplicate
    assert again.state is not None
    assert again.state.model_dump() == before
    assert (again.transitions, again.triggers, again.suppressed) == ([], [], [])


def test_same_order_under_new_event_id_is_not_counted(playbook: Playbook) -> None:
    shop = Shop(playbook)
    shop.feed(purchase("c1", "e1", "2025-01-12T10:00:00Z", "o1", "10"))
    [again] = shop.feed(purchase("c1", "e2", "2025-01-12T10:01:00Z", "o1", "10"))
    assert again.duplicate
    assert (again.transitions, again.triggers) == ([], [])
    state = shop.states["c1"]
    assert (state.orders, state.revenue, state.stage) == (1, Decimal(10), Stage.FIRST_TIME_BUYER)


# --- refunds ------------------------------------------------------------------------------


@pytest.fixture
def two_orders(playbook: Playbook) -> Shop:
    shop = Shop(playbook)
    shop.feed(
        purchase("c1", "e1", "2025-01-12T10:00:00Z", "o1", "40.00"),
        purchase("c1", "e2", "2025-01-20T10:00:00Z", "o2", "20.00"),
    )
    return shop


def refund(event_id: str, order_id: str, amount: str) -> Event:
    return event(
        "refund",
        event_id,
        "2025-02-01T10:00:00Z",
        customer_id="c1",
        order_id=order_id,
        amount=amount,
    )


def test_partial_refund_lowers_revenue(two_orders: Shop) -> None:
    [outcome] = two_orders.feed(refund("r1", "o1", "10.50"))
    assert (outcome.transitions, outcome.triggers) == ([], [])
    state = two_orders.states["c1"]
    assert (state.orders, state.revenue, state.average_order_value) == (
        2,
        Decimal("49.50"),
        Decimal("24.75"),
    )
    assert state.order_net == {"o1": Decimal("29.50"), "o2": Decimal("20.00")}


def test_refund_is_capped_and_whole_refund_drops_the_order(two_orders: Shop) -> None:
    two_orders.feed(refund("r1", "o2", "5"), refund("r2", "o2", "100"), refund("r3", "o2", "1"))
    state = two_orders.states["c1"]
    assert (state.orders, state.revenue) == (1, Decimal("40.00"))
    assert state.order_net == {"o1": Decimal("40.00"), "o2": Decimal(0)}
    assert state.stage is Stage.REPEAT_CUSTOMER  # refunds do not move stages back


def test_refund_of_unknown_order_changes_nothing(two_orders: Shop) -> None:
    before = two_orders.states["c1"]
    [outcome] = two_orders.feed(refund("r1", "o9", "10"))
    after = two_orders.states["c1"]
    assert (outcome.transitions, outcome.triggers) == ([], [])
    assert (after.orders, after.revenue, after.order_net) == (
        before.orders,
        before.revenue,
        before.order_net,
    )


# --- consent, unsubscribe, privacy ----------------------------------------------------------


def test_unsubscribe_suppresses_marketing_but_not_transactional(playbook: Playbook) -> None:
    shop = Shop(playbook)
    shop.feed(
        event("browse", "e1", "2025-01-10T09:00:00Z", customer_id="c1"),
        unsubscribe("c1", "e2", "2025-01-10T09:01:00Z"),
    )
    assert shop.states["c1"].profile.unsubscribed_from == ["email"]
    [joined] = shop.feed(signup("c1", "e3", "2025-01-10T09:02:00Z", consent=False))
    assert joined.triggers == []
    assert joined.suppressed == [Suppression("c1", Campaign.WELCOME, "unsubscribed", "e3")]
    [bought] = shop.feed(purchase("c1", "e4", "2025-01-11T09:00:00Z", "o1", "9.99"))
    assert [t.campaign for t in bought.triggers] == [Campaign.ORDER_THANK_YOU]
    assert bought.suppressed == []


@pytest.mark.parametrize("granted", [True, False])
def test_privacy_consent_sets_the_marketing_flag(playbook: Playbook, granted: bool) -> None:
    shop = Shop(playbook)
    shop.feed(signup("c1", "e1", "2025-01-10T09:00:00Z", consent=not granted))
    [outcome] = shop.feed(privacy_consent("c1", "e2", "2025-01-10T10:00:00Z", granted=granted))
    assert (outcome.transitions, outcome.triggers) == ([], [])
    profile = shop.states["c1"].profile
    assert profile.marketing_consent is granted
    assert shop.states["c1"].may_receive_marketing is granted


def test_consent_granted_lifts_an_unsubscribe(playbook: Playbook) -> None:
    shop = Shop(playbook)
    shop.feed(
        signup("c1", "e1", "2025-01-10T09:00:00Z"),
        unsubscribe("c1", "e2", "2025-01-10T09:01:00Z"),
    )
    assert not shop.states["c1"].may_receive_marketing
    shop.feed(privacy_consent("c1", "e3", "2025-01-10T09:02:00Z", granted=True))
    assert shop.states["c1"].may_receive_marketing


def test_erase_deletes_the_record_and_a_later_event_starts_fresh(playbook: Playbook) -> None:
    shop = Shop(playbook)
    shop.feed(
        signup("c1", "e1", "2025-01-10T09:00:00Z"),
        purchase("c1", "e2", "2025-01-11T09:00:00Z", "o1", "10"),
    )
    [erased] = shop.feed(
        event("privacy", "e3", "2025-01-12T09:00:00Z", customer_id="c1", action="erase")
    )
    assert erased.state is None
    assert erased.erased
    assert not erased.duplicate
    assert (erased.transitions, erased.triggers, erased.suppressed) == ([], [], [])
    assert "c1" not in shop.states
    [later] = shop.feed(purchase("c1", "e4", "2025-01-13T09:00:00Z", "o2", "7"))
    assert [(t.from_stage, t.to_stage) for t in later.transitions] == [
        (None, Stage.FIRST_TIME_BUYER)
    ]
    assert later.state is not None
    assert (later.state.orders, later.state.revenue, later.state.profile.email) == (
        1,
        Decimal(7),
        None,
    )


# --- purity and ids -------------------------------------------------------------------------


def test_apply_never_mutates_its_input(playbook: Playbook) -> None:
    shop = Shop(playbook)
    shop.feed(
        signup("c1", "e1", "2025-01-10T09:00:00Z"),
        purchase("c1", "e2", "2025-01-11T09:00:00Z", "o1", "10"),
    )
    state = shop.states["c1"]
    before = state.model_dump()
    for e in (
        purchase("c1", "e3", "2025-01-12T09:00:00Z", "o2", "10"),
        refund("e4", "o1", "10"),
        unsubscribe("c1", "e5", "2025-01-12T09:00:00Z"),
        privacy_consent("c1", "e6", "2025-01-12T09:00:00Z", granted=False),
        event("privacy", "e7", "2025-01-12T09:00:00Z", customer_id="c1", action="erase"),
        signup("c1", "e8", "2025-01-12T09:00:00Z", first_name="Zed"),
    ):
        outcome = apply(state, e, playbook)
        assert outcome.state is not state
        assert state.model_dump() == before, e.type


def journey(playbook: Playbook, suffix: str = "") -> list[str]:
    shop = Shop(playbook)
    outcomes = shop.feed(
        signup("c1", f"e1{suffix}", "2025-01-10T09:00:00Z"),
        purchase("c1", f"e2{suffix}", "2025-01-11T09:00:00Z", f"o1{suffix}", "10"),
        purchase("c1", f"e3{suffix}", "2025-01-12T09:00:00Z", f"o2{suffix}", "10"),
    )
    return [t.transition_id for o in outcomes for t in o.transitions] + [
        t.trigger_id for o in outcomes for t in o.triggers
    ]


def test_ids_are_deterministic_and_distinct(playbook: Playbook) -> None:
    first, again, other = journey(playbook), journey(playbook), journey(playbook, "x")
    assert len(first) == 6
    assert first == again
    assert len(set(first)) == len(first)
    assert set(first).isdisjoint(other)
    assert all(HEX32.match(i) for i in first)


# --- quiet hours ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("local", "send_after"),
    [
        ("2025-01-15T23:30:00+01:00", "2025-01-16T07:00:00Z"),  # 08:00 CET next day
        ("2025-01-15T21:00:00+01:00", "2025-01-16T07:00:00Z"),
        ("2025-01-16T07:59:00+01:00", "2025-01-16T07:00:00Z"),  # same morning
        ("2025-01-15T12:00:00+01:00", "2025-01-15T11:00:00Z"),  # daytime: no delay
        ("2025-01-15T20:59:00+01:00", "2025-01-15T19:59:00Z"),
        ("2025-01-16T08:00:00+01:00", "2025-01-16T07:00:00Z"),
        # DST starts on 2025-03-30 in Berlin: the night spans it, 08:00 CEST is 06:00Z
        ("2025-03-29T23:30:00+01:00", "2025-03-30T06:00:00Z"),
        # DST ends on 2025-10-26: 08:00 CET is 07:00Z
        ("2025-10-25T23:30:00+02:00", "2025-10-26T07:00:00Z"),
    ],
)
def test_quiet_hours_move_welcome_to_the_morning(
    playbook: Playbook, local: str, send_after: str
) -> None:
    e = signup("c1", "e1", local, timezone="Europe/Berlin")
    [trigger] = apply(None, e, playbook).triggers
    assert trigger.created_at == utc(local)
    assert trigger.send_after == utc(send_after)


def test_quiet_hours_use_the_customers_zone(playbook: Playbook) -> None:
    # 23:30 in Berlin is 17:30 in New York: not quiet there
    e = signup("c1", "e1", "2025-01-15T23:30:00+01:00", timezone="America/New_York")
    [trigger] = apply(None, e, playbook).triggers
    assert trigger.send_after == trigger.created_at
    no_zone = signup("c2", "e1", "2025-01-15T23:30:00+01:00")
    [trigger] = apply(None, no_zone, playbook).triggers
    assert trigger.send_after == trigger.created_at


@pytest.mark.parametrize(
    ("local", "send_after"),
    [
        ("2025-01-15T00:59:59+01:00", None),  # before the window
        ("2025-01-15T01:00:00+01:00", "2025-01-15T05:00:00Z"),  # its first second: held
        ("2025-01-15T03:00:00+01:00", "2025-01-15T05:00:00Z"),
        ("2025-01-15T05:59:59+01:00", "2025-01-15T05:00:00Z"),
        ("2025-01-15T06:00:00+01:00", None),  # its end: free again
    ],
)
def test_quiet_hours_within_one_night_hold_from_start_to_end(
    local: str, send_after: str | None
) -> None:
    """A window that does not span midnight (01:00-06:00) holds from its start, included,
    to its end, excluded."""
    book = parse_playbook("policies:\n  quiet_hours: {start: '01:00', end: '06:00'}\n")
    [trigger] = apply(None, signup("c1", "e1", local, timezone="Europe/Berlin"), book).triggers
    assert trigger.send_after == (trigger.created_at if send_after is None else utc(send_after))


def test_quiet_hours_that_start_where_they_end_hold_nothing() -> None:
    book = parse_playbook("policies:\n  quiet_hours: {start: '08:00', end: '08:00'}\n")
    for local in ("2025-01-15T23:30:00+01:00", "2025-01-15T08:00:00+01:00"):
        [trigger] = apply(None, signup("c1", "e1", local, timezone="Europe/Berlin"), book).triggers
        assert trigger.send_after == trigger.created_at


def test_a_customer_without_a_zone_takes_the_playbooks_default_timezone() -> None:
    book = parse_playbook("policies:\n  quiet_hours: {default_timezone: Europe/Berlin}\n")
    no_zone = signup("c2", "e1", "2025-01-15T23:30:00+01:00")
    [trigger] = apply(None, no_zone, book).triggers
    assert trigger.send_after == utc("2025-01-16T07:00:00Z")  # 08:00 in Berlin
    # 23:30 in Berlin is 17:30 in New York: a zone of the customer's own comes first
    zoned = signup("c1", "e1", "2025-01-15T23:30:00+01:00", timezone="America/New_York")
    [trigger] = apply(None, zoned, book).triggers
    assert trigger.send_after == trigger.created_at


def test_the_default_timezone_must_be_an_iana_zone() -> None:
    with pytest.raises(PlaybookError) as refused:
        parse_playbook("policies:\n  quiet_hours: {default_timezone: Mars/Olympus}\n")
    assert "policies.quiet_hours.default_timezone" in str(refused.value)
    assert "unknown IANA time zone" in str(refused.value)


def test_order_thank_you_ignores_quiet_hours(playbook: Playbook) -> None:
    shop = Shop(playbook)
    shop.feed(signup("c1", "e1", "2025-01-15T12:00:00+01:00", timezone="Europe/Berlin"))
    [bought] = shop.feed(purchase("c1", "e2", "2025-01-15T23:30:00+01:00", "o1", "10"))
    [trigger] = bought.triggers
    assert trigger.campaign == Campaign.ORDER_THANK_YOU
    assert trigger.send_after == trigger.created_at == utc("2025-01-15T22:30:00Z")


# --- holdout and variants -------------------------------------------------------------------


def welcome(playbook: Playbook, customer: str, event_id: str = "e1") -> Trigger:
    [trigger] = apply(None, signup(customer, event_id, "2025-01-15T12:00:00Z"), playbook).triggers
    return trigger


def test_welcome_holdout_share_is_ten_percent_and_stable(playbook: Playbook) -> None:
    customers = [f"cust-{n}" for n in range(20_000)]
    held = {c for c in customers if welcome(playbook, c).holdout}
    assert abs(len(held) / len(customers) - 0.10) < 0.01
    sample = customers[:300]
    assert {c for c in sample if welcome(playbook, c, "other-event").holdout} == held & set(sample)


def test_variants_split_evenly_and_are_stable() -> None:
    book = parse_playbook("campaigns:\n  welcome:\n    variants: {A: 1, B: 1}\n")
    customers = [f"cust-{n}" for n in range(10_000)]
    variants = {c: welcome(book, c).variant for c in customers}
    assert set(variants.values()) == {"A", "B"}
    share_a = sum(v == "A" for v in variants.values()) / len(customers)
    assert abs(share_a - 0.5) < 0.02
    assert all(welcome(book, c, "other-event").variant == variants[c] for c in customers[:300])


def test_signup_without_consent_field_keeps_an_earlier_consent(playbook: Playbook) -> None:
    shop = Shop(playbook)
    consent = privacy_consent("c1", "e1", "2025-01-10T09:00:00Z", granted=True)
    bare_signup = event(
        "signup", "e2", "2025-01-10T10:00:00Z", customer_id="c1", email="c1@mail.example"
    )
    [_, outcome] = shop.feed(consent, bare_signup)
    assert [t.campaign for t in outcome.triggers] == [Campaign.WELCOME]
    assert shop.states["c1"].profile.marketing_consent is True

"""Attribution windows in the pure core: what is credited, to whom, and when it closes."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from lifecycle.core import Due, Outcome, apply
from lifecycle.playbook import Playbook, parse_playbook
from lifecycle.policy import in_holdout
from lifecycle.state import WINDOWS_KEPT
from schemas.events import Event
from schemas.records import Attribution, Campaign
from tests.unit.test_core import Shop, event, purchase, signup, utc


def customer(held_out: bool) -> str:
    """A customer id the welcome campaign holds out (or not) at the default 10%."""
    return next(
        f"c{n}" for n in range(1000) if in_holdout(Campaign.WELCOME, f"c{n}", 0.10) == held_out
    )


def closed(outcomes: list[Outcome]) -> list[Attribution]:
    return [a for o in outcomes for a in o.attributions]


def close_all(shop: Shop, key: str, at: str) -> Outcome:
    return apply(shop.states[key], Due(utc(at)), shop.playbook)


def test_a_purchase_in_the_window_converts_the_welcome(playbook: Playbook) -> None:
    c = customer(held_out=False)
    shop = Shop(playbook)
    outcomes = shop.feed(
        signup(c, "s1", "2025-03-01T10:00:00Z"),
        purchase(c, "p1", "2025-03-03T10:00:00Z", "o1", "30.00"),
        purchase(c, "p2", "2025-03-05T10:00:00Z", "o2", "12.50"),
    )
    assert closed(outcomes) == []
    assert [(x.campaign, x.group, x.revenue) for x in outcomes[1].conversions] == [
        (Campaign.WELCOME, "treated", Decimal("30.00"))
    ]
    done = close_all(shop, c, "2025-03-09T00:00:00Z")
    [record] = done.attributions
    assert record.campaign == Campaign.WELCOME
    assert record.group == "treated"
    assert record.reason is None
    assert record.converted
    assert [(x.order_id, x.revenue) for x in record.conversions] == [
        ("o1", Decimal("30.00")),
        ("o2", Decimal("12.50")),
    ]
    assert record.revenue == Decimal("42.50")
    assert record.opened_at == utc("2025-03-01T10:00:00Z")
    assert record.closes_at == record.at == utc("2025-03-08T10:00:00Z")
    assert "attribution" in done.fired[0]
    assert done.state is not None
    assert not [w for w in done.state.windows if w.campaign == Campaign.WELCOME]


def test_window_bounds_are_after_the_decision_and_up_to_its_end(playbook: Playbook) -> None:
    c = customer(held_out=False)
    shop = Shop(playbook)
    same_time = shop.feed(
        signup(c, "s1", "2025-03-01T10:00:00Z"),
        purchase(c, "p0", "2025-03-01T10:00:00Z", "o0", "5.00"),  # the same instant
        purchase(c, "p1", "2025-03-08T10:00:00Z", "o1", "7.00"),  # the window's last instant
        purchase(c, "p2", "2025-03-08T10:00:01Z", "o2", "9.00"),  # just after: closes first
    )
    records = closed(same_time)
    welcome = [r for r in records if r.campaign == Campaign.WELCOME]
    assert [(r.converted, [x.order_id for x in r.conversions]) for r in welcome] == [(True, ["o1"])]
    assert records[0] in same_time[3].emitted  # emitted by the event that passed its end


def test_held_out_customers_are_measured_the_same_way(playbook: Playbook) -> None:
    c = customer(held_out=True)
    shop = Shop(playbook)
    shop.feed(
        signup(c, "s1", "2025-03-01T10:00:00Z"),
        purchase(c, "p1", "2025-03-02T10:00:00Z", "o1", "20.00"),
    )
    [record] = close_all(shop, c, "2025-03-09T00:00:00Z").attributions
    assert (record.group, record.converted, record.revenue) == ("holdout", True, Decimal("20.00"))


def test_suppressed_decisions_are_measured_with_their_reason(playbook: Playbook) -> None:
    shop = Shop(playbook)
    shop.feed(signup("c1", "s1", "2025-03-01T10:00:00Z", consent=False))
    [record] = close_all(shop, "c1", "2025-03-09T00:00:00Z").attributions
    assert (record.group, record.reason, record.converted) == ("suppressed", "no_consent", False)
    assert record.revenue == 0


def test_transactional_mail_opens_no_window(playbook: Playbook) -> None:
    c = customer(held_out=False)
    shop = Shop(playbook)
    [_, bought] = shop.feed(
        signup(c, "s1", "2025-03-01T10:00:00Z"),
        purchase(c, "p1", "2025-03-02T10:00:00Z", "o1", "20.00"),
    )
    assert [t.campaign for t in bought.triggers] == [Campaign.ORDER_THANK_YOU]
    state = shop.states[c]
    assert [w.campaign for w in state.windows] == [Campaign.WELCOME]


def checkout(customer_id: str, event_id: str, at: str) -> list[Event]:
    return [
        event(
            "cart",
            f"{event_id}a",
            at,
            customer_id=customer_id,
            action="add",
            cart_id="k1",
            product_id="p1",
            quantity=1,
            unit_price="10.00",
            currency="EUR",
        ),
        event(
            "cart",
            f"{event_id}c",
            at,
            customer_id=customer_id,
            action="checkout_started",
            cart_id="k1",
        ),
    ]


@pytest.mark.parametrize(("goal", "converted"), [("checkout", True), ("purchase", False)])
def test_a_checkout_converts_only_a_checkout_goal(goal: str, converted: bool) -> None:
    book = parse_playbook(f"campaigns:\n  welcome: {{goal: {goal}, attribution_window: 2d}}\n")
    c = customer(held_out=False)
    shop = Shop(book)
    shop.feed(signup(c, "s1", "2025-03-01T10:00:00Z"), *checkout(c, "k", "2025-03-02T09:00:00Z"))
    state = shop.states[c]
    assert state.windows[0].closes_at == utc("2025-03-03T10:00:00Z")
    [record] = [
        a
        for a in close_all(shop, c, "2025-03-04T00:00:00Z").attributions
        if a.campaign == "welcome"
    ]
    assert (record.goal, record.converted, record.revenue) == (goal, converted, 0)


def test_a_record_keeps_a_bounded_number_of_windows(playbook: Playbook) -> None:
    """Abandoned carts of a customer without consent: a suppressed decision every 2 h."""
    shop = Shop(playbook)
    shop.feed(signup("c1", "s1", "2025-03-01T00:00:00Z", consent=False))
    start = utc("2025-03-01T00:00:00Z")
    outcomes: list[Outcome] = []
    for n in range(WINDOWS_KEPT + 5):
        at = (start + timedelta(hours=2 * n + 1)).isoformat()
        outcomes += shop.feed(*checkout("c1", f"k{n}", at))
    assert len(shop.states["c1"].windows) <= WINDOWS_KEPT
    early = closed(outcomes)
    assert early
    assert all(r.closes_at < r.opened_at + timedelta(days=7) for r in early)
    assert {r.group for r in early} == {"suppressed"}


def test_closing_a_window_leaves_the_input_record_untouched(playbook: Playbook) -> None:
    """Closing windows copies only the windows and timers of the record: the rest is shared."""
    c = customer(held_out=False)
    shop = Shop(playbook)
    shop.feed(
        signup(c, "s1", "2025-03-01T10:00:00Z"),
        purchase(c, "p1", "2025-03-02T10:00:00Z", "o1", "20.00"),
    )
    before = shop.states[c]
    frozen = before.model_dump_json()
    done = close_all(shop, c, "2025-03-08T12:00:00Z")  # only the welcome window is due
    assert [a.campaign for a in done.attributions] == [Campaign.WELCOME]
    assert done.fired == [f"attribution:{done.attributions[0].trigger_id}"]
    assert before.model_dump_json() == frozen
    assert done.state is not None
    assert [w.campaign for w in done.state.windows] == []
    assert all(not name.startswith("attribution:") for name in done.state.timers)

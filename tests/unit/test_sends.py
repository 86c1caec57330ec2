"""Sends of any campaign name: the policies read the resolved send, not the built-in enum.

A flow's send (a shop's own campaign name, its channel, priority, transactional
flag, variants and attribution) goes through exactly the policies a built-in
campaign does; a built-in campaign is the send its ``campaigns:`` rule resolves to.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from lifecycle.attribution import close, credit, open_window
from lifecycle.playbook import default_playbook
from lifecycle.policy import ResolvedSend, Suppression, apply_caps, decide, in_holdout
from lifecycle.state import AttributionWindow, CustomerState, Profile, decode_record
from schemas.codec import encode_model
from schemas.records import Campaign, Trigger

T0 = datetime(2026, 4, 6, 10, 0, tzinfo=UTC)  # 12:00 in Berlin: outside quiet hours
NIGHT = datetime(2026, 4, 6, 21, 30, tzinfo=UTC)  # 23:30 in Berlin


def customer(*, consent: bool = True) -> CustomerState:
    return CustomerState(
        customer_id="c1",
        first_seen_at=T0 - timedelta(days=30),
        last_event_at=T0,
        profile=Profile(
            email="c1@mail.example", marketing_consent=consent, timezone="Europe/Berlin"
        ),
    )


def replenish(**fields: Any) -> ResolvedSend:
    """A flow's send of a shop's own campaign; ``fields`` override its settings."""
    return ResolvedSend(
        **{"campaign": "replenish_coffee", "flow": "replenish_coffee", "step": "1", **fields}
    )


def decided(send: ResolvedSend, state: CustomerState, at: datetime = T0) -> Trigger | Suppression:
    return decide(
        state,
        send,
        trigger_id=f"t-{send.campaign}",
        holdout=False,
        cause="e1",
        at=at,
        payload={"email": state.profile.email},
        playbook=default_playbook(),
    )


def test_a_shop_campaign_becomes_a_trigger_with_its_flow_and_step() -> None:
    trigger = decided(replenish(channel="webhook", step="3.then.0"), customer())
    assert isinstance(trigger, Trigger)
    assert (trigger.campaign, trigger.flow, trigger.step, trigger.channel) == (
        "replenish_coffee",
        "replenish_coffee",
        "3.then.0",
        "webhook",
    )
    assert trigger.trigger_id == "t-replenish_coffee"
    assert orjson.loads(encode_model(trigger))["campaign"] == "replenish_coffee"


def test_consent_and_quiet_hours_follow_the_sends_transactional_flag() -> None:
    assert decided(replenish(), customer(consent=False)) == Suppression(
        "c1", "replenish_coffee", "no_consent", "e1"
    )
    receipt = decided(replenish(transactional=True), customer(consent=False), NIGHT)
    assert isinstance(receipt, Trigger)
    assert receipt.send_after == NIGHT  # transactional: no quiet hours either
    night = decided(replenish(), customer(), NIGHT)
    assert isinstance(night, Trigger)
    assert night.send_after == datetime(2026, 4, 7, 6, 0, tzinfo=UTC)  # 08:00 Berlin


def test_a_suppression_names_the_flow_and_step() -> None:
    suppression = decided(replenish(step="2"), customer(consent=False))
    assert isinstance(suppression, Suppression)
    assert (suppression.flow, suppression.step, suppression.trigger_id) == (
        "replenish_coffee",
        "2",
        "t-replenish_coffee",
    )


def test_variants_are_drawn_on_the_campaign_name() -> None:
    send = replenish(variants={"A": 1.0, "B": 1.0})
    arms = set()
    for n in range(200):
        state = customer().model_copy(update={"customer_id": f"c{n}"})
        trigger = decided(send, state)
        assert isinstance(trigger, Trigger)
        arms.add(trigger.variant)
        again = decided(send, state)
        assert isinstance(again, Trigger)
        assert again.variant == trigger.variant
    assert arms == {"A", "B"}


def test_caps_rank_by_the_sends_priority_not_the_playbook() -> None:
    state = customer()
    low = decided(replenish(priority=10), state)
    high = decided(replenish(campaign="vip_welcome", flow="vip_welcome", priority=90), state)
    assert isinstance(low, Trigger)
    assert isinstance(high, Trigger)
    kept, capped = apply_caps(
        state,
        [(low, replenish(priority=10)), (high, replenish(priority=90))],
        default_playbook(),
        T0,
    )
    assert [t.campaign for t in kept] == ["vip_welcome"]
    assert [(s.campaign, s.reason, s.flow) for s in capped] == [
        ("replenish_coffee", "frequency_cap", "replenish_coffee")
    ]
    assert [m.campaign for m in state.marketing_sent] == ["vip_welcome"]


def test_a_transactional_send_passes_the_caps_whatever_its_name() -> None:
    state = customer()
    first = decided(replenish(priority=90), state)
    receipt = decided(replenish(campaign="receipt", flow="receipt", transactional=True), state)
    assert isinstance(first, Trigger)
    assert isinstance(receipt, Trigger)
    kept, capped = apply_caps(
        state,
        [(first, replenish(priority=90)), (receipt, replenish(transactional=True, priority=0))],
        default_playbook(),
        T0,
    )
    assert (len(kept), capped) == (2, [])


def test_a_built_in_campaign_resolves_from_its_rule() -> None:
    book = default_playbook()
    send = ResolvedSend.from_rule("order_thank_you", book.campaigns[Campaign.ORDER_THANK_YOU])
    assert (send.flow, send.step, send.transactional, send.priority) == (
        "order_thank_you",
        "0",
        True,
        100,
    )
    cart = ResolvedSend.from_rule("cart_abandonment", book.campaigns[Campaign.CART_ABANDONMENT])
    assert (cart.priority, cart.channel, cart.goal) == (80, "email", "purchase")


def test_the_holdout_draw_is_the_same_for_the_enum_and_its_name() -> None:
    for n in range(500):
        assert in_holdout("welcome", f"c{n}", 0.1) == in_holdout(Campaign.WELCOME, f"c{n}", 0.1)


def test_an_attribution_window_carries_the_flow_to_its_record() -> None:
    state = customer()
    send = replenish(attribution_window=timedelta(days=3), goal="checkout")
    open_window(state, trigger_id="t1", send=send, variant="A", group="treated", reason=None, at=T0)
    [window] = state.windows
    assert (window.campaign, window.flow, window.goal) == (
        "replenish_coffee",
        "replenish_coffee",
        "checkout",
    )
    assert window.closes_at == T0 + timedelta(days=3)
    [conversion] = credit(state, event_id="e2", at=T0 + timedelta(hours=1), purchase=False)
    assert (conversion.campaign, conversion.flow) == ("replenish_coffee", "replenish_coffee")
    record = close(state, "t1", T0 + timedelta(days=4))
    assert (record.campaign, record.flow, record.converted) == (
        "replenish_coffee",
        "replenish_coffee",
        True,
    )


def test_a_transactional_send_opens_no_window() -> None:
    state = customer()
    opened = open_window(
        state,
        trigger_id="t1",
        send=replenish(transactional=True),
        variant="A",
        group="treated",
        reason=None,
        at=T0,
    )
    assert (opened, state.windows) == ([], [])


def test_a_window_an_older_version_stored_reports_its_campaign_as_its_flow() -> None:
    state = customer()
    open_window(
        state, trigger_id="t1", send=replenish(), variant="A", group="holdout", reason=None, at=T0
    )
    body = orjson.loads(encode_model(state))
    del body["windows"][0]["flow"]  # as written before flows
    stored = decode_record(orjson.dumps(body))
    [window] = stored.windows
    assert isinstance(window, AttributionWindow)
    assert window.flow == ""
    assert close(stored, "t1", T0 + timedelta(days=8)).flow == "replenish_coffee"

"""A shop's own send: its channel, its A/B variants, its recommendations.

The send fields of the flows language (docs/flows.md, Sends) that a campaign
rule used to set, tested on a flow's own send rather than through a built-in
campaign's rule.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from lifecycle.core import apply
from lifecycle.ids import unit_interval
from lifecycle.recommend import MemoryPairs, Recommender
from lifecycle.state import CustomerState
from schemas.records import Trigger
from tests.unit.test_flows import T0, H, book, ev, purchase, signup


def sends_of(playbook_flows: str, customers: int) -> list[Trigger]:
    """Each customer signs up and buys once; every trigger of the shop's flow."""
    playbook = book(playbook_flows)
    triggers: list[Trigger] = []
    for n in range(customers):
        customer = f"c{n}"
        state: CustomerState | None = None
        for event in (signup(2 * n, T0, customer), purchase(2 * n + 1, T0 + H, f"o{n}")):
            outcome = apply(state, event.model_copy(update={"customer_id": customer}), playbook)
            state = outcome.state
            triggers += outcome.triggers
    return triggers


def test_a_flow_send_on_sms() -> None:
    [trigger] = sends_of(
        "  text:\n    trigger: {event: purchase}\n"
        "    steps: [{send: {campaign: thanks_sms, channel: sms}}]\n",
        customers=1,
    )
    assert (trigger.campaign, trigger.channel, trigger.flow, trigger.step) == (
        "thanks_sms",
        "sms",
        "text",
        "0",
    )


def test_a_picker_on_a_true_or_false_trait_and_on_a_count() -> None:
    """YAML reads ``true:`` as a boolean key; the picker still matches the trait's value."""
    playbook = book(
        "  p:\n    trigger: {event: purchase}\n"
        "    steps: [{send: {campaign: p, data: {"
        "vip: {by: traits.vip, true: gold, false: plain},"
        " nth: {by: orders, 1: first, default: more}}}}]\n"
    )
    for vip, expected in ((True, "gold"), (False, "plain")):
        state: CustomerState | None = None
        for event in (signup(1, T0, traits={"vip": vip}), purchase(2, T0 + H, "o1")):
            outcome = apply(state, event, playbook)
            state = outcome.state
        [trigger] = [t for t in outcome.triggers if t.campaign == "p"]
        assert (trigger.payload["vip"], trigger.payload["nth"]) == (expected, "first")


def test_a_picker_on_money_matches_a_number_by_its_value() -> None:
    """Revenue is a decimal with cents (500.00); a picker's 500, 500.0 or "500.00" is that
    value; so is a trait sent as text ("3.00" picks 3), as a condition reads it."""
    playbook = book(
        "  p:\n    trigger: {event: purchase}\n"
        "    steps: [{send: {campaign: p, data: {"
        "a: {by: revenue, 500: big, 20.5: small, default: other},"
        " b: {by: revenue, '500.00': big, default: other},"
        " c: {by: traits.size, 2: two, 3: three, default: other}}}}]\n"
    )
    for total, size, expected in (
        ("500.00", 2, ("big", "big", "two")),
        ("20.50", 3.0, ("small", "other", "three")),
        ("499.99", "3", ("other", "other", "three")),
        ("1.00", "3.00", ("other", "other", "three")),  # text that is a number: its value
        ("1.00", "3 pack", ("other", "other", "other")),
    ):
        state: CustomerState | None = None
        for event in (signup(1, T0, traits={"size": size}), purchase(2, T0 + H, "o1", total)):
            outcome = apply(state, event, playbook)
            state = outcome.state
        [trigger] = [t for t in outcome.triggers if t.campaign == "p"]
        assert (trigger.payload["a"], trigger.payload["b"], trigger.payload["c"]) == expected


def test_a_flow_send_splits_customers_by_its_variants_weights() -> None:
    triggers = sends_of(
        "  split:\n    trigger: {event: purchase}\n"
        "    steps: [{send: {campaign: offer, variants: {A: 3, B: 1}}}]\n",
        customers=2000,
    )
    assert len(triggers) == 2000
    for trigger in triggers:  # a hash of (campaign, customer) over the weights, sorted by name
        point = unit_interval("variant", "offer", trigger.customer_id) * 4
        assert trigger.variant == ("A" if point < 3 else "B")
    shares = Counter(t.variant for t in triggers)
    assert 0.70 < shares["A"] / 2000 < 0.80


def test_a_flow_send_includes_recommendations_from_co_purchases() -> None:
    playbook = book(
        "  recommend:\n    trigger: {event: purchase}\n"
        "    steps: [{send: {campaign: more, include: [recommendations]}}]\n"
    )
    pairs = MemoryPairs()
    recommender = Recommender(pairs, playbook.recommendations)
    recommender.record(["p-tea", "p-cup"])
    recommender.record(["p-tea", "p-cup", "p-pot"])
    recommender.record(["p-kettle"])
    signed = apply(None, signup(1, T0), playbook, recommender)
    bought = apply(signed.state, purchase(2, T0 + H, "o1"), playbook, recommender)
    [trigger] = bought.triggers
    assert trigger.payload["recommendations"] == ["p-cup", "p-pot", "p-kettle"]


class CountingRecommender(Recommender):
    """Counts the payloads that asked for recommendations."""

    asked = 0

    def recommend(self, seeds: list[str], owned: Any = ()) -> list[str]:
        self.asked += 1
        return super().recommend(seeds, owned=owned)


TWO_SENDS = (
    "  first:\n    trigger: {event: purchase}\n"
    "    steps: [{send: {campaign: first, priority: 2, include: [recommendations]}}]\n"
    "  second:\n    trigger: {event: purchase}\n"
    "    steps: [{send: {campaign: second, priority: 1, include: [recommendations]}}]\n"
)


def test_only_a_trigger_that_goes_out_has_its_payload_built() -> None:
    """A suppression carries no payload: a send without consent or over a cap never
    asks for recommendations, and the one the caps keep has them."""
    caps = "policies:\n  default_holdout: 0\n  frequency_caps: [{count: 1, within: 24h}]\n"
    playbook = book(TWO_SENDS, policies=caps + "  quiet_hours: {enabled: false}\n")
    recommender = CountingRecommender(MemoryPairs(), playbook.recommendations)
    recommender.record(["p-tea", "p-cup"])

    unconsented = ev("signup", 1, T0, email="c1@mail.example", marketing_consent=False)
    quiet = apply(None, unconsented, playbook, recommender)
    refused = apply(quiet.state, purchase(2, T0 + H, "o1"), playbook, recommender)
    assert refused.triggers == []
    assert sorted((s.campaign, s.reason) for s in refused.suppressed) == [
        ("first", "no_consent"),
        ("second", "no_consent"),
    ]
    assert recommender.asked == 0

    signed = apply(None, signup(3, T0, "c2"), playbook, recommender)
    bought = apply(
        signed.state,
        purchase(4, T0 + H, "o2").model_copy(update={"customer_id": "c2"}),
        playbook,
        recommender,
    )
    [trigger] = bought.triggers
    assert trigger.campaign == "first"
    assert trigger.payload["recommendations"] == ["p-cup"]
    assert [(s.campaign, s.reason) for s in bought.suppressed] == [("second", "frequency_cap")]
    assert recommender.asked == 1

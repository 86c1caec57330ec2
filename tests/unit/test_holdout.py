"""Holdout: a deterministic share per campaign, within a point of the setting at scale."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from lifecycle.playbook import Playbook, default_playbook, parse_playbook
from lifecycle.policy import ResolvedSend, Suppression, decide, in_holdout
from lifecycle.state import CustomerState, Profile
from schemas.records import Campaign, Trigger

AT = datetime(2026, 4, 6, 10, 0, tzinfo=UTC)


def decide_campaign(
    state: CustomerState, campaign: Campaign, *, playbook: Playbook
) -> Trigger | Suppression:
    """A built-in campaign's decision, drawn as the core draws it (per campaign)."""
    rule = playbook.campaigns[campaign]
    return decide(
        state,
        ResolvedSend.from_rule(campaign.value, rule),
        trigger_id="t",
        holdout=in_holdout(campaign.value, state.customer_id, playbook.holdout_share(rule)),
        cause="e",
        at=AT,
        payload={},
        playbook=playbook,
    )


def held_out_share(text: str, campaign: Campaign, customers: int) -> float:
    book = parse_playbook(text) if text else default_playbook()
    held = 0
    for n in range(customers):
        state = CustomerState(
            customer_id=f"cust-{n}",
            first_seen_at=AT,
            last_event_at=AT,
            profile=Profile(marketing_consent=True),
        )
        trigger = decide_campaign(state, campaign, playbook=book)
        assert isinstance(trigger, Trigger)
        held += trigger.holdout
    return held / customers


@pytest.mark.parametrize(
    ("text", "campaign", "share"),
    [
        ("", Campaign.WELCOME, 0.10),
        ("", Campaign.WIN_BACK, 0.10),
        ("campaigns:\n  cart_abandonment: {holdout: 0.25}\n", Campaign.CART_ABANDONMENT, 0.25),
    ],
)
def test_holdout_share_within_one_point_over_100000_customers(
    text: str, campaign: Campaign, share: float
) -> None:
    assert abs(held_out_share(text, campaign, 100_000) - share) < 0.01


def test_campaigns_hold_out_different_customers() -> None:
    """Independent buckets per campaign: the same 10% must not miss every campaign."""
    book = default_playbook()
    state = CustomerState(
        customer_id="c", first_seen_at=AT, last_event_at=AT, profile=Profile(marketing_consent=True)
    )
    held = {
        c: [
            t.holdout
            for n in range(2000)
            if isinstance(
                t := decide_campaign(
                    state.model_copy(update={"customer_id": f"c{n}"}), c, playbook=book
                ),
                Trigger,
            )
        ]
        for c in (Campaign.WELCOME, Campaign.WIN_BACK)
    }
    both = sum(
        a and b for a, b in zip(held[Campaign.WELCOME], held[Campaign.WIN_BACK], strict=True)
    )
    assert both < 60  # about 1% of 2,000 if independent, 200 if the same customers

"""Frequency caps: at most 1 marketing message per 24 h and 3 per 7 days, priority first."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from lifecycle.playbook import default_playbook, parse_playbook
from lifecycle.policy import ResolvedSend, Suppression, apply_caps
from lifecycle.state import CustomerState, Profile, SentMark
from schemas.records import Campaign, Trigger
from tests.unit.test_flows import QUIET, H, Shop, book, ev, signup
from tests.unit.test_flows import T0 as START

T0 = datetime(2026, 4, 6, 10, 0, tzinfo=UTC)


def customer(*sent: tuple[datetime, Campaign]) -> CustomerState:
    return CustomerState(
        customer_id="c1",
        first_seen_at=T0 - timedelta(days=30),
        last_event_at=T0,
        profile=Profile(email="c1@mail.example", marketing_consent=True),
        marketing_sent=[SentMark(send_after=at, campaign=c.value) for at, c in sent],
    )


def trigger(campaign: Campaign, at: datetime = T0) -> tuple[Trigger, ResolvedSend]:
    """A decided trigger of a built-in campaign, with its send (priority, transactional)."""
    send = ResolvedSend.from_rule(campaign.value, default_playbook().campaigns[campaign])
    return Trigger(
        trigger_id=f"t-{campaign.value}",
        customer_id="c1",
        campaign=campaign,
        flow=campaign,
        step="0",
        channel="email",
        stage=None,
        created_at=at,
        send_after=at,
        variant="A",
        holdout=False,
        payload={},
    ), send


def test_the_higher_priority_campaign_wins_a_collision() -> None:
    book = default_playbook()
    state = customer()
    decided = [trigger(Campaign.REVIEW_REQUEST), trigger(Campaign.CART_ABANDONMENT)]
    kept, capped = apply_caps(state, decided, book, T0)
    assert [t.campaign for t in kept] == [Campaign.CART_ABANDONMENT]  # priority 80 over 30
    assert capped == [
        Suppression("c1", Campaign.REVIEW_REQUEST, "frequency_cap", "t-review_request")
    ]
    assert [m.campaign for m in state.marketing_sent] == ["cart_abandonment"]


def test_transactional_mail_is_never_capped() -> None:
    book = default_playbook()
    state = customer((T0 - timedelta(hours=1), Campaign.WELCOME))
    kept, capped = apply_caps(state, [trigger(Campaign.ORDER_THANK_YOU)], book, T0)
    assert [t.campaign for t in kept] == [Campaign.ORDER_THANK_YOU]
    assert capped == []


def test_one_per_day_counts_send_times_not_decision_times() -> None:
    book = default_playbook()
    # The welcome was held by quiet hours until 08:00 today: 2 h before this one.
    state = customer((T0 - timedelta(hours=2), Campaign.WELCOME))
    _, capped = apply_caps(state, [trigger(Campaign.BROWSE_ABANDONMENT)], book, T0)
    assert [s.reason for s in capped] == ["frequency_cap"]
    later = customer((T0 - timedelta(hours=25), Campaign.WELCOME))
    kept, _ = apply_caps(later, [trigger(Campaign.BROWSE_ABANDONMENT)], book, T0)
    assert len(kept) == 1


def test_three_per_week() -> None:
    book = default_playbook()
    days = [T0 - timedelta(days=d) for d in (6, 4, 2)]
    full = customer(*((d, Campaign.WELCOME) for d in days))
    _, capped = apply_caps(full, [trigger(Campaign.CART_ABANDONMENT)], book, T0)
    assert len(capped) == 1
    older = customer(*((d - timedelta(days=1, hours=1), Campaign.WELCOME) for d in days))
    kept, _ = apply_caps(older, [trigger(Campaign.CART_ABANDONMENT)], book, T0)
    assert len(kept) == 1


def test_marks_older_than_the_longest_window_are_forgotten() -> None:
    book = default_playbook()
    state = customer((T0 - timedelta(days=8), Campaign.WELCOME), (T0, Campaign.WELCOME))
    apply_caps(state, [], book, T0)
    assert [m.send_after for m in state.marketing_sent] == [T0]


def test_caps_are_playbook_settings() -> None:
    book = parse_playbook("policies:\n  frequency_caps: []\n")
    state = customer((T0, Campaign.WELCOME))
    kept, capped = apply_caps(state, [trigger(Campaign.CART_ABANDONMENT)], book, T0)
    assert (len(kept), capped) == (1, [])
    assert default_playbook().policies.frequency_caps[0].count == 1


def test_a_mail_exactly_a_window_after_the_last_one_is_not_capped() -> None:
    """Two mails count against each other when their send times are closer than the
    window: 24 h apart is not closer than 24 h, 24 h less a second is."""
    book = default_playbook()
    kept, _ = apply_caps(
        customer((T0 - timedelta(hours=24), Campaign.WELCOME)),
        [trigger(Campaign.BROWSE_ABANDONMENT)],
        book,
        T0,
    )
    assert [t.campaign for t in kept] == [Campaign.BROWSE_ABANDONMENT]
    _, capped = apply_caps(
        customer((T0 - timedelta(hours=24) + timedelta(seconds=1), Campaign.WELCOME)),
        [trigger(Campaign.BROWSE_ABANDONMENT)],
        book,
        T0,
    )
    assert [s.reason for s in capped] == ["frequency_cap"]


@pytest.mark.parametrize(("low", "high"), [("a_low", "z_high"), ("z_low", "a_high")])
def test_timers_due_together_are_capped_together_and_the_higher_priority_wins(
    low: str, high: str
) -> None:
    """Two flows whose waits end at the same instant decide together, as one cause's
    sends do: the higher priority is sent whichever timer fires first (by name)."""
    waits = "".join(
        f"  {name}:\n    trigger: {{event: custom, where: {{name: go}}}}\n"
        f"    steps: [{{wait: 1h}}, {{send: {{campaign: {name}, priority: {priority}}}}}]\n"
        for name, priority in ((low, 10), (high, 90))
    )
    capped = QUIET.replace("frequency_caps: []", "frequency_caps: [{count: 1, within: 24h}]")
    shop = Shop(book(waits, policies=capped))
    shop.feed(signup(1, START), ev("custom", 2, START, name="go")).until(START + 2 * H)
    [sent] = shop.triggers
    assert (sent.campaign, sent.created_at, sent.payload["email"]) == (
        high,
        START + H,
        "c1@mail.example",
    )
    [suppressed] = [s for o in shop.outcomes for s in o.suppressed]
    assert (suppressed.campaign, suppressed.reason) == (low, "frequency_cap")

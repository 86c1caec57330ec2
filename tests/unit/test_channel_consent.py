"""Consent and unsubscribes per channel.

A privacy consent may name a channel (README.md, Event contract: privacy
``channel``): withdrawing SMS consent stops marketing texts, not marketing
email. An unsubscribe or a complaint comes through one channel and stops that
channel. A consent naming no channel (and a signup's ``marketing_consent``)
speaks for every channel.
"""

from __future__ import annotations

from datetime import datetime

import pytest

from lifecycle.core import apply
from lifecycle.playbook import Playbook
from lifecycle.state import CustomerState, decode_record
from schemas.codec import encode_model
from schemas.events import Event
from tests.unit.test_flows import T0, D, book, ev


def signup(n: int, at: datetime, *, marketing_consent: bool = True) -> Event:
    return ev("signup", n, at, email="c1@mail.example", marketing_consent=marketing_consent)


# One marketing send per channel, each on its own custom event; no caps or quiet hours.
PLAYBOOK = book(
    "".join(
        f"  {channel}_offer:\n"
        f"    trigger: {{event: custom, where: {{name: {channel}}}}}\n"
        f"    steps: [{{send: {{campaign: {channel}_offer, channel: {channel}}}}}]\n"
        for channel in ("email", "sms", "push", "webhook")
    )
    + "  receipt:\n    trigger: {event: custom, where: {name: receipt}}\n"
    "    steps: [{send: {campaign: receipt, channel: sms, transactional: true}}]\n"
)
CHANNELS = ("email", "sms", "push", "webhook")


def consent(n: int, at: datetime, granted: bool, channel: str | None = None) -> Event:
    fields = {} if channel is None else {"channel": channel}
    return ev("privacy", n, at, action="consent", granted=granted, **fields)


def unsubscribe(n: int, at: datetime, channel: str, action: str = "unsubscribe") -> Event:
    return ev("engagement", n, at, action=action, channel=channel)


def run(events: list[Event], state: CustomerState | None = None) -> CustomerState:
    for event in events:
        outcome = apply(state, event, PLAYBOOK)
        assert outcome.state is not None
        state = outcome.state
    assert state is not None
    return state


def offers(state: CustomerState, playbook: Playbook = PLAYBOOK) -> dict[str, str]:
    """Each channel's offer, a day apart after ``state``: ``sent`` or the suppression."""
    got: dict[str, str] = {}
    for k, channel in enumerate(CHANNELS):
        at = T0 + (30 + k) * D
        outcome = apply(state, ev("custom", f"o{k}", at, name=channel), playbook)
        [decided] = [*outcome.triggers, *outcome.suppressed]
        got[channel] = "sent" if decided in outcome.triggers else decided.reason  # type: ignore[union-attr]
    return got


def test_withdrawing_sms_consent_stops_texts_only() -> None:
    state = run([signup(1, T0), consent(2, T0 + D, False, "sms")])
    assert offers(state) == {
        "email": "sent",
        "sms": "no_consent",
        "push": "sent",
        "webhook": "sent",
    }
    assert state.may_receive_marketing  # the consent path reads email's


def test_consent_on_one_channel_without_a_general_one() -> None:
    state = run([signup(1, T0, marketing_consent=False), consent(2, T0 + D, True, "push")])
    assert offers(state) == {
        "email": "no_consent",
        "sms": "no_consent",
        "push": "sent",
        "webhook": "no_consent",
    }
    assert not state.may_receive_marketing


def test_a_consent_naming_no_channel_replaces_each_channels_choice() -> None:
    state = run(
        [
            signup(1, T0),
            consent(2, T0 + D, False, "sms"),
            consent(3, T0 + 2 * D, True, "push"),
            consent(4, T0 + 3 * D, False),
        ]
    )
    assert set(offers(state).values()) == {"no_consent"}
    state = run([consent(5, T0 + 4 * D, True)], state)
    assert set(offers(state).values()) == {"sent"}
    assert state.profile.channel_consent == {}


@pytest.mark.parametrize("action", ["unsubscribe", "complaint"])
def test_an_unsubscribe_stops_its_own_channel(action: str) -> None:
    state = run([signup(1, T0), unsubscribe(2, T0 + D, "sms", action)])
    assert offers(state) == {
        "email": "sent",
        "sms": "unsubscribed",
        "push": "sent",
        "webhook": "sent",
    }
    state = run([unsubscribe(3, T0 + 2 * D, "email")], state)
    assert state.profile.unsubscribed_from == ["sms", "email"]
    assert not state.may_receive_marketing
    receipt = apply(state, ev("custom", 9, T0 + 40 * D, name="receipt"), PLAYBOOK)
    assert [t.campaign for t in receipt.triggers] == ["receipt"]  # transactional still goes


def test_consent_given_on_a_channel_lifts_its_unsubscribe_only() -> None:
    state = run(
        [
            signup(1, T0),
            unsubscribe(2, T0 + D, "sms"),
            unsubscribe(3, T0 + D, "email"),
            consent(4, T0 + 2 * D, True, "email"),
        ]
    )
    assert offers(state)["email"] == "sent"
    assert offers(state)["sms"] == "unsubscribed"
    state = run([signup(5, T0 + 3 * D, marketing_consent=True)], state)  # a general opt-in
    assert set(offers(state).values()) == {"sent"}


def test_a_record_unsubscribed_from_everything_keeps_it_but_for_a_channel_granted() -> None:
    """A record written before unsubscribes were per channel says ``unsubscribed: true``."""
    state = run([signup(1, T0)])
    old = state.model_copy(
        update={"profile": state.profile.model_copy(update={"unsubscribed": True})}
    )
    old = decode_record(encode_model(old))
    assert set(offers(old).values()) == {"unsubscribed"}
    state = run([consent(2, T0 + D, True, "sms")], old)
    assert offers(state) == {
        "email": "unsubscribed",
        "sms": "sent",
        "push": "unsubscribed",
        "webhook": "unsubscribed",
    }


def test_a_record_without_channel_choices_keeps_its_bytes() -> None:
    state = run([signup(1, T0)])
    raw = encode_model(state)
    assert b"channel_consent" not in raw
    assert b"unsubscribed_from" not in raw
    assert decode_record(raw) == state

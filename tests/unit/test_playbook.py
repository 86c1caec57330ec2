"""The playbook: the contract's defaults, and errors that name the offending field."""

from __future__ import annotations

from datetime import time, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from lifecycle.playbook import (
    CampaignRule,
    Playbook,
    PlaybookError,
    default_playbook,
    load_playbook,
    parse_playbook,
)
from schemas.records import Campaign


def test_default_playbook_holds_the_design_defaults() -> None:
    book = default_playbook()
    assert book.stages.repeat_min_orders == 2
    assert book.policies.default_holdout == 0.10
    assert book.policies.quiet_hours.enabled
    assert (book.policies.quiet_hours.start, book.policies.quiet_hours.end) == (
        time(21, 0),
        time(8, 0),
    )
    assert book.dedup.event_ids_per_customer == 200
    assert book.scores.rfm.recency_days == [240, 120, 60, 30]
    assert book.scores.rfm.frequency == [2, 3, 5, 8]
    assert book.scores.rfm.monetary == [100, 250, 500, 1000]
    assert book.campaigns[Campaign.WELCOME] == CampaignRule(
        enabled=True,
        channel="email",
        transactional=False,
        priority=70,
        holdout=None,
        variants={"A": 1.0},
    )
    assert book.campaigns[Campaign.ORDER_THANK_YOU] == CampaignRule(
        enabled=True,
        channel="email",
        transactional=True,
        priority=100,
        holdout=None,
        variants={"A": 1.0},
    )


def test_default_playbook_holds_the_design_timing() -> None:
    """docs/campaigns.md, Stages and Campaigns: every threshold and wait of the time-based rules."""
    book = default_playbook()
    stages = book.stages
    assert (stages.loyal.min_orders, stages.loyal.within) == (4, timedelta(days=365))
    assert (stages.at_risk.after, stages.at_risk.gap_multiple) == (timedelta(days=60), 2.0)
    assert stages.churned.after == timedelta(days=120)
    delays = {c: book.campaigns[c].delay for c in Campaign if book.campaigns[c].delay}
    assert delays == {
        Campaign.BROWSE_ABANDONMENT: timedelta(hours=2),
        Campaign.CART_ABANDONMENT: timedelta(hours=1),
        Campaign.REVIEW_REQUEST: timedelta(days=7),
        Campaign.SECOND_PURCHASE_NUDGE: timedelta(days=30),
    }
    assert book.campaigns[Campaign.WIN_BACK].discount_by_tier == {
        "high": Decimal(20),
        "mid": Decimal(15),
        "low": Decimal(10),
    }
    assert all(book.campaign(c) is not None for c in Campaign)
    assert [c for c in Campaign if book.campaigns[c].transactional] == [Campaign.ORDER_THANK_YOU]


def test_the_yaml_file_and_the_code_defaults_agree() -> None:
    assert parse_playbook("") == default_playbook() == Playbook()


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("90m", timedelta(minutes=90)),
        ("2w", timedelta(days=14)),
        ("PT1H", timedelta(hours=1)),
        ("1h30m", timedelta(minutes=90)),
        ("2d 12h", timedelta(days=2, hours=12)),
        ("1w2d", timedelta(days=9)),
        ("0.5h", timedelta(minutes=30)),
    ],
)
def test_durations_in_short_or_iso_form(text: str, value: timedelta) -> None:
    book = parse_playbook(f"campaigns:\n  cart_abandonment: {{delay: {text}}}\n")
    assert book.campaigns[Campaign.CART_ABANDONMENT].delay == value


@pytest.mark.parametrize("text", ["1h30", "5ms", "h1", "1 hour", "1h-30m"])
def test_durations_that_are_neither_are_refused(text: str) -> None:
    with pytest.raises(PlaybookError, match="cart_abandonment"):
        parse_playbook(f"campaigns:\n  cart_abandonment: {{delay: {text}}}\n")


def test_holdout_share_of_the_default_campaigns() -> None:
    book = default_playbook()
    assert book.holdout_share(book.campaigns[Campaign.WELCOME]) == 0.10
    assert book.holdout_share(book.campaigns[Campaign.ORDER_THANK_YOU]) == 0.0


def test_load_playbook_without_path_is_the_default() -> None:
    assert load_playbook(None) == default_playbook()


def test_a_file_only_states_what_differs_from_the_defaults() -> None:
    book = parse_playbook("campaigns:\n  cart_abandonment: {delay: 3h}\n")
    cart = book.campaigns[Campaign.CART_ABANDONMENT]
    assert (cart.delay, cart.priority) == (timedelta(hours=3), 80)  # priority kept from default
    assert book.campaigns[Campaign.WELCOME] == default_playbook().campaigns[Campaign.WELCOME]


def test_campaign_overrides_and_disabling() -> None:
    book = parse_playbook(
        "policies:\n  default_holdout: 0.25\n"
        "campaigns:\n"
        "  welcome: {holdout: 0.5, channel: sms, variants: {A: 3, B: 1}}\n"
        "  order_thank_you: {enabled: false, transactional: true}\n"
    )
    rule = book.campaign(Campaign.WELCOME)
    assert rule is not None
    assert (rule.channel, rule.holdout, rule.variants) == ("sms", 0.5, {"A": 3.0, "B": 1.0})
    arms = parse_playbook("campaigns:\n  welcome: {variants: [short, long]}\n")
    assert arms.campaigns[Campaign.WELCOME].variants == {"short": 1.0, "long": 1.0}
    with pytest.raises(PlaybookError, match="names a variant twice"):
        parse_playbook("campaigns:\n  welcome: {variants: [A, A]}\n")
    with pytest.raises(PlaybookError, match="a variant's name must be a text, not 1"):
        parse_playbook("campaigns:\n  welcome: {variants: [A, 1]}\n")
    assert book.holdout_share(rule) == 0.5
    assert book.campaign(Campaign.ORDER_THANK_YOU) is None
    assert Campaign.ORDER_THANK_YOU in book.campaigns


def test_load_playbook_reads_a_file(tmp_path: Path) -> None:
    path = tmp_path / "book.yaml"
    path.write_text("stages:\n  repeat_min_orders: 3\n", encoding="utf-8")
    assert load_playbook(path).stages.repeat_min_orders == 3


def test_a_playbook_that_is_not_utf8_is_refused_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "book.yaml"
    path.write_bytes(b"\xff\xfeflows: {}\n")
    with pytest.raises(PlaybookError) as info:
        load_playbook(path)
    assert str(info.value) == f"invalid playbook {path}: not UTF-8 text (byte 0)"


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("campaigns:\n  welcome:\n    holdout: 1.5\n", ["campaigns.welcome.holdout"]),
        (
            "campaigns:\n  welcome:\n    chanel: email\n",
            ["campaigns.welcome: unknown key 'chanel'"],
        ),
        ("campaigns:\n  welcome:\n    channel: fax\n", ["campaigns.welcome.channel"]),
        ("campaigns:\n  newsletter: {}\n", ["campaigns.newsletter"]),
        ("polices:\n  default_holdout: 0.2\n", ["(top level): unknown key 'polices'"]),
        ("stages:\n  at_risk: {aftr: 60d}\n", ["stages.at_risk: unknown key 'aftr'"]),
        ("policies:\n  quiet_hours:\n    start: '25:00'\n", ["policies.quiet_hours.start"]),
        ("stages:\n  repeat_min_orders: 1\n", ["stages.repeat_min_orders"]),
        ("scores:\n  rfm:\n    frequency: [1, 3, 2, 8]\n", ["scores.rfm.frequency", "ascending"]),
        ("scores:\n  rfm:\n    monetary: [100, 250, 500]\n", ["scores.rfm.monetary"]),
        (
            "scores:\n  rfm:\n    recency_days: [30, 60, 120, 240]\n",
            ["scores.rfm.recency_days: needs 4 strictly descending breakpoints"],
        ),
        ("campaigns:\n  welcome:\n    variants: {}\n", ["campaigns.welcome.variants"]),
        ("campaigns:\n  welcome:\n    variants: {A: 0}\n", ["campaigns.welcome.variants.A"]),
        ("campaigns:\n  cart_abandonment: {delay: null}\n", ["cart_abandonment needs a delay"]),
        ("campaigns:\n  cart_abandonment: {delay: soon}\n", ["campaigns.cart_abandonment.delay"]),
        (
            "campaigns:\n  review_request: {delay: 0s}\n",
            ["campaigns.review_request.delay: must be longer than 0"],
        ),
        ("stages:\n  churned: {after: 30d}\n", ["churned.after must be longer than at_risk.after"]),
        ("stages:\n  at_risk: {gap_multiple: -1}\n", ["stages.at_risk.gap_multiple"]),
        ("stages:\n  loyal: {min_orders: 1}\n", ["stages.loyal.min_orders"]),
        ("scores:\n  clv_tiers: {high: 100, mid: 500}\n", ["mid must not be above high"]),
        ("campaigns:\n  win_back: {discount_by_tier: {top: 5}}\n", ["discount_by_tier.top"]),
    ],
)
def test_errors_name_the_field(text: str, fragments: list[str]) -> None:
    with pytest.raises(PlaybookError) as info:
        parse_playbook(text, "shop.yaml")
    message = str(info.value)
    assert message.startswith("invalid playbook shop.yaml:")
    for fragment in fragments:
        assert fragment in message


def test_transactional_campaign_cannot_have_a_holdout() -> None:
    with pytest.raises(PlaybookError, match="order_thank_you is transactional"):
        parse_playbook("campaigns:\n  order_thank_you: {transactional: true, holdout: 0.1}\n")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("campaigns: [welcome\n", "not valid YAML"),
        ("key: : value\n  - x\n", "not valid YAML"),
        ("- welcome\n- order_thank_you\n", "the top level must be a mapping"),
        ("just text\n", "the top level must be a mapping"),
    ],
)
def test_unreadable_documents(text: str, expected: str) -> None:
    with pytest.raises(PlaybookError, match=expected):
        parse_playbook(text, "shop.yaml")


def test_missing_file_raises_playbook_error(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"
    with pytest.raises(PlaybookError) as info:
        load_playbook(path)
    assert str(path) in str(info.value)


def test_file_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("campaigns:\n  welcome:\n    holdout: -1\n", encoding="utf-8")
    with pytest.raises(PlaybookError) as info:
        load_playbook(path)
    assert f"invalid playbook {path}:" in str(info.value)
    assert "campaigns.welcome.holdout" in str(info.value)

"""Lapsing buyers: at_risk, churned, the value tiers of win_back, and coming back."""

from __future__ import annotations

from tests.scenarios.model import Advance, Journey, Move
from tests.scenarios.steps import (
    F,
    R,
    at_risk,
    churn_prevention,
    churned,
    day,
    nudge,
    order_mails,
    purchase,
    review,
    win_back,
)
from tests.scenarios.stories import buyer, comes_back, lapses


def _churns_by_value(
    name: str,
    about: str,
    customer: str,
    key: str,
    totals: tuple[str, ...],
    win_back_percent: int,
    until: tuple[int, ...],
    refunded: str | None = None,
) -> Journey:
    """Orders of ``totals`` (less ``refunded``), then none until ``day(until[-1])``:
    churned, with win_back offering the value tier's ``win_back_percent``."""
    return lapses(
        name,
        about,
        customer,
        key,
        totals,
        tuple(Advance(day(n)) for n in until),
        refunded=refunded,
        win_back_percent=win_back_percent,
    )


def _slow_buyer_at_risk_after_twice_their_gap() -> Journey:
    c, k = "cust-slow-buyer-7", "slow-buyer"
    return buyer(
        "slow_buyer_at_risk_after_twice_their_gap",
        "purchases every 45 days: at_risk 90 days after the last (2x gap), not 60; churned at 120",
        c,
        k,
        "30.00",
        (
            purchase(f"{k}-e3", day(46), c, f"{k}-o2", "30.00"),
            purchase(f"{k}-e4", day(91), c, f"{k}-o3", "30.00"),
            Advance(day(160)),
            Advance(day(250)),
        ),
        (
            Move(F, R, "repeat_purchase", f"{k}-e3", day(46)),
            at_risk(R, day(181)),
            churned(day(211)),
        ),
        (
            review(day(8), f"{k}-o1"),
            nudge(day(31)),
            *order_mails(k, 2, 46),
            *order_mails(k, 3, 91),
            churn_prevention(day(181)),
            win_back(day(211), 10),
        ),
    )


JOURNEYS: tuple[Journey, ...] = (
    _churns_by_value(
        "first_time_buyer_churns_low_value",
        "one 49.90 order: at_risk at 60 days, churned at 120, win_back 10% (low tier)",
        "cust-churn-low-2",
        "churn-low",
        ("49.90",),
        10,
        until=(200,),
    ),
    _churns_by_value(
        "repeat_customer_churns_mid_value",
        "orders of 100 + 150 (exactly the mid tier's 250): at_risk, churned, win_back 15%",
        "cust-churn-mid",
        "churn-mid",
        ("100.00", "150.00"),
        15,
        until=(100, 140),
    ),
    _churns_by_value(
        "big_spender_churns_high_value",
        "a 1200 order partly refunded to 1050 net: still the high tier, win_back 20%",
        "cust-churn-high",
        "churn-high",
        ("1200.00",),
        20,
        until=(130,),
        refunded="150.00",
    ),
    _slow_buyer_at_risk_after_twice_their_gap(),
    comes_back(
        "churned_customer_comes_back",
        "churned, then a purchase: reactivated (welcome_back); the next one: repeat_customer",
        "cust-churn-return-2",
        "churn-return",
        "35.00",
        lapsed=130,
        returns=(150, 170),
        until=180,
        churns=True,
    ),
    comes_back(
        "at_risk_customer_comes_back",
        "at_risk, then a purchase on day 80: reactivated with welcome_back",
        "cust-at-risk-return",
        "at-risk-return",
        "35.00",
        lapsed=70,
        returns=(80,),
        until=90,
        churns=False,
    ),
)

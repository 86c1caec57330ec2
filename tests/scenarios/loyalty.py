"""Loyal customers and advocates: by orders, by RFM, by review or referral."""

from __future__ import annotations

from collections.abc import Sequence

from tests.scenarios.model import Advance, Journey, Move, Send, Step
from tests.scenarios.steps import (
    ADV,
    BACK,
    GONE,
    LOYAL,
    F,
    R,
    advocate_referral,
    at_risk,
    churn_prevention,
    churned,
    day,
    engagement,
    loyalty_reward,
    order_mails,
    purchase,
    review,
    welcome_back,
    win_back,
)
from tests.scenarios.stories import buyer, comes_back


def _loyal_by_orders(
    name: str,
    about: str,
    customer: str,
    key: str,
    total: str,
    days: tuple[int, int, int, int],
    steps: Sequence[Step],
    moves: Sequence[Move] = (),
    sends: Sequence[Send] = (),
    *,
    review_on: int | None = None,
) -> Journey:
    """Four orders of ``total`` on ``days`` (day 1 first, each over 7 days after the one
    before): the second makes a repeat customer, the fourth, within 365 days, a loyal
    one (loyalty_reward). A review on ``day(review_on)``, before loyalty, moves nothing.
    Events are numbered in time order; ``steps`` follow, with their ``moves`` and ``sends``."""
    timeline = [(on, n) for n, on in enumerate(days[1:], 2)]
    if review_on is not None:
        timeline.append((review_on, 0))  # 0: the review, no order
    own: list[Step] = []
    event: dict[int, str] = {}
    for on, n in sorted(timeline):
        event[n] = f"{key}-e{len(own) + 3}"
        own.append(
            engagement(event[n], day(on), customer, "review", channel=None)
            if n == 0
            else purchase(event[n], day(on), customer, f"{key}-o{n}", total)
        )
    return buyer(
        name,
        about,
        customer,
        key,
        total,
        (*own, *steps),
        (
            Move(F, R, "repeat_purchase", event[2], day(days[1])),
            Move(R, LOYAL, "loyal_orders", event[4], day(days[3])),
            *moves,
        ),
        (
            review(day(8), f"{key}-o1"),
            *order_mails(key, 2, days[1]),
            *order_mails(key, 3, days[2]),
            loyalty_reward(day(days[3])),
            *order_mails(key, 4, days[3]),
            *sends,
        ),
    )


def _loyal_customer_reviews_and_becomes_advocate() -> Journey:
    c, k = "cust-loyal-review-3", "loyal-review"
    return _loyal_by_orders(
        "loyal_customer_reviews_and_becomes_advocate",
        "a review before loyalty moves nothing; a loyal customer's review makes an advocate",
        c,
        k,
        "50.00",
        (1, 10, 20, 30),
        (engagement(f"{k}-e7", day(40), c, "review", channel=None), Advance(day(45))),
        (Move(LOYAL, ADV, "loyal_review", f"{k}-e7", day(40)),),
        (advocate_referral(day(40)),),
        review_on=15,
    )


def _advocate_by_referral_then_lapses() -> Journey:
    c, k = "cust-advocate-lapse-8", "advocate-lapse"
    return _loyal_by_orders(
        "advocate_by_referral_then_lapses",
        "loyal, a referral makes an advocate, who stops buying: at_risk, then churned",
        c,
        k,
        "80.00",
        (1, 15, 29, 43),
        (
            engagement(f"{k}-e6", day(52), c, "referral", channel=None),
            Advance(day(170, 11)),  # past win_back's attribution window, closing at 10:00
        ),
        (
            Move(LOYAL, ADV, "loyal_referral", f"{k}-e6", day(52)),
            at_risk(ADV, day(103)),
            churned(day(163)),
        ),
        (advocate_referral(day(52)), churn_prevention(day(103)), win_back(day(163), 15)),
    )


def _loyal_lapses_and_comes_back_loyal() -> Journey:
    c, k = "cust-loyal-cycle-9", "loyal-cycle"
    return _loyal_by_orders(
        "loyal_lapses_and_comes_back_loyal",
        "loyal -> at_risk -> churned -> reactivated -> repeat_customer -> loyal (6 orders in 365d)",
        c,
        k,
        "100.00",
        (1, 11, 21, 31),
        (
            Advance(day(160)),
            purchase(f"{k}-e6", day(200), c, f"{k}-o5", "100.00"),
            purchase(f"{k}-e7", day(215), c, f"{k}-o6", "100.00"),
            Advance(day(230)),
        ),
        (
            at_risk(LOYAL, day(91)),
            churned(day(151)),
            Move(GONE, BACK, "purchase_while_churned", f"{k}-e6", day(200)),
            Move(BACK, R, "purchase_after_reactivation", f"{k}-e7", day(215)),
            Move(R, LOYAL, "loyal_orders", f"{k}-e7", day(215)),
        ),
        (
            churn_prevention(day(91)),
            win_back(day(151), 15),
            welcome_back(day(200)),
            *order_mails(k, 5, 200),
            loyalty_reward(day(215)),
            *order_mails(k, 6, 215),
        ),
    )


JOURNEYS: tuple[Journey, ...] = (
    _loyal_by_orders(
        "four_purchases_in_a_year_make_loyal",
        "the fourth purchase within 365 days makes a loyal customer (loyalty_reward)",
        "cust-loyal-four-2",
        "loyal-four",
        "40.00",
        (1, 20, 50, 80),
        (Advance(day(90)),),
    ),
    _loyal_customer_reviews_and_becomes_advocate(),
    _advocate_by_referral_then_lapses(),
    _loyal_lapses_and_comes_back_loyal(),
    comes_back(
        "top_rfm_segment_makes_loyal",
        "five 120.00 orders 200 days apart over two years: never 4 in 365 days, loyal by RFM",
        "cust-rfm-loyal-9",
        "rfm-loyal",
        "120.00",
        lapsed=130,
        returns=(201, 401, 601, 801),
        until=820,
        churns=True,
        loyal_by_rfm=True,
    ),
)

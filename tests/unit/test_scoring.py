"""RFM scores at their breakpoints: each limit is inclusive, as the playbook states it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from lifecycle.playbook import RfmBreakpoints
from lifecycle.scoring import rfm
from lifecycle.state import CustomerState
from schemas.records import Rfm, Stage

NOW = datetime(2025, 6, 1, tzinfo=UTC)
DEFAULT = RfmBreakpoints()  # recency 240/120/60/30 days; frequency 2/3/5/8; money 100/250/500/1000


def customer(days_ago: float, orders: int, revenue: str) -> CustomerState:
    last = NOW - timedelta(days=days_ago)
    return CustomerState(
        customer_id="c1",
        stage=Stage.REPEAT_CUSTOMER,
        first_seen_at=last,
        last_event_at=last,
        orders=orders,
        revenue=Decimal(revenue),
        first_order_at=last,
        last_order_at=last,
    )


@pytest.mark.parametrize(
    ("days_ago", "r"),
    [(0, 5), (30, 5), (30.5, 4), (60, 4), (61, 3), (120, 3), (240, 2), (240.01, 1), (900, 1)],
)
def test_recency_counts_every_limit_the_days_are_within(days_ago: float, r: int) -> None:
    scores = rfm(customer(days_ago, 1, "10"), NOW, DEFAULT)
    assert scores is not None
    assert scores.r == r


@pytest.mark.parametrize(
    ("orders", "revenue", "f", "m"),
    [(1, "99.99", 1, 1), (2, "100", 2, 2), (4, "499", 3, 3), (8, "1000", 5, 5), (30, "5", 5, 1)],
)
def test_frequency_and_money_score_from_their_own_limits(
    orders: int, revenue: str, f: int, m: int
) -> None:
    assert rfm(customer(10, orders, revenue), NOW, DEFAULT) == Rfm(r=5, f=f, m=m)


def test_scores_depend_on_the_breakpoints_given_not_on_earlier_calls() -> None:
    """The same (r, f, m) is one value whichever breakpoints made it."""
    coarse = RfmBreakpoints(
        recency_days=[400, 300, 200, 100],
        frequency=[10, 20, 30, 40],
        monetary=[10_000, 20_000, 30_000, 40_000],
    )
    fine = rfm(customer(45, 3, "300"), NOW, DEFAULT)
    rough = rfm(customer(45, 3, "300"), NOW, coarse)
    assert (fine, rough) == (Rfm(r=4, f=3, m=3), Rfm(r=5, f=1, m=1))
    assert rfm(customer(250, 11, "20000"), NOW, coarse) == Rfm(r=3, f=2, m=3)
    assert rfm(customer(250, 11, "20000"), NOW, DEFAULT) == Rfm(r=1, f=5, m=5)
    nobody = CustomerState(customer_id="c2", first_seen_at=NOW, last_event_at=NOW)
    assert rfm(nobody, NOW, DEFAULT) is None

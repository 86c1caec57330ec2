"""RFM calibration: quintile breakpoints that split the customers into fifths."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from analytics.rfm_calibrate import calibrate_rfm
from lifecycle.scoring import rfm
from lifecycle.state import CustomerState

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def buyer(n: int, orders: int, revenue: int, days_ago: float) -> CustomerState:
    last = NOW - timedelta(days=days_ago)
    return CustomerState(
        customer_id=f"c{n}",
        first_seen_at=last - timedelta(days=400),
        last_event_at=last,
        orders=orders,
        revenue=Decimal(revenue),
        first_order_at=last - timedelta(days=300),
        last_order_at=last,
    )


def test_continuous_values_split_into_fifths() -> None:
    states = [buyer(n, 1 + n % 10, 10 * (n + 1), n * 3 + 0.5) for n in range(100)]
    points = calibrate_rfm(states, NOW)
    assert points.monetary == [210, 410, 610, 810]
    scores = [rfm(s, NOW, points) for s in states]
    assert Counter(s.m for s in scores if s) == dict.fromkeys(range(1, 6), 20)
    assert Counter(s.r for s in scores if s) == dict.fromkeys(range(1, 6), 20)


def test_ties_keep_the_lowest_run_in_the_lowest_score() -> None:
    states = [buyer(n, 1 if n < 70 else 2 + n % 3, 50, 10) for n in range(100)]
    points = calibrate_rfm(states, NOW)
    assert points.frequency[0] == 2  # the 70 one-order customers all score 1
    assert points.frequency == sorted(set(points.frequency))


def test_customers_without_orders_are_left_out() -> None:
    lead = CustomerState(customer_id="lead", first_seen_at=NOW, last_event_at=NOW)
    with pytest.raises(ValueError, match="no customer with an order"):
        calibrate_rfm([lead], NOW)

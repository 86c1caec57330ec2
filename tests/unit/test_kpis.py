"""The lifecycle KPIs on a small shop whose every figure is worked out by hand."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from analytics.period import Period
from analytics.report import Records, build_report
from lifecycle.backtest import Backtest
from lifecycle.playbook import default_playbook
from schemas.codec import dumps

START = datetime(2025, 3, 1, tzinfo=UTC)
END = datetime(2025, 7, 1, tzinfo=UTC)


def signup(customer: str, day: str) -> dict[str, Any]:
    return {
        "type": "signup",
        "event_id": f"{customer}-s",
        "occurred_at": f"{day}T09:00:00Z",
        "customer_id": customer,
        "email": f"{customer}@mail.example",
        "marketing_consent": True,
    }


def order(customer: str, day: str, total: str) -> dict[str, Any]:
    return {
        "type": "purchase",
        "event_id": f"{customer}-{day}",
        "occurred_at": f"{day}T12:00:00Z",
        "customer_id": customer,
        "order_id": f"{customer}-o-{day}",
        "total": total,
        "currency": "EUR",
    }


def shop() -> list[bytes]:
    events = [
        signup("c1", "2025-01-01"),
        order("c1", "2025-01-02", "100.00"),
        signup("c2", "2025-01-03"),
        order("c2", "2025-01-05", "40.00"),  # at risk 6 March, churned 5 May
        signup("c3", "2025-01-08"),
        order("c3", "2025-01-10", "20.00"),  # at risk 11 March, back on 1 April
        order("c1", "2025-02-01", "50.00"),
        order("c1", "2025-02-01", "50.00"),  # a redelivery: counted once
        signup("c4", "2025-03-05"),
        order("c4", "2025-03-06", "25.00"),
        order("c1", "2025-03-10", "30.00"),
        order("c4", "2025-03-20", "35.00"),
        order("c3", "2025-04-01", "60.00"),
        signup("c5", "2025-06-01"),
        order("c5", "2025-06-02", "10.00"),
        {
            "type": "refund",
            "event_id": "c5-r",
            "occurred_at": "2025-06-03T10:00:00Z",
            "customer_id": "c5",
            "order_id": "c5-o-2025-06-02",
            "amount": "5.00",
        },
    ]
    return [dumps(e) for e in events] + [b'{"type": "purchase"}']


@pytest.fixture(scope="module")
def kpis() -> dict[str, Any]:
    lines = shop()
    playbook = default_playbook()
    items = list(Backtest(playbook).run(lines, until=END))
    report = build_report(Records.of_backtest(lines, items), Period(START, END), playbook)
    return report.as_dict()["kpis"]


def test_acquisition(kpis: dict[str, Any]) -> None:
    assert kpis["signups"] == 2  # c4, c5
    assert kpis["new_customers"] == 2
    assert kpis["first_to_repeat"] == {"customers": 2, "count": 1, "rate": 0.5}  # c4


def test_retention_churn_and_reactivation(kpis: dict[str, Any]) -> None:
    assert kpis["active_at_start"] == 3  # c1, c2, c3
    assert kpis["retention"] == {"customers": 3, "count": 2, "rate": 0.666667}  # c1, c3
    assert kpis["churn"] == {"customers": 3, "count": 1, "rate": 0.333333}  # c2
    # At risk in the period: c2, c3, c1 (16 May: twice its 33.5-day gap), c4 (19 May).
    assert kpis["reactivation"] == {"customers": 4, "count": 1, "rate": 0.25}  # c3


def test_stages_and_revenue(kpis: dict[str, Any]) -> None:
    stages = {s: n for s, n in kpis["customers_by_stage"].items() if n}
    assert stages == {"first_time_buyer": 1, "at_risk": 2, "churned": 1, "reactivated": 1}
    assert kpis["revenue_by_stage"] == {
        "lead": "35.00",  # the first orders of c4 and c5
        "first_time_buyer": "35.00",
        "repeat_customer": "30.00",
        "at_risk": "60.00",  # c3 coming back
    }
    assert (kpis["orders"], kpis["buyers"], kpis["revenue"], kpis["refunds"]) == (
        5,
        4,
        "160.00",
        "5.00",
    )
    assert kpis["average_order_value"] == "32.00"
    assert kpis["purchase_frequency"] == 1.25


def test_clv_by_tier_and_dead_letters(kpis: dict[str, Any]) -> None:
    assert kpis["clv_by_tier"]["low"] == {
        "customers": 5,
        "revenue": "365.00",
        "average_clv": "73.00",
    }
    assert kpis["clv_by_tier"]["high"]["customers"] == 0
    assert kpis["accepted_events"] == 8
    assert (kpis["dead_letters"], kpis["dead_letter_rate"]) == (1, 0.111111)

"""Two shops, one engine: the durable-goods and consumables playbooks differ only in YAML."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path

import pytest

from lifecycle.clock import just_after
from lifecycle.core import Due, apply
from lifecycle.playbook import Playbook, load_playbook
from lifecycle.state import CustomerState
from schemas.events import EventAdapter
from schemas.records import Stage

T0 = datetime(2026, 2, 2, 10, 0, tzinfo=UTC)


def shipped(name: str) -> Playbook:
    return load_playbook(Path(str(resources.files("lifecycle").joinpath(name))))


def purchase(n: int, at: datetime) -> dict[str, object]:
    return {
        "event_id": f"p{n}",
        "type": "purchase",
        "occurred_at": at.isoformat(),
        "customer_id": "c1",
        "order_id": f"o{n}",
        "total": "80.00",
        "currency": "EUR",
        "items": [{"product_id": "sku", "quantity": 1, "unit_price": "80.00"}],
    }


def timeline(book: Playbook, purchase_days: list[int], until_day: int) -> list[tuple[int, str]]:
    """(day, stage) of every move of a customer who buys on ``purchase_days``."""
    state: CustomerState | None = None
    moves: list[tuple[int, str]] = []
    for n, d in enumerate(purchase_days):
        outcome = apply(state, EventAdapter.validate_python(purchase(n, T0 + timedelta(d))), book)
        state = outcome.state
        moves += [((t.at - T0).days, t.to_stage.value) for t in outcome.transitions]
    assert state is not None
    outcome = apply(state, Due(just_after(T0 + timedelta(until_day))), book)
    return moves + [((t.at - T0).days, t.to_stage.value) for t in outcome.transitions]


@pytest.mark.parametrize("name", ["playbook_durable_goods.yaml", "playbook_consumables.yaml"])
def test_shipped_shop_playbooks_load(name: str) -> None:
    assert isinstance(shipped(name), Playbook)


def test_a_year_without_a_purchase_means_different_things() -> None:
    durable = timeline(shipped("playbook_durable_goods.yaml"), [0], 400)
    consumables = timeline(shipped("playbook_consumables.yaml"), [0], 400)
    assert durable == [(0, Stage.FIRST_TIME_BUYER.value), (365, Stage.AT_RISK.value)]
    assert consumables == [
        (0, Stage.FIRST_TIME_BUYER.value),
        (30, Stage.AT_RISK.value),
        (75, Stage.CHURNED.value),
    ]


def test_loyalty_takes_three_purchases_in_three_years_or_six_in_half_a_year() -> None:
    durable = timeline(shipped("playbook_durable_goods.yaml"), [0, 300, 600], 601)
    assert durable[-1] == (600, Stage.LOYAL.value)
    consumables = timeline(shipped("playbook_consumables.yaml"), [0, 20, 40, 60, 80, 100], 101)
    assert consumables[-1] == (100, Stage.LOYAL.value)

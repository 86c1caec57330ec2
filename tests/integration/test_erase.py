"""Erase through the broker: verified where the data lives, in the changelog topics.

A visitor browses, signs up (the prospect record is merged in), buys two
products (counted in the co-purchase table), leaves a cart (a timer pending)
and asks to be erased. Afterwards the latest value of every key of every
table changelog must hold nothing of them: no record under their customer id
or anonymous id, and neither id nor their email in any stored value; and
nothing is ever emitted for them again, though event time moves 200 days on.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from harness.engine import (
    Worker,
    collect,
    create_topics,
    publish,
    stored_states,
    unique_settings,
)

T0 = datetime(2025, 5, 1, 9, 0, tzinfo=UTC)
CUSTOMER = "cust-erase-me"
VISITOR = "anon-erase-me"
EMAIL = "erase.me.please@example.org"


def at(hours: float) -> str:
    return (T0 + timedelta(hours=hours)).isoformat()


def story() -> list[dict[str, Any]]:
    item = {"quantity": 1, "unit_price": "20.00"}
    return [
        {"event_id": "x1", "type": "browse", "occurred_at": at(0), "anonymous_id": VISITOR,
         "product_id": "p-lamp"},
        {"event_id": "x2", "type": "signup", "occurred_at": at(1), "customer_id": CUSTOMER,
         "anonymous_id": VISITOR, "email": EMAIL, "first_name": "Erin",
         "marketing_consent": True},
        {"event_id": "x3", "type": "purchase", "occurred_at": at(2), "customer_id": CUSTOMER,
         "order_id": "o-erase", "total": "40.00", "currency": "EUR",
         "items": [{"product_id": "p-lamp", **item}, {"product_id": "p-shade", **item}]},
        {"event_id": "x4", "type": "cart", "occurred_at": at(3), "customer_id": CUSTOMER,
         "action": "add", "cart_id": "k-erase", "product_id": "p-bulb", "quantity": 1,
         "unit_price": "5.00", "currency": "EUR"},
        {"event_id": "x5", "type": "privacy", "occurred_at": at(3.5), "customer_id": CUSTOMER,
         "action": "erase"},
    ]  # fmt: skip


def later_visitor(hours: float, n: int) -> dict[str, Any]:
    """Someone else's page view: it carries event time forward on every partition's clock."""
    return {"event_id": f"later-{n}", "type": "browse", "occurred_at": at(hours),
            "anonymous_id": f"anon-later-{n}"}  # fmt: skip


def test_erase_leaves_nothing_in_any_changelog(kafka_bootstrap: str, tmp_path: Path) -> None:
    settings = unique_settings(kafka_bootstrap, tmp_path, partitions=2)
    create_topics(settings)
    worker = Worker(settings, tmp_path / "worker.log").start()
    try:
        publish(settings, story())
        late = [later_visitor(24 * 200 + n, n) for n in range(8)]
        publish(settings, late)
        outputs = collect(settings, ["transitions", "triggers"], expected=4, quiet=6)
        worker.assert_alive()
        customers = stored_states(settings)
        copurchase = stored_states(settings, table="copurchase")
    finally:
        worker.stop()
    mine = [o for o in outputs if o["key"] == CUSTOMER]
    assert sorted(o["value"].get("campaign") or o["value"]["to_stage"] for o in mine) == [
        "first_time_buyer",
        "lead",
        "order_thank_you",
        "welcome",
    ]  # the cart mail, review request, nudge and at-risk moves never came
    assert CUSTOMER not in customers
    assert VISITOR not in customers
    assert any(k.startswith("anon-later-") for k in customers)  # the changelog was read
    assert any(k.endswith("|p-lamp") for k in copurchase)  # the order was counted, anonymously
    for table, records in (("customers", customers), ("copurchase", copurchase)):
        stored = orjson.dumps(records).decode()
        for secret in (CUSTOMER, VISITOR, EMAIL, "Erin"):
            assert secret not in stored, f"{secret} still in the {table} changelog"

"""The synthetic shop: reproducible, valid, time-ordered, with every persona present."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from analytics.simulation import SIM_START, simulate
from schemas.codec import dumps
from schemas.events import TOPIC_OF_TYPE, PurchaseEvent, SignupEvent
from schemas.inbound import Rejection, check_routing, parse_event

Body = dict[str, Any]


@pytest.fixture(scope="module")
def events() -> list[Body]:
    return list(simulate(400, seed=11))


def encoded(customers: int, seed: int, **kwargs: Any) -> list[bytes]:
    return [dumps(e) for e in simulate(customers, seed=seed, **kwargs)]


def test_same_seed_gives_byte_identical_events() -> None:
    assert encoded(100, 5) == encoded(100, 5)


def test_different_seed_gives_different_events() -> None:
    first, second = encoded(100, 5), encoded(100, 6)
    assert first != second
    assert set(first).isdisjoint(second)


def test_every_event_is_valid_and_correctly_routed(events: list[Body]) -> None:
    for body in events:
        raw = dumps(body)
        event = parse_event(raw)
        assert not isinstance(event, Rejection), (body, event)
        assert event.model_extra == {}
        key = (body.get("customer_id") or body["anonymous_id"]).encode()
        assert check_routing(event, key, TOPIC_OF_TYPE[body["type"]]) is None


def test_events_are_in_event_time_order_within_the_span(events: list[Body]) -> None:
    times = [datetime.fromisoformat(e["occurred_at"]) for e in events]
    assert times == sorted(times)
    assert all(t.utcoffset() == timedelta(0) for t in times)
    assert times[0] >= SIM_START
    assert times[-1] <= SIM_START + timedelta(days=365)


def test_event_ids_are_unique_without_duplicates(events: list[Body]) -> None:
    ids = Counter(e["event_id"] for e in events)
    assert ids.most_common(1)[0][1] == 1


def test_personas_are_present(events: list[Body]) -> None:
    anonymous = {e["anonymous_id"] for e in events if e.get("anonymous_id")}
    customers = {e["customer_id"] for e in events if e.get("customer_id")}
    # anon-<seed>-<n> becomes cust-<seed>-<n> on signup
    anonymous_only = {a for a in anonymous if a.replace("anon-", "cust-", 1) not in customers}
    assert len(anonymous_only) > 40

    signups = [e for e in events if e["type"] == "signup"]
    consent = Counter(bool(e["marketing_consent"]) for e in signups)
    assert consent[True] > 0
    assert consent[False] > 0
    assert 0.45 < consent[True] / len(signups) < 0.75

    orders = Counter(e["customer_id"] for e in events if e["type"] == "purchase")
    assert sum(1 for n in orders.values() if n == 1) > 20
    assert sum(1 for n in orders.values() if n >= 2) > 20
    assert max(orders.values()) >= 4
    buyers_without_signup = set(orders) - {e["customer_id"] for e in signups}
    assert buyers_without_signup == set()

    cart_actions = {e["action"] for e in events if e["type"] == "cart"}
    assert cart_actions == {"add", "checkout_started"}


def test_purchase_totals_equal_their_items(events: list[Body]) -> None:
    purchases = [parse_event(dumps(e)) for e in events if e["type"] == "purchase"]
    assert purchases
    for purchase in purchases:
        assert isinstance(purchase, PurchaseEvent)
        assert purchase.items
        assert purchase.total == sum(
            (i.unit_price * i.quantity for i in purchase.items), Decimal(0)
        )


def test_signups_carry_valid_profiles(events: list[Body]) -> None:
    for body in (e for e in events if e["type"] == "signup"):
        signup = parse_event(dumps(body))
        assert isinstance(signup, SignupEvent)
        assert signup.email == f"{signup.customer_id}@mail.example"
        assert signup.timezone is not None
        assert signup.locale is not None


def test_duplicate_rate_repeats_event_ids() -> None:
    plain = list(simulate(200, seed=3))
    noisy = list(simulate(200, seed=3, duplicate_rate=0.2))
    repeats = Counter(e["event_id"] for e in noisy)
    doubled = {i for i, n in repeats.items() if n > 1}
    assert len(noisy) > len(plain)
    assert 0.1 < len(doubled) / len(repeats) < 0.3
    # a redelivery is the very same message
    first_seen: dict[str, Body] = {}
    for body in noisy:
        assert first_seen.setdefault(body["event_id"], body) == body
    assert {e["event_id"] for e in noisy} == {e["event_id"] for e in plain}


def test_extras_add_traits_properties_and_custom_events_and_change_nothing_else() -> None:
    plain = encoded(300, 4, duplicate_rate=0.05)
    extras = list(simulate(300, seed=4, duplicate_rate=0.05, extras=True))
    assert encoded(300, 4, duplicate_rate=0.05, extras=True) == [dumps(e) for e in extras]
    kinds = Counter(e["type"] for e in extras)
    assert kinds["custom"] > 20
    rest = []
    for body in extras:
        event = parse_event(dumps(body))
        assert not isinstance(event, Rejection), (body, event)
        key = (body.get("customer_id") or body["anonymous_id"]).encode()
        assert check_routing(event, key, TOPIC_OF_TYPE[body["type"]]) is None
        if body["type"] == "custom":
            assert body["name"] == "wishlist_add"
            continue
        if body["type"] == "signup":
            assert set(body["traits"]) == {"birthday", "tier", "newsletter"}
        if body["type"] == "purchase" or body.get("action") == "add":
            assert set(body["properties"]) == {"device", "coupon"}
        rest.append(dumps({k: v for k, v in body.items() if k not in ("traits", "properties")}))
    assert rest == plain  # the same events, in the same order, byte for byte


def _left(body: Body) -> bool:
    """An event of a session left without an order: ``ev-SEED-N-aK``."""
    return str(body["event_id"]).rsplit("-", 1)[-1].startswith("a")


def _at(body: Body) -> datetime:
    return datetime.fromisoformat(body["occurred_at"])


def test_abandoned_sessions_are_views_and_carts_left_and_change_nothing_else() -> None:
    plain = encoded(300, 4, duplicate_rate=0.05, extras=True)
    both = list(simulate(300, seed=4, duplicate_rate=0.05, extras=True, abandoned=True))
    assert encoded(300, 4, duplicate_rate=0.05, extras=True, abandoned=True) == [
        dumps(e) for e in both
    ]
    left = [e for e in both if _left(e)]
    assert [dumps(e) for e in both if not _left(e)] == plain  # byte for byte, same order
    assert Counter(e["type"] for e in left).keys() == {"browse", "cart"}
    assert sum(e["type"] == "cart" for e in left) > 20
    signed_up = {e["customer_id"]: _at(e) for e in both if e["type"] == "signup"}
    for body in left:
        event = parse_event(dumps(body))
        assert not isinstance(event, Rejection), (body, event)
        assert (
            check_routing(event, body["customer_id"].encode(), TOPIC_OF_TYPE[body["type"]]) is None
        )
        assert _at(body) >= signed_up[body["customer_id"]] + timedelta(days=2)
        if body["type"] == "cart":
            assert body["action"] == "add"
            assert set(body["properties"]) == {"device", "coupon"}


def test_only_abandoned_sessions_leave_views_and_carts_without_an_order() -> None:
    """What browse and cart abandonment wait for: a signed-in view with no cart or order
    in the next two hours, a cart add with no order in the next hour."""

    def left_alone(events: list[Body]) -> tuple[int, int]:
        by_customer: dict[str, list[Body]] = {}
        for e in events:
            if "customer_id" in e:
                by_customer.setdefault(e["customer_id"], []).append(e)
        views = carts = 0
        for story in by_customer.values():
            for i, e in enumerate(story):
                after = [x for x in story[i + 1 :] if _at(x) - _at(e) <= timedelta(hours=2)]
                if e["type"] == "browse":
                    views += not any(x["type"] in ("cart", "purchase") for x in after)
                elif e.get("action") == "add":
                    soon = [x for x in after if _at(x) - _at(e) <= timedelta(hours=1)]
                    carts += not any(x["type"] == "purchase" for x in soon)
        return views, carts

    plain_views, plain_carts = left_alone(list(simulate(300, seed=4)))
    views, carts = left_alone(list(simulate(300, seed=4, abandoned=True)))
    assert views > plain_views + 50
    assert carts > plain_carts + 20

"""Conditions of the flows language: every operator, combinator and path (docs/flows.md)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from lifecycle.flows.closures import record_test
from lifecycle.flows.conditions import Bought, Ctx, View, event_holds, holds, record_value
from lifecycle.flows.model import SegmentDef
from lifecycle.flows.parse import FlowError, Scope, condition
from lifecycle.flows.yaml12 import load
from lifecycle.playbook import ClvTiers, Scores
from lifecycle.scoring import ScoresAt
from lifecycle.state import CartLine, CustomerState
from schemas.events import EventAdapter
from schemas.records import Stage

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


@dataclass
class FakeFacts:
    """What the record will hold (traits, the bought and view logs), until it does."""

    trait_values: dict[str, Any] = field(default_factory=dict)
    lines: list[Bought] = field(default_factory=list)
    views: list[View] = field(default_factory=list)

    def traits(self) -> Mapping[str, Any]:
        return self.trait_values

    def bought(self) -> Iterable[Bought]:
        return self.lines

    def viewed(self) -> Iterable[View]:
        return self.views


def record(**fields: Any) -> CustomerState:
    base: dict[str, Any] = {
        "customer_id": "c1",
        "first_seen_at": NOW - timedelta(days=400),
        "last_event_at": NOW,
    }
    return CustomerState.model_validate({**base, **fields})


def buyer(**fields: Any) -> CustomerState:
    """Four orders worth 500.00, the last ten days ago."""
    return record(
        stage=Stage.LOYAL,
        orders=4,
        revenue=Decimal("500.00"),
        first_order_at=NOW - timedelta(days=200),
        last_order_at=NOW - timedelta(days=10),
        purchase_days=4,
        signed_up_at=NOW - timedelta(days=300),
        profile={"country": "NO", "locale": "nb-NO", "marketing_consent": True},
        **fields,
    )


def ctx(
    state: CustomerState | None = None,
    facts: FakeFacts | None = None,
    segments: Mapping[str, SegmentDef] | None = None,
) -> Ctx:
    state = state if state is not None else buyer()
    return Ctx(
        state=state,
        now=NOW,
        scores=ScoresAt(state, NOW, Scores()),
        tiers=ClvTiers(),
        segments=segments or {},
        facts=facts or FakeFacts(),
    )


def rec(text: str, context: Ctx | None = None) -> bool:
    """Whether the record condition written in YAML holds; its compiled closure
    (what segments, filters and branches run) must decide the same."""
    cond = condition(load(text), Scope(None), ("c",))
    context = context or ctx()
    decided = holds(cond, context)
    assert record_test(cond, context.segments)(context) is decided, text
    return decided


def event(**fields: Any) -> Any:
    base = {"event_id": "e1", "occurred_at": "2025-06-01T12:00:00Z", "customer_id": "c1"}
    return EventAdapter.validate_python({**base, **fields})


PURCHASE = event(
    type="purchase",
    order_id="o1",
    total="25.50",
    currency="EUR",
    items=[
        {"product_id": "mug", "category": "kitchen", "quantity": 1, "unit_price": "10.50"},
        {"product_id": "beans", "category": "coffee", "quantity": 1, "unit_price": "15.00"},
        {"product_id": "card", "quantity": 1, "unit_price": "0"},
    ],
)


def ev(text: str, evt: Any, kind: str | None = None) -> bool:
    cond = condition(load(text), Scope(kind or evt.type), ("where",))
    return bool(event_holds(cond, evt))


# --- operators ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # int (orders = 4)
        ("{field: orders, eq: 4}", True),
        ("{field: orders, eq: 4.0}", True),
        ("{field: orders, ne: 4}", False),
        ("{field: orders, gt: 3}", True),
        ("{field: orders, gt: 4}", False),
        ("{field: orders, gte: 4}", True),
        ("{field: orders, lt: 4}", False),
        ("{field: orders, lte: 4}", True),
        ("{field: orders, in: [1, 4]}", True),
        ("{field: orders, not_in: [1, 4]}", False),
        ("{field: orders, exists: true}", True),
        # Decimal money (revenue = 500.00)
        ("{field: revenue, gte: 500}", True),
        ("{field: revenue, eq: 500}", True),
        ("{field: revenue, eq: 500.0}", True),
        ("{field: revenue, gt: 499.99}", True),
        ("{field: revenue, gt: 500}", False),
        ("{field: revenue, lt: 500.01}", True),
        ("{field: clv, lte: 500}", True),
        ("{field: aov, eq: 125}", True),
        # text
        ("{field: country, eq: 'NO'}", True),
        ("{field: country, eq: NO}", True),
        ("{field: country, ne: SE}", True),
        ("{field: country, in: [NO, SE, DK]}", True),
        ("{field: country, not_in: [SE, DK]}", True),
        ("{field: country, gt: AA}", True),
        ("{field: locale, eq: nb-NO}", True),
        # names
        ("{field: stage, in: [loyal, advocate]}", True),
        ("{field: stage, eq: lead}", False),
        ("{field: clv_tier, eq: mid}", True),
        # bool
        ("{field: consent, eq: true}", True),
        ("{field: consent, ne: true}", False),
        ("{field: signed_up, eq: true}", True),
        # shorthand
        ("{orders: 4}", True),
        ("{stage: loyal}", True),
        ("{country: SE}", False),
    ],
)
def test_operators_over_record_values(text: str, expected: bool) -> None:
    assert rec(text) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{field: p_alive, gte: 0.2}", True),
        ("{field: p_alive, lt: 0}", False),
        ("{field: p_alive, lte: 1}", True),
        ("{field: predicted_clv, gt: 0}", True),
        ("{field: days_since_last_order, eq: 10}", True),
        ("{field: days_since_last_order, gt: 9.99}", True),
        ("{field: days_since_last_order, lt: 10}", False),
    ],
)
def test_float_scores_and_days_compare_as_numbers(text: str, expected: bool) -> None:
    assert rec(text) is expected


def test_p_alive_float_equals_its_decimal_literal() -> None:
    context = ctx()
    p_alive = record_value("p_alive", context)
    assert isinstance(p_alive, float)
    assert rec(f"{{field: p_alive, eq: {p_alive!r}}}", context)
    assert rec(f"{{field: p_alive, gte: {p_alive!r}}}", context)
    assert not rec(f"{{field: p_alive, gt: {p_alive!r}}}", context)


def test_revenue_in_cents_compares_exactly() -> None:
    context = ctx(buyer().model_copy(update={"revenue": Decimal("0.30")}))
    assert rec("{field: revenue, eq: 0.3}", context)  # 0.1 + 0.2 is not a float problem here
    assert not rec("{field: revenue, gt: 0.3}", context)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{field: country, eq: NO}", False),
        ("{field: country, ne: NO}", True),
        ("{field: country, in: [NO]}", False),
        ("{field: country, not_in: [NO]}", True),
        ("{field: country, gt: A}", False),
        ("{field: country, gte: A}", False),
        ("{field: country, lt: Z}", False),
        ("{field: country, lte: Z}", False),
        ("{field: country, exists: true}", False),
        ("{field: country, exists: false}", True),
        ("{field: rfm.r, gte: 1}", False),
        ("{field: rfm.r, exists: false}", True),
        ("{field: rfm_segment, exists: false}", True),
        ("{field: p_alive, gte: 0}", False),
        ("{field: predicted_clv, exists: false}", True),
        ("{field: days_since_last_order, lt: 100000}", False),
        ("{field: aov, exists: false}", True),
        ("{field: traits.tier, eq: gold}", False),
        ("{field: traits.tier, ne: gold}", True),
        ("{field: traits.tier, exists: false}", True),
    ],
)
def test_a_missing_value_fails_all_but_ne_not_in_and_exists_false(
    text: str, expected: bool
) -> None:
    assert rec(text, ctx(record(stage=Stage.LEAD))) is expected


def test_values_of_different_kinds_never_match() -> None:
    """But a number in the playbook reads a number sent as text (``"5"``) as that number."""
    facts = FakeFacts({"tier": "5", "vip": True, "score": 5, "plan": "gold", "sku": "1e3"})
    context = ctx(facts=facts)
    assert rec("{field: traits.tier, eq: 5}", context)
    assert not rec("{field: traits.tier, ne: 5}", context)
    assert rec("{field: traits.tier, gt: 4.5}", context)
    assert rec("{traits.tier: {in: [4, 5]}}", context)
    assert not rec("{field: traits.score, eq: '5'}", context)  # text in the playbook: text only
    assert not rec("{field: traits.plan, gt: 4}", context)
    assert rec("{field: traits.plan, ne: 4}", context)
    assert not rec("{field: traits.sku, eq: 1000}", context)  # a numeral is digits and a point
    assert not rec("{field: traits.vip, eq: 1}", context)
    assert rec("{field: traits.vip, eq: true}", context)
    assert not rec("{field: traits.score, eq: true}", context)
    assert rec("{field: traits.score, in: ['5', 5]}", context)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{field: traits.birthday, eq: 1990-04-02}", True),
        ("{field: traits.birthday, lt: 2000-01-01}", True),
        ("{field: traits.birthday, gte: 1990-04-03}", False),
        ("{field: traits.plan, in: [gold, silver]}", True),
        ("{field: traits.country, in: [NO, SE, DK]}", True),
        ("{field: traits.visits, gte: 3}", True),
        ("{field: traits.newsletter, eq: false}", True),
        ("{field: traits.newsletter, exists: true}", True),
        ("{traits.plan: gold}", True),
    ],
)
def test_trait_paths(text: str, expected: bool) -> None:
    facts = FakeFacts(
        {
            "birthday": "1990-04-02",
            "plan": "gold",
            "country": "SE",
            "visits": 3,
            "newsletter": False,
        }
    )
    assert rec(text, ctx(facts=facts)) is expected


def test_a_trait_kept_as_a_date_compares_with_its_iso_text() -> None:
    context = ctx(facts=FakeFacts({"birthday": date(1990, 4, 2)}))
    assert rec("{field: traits.birthday, eq: 1990-04-02}", context)
    assert rec("{field: traits.birthday, lt: 1990-04-03}", context)


# --- every record path, with a value and missing --------------------------------------------


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("stage", "loyal"),
        ("orders", 4),
        ("revenue", Decimal("500.00")),
        ("clv", Decimal("500.00")),
        ("aov", Decimal("125.00")),
        ("clv_tier", "mid"),
        ("rfm.r", 5),
        ("rfm.f", 3),
        ("rfm.m", 4),
        ("rfm_segment", "potential_loyalists"),
        ("days_since_last_order", Decimal(10)),
        ("consent", True),
        ("country", "NO"),
        ("locale", "nb-NO"),
        ("cart_items", 3),
        ("cart_value", Decimal("21.00")),
        ("signed_up", True),
        ("traits.tier", "gold"),
    ],
)
def test_record_paths_have_values(path: str, value: Any) -> None:
    state = buyer(
        cart={
            "mug": CartLine(quantity=2, unit_price=Decimal("5.50"), currency="EUR"),
            "pot": CartLine(quantity=1, unit_price=Decimal("10.00"), currency="EUR"),
        }
    )
    assert record_value(path, ctx(state, FakeFacts({"tier": "gold"}))) == value


def test_record_predictions_have_values() -> None:
    context = ctx()
    assert 0 < record_value("p_alive", context) <= 1
    assert record_value("predicted_clv", context) > 0


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("stage", None),
        ("orders", 0),
        ("revenue", Decimal("0.00")),
        ("clv", Decimal("0.00")),
        ("aov", None),
        ("clv_tier", "low"),
        ("rfm.r", None),
        ("rfm.f", None),
        ("rfm.m", None),
        ("rfm_segment", None),
        ("p_alive", None),
        ("predicted_clv", None),
        ("days_since_last_order", None),
        ("consent", False),
        ("country", None),
        ("locale", None),
        ("cart_items", 0),
        ("cart_value", Decimal(0)),
        ("signed_up", False),
        ("traits.tier", None),
    ],
)
def test_record_paths_of_a_new_visitor(path: str, value: Any) -> None:
    assert record_value(path, ctx(record())) == value


def test_consent_is_marketing_consent_and_not_unsubscribed() -> None:
    profile = {"marketing_consent": True, "unsubscribed": True}
    assert record_value("consent", ctx(record(profile=profile))) is False


# --- combinators ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{all: [{orders: 4}, {country: NO}]}", True),
        ("{all: [{orders: 4}, {country: SE}]}", False),
        ("{any: [{orders: 5}, {country: NO}]}", True),
        ("{any: [{orders: 5}, {country: SE}]}", False),
        ("{not: {country: SE}}", True),
        ("{not: {country: NO}}", False),
        ("{not: {not: {orders: 4}}}", True),
        ("{all: [{any: [{orders: 1}, {not: {stage: lead}}]}, {field: revenue, gte: 500}]}", True),
        ("{any: [{all: [{orders: 4}, {country: SE}]}, {not: {field: consent, eq: true}}]}", False),
    ],
)
def test_all_any_not(text: str, expected: bool) -> None:
    assert rec(text) is expected


def test_the_vip_segment_of_design() -> None:
    vip = "{all: [{field: revenue, gte: 500}, {field: stage, in: [loyal, advocate]}]}"
    assert rec(vip)
    assert not rec(vip, ctx(buyer().model_copy(update={"revenue": Decimal("499.99")})))
    assert not rec(vip, ctx(buyer().model_copy(update={"stage": Stage.AT_RISK})))


def test_segments_and_nested_segments() -> None:
    segments = {
        "big": SegmentDef(cond=condition(load("{field: revenue, gte: 500}"), Scope(None), ())),
        "nordic": SegmentDef(
            cond=condition(load("{field: country, in: [NO, SE, DK]}"), Scope(None), ())
        ),
        "vip": SegmentDef(
            cond=condition(load("{all: [{segment: big}, {segment: nordic}]}"), Scope(None), ())
        ),
        "off": SegmentDef(cond=None, enabled=False),
    }
    context = ctx(segments=segments)
    assert rec("{segment: big}", context)
    assert rec("{segment: vip}", context)
    assert not rec("{not: {segment: vip}}", context)
    assert not rec("{segment: off}", context)
    assert rec("{not: {segment: off}}", context)
    swede = ctx(buyer().model_copy(update={"revenue": Decimal(10)}), segments=segments)
    assert not rec("{segment: vip}", swede)


def test_a_compiled_segment_decides_as_holds() -> None:
    def cond(text: str) -> Any:
        return condition(load(text), Scope(None), ())

    segments = {
        "big": SegmentDef(cond=cond("{field: revenue, gte: 500}")),
        "gold": SegmentDef(cond=cond("{traits.tier: gold}")),
        "silver_plus": SegmentDef(cond=cond("{field: traits.tier, in: [silver, gold]}")),
        "news": SegmentDef(cond=cond("{traits.newsletter: true}")),
        "tall": SegmentDef(cond=cond("{field: traits.height, gt: 180}")),
        "named": SegmentDef(cond=cond("{field: traits.name, exists: true}")),
        "vip": SegmentDef(cond=cond("{all: [{segment: big}, {not: {segment: gold}}]}")),
        "off": SegmentDef(cond=None, enabled=False),
        "either": SegmentDef(cond=cond("{any: [{segment: off}, {segment: vip}]}")),
    }
    traits: list[dict[str, Any]] = [
        {},
        {"tier": "gold", "newsletter": True, "height": 181, "name": "A"},
        {"tier": "silver", "newsletter": "true", "height": 180.0, "name": None},
        {"tier": 5, "newsletter": False, "height": "190"},
    ]
    states = [buyer(), buyer().model_copy(update={"revenue": Decimal(10)}), record()]
    seen = set()
    for name in [*segments, "missing"]:
        test = record_test(cond(f"{{segment: {name}}}"), segments)
        for state in states:
            for values in traits:
                context = ctx(state, FakeFacts(trait_values=values), segments)
                expected = holds(cond(f"{{segment: {name}}}"), context)
                assert test(context) is expected, (name, state.revenue, values)
                seen.add(expected)
    assert seen == {True, False}


# --- bought and viewed ------------------------------------------------------------------------


def _lines() -> list[Bought]:
    return [
        Bought(NOW - timedelta(days=200), "o1", "beans", "coffee"),
        Bought(NOW - timedelta(days=100), "o2", "beans", "coffee"),
        Bought(NOW - timedelta(days=100), "o2", "filter", "coffee"),
        Bought(NOW - timedelta(days=5), "o3", "teapot", "tea"),
        Bought(NOW - timedelta(days=1), "o4", "grinder", "coffee"),
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{bought: {category: coffee}}", True),
        ("{bought: {category: coffee, min_count: 3}}", True),  # o1, o2, o4: orders, not lines
        ("{bought: {category: coffee, min_count: 4}}", False),
        ("{bought: {category: coffee, within: 180d, min_count: 2}}", True),
        ("{bought: {category: coffee, within: 180d, min_count: 3}}", False),
        ("{bought: {category: coffee, within: 100d, min_count: 2}}", True),  # the edge counts
        ("{bought: {category: coffee, within: 99d, min_count: 2}}", False),
        ("{bought: {product_id: beans}}", True),
        ("{bought: {product_id: beans, within: 30d}}", False),
        ("{bought: {product_id: teapot, within: 5d}}", True),
        ("{bought: {product_id: kettle}}", False),
        ("{bought: {category: tea, min_count: 2}}", False),
        ("{not: {bought: {category: coffee, within: 180d}}}", False),
    ],
)
def test_bought(text: str, expected: bool) -> None:
    assert rec(text, ctx(facts=FakeFacts(lines=_lines()))) is expected


def test_bought_leaves_out_fully_refunded_orders() -> None:
    state = buyer(order_net={"o1": Decimal(0), "o2": Decimal("4.00"), "o4": Decimal(0)})
    context = ctx(state, FakeFacts(lines=_lines()))
    assert rec("{bought: {category: coffee, min_count: 1}}", context)  # o2, partly refunded
    assert not rec("{bought: {category: coffee, min_count: 2}}", context)
    assert not rec("{bought: {product_id: grinder}}", context)


def test_bought_ignores_what_is_after_now() -> None:
    late = [Bought(NOW + timedelta(seconds=1), "o9", "beans", "coffee")]
    assert not rec("{bought: {product_id: beans}}", ctx(facts=FakeFacts(lines=late)))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{viewed: {product_id: teapot}}", True),
        ("{viewed: {product_id: teapot, min_count: 2}}", True),
        ("{viewed: {product_id: teapot, min_count: 3}}", False),
        ("{viewed: {product_id: teapot, within: 1h, min_count: 2}}", False),
        ("{viewed: {product_id: teapot, within: 2h, min_count: 2}}", True),
        ("{viewed: {category: tea}}", True),
        ("{viewed: {category: coffee}}", False),
    ],
)
def test_viewed(text: str, expected: bool) -> None:
    views = [
        View(NOW - timedelta(hours=2), "teapot", "tea"),
        View(NOW - timedelta(minutes=5), "teapot", "tea"),
        View(NOW - timedelta(minutes=1), None, "tea"),
    ]
    assert rec(text, ctx(facts=FakeFacts(views=views))) is expected


def test_a_record_without_logs_has_bought_and_viewed_nothing() -> None:
    context = Ctx(buyer(), NOW, ScoresAt(buyer(), NOW, Scores()), ClvTiers())
    assert not rec("{bought: {category: coffee}}", context)
    assert not rec("{viewed: {category: coffee}}", context)
    assert rec("{field: traits.x, exists: false}", context)


# --- event paths (where) ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{items.category: coffee}", True),  # one of three lines
        ("{items.category: kitchen}", True),
        ("{items.category: tea}", False),  # none
        ("{field: items.category, in: [tea, coffee]}", True),
        ("{field: items.category, exists: true}", True),
        ("{field: items.product_id, not_in: [mug, beans, card]}", False),
        ("{field: items.unit_price, gte: 15}", True),
        ("{field: items.unit_price, gt: 15}", False),
        ("{field: items.quantity, eq: 1}", True),  # all three
        ("{field: total, eq: 25.5}", True),
        ("{field: total, gte: 25.50}", True),
        ("{field: total, gt: 25.5}", False),
        ("{order_id: o1}", True),
        ("{currency: EUR}", True),
        ("{all: [{items.category: coffee}, {field: total, lt: 30}]}", True),
        ("{not: {items.category: coffee}}", False),
        ("{field: properties.coupon, exists: false}", True),
    ],
)
def test_purchase_paths(text: str, expected: bool) -> None:
    assert ev(text, PURCHASE) is expected


def test_a_list_path_with_no_element_is_missing() -> None:
    empty = event(type="purchase", order_id="o2", total="0", currency="EUR")
    assert not ev("{items.category: coffee}", empty)
    assert ev("{field: items.category, ne: coffee}", empty)
    assert ev("{field: items.category, exists: false}", empty)
    no_category = event(
        type="purchase",
        order_id="o3",
        total="1",
        currency="EUR",
        items=[{"product_id": "card", "quantity": 1, "unit_price": "1"}],
    )
    assert ev("{field: items.category, exists: false}", no_category)


def test_every_line_matching_and_ne_through_a_list() -> None:
    coffee_only = event(
        type="purchase",
        order_id="o4",
        total="30",
        currency="EUR",
        items=[
            {"product_id": "a", "category": "coffee", "quantity": 1, "unit_price": "15"},
            {"product_id": "b", "category": "coffee", "quantity": 1, "unit_price": "15"},
        ],
    )
    assert ev("{items.category: coffee}", coffee_only)
    assert not ev("{field: items.category, ne: coffee}", coffee_only)
    assert ev("{field: items.category, ne: coffee}", PURCHASE)  # some line is not coffee


@pytest.mark.parametrize(
    ("fields", "text", "expected"),
    [
        (
            {
                "type": "cart",
                "action": "add",
                "cart_id": "k",
                "product_id": "p",
                "quantity": 2,
                "unit_price": "3.10",
                "currency": "EUR",
            },
            "{action: add}",
            True,
        ),
        (
            {"type": "cart", "action": "checkout_started", "cart_id": "k"},
            "{field: action, in: [add, checkout_started]}",
            True,
        ),
        (
            {
                "type": "cart",
                "action": "remove",
                "cart_id": "k",
                "product_id": "p",
                "quantity": 1,
                "unit_price": "3.10",
                "currency": "EUR",
            },
            "{action: add}",
            False,
        ),
        (
            {
                "type": "cart",
                "action": "add",
                "cart_id": "k",
                "product_id": "p",
                "quantity": 2,
                "unit_price": "3.10",
                "currency": "EUR",
            },
            "{field: unit_price, eq: 3.1}",
            True,
        ),
        ({"type": "refund", "order_id": "o1", "amount": "5.00"}, "{field: amount, lt: 5.01}", True),
        ({"type": "browse", "product_id": "p"}, "{field: category, exists: false}", True),
        ({"type": "engagement", "action": "review"}, "{action: review}", True),
        ({"type": "privacy", "action": "consent", "granted": True}, "{granted: true}", True),
        (
            {"type": "signup", "email": "a@b.c", "marketing_consent": True},
            "{marketing_consent: true}",
            True,
        ),
    ],
)
def test_event_fields(fields: dict[str, Any], text: str, expected: bool) -> None:
    assert ev(text, event(**fields)) is expected


@dataclass
class CustomLike:
    """A custom event as the inbound branch will add it (name and properties)."""

    name: str
    properties: dict[str, Any]
    type: str = "custom"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{name: wishlist_add}", True),
        ("{name: subscription_paused}", False),
        ("{properties.list: summer}", True),
        ("{field: properties.size, gte: 3}", True),
        ("{field: properties.size, gt: 3}", False),
        ("{field: properties.gift, eq: true}", True),
        ("{field: properties.colour, exists: false}", True),
        ("{field: properties.colour, ne: red}", True),
    ],
)
def test_custom_event_name_and_properties(text: str, expected: bool) -> None:
    custom = CustomLike("wishlist_add", {"list": "summer", "size": 3, "gift": True})
    assert ev(text, custom) is expected


def test_properties_on_any_event() -> None:
    browse = event(type="browse", product_id="p", properties={"source": "ad"})
    assert ev("{properties.source: ad}", browse)
    assert not ev("{properties.source: mail}", browse)


def test_where_cannot_test_the_customer() -> None:
    with pytest.raises(FlowError, match="use filters for the customer"):
        condition(load("{segment: vip}"), Scope("purchase"), ("where",))


def test_a_quoted_number_on_a_number_path_is_that_exact_decimal() -> None:
    assert ev("{field: total, gte: '25.50'}", PURCHASE)  # money written as text, not a float
    assert ev("{total: '25.5'}", PURCHASE)
    assert not ev("{total: {gt: '25.50'}}", PURCHASE)
    assert ev("{field: items.unit_price, in: ['15.00', '99']}", PURCHASE)
    assert rec(
        "{field: revenue, eq: '0.30'}", ctx(buyer().model_copy(update={"revenue": Decimal("0.3")}))
    )
    assert not ev(
        "{properties.coupon: '5'}", event(type="custom", name="x", properties={"coupon": 5})
    )


def test_a_property_sent_as_text_compares_with_a_playbook_number() -> None:
    wish = event(type="custom", name="wishlist_add", properties={"price": "19.90", "sku": "7"})
    assert ev("{properties.price: {gt: 5}}", wish)
    assert ev("{properties.price: 19.9}", wish)
    assert not ev("{properties.price: {lt: 19.9}}", wish)
    assert not ev("{properties.price: '19.9'}", wish)  # text against text: as written
    assert ev("{properties.sku: {in: [7, 8]}}", wish)

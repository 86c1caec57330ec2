"""The exported JSON Schemas against the engine: what a producer's validator accepts is
what the engine accepts, so an event checked against them is not dead-lettered.

Each case is one event, valid or bad in one way; the schema of its type and the
``event`` schema must give the engine's verdict (``parse_event``). A few checks JSON
Schema cannot make are the engine's alone, and listed in ``ENGINE_ONLY``; where the two
differ the other way, the schema is the stricter (it refuses a form the engine reads).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator, FormatChecker

from schemas.codec import loads
from schemas.export import export_schemas
from schemas.inbound import parse_event

BASE: dict[str, dict[str, Any]] = {
    "signup": {"type": "signup", "customer_id": "c1", "email": "a@b.example"},
    "identify": {"type": "identify", "customer_id": "c1", "anonymous_id": "an1"},
    "browse": {"type": "browse", "customer_id": "c1", "product_id": "p1"},
    "cart": {
        "type": "cart",
        "customer_id": "c1",
        "action": "add",
        "cart_id": "k",
        "product_id": "p",
        "quantity": 1,
        "unit_price": "1.00",
        "currency": "EUR",
    },
    "purchase": {
        "type": "purchase",
        "customer_id": "c1",
        "order_id": "o",
        "total": "1.00",
        "currency": "EUR",
        "items": [{"product_id": "p", "quantity": 1, "unit_price": "1.00"}],
    },
    "refund": {"type": "refund", "customer_id": "c1", "order_id": "o", "amount": "1.00"},
    "engagement": {"type": "engagement", "customer_id": "c1", "action": "open", "channel": "email"},
    "privacy": {"type": "privacy", "customer_id": "c1", "action": "consent", "granted": True},
    "custom": {"type": "custom", "customer_id": "c1", "name": "wishlist_add"},
}

CASES: list[tuple[str, str, dict[str, Any], tuple[str, ...]]] = [
    *((f"{kind} as given", kind, {}, ()) for kind in BASE),
    ("no id at all", "browse", {}, ("customer_id",)),
    ("null ids", "browse", {"customer_id": None, "anonymous_id": None}, ()),
    ("an anonymous id only", "browse", {"anonymous_id": "a1"}, ("customer_id",)),
    ("only spaces for an id", "browse", {"customer_id": "   "}, ()),
    ("an empty event id", "browse", {"event_id": ""}, ()),
    ("a negative total as text", "purchase", {"total": "-1"}, ()),
    ("a total that is no number", "purchase", {"total": "abc"}, ()),
    ("seven decimals", "purchase", {"total": "1.0000001"}, ()),
    ("six decimals and zeros", "purchase", {"total": "1.25000000"}, ()),
    ("thirteen digits", "purchase", {"total": "1234567890123"}, ()),
    ("twelve digits", "purchase", {"total": "123456789012.5"}, ()),
    ("a fraction alone", "purchase", {"total": ".5"}, ()),
    ("a negative total", "purchase", {"total": -1}, ()),
    ("a total as a number", "purchase", {"total": 12.5}, ()),
    (
        "a line at a negative price",
        "purchase",
        {"items": [{"product_id": "p", "quantity": 1, "unit_price": "-2"}]},
        (),
    ),
    (
        "a line without quantity",
        "purchase",
        {"items": [{"product_id": "p", "unit_price": "1"}]},
        (),
    ),
    ("a cart add without product", "cart", {}, ("product_id",)),
    ("a null product", "cart", {"product_id": None}, ()),
    (
        "a checkout alone",
        "cart",
        {"action": "checkout_started"},
        ("product_id", "quantity", "unit_price", "currency"),
    ),
    ("a quantity as text", "cart", {"quantity": "1"}, ()),
    ("an open without channel", "engagement", {}, ("channel",)),
    ("a review without channel", "engagement", {"action": "review"}, ("channel",)),
    ("a channel of another kind", "engagement", {"channel": "fax"}, ()),
    ("a consent without granted", "privacy", {}, ("granted",)),
    ("an erase without granted", "privacy", {"action": "erase"}, ("granted",)),
    ("consent as text", "privacy", {"granted": "yes"}, ()),
    ("a custom event without name", "custom", {}, ("name",)),
    ("a nested property", "custom", {"properties": {"a": [1]}}, ()),
    ("a property name with a digit first", "custom", {"properties": {"1a": 1}}, ()),
    ("51 properties", "custom", {"properties": {f"k{i}": i for i in range(51)}}, ()),
    ("a null property", "custom", {"properties": {"a": None}}, ()),
    ("a signup without email", "signup", {}, ("email",)),
    ("an email without @", "signup", {"email": "no at sign"}, ()),
    ("a country in lower case", "signup", {"country": "de"}, ()),
    ("consent as text at signup", "signup", {"marketing_consent": "yes"}, ()),
    ("a signup by a visitor alone", "signup", {"anonymous_id": "a"}, ("customer_id",)),
    ("an identify without its customer", "identify", {}, ("customer_id",)),
    ("a trait that is an object", "signup", {"traits": {"a": {"b": 1}}}, ()),
    ("an unknown field", "browse", {"zzz": [1, {}]}, ()),
    ("a time without offset", "browse", {"occurred_at": "2025-03-01T09:00:00"}, ()),
    ("a version as text", "browse", {"schema_version": "1"}, ()),
]

ENGINE_ONLY = {
    "a time zone that is not IANA's": ("signup", {"timezone": "Mars/Base"}),
    "a trait date that is no day": ("signup", {"traits": {"birthday": "2025-02-30"}}),
    "a property integer past 64 bits": ("custom", {"properties": {"a": 2**64}}),
    "money as a number with seven decimals": ("purchase", {"total": 1.0000001}),
}
"""Refused by the engine, accepted by the schema: checks JSON Schema has no word for (a
zone's name, a calendar date, an integer's width, a binary number's decimals)."""


def _event(n: int, kind: str, change: dict[str, Any], drop: tuple[str, ...] = ()) -> dict[str, Any]:
    body = copy.deepcopy(BASE[kind]) | {"event_id": f"e{n}", "occurred_at": "2025-03-01T09:00:00Z"}
    body.update(change)
    for name in drop:
        body.pop(name, None)
    return body


@pytest.fixture(scope="module")
def validators(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Draft202012Validator]:
    directory: Path = tmp_path_factory.mktemp("schemas")
    export_schemas(directory)
    checker = FormatChecker()
    return {
        path.name.removesuffix(".schema.json"): Draft202012Validator(
            loads(path.read_bytes()), format_checker=checker
        )
        for path in directory.glob("*.schema.json")
    }


@pytest.mark.parametrize(("label", "kind", "change", "drop"), CASES, ids=[c[0] for c in CASES])
def test_the_schemas_accept_what_the_engine_accepts(
    validators: dict[str, Draft202012Validator],
    label: str,
    kind: str,
    change: dict[str, Any],
    drop: tuple[str, ...],
) -> None:
    body = _event(1, kind, change, drop)
    accepted = not hasattr(parse_event(json.dumps(body).encode()), "reason")
    assert validators[kind].is_valid(body) == accepted, label
    assert validators["event"].is_valid(body) == accepted, label


@pytest.mark.parametrize("label", sorted(ENGINE_ONLY))
def test_what_only_the_engine_refuses(
    validators: dict[str, Draft202012Validator], label: str
) -> None:
    kind, change = ENGINE_ONLY[label]
    body = _event(1, kind, change)
    assert hasattr(parse_event(json.dumps(body).encode()), "reason")
    assert validators[kind].is_valid(body)

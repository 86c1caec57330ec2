"""Hostile inbound messages, shared by the parser's unit tests, the broker test and the soak.

Each case is raw bytes and the reason code it must be dead-lettered with. The
mutations are seeded, so a failure names a reproducible message.
"""

from __future__ import annotations

import random
from typing import Any

import orjson

from schemas.inbound import Rejection, parse_event

VALID: dict[str, Any] = {
    "event_id": "e1",
    "type": "purchase",
    "occurred_at": "2026-03-01T10:00:00Z",
    "customer_id": "c1",
    "order_id": "o1",
    "total": "10.00",
    "currency": "EUR",
    "items": [{"product_id": "p1", "quantity": 1, "unit_price": "10.00"}],
    "properties": {"coupon": "SPRING", "gift": False, "pages": 3},
}


def corpus(valid: dict[str, Any] = VALID) -> list[tuple[bytes, str]]:
    """The named attacks: bad encodings, nesting, sizes, types, numbers and times."""
    deep = b"[" * 5000 + b"]" * 5000
    item = valid["items"][0]
    properties = valid.get("properties", {})
    nan = orjson.dumps({**valid, "properties": {"n": 0}}).replace(b'"n":0', b'"n":NaN')
    signup = {**valid, "type": "signup", "email": "c1@mail.example"}
    return [
        *_scalar_objects(valid, properties, signup),
        (nan, "invalid_field"),
        (orjson.dumps({**valid, "type": "custom"}), "missing_field"),  # custom needs a name
        (orjson.dumps({**valid, "type": "custom", "name": ""}), "invalid_field"),
        (b"\xff\xfe\xfd", "invalid_utf8"),
        (orjson.dumps(valid)[:-2] + b"\xc3\x28}", "invalid_utf8"),
        (deep, "invalid_json"),
        (b'{"a":' * 3000 + b"1" + b"}" * 3000, "invalid_json"),
        (orjson.dumps({**valid, "order_id": "x" * 100_000}), "too_large"),
        (orjson.dumps({**valid, "order_id": "x" * 300}), "invalid_field"),
        (orjson.dumps({**valid, "items": [item] * 5000}), "too_large"),
        (orjson.dumps({**valid, "items": [item] * 1001}), "invalid_field"),
        (orjson.dumps({**valid, "total": "NaN"}), "invalid_field"),
        (orjson.dumps({**valid, "total": "Infinity"}), "invalid_field"),
        (orjson.dumps({**valid, "total": "-5.00"}), "invalid_field"),
        (orjson.dumps({**valid, "total": "1e400"}), "invalid_field"),
        (orjson.dumps({**valid, "total": ["10"]}), "invalid_field"),
        (orjson.dumps({**valid, "items": "p1"}), "invalid_field"),
        (orjson.dumps({**valid, "customer_id": 12345}), "invalid_field"),
        (orjson.dumps({**valid, "customer_id": {"$ne": None}}), "invalid_field"),
        (orjson.dumps({**valid, "occurred_at": "not a time"}), "invalid_field"),
        (orjson.dumps({**valid, "occurred_at": "2026-03-01T10:00:00"}), "invalid_field"),
        (orjson.dumps({**valid, "occurred_at": "9999-12-31T23:59:59Z"}), "time_out_of_range"),
        (orjson.dumps({**valid, "occurred_at": "0001-01-01T00:00:00Z"}), "time_out_of_range"),
        (orjson.dumps({**valid, "occurred_at": 1767225600}), "invalid_field"),
        (orjson.dumps({**valid, "type": "teleport"}), "unknown_type"),
        (orjson.dumps({k: v for k, v in valid.items() if k != "type"}), "missing_type"),
        (orjson.dumps({k: v for k, v in valid.items() if k != "event_id"}), "missing_field"),
        (orjson.dumps([valid]), "not_an_object"),
        (b"null", "not_an_object"),
        (b"", "empty_value"),
    ]


def _scalar_objects(
    valid: dict[str, Any], properties: dict[str, Any], signup: dict[str, Any]
) -> list[tuple[bytes, str]]:
    """``properties`` and ``traits`` that are not small objects of scalars."""
    many = {f"k{i}": i for i in range(51)}
    bad: list[tuple[str, Any]] = [
        ("nested", {**properties, "address": {"city": "Berlin"}}),
        ("list", {**properties, "sizes": [1, 2]}),
        ("empty object", {"x": {}}),
        ("not an object", ["coupon"]),
        ("null", None),
        ("too many", many),
        ("long string", {"note": "x" * 1025}),
        ("dotted name", {"a.b": 1}),
        ("huge int", {"n": 2**64 - 1}),
    ]
    cases = [(orjson.dumps({**valid, "properties": value}), "invalid_field") for _, value in bad]
    traits: list[Any] = [{"birthday": "1990-02-30"}, {"tier": {"level": 2}}, many, "gold"]
    cases += [(orjson.dumps({**signup, "traits": value}), "invalid_field") for value in traits]
    return cases


_ODD_VALUES: list[Any] = [
    None,
    -1,
    0,
    2**63 - 1,
    1.5e308,
    "",
    " ",
    "\u0000",
    "\u00e9\u6f22" * 10,
    "x" * 5000,
    [],
    {},
    [[[[[]]]]],
    {"nested": {"deeper": [1, 2, {"x": None}]}},
    True,
    "2026-02-30T10:00:00Z",
    "-0.00",
    "1e-7",
]


def mutations(count: int, seed: int, received_at: Any = None) -> list[bytes]:
    """Valid events with one or two fields replaced by odd values, or raw bytes flipped;
    only the ones the parser refuses (so every one must reach the dead-letter topic)."""
    rng = random.Random(seed)
    found: list[bytes] = []
    while len(found) < count:
        body = dict(VALID, event_id=f"fuzz-{seed}-{len(found)}")
        if rng.random() < 0.2:
            raw = bytearray(orjson.dumps(body))
            for _ in range(rng.randint(1, 4)):
                raw[rng.randrange(len(raw))] = rng.randrange(256)
            value = bytes(raw)
        else:
            for field in rng.sample(sorted(VALID), rng.randint(1, 2)):
                body[field] = rng.choice(_ODD_VALUES)
            value = orjson.dumps(body)
        if isinstance(parse_event(value, received_at=received_at), Rejection):
            found.append(value)
    return found

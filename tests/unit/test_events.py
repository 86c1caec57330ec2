"""Inbound events at the edge: schemas.events models and schemas.inbound parsing.

Every raw message either becomes a typed event or a Rejection whose reason is
one of the public dead-letter reason codes (README.md, Outputs).
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
import pytest

from schemas import inbound
from schemas.events import (
    BrowseEvent,
    CartEvent,
    CustomEvent,
    EngagementEvent,
    Event,
    IdentifyEvent,
    OrderItem,
    PrivacyEvent,
    PurchaseEvent,
    RefundEvent,
    SignupEvent,
)
from schemas.inbound import (
    InputLimits,
    Reason,
    Rejection,
    check_routing,
    dead_letter,
    parse_event,
)

AT = "2025-03-01T10:00:00+01:00"
AT_UTC = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


def raw(**fields: Any) -> bytes:
    """A JSON event with a valid envelope; ``fields`` add to or override it (None drops)."""
    body: dict[str, Any] = {"event_id": "ev-1", "occurred_at": AT}
    body.update(fields)
    return orjson.dumps({k: v for k, v in body.items() if v is not None})


def accepted(value: bytes) -> Event:
    parsed = parse_event(value)
    assert not isinstance(parsed, Rejection), parsed
    return parsed


def rejected(value: bytes, **kwargs: Any) -> Rejection:
    parsed = parse_event(value, **kwargs)
    assert isinstance(parsed, Rejection), parsed
    return parsed


# --- the eight event types -------------------------------------------------------------


def test_signup_parses_every_field() -> None:
    fields = {
        "customer_id": "c1",
        "anonymous_id": "a1",
        "email": "ada@example.com",
        "first_name": "Ada",
        "country": "DE",
        "locale": "de-DE",
        "timezone": "Europe/Berlin",
        "source": "ads",
        "marketing_consent": True,
        "referred_by": "c0",
    }
    event = accepted(raw(type="signup", **fields))
    assert event == SignupEvent(type="signup", event_id="ev-1", occurred_at=AT_UTC, **fields)
    assert event.schema_version == 1
    assert event.key == "c1"


def test_signup_defaults_marketing_consent_to_false() -> None:
    event = accepted(raw(type="signup", customer_id="c1", email="ada@example.com"))
    assert isinstance(event, SignupEvent)
    assert event.marketing_consent is False
    assert (event.first_name, event.timezone, event.anonymous_id) == (None, None, None)


def test_identify_links_anonymous_to_customer() -> None:
    event = accepted(raw(type="identify", customer_id="c1", anonymous_id="a1"))
    assert isinstance(event, IdentifyEvent)
    assert (event.customer_id, event.anonymous_id, event.key) == ("c1", "a1", "c1")


def test_identify_without_a_visitor_updates_traits_only() -> None:
    event = accepted(raw(type="identify", customer_id="c1", traits={"birthday": "1990-03-01"}))
    assert isinstance(event, IdentifyEvent)
    assert (event.customer_id, event.anonymous_id, event.key) == ("c1", None, "c1")
    assert check_routing(event, b"c1", "signup") is None
    missing = rejected(raw(type="identify", anonymous_id="a1"))  # who it is stays required
    assert missing.reason is Reason.MISSING_FIELD


def test_anonymous_browse_is_keyed_by_anonymous_id() -> None:
    fields = {"anonymous_id": "a1", "product_id": "p1", "category": "tea", "url": "https://x/p1"}
    event = accepted(raw(type="browse", **fields))
    assert event == BrowseEvent(type="browse", event_id="ev-1", occurred_at=AT_UTC, **fields)
    assert event.key == "a1"


@pytest.mark.parametrize("action", ["add", "remove"])
def test_cart_item_actions(action: str) -> None:
    fields: dict[str, Any] = {
        "customer_id": "c1",
        "action": action,
        "cart_id": "k1",
        "product_id": "p1",
        "quantity": 2,
        "currency": "EUR",
    }
    event = accepted(raw(type="cart", unit_price="4.99", **fields))
    assert event == CartEvent(
        type="cart",
        event_id="ev-1",
        occurred_at=AT_UTC,
        unit_price=Decimal("4.99"),
        **fields,
    )


def test_cart_checkout_started_needs_no_item() -> None:
    event = accepted(raw(type="cart", customer_id="c1", action="checkout_started", cart_id="k1"))
    assert isinstance(event, CartEvent)
    assert (event.action, event.cart_id, event.product_id) == ("checkout_started", "k1", None)


def test_purchase_with_items() -> None:
    event = accepted(
        raw(
            type="purchase",
            customer_id="c1",
            order_id="o1",
            total="30.20",
            currency="EUR",
            items=[
                {"product_id": "p1", "category": "tea", "quantity": 2, "unit_price": "10.10"},
                {"product_id": "p2", "quantity": 1, "unit_price": "10.00"},
            ],
        )
    )
    assert isinstance(event, PurchaseEvent)
    assert (event.order_id, event.total, event.currency) == ("o1", Decimal("30.20"), "EUR")
    assert event.items == [
        OrderItem(product_id="p1", category="tea", quantity=2, unit_price=Decimal("10.10")),
        OrderItem(product_id="p2", quantity=1, unit_price=Decimal("10.00")),
    ]


def test_refund() -> None:
    event = accepted(raw(type="refund", customer_id="c1", order_id="o1", amount="5.05"))
    assert isinstance(event, RefundEvent)
    assert (event.order_id, event.amount) == ("o1", Decimal("5.05"))


@pytest.mark.parametrize(
    ("action", "channel"),
    [("open", "email"), ("click", "sms"), ("unsubscribe", "push"), ("review", None)],
)
def test_engagement(action: str, channel: str | None) -> None:
    event = accepted(
        raw(
            type="engagement",
            customer_id="c1",
            action=action,
            channel=channel,
            campaign="welcome",
            trigger_id="t1",
        )
    )
    assert isinstance(event, EngagementEvent)
    assert (event.action, event.channel, event.campaign, event.trigger_id) == (
        action,
        channel,
        "welcome",
        "t1",
    )


def test_privacy_erase_and_consent() -> None:
    erase = accepted(raw(type="privacy", customer_id="c1", action="erase"))
    consent = accepted(
        raw(type="privacy", customer_id="c1", action="consent", channel="sms", granted=True)
    )
    assert isinstance(erase, PrivacyEvent)
    assert (erase.action, erase.granted) == ("erase", None)
    assert isinstance(consent, PrivacyEvent)
    assert (consent.action, consent.channel, consent.granted) == ("consent", "sms", True)


# --- normalisation -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "stamp", ["2025-03-01T10:00:00+01:00", "2025-03-01T04:00:00-05:00", "2025-03-01T09:00:00Z"]
)
def test_occurred_at_is_normalised_to_utc(stamp: str) -> None:
    event = accepted(raw(type="browse", anonymous_id="a1", occurred_at=stamp))
    assert event.occurred_at == AT_UTC
    assert event.occurred_at.tzinfo is UTC
    assert event.occurred_at.isoformat() == "2025-03-01T09:00:00+00:00"


@pytest.mark.parametrize(
    "stamp",
    [
        "1740819660",  # seconds since 1970, as text
        "1740819660.5",
        "2025-03-01T10:00:00+0100",  # no colon in the offset
        "2025-03-01T09:00:00,5Z",  # a comma before the fraction
        "2025-03-01T09:00:00",  # no offset
        "2025-03-01",
    ],
)
def test_occurred_at_is_rfc_3339_or_an_invalid_field(stamp: str) -> None:
    rejection = rejected(raw(type="browse", anonymous_id="a1", occurred_at=stamp))
    assert rejection.reason is Reason.INVALID_FIELD
    assert rejection.message.startswith("occurred_at: ")


@pytest.mark.parametrize("stamp", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-01:00"])
def test_occurred_at_beyond_the_calendar_in_utc_is_an_invalid_field(stamp: str) -> None:
    """Valid RFC 3339, but in year 0 or 10000 once in UTC: refused, not an overflow that
    would stop the worker reading it."""
    rejection = rejected(raw(type="browse", anonymous_id="a1", occurred_at=stamp))
    assert rejection.reason is Reason.INVALID_FIELD
    assert rejection.message.startswith("occurred_at: ")


def test_a_value_the_schema_fails_on_is_refused_not_raised(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def overflow(value: bytes) -> None:
        msg = "a check the schema lacks"
        raise OverflowError(msg)

    monkeypatch.setattr(inbound.EventAdapter, "validate_json", overflow)
    rejection = rejected(raw(type="browse", anonymous_id="a1"))
    assert (rejection.reason, rejection.message) == (
        Reason.INVALID_FIELD,
        "unreadable (OverflowError)",
    )


@pytest.mark.parametrize(
    "stamp",
    [
        "2025-03-01t09:00:00z",
        "2025-03-01 09:00:00+00:00",
        "2025-03-01T09:00:00.000Z",
        "2025-03-01T10:00+01:00",  # Java's OffsetDateTime.toString, on a whole minute
    ],
)
def test_occurred_at_takes_what_rfc_3339_allows(stamp: str) -> None:
    assert accepted(raw(type="browse", anonymous_id="a1", occurred_at=stamp)).occurred_at == AT_UTC


def test_string_money_stays_exact() -> None:
    event = accepted(
        raw(
            type="purchase",
            customer_id="c1",
            order_id="o1",
            total="10.10",
            currency="EUR",
            items=[{"product_id": "p", "quantity": 3, "unit_price": "0.10"}],
        )
    )
    assert isinstance(event, PurchaseEvent)
    assert event.total == Decimal("10.10")
    assert str(event.total) == "10.10"
    assert event.items[0].unit_price * 3 == Decimal("0.30")


def test_unknown_extra_fields_are_kept_and_ignored() -> None:
    event = accepted(raw(type="browse", anonymous_id="a1", shop="berlin", ab={"x": 1}))
    assert event.model_extra == {"shop": "berlin", "ab": {"x": 1}}
    assert event.key == "a1"


# --- rejections -------------------------------------------------------------------------


@pytest.mark.parametrize("value", [b"", None])
def test_empty_value(value: bytes | None) -> None:
    assert rejected(value).reason is Reason.EMPTY_VALUE  # type: ignore[arg-type]


def test_too_large_is_checked_before_parsing() -> None:
    value = raw(type="browse", anonymous_id="a1")
    assert not isinstance(parse_event(value, limits=InputLimits(max_bytes=len(value))), Rejection)
    rejection = rejected(value, limits=InputLimits(max_bytes=len(value) - 1))
    assert rejection.reason is Reason.TOO_LARGE
    assert str(len(value)) in rejection.message


def test_default_size_limit_is_64_kib() -> None:
    value = raw(type="browse", anonymous_id="a1", url="x", padding="p" * (64 * 1024))
    assert rejected(value).reason is Reason.TOO_LARGE


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"\xff\xfe{}", Reason.INVALID_UTF8),
        (b'{"type": "browse", "anonymous_id": "\xc3"}', Reason.INVALID_UTF8),
        (b"not json", Reason.INVALID_JSON),
        (b'{"type": "browse",', Reason.INVALID_JSON),
        (b"   ", Reason.INVALID_JSON),
        (b"[1, 2]", Reason.NOT_AN_OBJECT),
        (b"null", Reason.NOT_AN_OBJECT),
        (b'"browse"', Reason.NOT_AN_OBJECT),
        (b"42", Reason.NOT_AN_OBJECT),
        (raw(anonymous_id="a1"), Reason.MISSING_TYPE),
        (raw(type="purchased", customer_id="c1"), Reason.UNKNOWN_TYPE),
        (raw(type=7, customer_id="c1"), Reason.UNKNOWN_TYPE),
    ],
)
def test_envelope_rejections(value: bytes, reason: Reason) -> None:
    rejection = rejected(value)
    assert rejection.reason is reason
    assert rejection.event_type is None  # no type it could be counted under


@pytest.mark.parametrize(
    "value",
    [
        raw(type="browse"),  # neither customer_id nor anonymous_id
        raw(type="browse", anonymous_id="a1", event_id=None),
        raw(type="browse", anonymous_id="a1", occurred_at=None),
        raw(type="signup", customer_id="c1"),  # no email
        raw(type="signup", anonymous_id="a1", email="ada@example.com"),  # no customer_id
        raw(type="cart", customer_id="c1", action="add", cart_id="k1"),
        raw(type="cart", customer_id="c1", action="remove", cart_id="k1", product_id="p1"),
        raw(type="purchase", customer_id="c1", order_id="o1", currency="EUR"),
        raw(type="refund", customer_id="c1", order_id="o1"),
        raw(type="engagement", customer_id="c1", action="open"),  # no channel
        raw(type="privacy", customer_id="c1", action="consent"),  # no granted
    ],
)
def test_missing_field(value: bytes) -> None:
    rejection = rejected(value)
    assert rejection.reason is Reason.MISSING_FIELD
    assert rejection.event_type == orjson.loads(value)["type"]  # counted under its type


def test_missing_field_names_what_is_missing() -> None:
    rejection = rejected(raw(type="cart", customer_id="c1", action="add", cart_id="k1"))
    assert rejection.message == "event: cart add needs product_id, quantity, unit_price, currency"
    rejection = rejected(raw(type="browse"))
    assert rejection.message == "event: customer_id or anonymous_id is required"
    rejection = rejected(raw(type="signup", customer_id="c1"))
    assert rejection.message == "email: Field required"


PURCHASE: dict[str, Any] = {
    "type": "purchase",
    "customer_id": "c1",
    "order_id": "o1",
    "total": "10.00",
    "currency": "EUR",
}


@pytest.mark.parametrize(
    ("fields", "field_name"),
    [
        ({"total": "-0.01"}, "total"),
        ({"total": "NaN"}, "total"),
        ({"total": "Infinity"}, "total"),
        ({"total": "ten"}, "total"),
        ({"total": [10]}, "total"),
        ({"currency": "eur"}, "currency"),
        ({"currency": "EURO"}, "currency"),
        ({"order_id": 12}, "order_id"),
        ({"customer_id": ""}, "customer_id"),
        ({"occurred_at": "2025-03-01T10:00:00"}, "occurred_at"),
        ({"occurred_at": "yesterday"}, "occurred_at"),
        ({"schema_version": 0}, "schema_version"),
        ({"items": [{"product_id": "p", "quantity": 0, "unit_price": "1"}]}, "items.0.quantity"),
    ],
)
def test_invalid_purchase_field(fields: dict[str, Any], field_name: str) -> None:
    rejection = rejected(raw(**{**PURCHASE, **fields}))
    assert rejection.reason is Reason.INVALID_FIELD
    assert rejection.message.startswith(f"{field_name}: ")


def test_missing_and_invalid_together_is_invalid_field() -> None:
    rejection = rejected(raw(**{**PURCHASE, "order_id": None, "total": "-1"}))
    assert rejection.reason is Reason.INVALID_FIELD
    assert rejection.message == (
        "order_id: Field required; total: Input should be greater than or equal to 0"
    )


@pytest.mark.parametrize(
    ("fields", "field_name"),
    [
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"country": "Germany"}, "country"),
        ({"marketing_consent": "maybe"}, "marketing_consent"),
        ({"marketing_consent": "yes"}, "marketing_consent"),  # a boolean, not a word for one
        ({"marketing_consent": "true"}, "marketing_consent"),
        ({"marketing_consent": 1}, "marketing_consent"),
        ({"schema_version": "1"}, "schema_version"),
        ({"schema_version": True}, "schema_version"),
        ({"email": "not-an-email"}, "email"),
        ({"email": 12}, "email"),
    ],
)
def test_invalid_signup_field(fields: dict[str, Any], field_name: str) -> None:
    body = {"type": "signup", "customer_id": "c1", "email": "ada@example.com", **fields}
    rejection = rejected(raw(**body))
    assert rejection.reason is Reason.INVALID_FIELD
    assert rejection.message.startswith(f"{field_name}: ")


@pytest.mark.parametrize(
    ("body", "field_name"),
    [
        ({"type": "privacy", "action": "consent", "granted": "yes"}, "granted"),
        ({"type": "privacy", "action": "consent", "granted": 0}, "granted"),
        (
            {"type": "cart", "action": "add", "cart_id": "k1", "product_id": "p1"}
            | {"quantity": "2", "unit_price": "1.00", "currency": "EUR"},
            "quantity",
        ),
        (
            {"type": "cart", "action": "add", "cart_id": "k1", "product_id": "p1"}
            | {"quantity": 2.0, "unit_price": "1.00", "currency": "EUR"},
            "quantity",
        ),
    ],
)
def test_booleans_and_whole_numbers_are_not_converted(
    body: dict[str, Any], field_name: str
) -> None:
    rejection = rejected(raw(customer_id="c1", **body))
    assert rejection.reason is Reason.INVALID_FIELD
    assert rejection.message.startswith(f"{field_name}: ")


def test_invalid_enum_values() -> None:
    cart = raw(type="cart", customer_id="c1", action="empty", cart_id="k1")
    engagement = raw(type="engagement", customer_id="c1", action="open", channel="fax")
    assert rejected(cart).reason is Reason.INVALID_FIELD
    assert rejected(engagement).reason is Reason.INVALID_FIELD


def test_rejection_message_does_not_echo_personal_data() -> None:
    secret_email = "ada lovelace@secret.example"
    rejection = rejected(
        raw(
            type="signup",
            customer_id="c1",
            email=secret_email,
            first_name="Augusta" * 50,  # too long
            country="Lovelaceland",
        )
    )
    assert rejection.reason is Reason.INVALID_FIELD
    for value in (secret_email, "lovelace", "Augusta", "Lovelaceland"):
        assert value not in rejection.message
    assert "email" in rejection.message
    assert "first_name" in rejection.message


# --- routing ----------------------------------------------------------------------------


def test_routing_accepts_customer_key_on_own_topic() -> None:
    signup = accepted(raw(type="signup", customer_id="c1", anonymous_id="a1", email="a@b.c"))
    refund = accepted(raw(type="refund", customer_id="c1", order_id="o1", amount="1"))
    browse = accepted(raw(type="browse", anonymous_id="a1"))
    assert check_routing(signup, b"c1", "signup") is None
    assert check_routing(refund, b"c1", "purchase") is None
    assert check_routing(browse, b"a1", "browse") is None
    assert check_routing(browse, b"a1", None) is None  # topic unknown: key still checked


@pytest.mark.parametrize(
    ("event_type", "topic"),
    [
        ("signup", "purchase"),
        ("identify", "browse"),
        ("refund", "cart"),
        ("browse", "privacy"),
        ("custom", "cart"),
        ("browse", "custom"),
    ],
)
def test_routing_rejects_wrong_topic(event_type: str, topic: str) -> None:
    body: dict[str, Any] = {
        "custom": {"customer_id": "c1", "name": "wishlist_add"},
        "signup": {"customer_id": "c1", "email": "a@b.c"},
        "identify": {"customer_id": "c1", "anonymous_id": "a1"},
        "refund": {"customer_id": "c1", "order_id": "o1", "amount": "1"},
        "browse": {"customer_id": "c1"},
    }[event_type]
    rejection = check_routing(accepted(raw(type=event_type, **body)), b"c1", topic)
    assert rejection is not None
    assert rejection.reason is Reason.WRONG_TOPIC


@pytest.mark.parametrize("key", [None, b"c2", b"a1", b"", b"C1"])
def test_routing_rejects_other_key(key: bytes | None) -> None:
    event = accepted(raw(type="browse", customer_id="c1", anonymous_id="a1"))
    rejection = check_routing(event, key, "browse")
    assert rejection is not None
    assert rejection.reason is Reason.KEY_MISMATCH


# --- dead letters -----------------------------------------------------------------------


def test_dead_letter_keeps_utf8_value_as_text() -> None:
    value = '{"type": "browse", "note": "größe"}'.encode()
    rejection = rejected(value)
    record = dead_letter(
        topic="events.browse",
        partition=3,
        offset=42,
        key=b"a1",
        value=value,
        rejection=rejection,
        at=AT_UTC,
    )
    assert record.model_dump() == {
        "topic": "events.browse",
        "partition": 3,
        "offset": 42,
        "key": "a1",
        "value": '{"type": "browse", "note": "größe"}',
        "value_encoding": "utf-8",
        "reason": rejection.reason.value,
        "message": rejection.message,
        "at": AT_UTC,
    }


def test_dead_letter_base64_for_invalid_utf8() -> None:
    value = b'{"x": "\xff\xfe"}'
    rejection = rejected(value)
    assert rejection.reason is Reason.INVALID_UTF8
    record = dead_letter(
        topic="events.cart",
        partition=0,
        offset=7,
        key=None,
        value=value,
        rejection=rejection,
        at=AT_UTC,
    )
    assert record.value_encoding == "base64"
    assert base64.b64decode(record.value) == value
    assert (record.key, record.reason, record.offset) == (None, "invalid_utf8", 7)


def test_dead_letter_of_empty_value() -> None:
    record = dead_letter(
        topic="events.cart",
        partition=1,
        offset=0,
        key=b"c1",
        value=None,
        rejection=Rejection(Reason.EMPTY_VALUE, "message has no value"),
        at=AT_UTC,
    )
    assert (record.value, record.value_encoding, record.reason) == ("", "utf-8", "empty_value")


def test_unknown_time_zone_is_not_echoed() -> None:
    raw = (
        b'{"event_id":"e1","type":"signup","occurred_at":"2025-01-01T00:00:00Z",'
        b'"customer_id":"c1","email":"a@b.example","timezone":"Mars/Olympus"}'
    )
    rejection = parse_event(raw)
    assert isinstance(rejection, Rejection)
    assert rejection.reason is Reason.INVALID_FIELD
    assert "timezone" in rejection.message
    assert "Mars" not in rejection.message


@pytest.mark.parametrize(
    "occurred_at",
    ["0001-01-01T00:00:00Z", "1969-12-31T23:59:59Z", "1900-06-01T00:00:00+02:00"],
)
def test_ancient_events_are_out_of_range(occurred_at: str) -> None:
    rejection = rejected(raw(type="browse", anonymous_id="a1", occurred_at=occurred_at))
    assert rejection.reason is Reason.TIME_OUT_OF_RANGE
    assert "before 1970-01-01" in rejection.message


def test_future_bound_is_relative_to_when_the_message_was_received() -> None:
    value = raw(type="browse", anonymous_id="a1", occurred_at="2026-01-02T00:00:00Z")
    received = datetime(2026, 1, 1, tzinfo=UTC)
    limits = InputLimits(max_future=timedelta(days=1))
    assert not isinstance(parse_event(value, limits=limits, received_at=received), Rejection)
    later = received - timedelta(seconds=1)
    rejection = rejected(value, limits=limits, received_at=later)
    assert rejection.reason is Reason.TIME_OUT_OF_RANGE
    # Read offline (no record timestamp), only the absolute bound applies.
    assert not isinstance(parse_event(value, limits=limits), Rejection)


def test_year_9999_is_refused_by_default() -> None:
    value = raw(type="browse", anonymous_id="a1", occurred_at="9999-12-31T23:59:59Z")
    assert rejected(value, received_at=AT_UTC).reason is Reason.TIME_OUT_OF_RANGE


@pytest.mark.parametrize(
    ("fields", "limits", "where"),
    [
        ({"event_id": "e" * 11}, InputLimits(max_id_length=10), "event_id"),
        ({"product_id": "p" * 11}, InputLimits(max_id_length=10), "product_id"),
        ({"category": "c" * 6}, InputLimits(max_text_length=5), "category"),
    ],
)
def test_lowered_length_limits(fields: dict[str, str], limits: InputLimits, where: str) -> None:
    value = raw(type="browse", anonymous_id="a1", **fields)
    assert not isinstance(parse_event(value), Rejection)
    rejection = rejected(value, limits=limits)
    assert rejection.reason is Reason.TOO_LONG
    assert rejection.message.startswith(where)


def test_item_limits_apply_inside_orders() -> None:
    item = {"product_id": "p" * 8, "quantity": 1, "unit_price": "1.00"}
    value = raw(
        type="purchase",
        customer_id="c1",
        order_id="o1",
        total="2",
        currency="EUR",
        items=[item] * 2,
    )
    assert rejected(value, limits=InputLimits(max_items=1)).reason is Reason.TOO_LONG
    rejection = rejected(value, limits=InputLimits(max_id_length=7))
    assert rejection.message.startswith("items.0.product_id")
    assert not isinstance(parse_event(value, limits=InputLimits(max_items=2)), Rejection)


def test_rejections_of_a_known_type_carry_it() -> None:
    """Dead letters are counted by type (lifecycle_events); "unknown" only when it is."""
    bad_total = raw(type="purchase", customer_id="c1", order_id="o1", total="x", currency="EUR")
    assert rejected(bad_total).event_type == "purchase"
    early = raw(type="browse", anonymous_id="a1", occurred_at="1960-01-01T00:00:00Z")
    assert (rejected(early).reason, rejected(early).event_type) == (
        Reason.TIME_OUT_OF_RANGE,
        "browse",
    )
    long_id = raw(type="cart", customer_id="c" * 20, action="checkout_started", cart_id="k1")
    too_long = rejected(long_id, limits=InputLimits(max_id_length=10))
    assert (too_long.reason, too_long.event_type) == (Reason.TOO_LONG, "cart")
    browse = accepted(raw(type="browse", anonymous_id="a1"))
    wrong_topic = check_routing(browse, b"a1", "purchase")
    assert wrong_topic is not None
    assert wrong_topic.event_type == "browse"
    wrong_key = check_routing(browse, b"other", "browse")
    assert wrong_key is not None
    assert wrong_key.event_type == "browse"
    assert rejected(b"x" * 70_000).event_type is None  # too large to read its type


# --- properties, traits and the custom event ----------------------------------------------

SCALARS = {"text": "red", "count": 3, "big": -(2**63), "share": 0.25, "gift": True, "off": False}


def test_custom_event_with_its_name_and_properties() -> None:
    event = accepted(raw(type="custom", customer_id="c1", name="wishlist_add", properties=SCALARS))
    assert isinstance(event, CustomEvent)
    assert (event.name, event.properties, event.key) == ("wishlist_add", SCALARS, "c1")
    assert [type(v) for v in event.properties.values()] == [str, int, int, float, bool, bool]
    assert check_routing(event, b"c1", "custom") is None


def test_custom_event_without_properties_and_anonymous() -> None:
    event = accepted(raw(type="custom", anonymous_id="a1", name="subscription_paused"))
    assert isinstance(event, CustomEvent)
    assert (event.properties, event.key) == ({}, "a1")


def test_custom_event_needs_a_name() -> None:
    rejection = rejected(raw(type="custom", customer_id="c1", properties={"x": 1}))
    assert (rejection.reason, rejection.event_type) == (Reason.MISSING_FIELD, "custom")
    assert rejection.message.startswith("name")
    assert rejected(raw(type="custom", customer_id="c1", name="")).reason is Reason.INVALID_FIELD


@pytest.mark.parametrize(
    "body",
    [
        {"type": "browse", "anonymous_id": "a1"},
        {"type": "signup", "customer_id": "c1", "email": "a@b.c"},
        {"type": "identify", "customer_id": "c1", "anonymous_id": "a1"},
        {"type": "cart", "customer_id": "c1", "action": "checkout_started", "cart_id": "k"},
        {"type": "purchase", "customer_id": "c1", "order_id": "o", "total": 1, "currency": "EUR"},
        {"type": "refund", "customer_id": "c1", "order_id": "o", "amount": "1"},
        {"type": "engagement", "customer_id": "c1", "action": "review"},
        {"type": "privacy", "customer_id": "c1", "action": "erase"},
        {"type": "custom", "customer_id": "c1", "name": "n"},
    ],
)
def test_every_event_type_carries_properties(body: dict[str, Any]) -> None:
    assert accepted(raw(**body)).properties == {}
    event = accepted(raw(**body, properties={**SCALARS, "gone": None}))
    assert event.properties == {**SCALARS, "gone": None}
    assert event.model_extra == {}  # a field now, no longer an ignored extra
    nested = rejected(raw(**body, properties={"a": {"b": 1}}))
    assert (nested.reason, nested.event_type) == (Reason.INVALID_FIELD, body["type"])


def test_traits_on_signup_and_identify() -> None:
    traits = {**SCALARS, "birthday": "1990-02-28", "tier": None}
    signup = accepted(raw(type="signup", customer_id="c1", email="a@b.c", traits=traits))
    identify = accepted(raw(type="identify", customer_id="c1", anonymous_id="a1", traits=traits))
    assert isinstance(signup, SignupEvent)
    assert isinstance(identify, IdentifyEvent)
    assert signup.traits == identify.traits == traits
    assert accepted(raw(type="signup", customer_id="c1", email="a@b.c")).traits == {}  # type: ignore[union-attr]


def test_traits_elsewhere_are_an_ignored_extra() -> None:
    event = accepted(raw(type="browse", anonymous_id="a1", traits={"x": {"y": 1}}))
    assert event.model_extra == {"traits": {"x": {"y": 1}}}


def signup_with(**traits: Any) -> bytes:
    return raw(type="signup", customer_id="c1", email="a@b.c", traits=traits)


def properties_with(**properties: Any) -> bytes:
    return raw(type="custom", customer_id="c1", name="n", properties=properties)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (properties_with(a={"b": 1}), "properties.a: must be a string, number or boolean"),
        (properties_with(a=[1, 2]), "properties.a: must be a string, number or boolean"),
        (properties_with(a=[]), "properties.a: must be a string, number or boolean"),
        (properties_with(a="x" * 1025), "properties.a: a string of at most 1024"),
        (properties_with(a=2**63), "properties.a: an integer beyond 64 bits"),
        (properties_with(a=0).replace(b'"a":0', b'"a":-9223372036854775809'), "properties.a: an"),
        (properties_with(a=0).replace(b'"a":0', b'"a":1' + b"0" * 30), "properties.a: an"),
        (properties_with(**{f"k{i}": i for i in range(51)}), "properties: Dictionary should"),
        (properties_with(**{"a.b": 1}), "properties.[key]: String should match"),
        (properties_with(**{"1a": 1}), "properties.[key]: String should match"),
        (properties_with(**{" a": 1}), "properties.[key]: String should match"),
        (signup_with(**{"tier ": 1}), "traits.[key]: String should match"),
        (properties_with(**{"": 1}), "properties.[key]: String should match"),
        (properties_with(**{"k" * 65: 1}), "properties.[key]: String should match"),
        (raw(type="browse", anonymous_id="a1", properties=[1]), "properties: Input should be"),
        (raw(type="browse", anonymous_id="a1", properties="x"), "properties: Input should be"),
        (raw(type="browse", anonymous_id="a1", properties=7).replace(b"7", b"null"), "properti"),
        (signup_with(birthday="1990-02-30"), "traits.birthday: not a valid date (YYYY-MM-DD)"),
        (signup_with(birthday="2023-02-29"), "traits.birthday: not a valid date (YYYY-MM-DD)"),
        (signup_with(tier={"level": 1}), "traits.tier: must be a string, number or boolean"),
        (signup_with(**{f"t{i}": 1 for i in range(51)}), "traits: Dictionary should"),
        (raw(type="signup", customer_id="c1", email="a@b.c", traits=[]), "traits: Input should"),
    ],
)
def test_bad_properties_and_traits_are_invalid_fields(value: bytes, message: str) -> None:
    rejection = rejected(value)
    assert rejection.reason is Reason.INVALID_FIELD
    assert rejection.message.startswith(message)
    assert "1990" not in rejection.message  # the value is not echoed
    assert "a.b" not in rejection.message  # nor a bad name


@pytest.mark.parametrize("token", [b"NaN", b"Infinity", b"-Infinity", b"1e999"])
def test_property_numbers_are_finite(token: bytes) -> None:
    value = properties_with(a=0).replace(b'"a":0', b'"a":' + token)
    rejection = rejected(value)
    assert (rejection.reason, rejection.message) == (
        Reason.INVALID_FIELD,
        "properties.a: must be a finite number",
    )


def test_fifty_properties_and_long_names_are_accepted() -> None:
    fifty = {f"k{i}": "v" * 1024 for i in range(50)}
    assert accepted(properties_with(**fifty)).properties == fifty
    names = {"_": 1, "A_9": 2, "k" * 64: 3}
    assert accepted(properties_with(**names)).properties == names
    assert accepted(signup_with(note="2024-1-1", day="2024-02-29")).traits == {  # type: ignore[union-attr]
        "note": "2024-1-1",  # not date-shaped: a string like any other
        "day": "2024-02-29",
    }


@pytest.mark.parametrize(
    ("value", "limits", "where"),
    [
        (properties_with(a="x" * 6), InputLimits(max_text_length=5), "properties.a"),
        (signup_with(a="x" * 6), InputLimits(max_text_length=5), "traits.a"),
        (raw(type="custom", customer_id="c1", name="n" * 6), InputLimits(max_id_length=5), "name"),
    ],
)
def test_lowered_limits_apply_to_properties_traits_and_names(
    value: bytes, limits: InputLimits, where: str
) -> None:
    assert not isinstance(parse_event(value), Rejection)
    rejection = rejected(value, limits=limits)
    assert rejection.reason is Reason.TOO_LONG
    assert rejection.message.startswith(where)
    assert not isinstance(parse_event(value, limits=InputLimits(max_text_length=6)), Rejection)


def test_the_custom_event_example_in_the_producer_docs_parses() -> None:
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "producers.md").read_text("utf-8")
    [block] = [b for b in text.split("```json\n")[1:] if '"type": "custom"' in b]
    event = accepted(block.split("```")[0].encode())
    assert isinstance(event, CustomEvent)
    assert (event.name, event.properties) == ("wishlist_add", {"product_id": "p-7", "price": 12.5})


def test_the_custom_topic_is_created_and_read_after_the_others() -> None:
    from lifecycle.ordering import merge_order, order_key
    from schemas.events import EVENT_TYPES, INBOUND_TOPICS, TOPIC_OF_TYPE
    from schemas.internal import Claim
    from streams.settings import Settings

    assert EVENT_TYPES["custom"] is CustomEvent
    assert TOPIC_OF_TYPE["custom"] == "custom"
    assert INBOUND_TOPICS[-1] == "custom"  # appended: the tie order of the others stays
    assert Settings().inbound_topics[-1] == "events.custom"  # what `topics create` makes
    custom = accepted(raw(type="custom", customer_id="c1", name="n", event_id="a"))
    privacy = accepted(raw(type="privacy", customer_id="c1", action="erase", event_id="z"))
    assert order_key(privacy) < order_key(custom)
    claim = Claim(anonymous_id="a1", customer_id="c1", at=custom.occurred_at, cause="e")
    assert order_key(custom) < merge_order(claim)

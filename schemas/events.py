"""Inbound events: the contract shop backends publish against (README.md, Event contract).

Unknown extra fields are kept (``extra="allow"``) but ignored by the rules, so
producers can add fields without breaking us. Limits on lengths are here, at
the edge, so the core never sees a 10 MB product id.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    StringConstraints,
    TypeAdapter,
    model_validator,
)
from pydantic_core import PydanticCustomError

__all__ = [
    "EVENT_TYPES",
    "ID_FIELDS",
    "INBOUND_TOPICS",
    "MAX_ID_LENGTH",
    "MAX_ITEMS",
    "MAX_PROPERTIES",
    "MAX_TEXT_LENGTH",
    "PROPERTY_KEY",
    "TEXT_FIELDS",
    "TOPIC_OF_TYPE",
    "BrowseEvent",
    "CartEvent",
    "CustomEvent",
    "EngagementEvent",
    "Event",
    "EventAdapter",
    "IdentifyEvent",
    "OrderItem",
    "PrivacyEvent",
    "Properties",
    "PurchaseEvent",
    "RefundEvent",
    "Scalar",
    "SignupEvent",
    "TraitValue",
    "Traits",
]

MAX_ID_LENGTH = 256
MAX_TEXT_LENGTH = 1024
MAX_ITEMS = 1000
"""The schema's caps; settings (``InputLimits``) may lower them, never raise them."""
MAX_PROPERTIES = 50
"""Keys in one event's ``properties``, or in one signup's or identify's ``traits``."""
PROPERTY_KEY = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"
"""A property or trait name: a playbook path names it as ``properties.X`` or ``traits.X``."""

Id = Annotated[
    str, Field(min_length=1, max_length=MAX_ID_LENGTH, json_schema_extra={"pattern": r"\S"})
]
"""An id; the schema export also says what trimming the envelope's spaces checks: not
only spaces."""
Text = Annotated[str, Field(max_length=MAX_TEXT_LENGTH)]
MONEY_TEXT = r"^\+?(0*[0-9]{1,12}(\.[0-9]{0,6}0*)?|\.[0-9]{1,6}0*)$"
"""Money as text in the schema export: at most 12 digits before the point and 6 after
(more zeros may follow), never negative. The engine reads a few forms more (``1e3``)."""


def _money_schema(schema: dict[str, Any]) -> None:
    for branch in schema.get("anyOf", ()):
        if branch.get("type") == "string":
            branch["pattern"] = MONEY_TEXT


Money = Annotated[
    Decimal, Field(ge=0, max_digits=18, decimal_places=6, json_schema_extra=_money_schema)
]
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
Quantity = Annotated[int, Field(ge=1, le=1_000_000, strict=True)]
"""A whole number in JSON: ``"2"`` or ``2.0`` is not one (pydantic would convert it)."""


def _utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError as exc:  # 0001-01-01T00:00:00+14:00 is in year 0 in UTC
        msg = "must fall within the years 1 to 9999 in UTC"
        raise ValueError(msg) from exc


UtcDatetime = Annotated[AwareDatetime, AfterValidator(_utc)]
"""An RFC 3339 timestamp with offset, normalised to UTC so outputs are byte-stable."""


_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:[Zz]|[+-]\d{2}:\d{2})"
)
"""RFC 3339's date-time (section 5.6): a colon in the offset required, a space allowed
for the T (its note in 5.6), and the seconds left out when they are zero, as Java's
``OffsetDateTime.toString`` writes them. pydantic reads more (``+0530``, a comma before
the fraction, seconds since 1970 as a string), which the contract does not."""


def _text_time(value: object) -> object:
    if isinstance(value, int | float):
        msg = "must be an RFC 3339 string with an offset, not a number"
        raise ValueError(msg)  # pydantic would read seconds since 1970, silently
    if isinstance(value, str) and _RFC3339.fullmatch(value) is None:
        msg = "must be an RFC 3339 date-time with an offset (2025-03-01T09:00:00+01:00)"
        raise ValueError(msg)
    return value


EventTime = Annotated[
    UtcDatetime,
    BeforeValidator(_text_time),
    Field(json_schema_extra={"pattern": f"^{_RFC3339.pattern}$"}),
]
"""``occurred_at`` as the contract says it: RFC 3339 text, never a bare number."""


def _iana(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        msg = "unknown IANA time zone"
        raise ValueError(msg) from exc
    return value


TimeZone = Annotated[str, Field(max_length=64), AfterValidator(_iana)]


Scalar = bool | int | float | str
"""A property or trait value: no object, no list (a playbook condition compares it)."""
TraitValue = Scalar | None
"""A trait as an event sends it: ``null`` removes the trait from the record."""

_INT_RANGE = 2**63
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _invalid(message: str) -> PydanticCustomError:
    """A bad property or trait value (dead-lettered as invalid_field), one error per value
    rather than one per member of a union."""
    return PydanticCustomError("scalar_value", message.replace("{", "{{").replace("}", "}}"))


def _scalar(value: object) -> Scalar:
    """One property or trait value, as JSON gave it."""
    message = "must be a string, number or boolean, not an object or a list"
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        if len(value) <= MAX_TEXT_LENGTH:
            return value
        message = f"a string of at most {MAX_TEXT_LENGTH} characters"
    elif isinstance(value, int):
        if -_INT_RANGE <= value < _INT_RANGE:
            return value
        message = "an integer beyond 64 bits"
    elif isinstance(value, float):
        if math.isfinite(value):
            return value
        message = "must be a finite number"
    raise _invalid(message)


def _property(value: object) -> Scalar | None:
    return None if value is None else _scalar(value)


def _trait(value: object) -> TraitValue:
    """A trait value; a string shaped like a date must be one (``date`` triggers read it)."""
    if value is None:
        return None
    checked = _scalar(value)
    if isinstance(checked, str) and _DATE.match(checked):
        try:
            date.fromisoformat(checked)
        except ValueError:
            message = "not a valid date (YYYY-MM-DD)"
            raise _invalid(message) from None
    return checked


_JsonScalar = (
    bool
    | Annotated[int, Field(ge=-_INT_RANGE, lt=_INT_RANGE)]
    | Annotated[float, Field(allow_inf_nan=False)]
    | Annotated[str, Field(max_length=MAX_TEXT_LENGTH)]
)
"""What the JSON Schema export shows for a value (the validators above check it)."""

PropertyKey = Annotated[str, StringConstraints(strip_whitespace=False, pattern=PROPERTY_KEY)]
"""Not trimmed: ``" a"`` is a bad name, not a second ``a``."""
Properties = Annotated[
    dict[
        PropertyKey,
        Annotated[
            Scalar | None, PlainValidator(_property, json_schema_input_type=_JsonScalar | None)
        ],
    ],
    Field(max_length=MAX_PROPERTIES, json_schema_extra={"additionalProperties": False}),
]
"""An event's ``properties``: at most 50 names, each a string, number, boolean or null."""
Traits = Annotated[
    dict[
        PropertyKey,
        Annotated[TraitValue, PlainValidator(_trait, json_schema_input_type=_JsonScalar | None)],
    ],
    Field(max_length=MAX_PROPERTIES, json_schema_extra={"additionalProperties": False}),
]
"""``traits`` on signup and identify: like properties; ``null`` removes a trait, and a
``YYYY-MM-DD`` string must be a real date."""


def _missing(message: str) -> PydanticCustomError:
    """A 'missing' error for fields required together, so it is dead-lettered as missing_field."""
    return PydanticCustomError("missing", message.replace("{", "{{").replace("}", "}}"))


def _nonnull(*names: str) -> dict[str, Any]:
    """A JSON Schema clause: each of ``names`` present and not null."""
    return {
        "required": list(names),
        "properties": {name: {"not": {"type": "null"}} for name in names},
    }


_ONE_ID: dict[str, Any] = {"anyOf": [_nonnull("customer_id"), _nonnull("anonymous_id")]}
"""The export's form of ``_needs_an_id``."""


def _config(**requires: Any) -> ConfigDict:
    """An event's config, with the export's clauses for the fields it requires together
    (``_needs_an_id`` and each ``model_validator`` below)."""
    clauses = [_ONE_ID, *requires.values()]
    return ConfigDict(
        extra="allow",
        frozen=True,
        str_strip_whitespace=True,
        json_schema_extra={"allOf": clauses},
    )


class _Envelope(BaseModel):
    """Fields every event carries; ``key`` is the Kafka key the producer must use."""

    model_config = _config()

    event_id: Id
    occurred_at: EventTime
    customer_id: Id | None = None
    anonymous_id: Id | None = None
    schema_version: int = Field(default=1, ge=1, strict=True)
    properties: Properties = Field(default_factory=dict)

    @model_validator(mode="after")
    def _needs_an_id(self) -> _Envelope:
        if self.customer_id is None and self.anonymous_id is None:
            msg = "customer_id or anonymous_id is required"
            raise _missing(msg)
        return self

    @property
    def key(self) -> str:
        """The customer key: customer_id once known, anonymous_id before signup."""
        key = self.customer_id or self.anonymous_id
        assert key is not None  # guaranteed by _needs_an_id
        return key


class SignupEvent(_Envelope):
    type: Literal["signup"]
    customer_id: Id
    email: Annotated[str, Field(max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")]
    first_name: Annotated[str, Field(max_length=200)] | None = None
    country: Annotated[str, Field(pattern=r"^[A-Z]{2}$")] | None = None
    locale: Annotated[str, Field(max_length=35)] | None = None
    timezone: TimeZone | None = None
    source: Text | None = None
    marketing_consent: bool = Field(default=False, strict=True)  # true or false, not "yes"
    referred_by: Id | None = None
    traits: Traits = Field(default_factory=dict)


class IdentifyEvent(_Envelope):
    """A known customer: links the anonymous visitor it names to them (a login, say),
    and updates their traits. Without an ``anonymous_id`` it only updates the traits,
    as a shop does when a signed-in customer edits a profile (a birthday added later)."""

    type: Literal["identify"]
    customer_id: Id
    anonymous_id: Id | None = None
    traits: Traits = Field(default_factory=dict)


class BrowseEvent(_Envelope):
    type: Literal["browse"]
    product_id: Id | None = None
    category: Text | None = None
    url: Annotated[str, Field(max_length=2048)] | None = None


class CartEvent(_Envelope):
    """Cart activity; product fields are required when an item is added or removed."""

    model_config = _config(
        item={
            "if": {"properties": {"action": {"enum": ["add", "remove"]}}},
            "then": _nonnull("product_id", "quantity", "unit_price", "currency"),
        }
    )

    type: Literal["cart"]
    action: Literal["add", "remove", "checkout_started"]
    cart_id: Id
    product_id: Id | None = None
    quantity: Quantity | None = None
    unit_price: Money | None = None
    currency: Currency | None = None

    @model_validator(mode="after")
    def _item_fields(self) -> CartEvent:
        if self.action != "checkout_started":
            missing = [
                name
                for name in ("product_id", "quantity", "unit_price", "currency")
                if getattr(self, name) is None
            ]
            if missing:
                msg = f"cart {self.action} needs {', '.join(missing)}"
                raise _missing(msg)
        return self


class OrderItem(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    product_id: Id
    category: Text | None = None
    quantity: Quantity
    unit_price: Money


class PurchaseEvent(_Envelope):
    type: Literal["purchase"]
    order_id: Id
    total: Money
    currency: Currency
    items: Annotated[list[OrderItem], Field(max_length=MAX_ITEMS)] = Field(default_factory=list)


class RefundEvent(_Envelope):
    type: Literal["refund"]
    order_id: Id
    amount: Money


class EngagementEvent(_Envelope):
    """Message engagement; a review or referral need not come through a channel."""

    model_config = _config(
        channel={
            "if": {"properties": {"action": {"not": {"enum": ["review", "referral"]}}}},
            "then": _nonnull("channel"),
        }
    )

    type: Literal["engagement"]
    action: Literal["open", "click", "unsubscribe", "bounce", "complaint", "review", "referral"]
    channel: Literal["email", "sms", "push"] | None = None
    campaign: Id | None = None
    trigger_id: Id | None = None

    @model_validator(mode="after")
    def _channel(self) -> EngagementEvent:
        if self.channel is None and self.action not in ("review", "referral"):
            msg = f"engagement {self.action} needs channel"
            raise _missing(msg)
        return self


class PrivacyEvent(_Envelope):
    model_config = _config(
        granted={
            "if": {"properties": {"action": {"const": "consent"}}},
            "then": _nonnull("granted"),
        }
    )

    type: Literal["privacy"]
    action: Literal["erase", "consent"]
    channel: Literal["email", "sms", "push"] | None = None
    granted: bool | None = Field(default=None, strict=True)

    @model_validator(mode="after")
    def _granted(self) -> PrivacyEvent:
        if self.action == "consent" and self.granted is None:
            msg = "privacy consent needs granted"
            raise _missing(msg)
        return self


class CustomEvent(_Envelope):
    """A named shop event (``wishlist_add``, ``subscription_paused``) with its
    ``properties``: a fact flows can trigger on, with no rule of its own."""

    type: Literal["custom"]
    name: Id


Event = Annotated[
    SignupEvent
    | IdentifyEvent
    | BrowseEvent
    | CartEvent
    | PurchaseEvent
    | RefundEvent
    | EngagementEvent
    | PrivacyEvent
    | CustomEvent,
    Field(discriminator="type"),
]

EventAdapter: TypeAdapter[Event] = TypeAdapter(Event)

EVENT_TYPES: dict[str, type[_Envelope]] = {
    "signup": SignupEvent,
    "identify": IdentifyEvent,
    "browse": BrowseEvent,
    "cart": CartEvent,
    "purchase": PurchaseEvent,
    "refund": RefundEvent,
    "engagement": EngagementEvent,
    "privacy": PrivacyEvent,
    "custom": CustomEvent,
}

INBOUND_TOPICS = ("signup", "browse", "cart", "purchase", "engagement", "privacy", "custom")
"""Logical inbound topics (``TopicNames`` fields), in the order ties are broken
(a topic added later goes last, so the order of the others stays)."""

TOPIC_OF_TYPE: dict[str, str] = {
    "signup": "signup",
    "identify": "signup",
    "browse": "browse",
    "cart": "cart",
    "purchase": "purchase",
    "refund": "purchase",
    "engagement": "engagement",
    "privacy": "privacy",
    "custom": "custom",
}
"""Logical inbound topic (a ``TopicNames`` field) each event type is published to."""

ID_FIELDS = (
    "event_id",
    "customer_id",
    "anonymous_id",
    "cart_id",
    "product_id",
    "order_id",
    "referred_by",
    "campaign",
    "trigger_id",
    "name",
)
TEXT_FIELDS = ("category", "source", "first_name")
"""Free-text fields bound by the text limit (url, email and locale keep their own caps;
string values of ``properties`` and ``traits`` are bound by it too)."""

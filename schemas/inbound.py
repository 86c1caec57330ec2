"""Turn one raw inbound message into an event or a machine-readable rejection.

Pure: no broker, no clock. The agents and the backtest both call ``parse_event``
so a line the backtest rejects is exactly a message the worker dead-letters.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from schemas.events import (
    EVENT_TYPES,
    ID_FIELDS,
    MAX_ID_LENGTH,
    MAX_ITEMS,
    MAX_TEXT_LENGTH,
    TEXT_FIELDS,
    TOPIC_OF_TYPE,
    Event,
    EventAdapter,
    PurchaseEvent,
)
from schemas.records import DeadLetter

__all__ = [
    "DEFAULT_LIMITS",
    "DEFAULT_MAX_BYTES",
    "InputLimits",
    "Reason",
    "Rejection",
    "check_routing",
    "dead_letter",
    "parse_event",
]

DEFAULT_MAX_BYTES = 64 * 1024


class Reason(StrEnum):
    """Reason codes on dead letters; a public contract, like topic names."""

    EMPTY_VALUE = "empty_value"
    TOO_LARGE = "too_large"
    INVALID_UTF8 = "invalid_utf8"
    INVALID_JSON = "invalid_json"
    NOT_AN_OBJECT = "not_an_object"
    MISSING_TYPE = "missing_type"
    UNKNOWN_TYPE = "unknown_type"
    MISSING_FIELD = "missing_field"
    INVALID_FIELD = "invalid_field"
    WRONG_TOPIC = "wrong_topic"
    KEY_MISMATCH = "key_mismatch"
    TOO_LONG = "too_long"  # a field or list beyond the configured limit
    TIME_OUT_OF_RANGE = "time_out_of_range"  # occurred_at before the earliest or in the future
    PROCESSING_ERROR = "processing_error"  # a valid event the core failed on: a bug, parked


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a message is refused; ``event_type`` is its type when that is known (a valid
    ``type`` with a bad field, or a valid event refused for its time, length or routing),
    so dead letters are counted by type like the events that are accepted."""

    reason: Reason
    message: str
    event_type: str | None = None


def _describe(error: ErrorDetails) -> str:
    """An error without its input value: dead letters must not echo personal data twice."""
    parts = [str(part) for part in error["loc"][1:]]
    if parts[-1:] == ["[key]"]:  # a bad property or trait name: the name itself is input
        parts[-2:] = ["[key]"]
    loc = ".".join(parts) or "event"
    return f"{loc}: {error['msg']}"


def _classify(exc: ValidationError, value: bytes) -> Rejection:
    errors = exc.errors(include_url=False, include_input=False)
    kinds = {e["type"] for e in errors}
    message = "; ".join(_describe(e) for e in errors[:5])
    if "json_invalid" in kinds:
        try:
            value.decode("utf-8")
        except UnicodeDecodeError as err:
            return Rejection(Reason.INVALID_UTF8, f"not valid UTF-8 at byte {err.start}")
        return Rejection(Reason.INVALID_JSON, message)
    if kinds & {"dict_type", "model_type", "model_attributes_type"} and all(
        len(e["loc"]) == 0 for e in errors
    ):
        return Rejection(Reason.NOT_AN_OBJECT, "an event must be a JSON object")
    if "union_tag_not_found" in kinds:
        return Rejection(Reason.MISSING_TYPE, "field 'type' is required")
    if "union_tag_invalid" in kinds:
        return Rejection(Reason.UNKNOWN_TYPE, message)
    # The tagged union names the tag first in each error's location: the type is known.
    tags = {e["loc"][0] for e in errors if e["loc"]}
    known = next(iter(tags)) if len(tags) == 1 else None
    event_type = known if isinstance(known, str) and known in EVENT_TYPES else None
    if kinds == {"missing"}:
        return Rejection(Reason.MISSING_FIELD, message, event_type)
    return Rejection(Reason.INVALID_FIELD, message, event_type)


@dataclass(frozen=True, slots=True)
class InputLimits:
    """What the engine accepts at the edge; settings may lower the schema's own caps.

    Time bounds protect the event-time clock: one event dated 9999 would move a
    partition's watermark to 9999 and fire every timer in it. ``received_at``
    (the Kafka record's timestamp, or the wall clock in a backtest) anchors the
    future bound, so a replay decides exactly as the live run did.
    """

    max_bytes: int = DEFAULT_MAX_BYTES
    max_id_length: int = MAX_ID_LENGTH
    max_text_length: int = MAX_TEXT_LENGTH
    max_items: int = MAX_ITEMS
    earliest: datetime = datetime(1970, 1, 1, tzinfo=UTC)
    max_future: timedelta = timedelta(days=366)

    @property
    def lowered(self) -> bool:
        """Whether any length limit is below the schema's: only then are fields walked."""
        return (self.max_id_length, self.max_text_length, self.max_items) != (
            MAX_ID_LENGTH,
            MAX_TEXT_LENGTH,
            MAX_ITEMS,
        )


DEFAULT_LIMITS = InputLimits()


def _too_long(event: Event, limits: InputLimits) -> Rejection | None:
    fields: list[tuple[str, object, int]] = [
        *((n, getattr(event, n, None), limits.max_id_length) for n in ID_FIELDS),
        *((n, getattr(event, n, None), limits.max_text_length) for n in TEXT_FIELDS),
    ]
    if isinstance(event, PurchaseEvent):
        if len(event.items) > limits.max_items:
            return Rejection(Reason.TOO_LONG, f"items: more than {limits.max_items}")
        for i, item in enumerate(event.items):
            fields.append((f"items.{i}.product_id", item.product_id, limits.max_id_length))
            fields.append((f"items.{i}.category", item.category, limits.max_text_length))
    for prefix in ("properties", "traits"):
        values: dict[str, object] = getattr(event, prefix, None) or {}
        for key, value in values.items():
            fields.append((f"{prefix}.{key}", value, limits.max_text_length))
    for name, value, limit in fields:
        if isinstance(value, str) and len(value) > limit:
            return Rejection(Reason.TOO_LONG, f"{name}: longer than {limit} characters")
    return None


def _out_of_range(
    event: Event, limits: InputLimits, received_at: datetime | None
) -> Rejection | None:
    if event.occurred_at < limits.earliest:
        return Rejection(
            Reason.TIME_OUT_OF_RANGE, f"occurred_at: before {limits.earliest.isoformat()}"
        )
    if received_at is not None and event.occurred_at > received_at + limits.max_future:
        return Rejection(
            Reason.TIME_OUT_OF_RANGE,
            f"occurred_at: more than {_span(limits.max_future)} after the message was received",
        )
    return None


def _span(duration: timedelta) -> str:
    """A bound as a person writes it (``366 days``, not ``366 days, 0:00:00``)."""
    seconds = int(duration.total_seconds())
    for unit, size in (("day", 86_400), ("hour", 3_600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'' if count == 1 else 's'}"
    return f"{seconds} second{'' if seconds == 1 else 's'}"


def parse_event(
    value: bytes | None,
    *,
    limits: InputLimits = DEFAULT_LIMITS,
    received_at: datetime | None = None,
) -> Event | Rejection:
    """Validate raw JSON bytes straight into an event (one parse, in pydantic-core).

    Without ``received_at`` there is no future bound (a file read offline).
    """
    if not value:
        return Rejection(Reason.EMPTY_VALUE, "message has no value")
    if len(value) > limits.max_bytes:
        return Rejection(
            Reason.TOO_LARGE, f"{len(value)} bytes exceeds the limit of {limits.max_bytes}"
        )
    try:
        event = EventAdapter.validate_json(value)
    except ValidationError as exc:
        return _classify(exc, value)
    except (ArithmeticError, LookupError, TypeError, ValueError, RecursionError) as exc:
        # A value the schema's own checks let through: refused, never a crash (a lack of
        # memory is not the event's fault, and is left to stop the worker).
        return Rejection(Reason.INVALID_FIELD, f"unreadable ({type(exc).__name__})")
    rejection = _out_of_range(event, limits, received_at)
    if rejection is None and limits.lowered:
        rejection = _too_long(event, limits)
    if rejection is None:
        return event
    return Rejection(rejection.reason, rejection.message, event.type)


def check_routing(event: Event, key: bytes | None, logical_topic: str | None) -> Rejection | None:
    """A message must sit on its type's topic, keyed by its customer key.

    The engine relies on that key for per-customer order and partition
    ownership (no repartition), so a mismatch is refused, not silently rerouted.
    """
    if logical_topic is not None and TOPIC_OF_TYPE[event.type] != logical_topic:
        return Rejection(
            Reason.WRONG_TOPIC,
            f"{event.type} events belong on the {TOPIC_OF_TYPE[event.type]} topic",
            event.type,
        )
    if key is None or key.decode("utf-8", "replace") != event.key:
        return Rejection(
            Reason.KEY_MISMATCH,
            "message key must equal customer_id, or anonymous_id if none",
            event.type,
        )
    return None


def dead_letter(
    *,
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    rejection: Rejection,
    at: datetime,
) -> DeadLetter:
    """The dead-letter record: the raw value as text where it is UTF-8, else base64."""
    raw = value or b""
    try:
        text, encoding = raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        text, encoding = base64.b64encode(raw).decode("ascii"), "base64"
    return DeadLetter(
        topic=topic,
        partition=partition,
        offset=offset,
        key=None if key is None else key.decode("utf-8", "replace"),
        value=text,
        value_encoding=encoding,
        reason=rejection.reason.value,
        message=rejection.message,
        at=at,
    )

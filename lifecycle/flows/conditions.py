"""Conditions evaluated: over a customer record (segments, filters, branches) or an event (where).

Semantics (docs/flows.md, Conditions):

- Numbers compare as ``Decimal(str(x))``: ``revenue gte 500`` holds for
  ``Decimal("500.00")``, and ``p_alive gte 0.2`` for the float 0.2.
- Values of different kinds never compare equal or ordered (``"5"`` is not 5).
- A missing value (no country, no order yet, an absent trait) fails every
  operator except ``ne``, ``not_in`` and ``exists: false``, which hold.
- A path through a list (``items.category``) holds when any element satisfies
  the operator; a list with no such value is missing.

What the language reads that the record does not hold yet (traits, the
bought and view logs) comes through ``Facts``; ``RecordFacts`` reads them
from the record once it has them (``profile.traits``, ``bought_log``,
``view_log``), and sees none until then.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import Enum
from typing import TYPE_CHECKING, Any, Protocol

from lifecycle.flows.model import Activity, AllOf, AnyOf, Cond, Leaf, Not, SegmentDef, SegmentRef

if TYPE_CHECKING:
    from lifecycle.clv import Prediction
    from lifecycle.state import CustomerState
    from schemas.records import Rfm

__all__ = [
    "RECORD_GETTERS",
    "Bought",
    "Ctx",
    "Facts",
    "RecordFacts",
    "View",
    "choice_key",
    "comparable",
    "event_holds",
    "holds",
    "number_text",
    "record_value",
    "value_holds",
]


@dataclass(frozen=True, slots=True)
class Bought:
    """An order's product line, as ``bought`` counts it (the record's future ``bought_log``)."""

    at: datetime
    order_id: str
    product_id: str
    category: str | None = None


@dataclass(frozen=True, slots=True)
class View:
    """One product or category view, as ``viewed`` counts it (the record's future ``view_log``)."""

    at: datetime
    product_id: str | None = None
    category: str | None = None


class Facts(Protocol):
    """What conditions read that is not (yet) a field of ``CustomerState``."""

    def traits(self) -> Mapping[str, Any]: ...
    def bought(self) -> Iterable[Bought]: ...
    def viewed(self) -> Iterable[View]: ...


@dataclass(frozen=True, slots=True)
class RecordFacts:
    """``Facts`` read from the record, for the fields it has (none of the three so far)."""

    state: CustomerState

    def traits(self) -> Mapping[str, Any]:
        traits = getattr(self.state.profile, "traits", None)
        return traits if traits is not None else {}

    def bought(self) -> Iterable[Bought]:
        return getattr(self.state, "bought_log", ())

    def viewed(self) -> Iterable[View]:
        return getattr(self.state, "view_log", ())


class Scores(Protocol):
    """The record's scores at the time of the decision (``lifecycle.scoring.ScoresAt``)."""

    def rfm(self) -> Rfm | None: ...
    def rfm_segment(self) -> str | None: ...
    def prediction(self) -> Prediction | None: ...
    def at(self, now: datetime) -> Scores: ...
    def recency_falls(self) -> list[tuple[datetime, int, str | None]]: ...


class Tiers(Protocol):
    def tier(self, value: Decimal) -> str: ...


@dataclass
class Ctx:
    """One decision's view of a customer: the record, the time, its scores, the segments."""

    state: CustomerState
    now: datetime
    scores: Scores
    tiers: Tiers
    segments: Mapping[str, SegmentDef] = field(default_factory=dict)
    facts: Facts | None = None

    def __post_init__(self) -> None:
        if self.facts is None:
            self.facts = RecordFacts(self.state)

    @property
    def known(self) -> Facts:
        assert self.facts is not None  # set in __post_init__
        return self.facts


# --- values -----------------------------------------------------------------------------


def _days_since_last_order(ctx: Ctx) -> Decimal | None:
    last = ctx.state.last_order_at
    if last is None:
        return None
    return Decimal(str((ctx.now - last).total_seconds())) / 86400


def _rfm(ctx: Ctx, part: str) -> int | None:
    scores = ctx.scores.rfm()
    return None if scores is None else int(getattr(scores, part))


def _rfm_segment(ctx: Ctx) -> str | None:
    return ctx.scores.rfm_segment()


def _p_alive(ctx: Ctx) -> float | None:
    prediction = ctx.scores.prediction()
    return None if prediction is None else prediction.p_alive


def _predicted_clv(ctx: Ctx) -> Decimal | None:
    prediction = ctx.scores.prediction()
    return None if prediction is None else prediction.predicted_clv


def _cart_value(ctx: Ctx) -> Decimal:
    return sum((line.quantity * line.unit_price for line in ctx.state.cart.values()), Decimal(0))


RECORD_GETTERS: dict[str, Any] = {  # each record path's value in a Ctx; closures use them too
    "stage": lambda c: None if c.state.stage is None else c.state.stage.value,
    "orders": lambda c: c.state.orders,
    "revenue": lambda c: c.state.revenue,
    "clv": lambda c: c.state.revenue,
    "aov": lambda c: c.state.average_order_value if c.state.orders else None,
    "clv_tier": lambda c: c.tiers.tier(c.state.revenue),
    "rfm.r": lambda c: _rfm(c, "r"),
    "rfm.f": lambda c: _rfm(c, "f"),
    "rfm.m": lambda c: _rfm(c, "m"),
    "rfm_segment": _rfm_segment,
    "p_alive": _p_alive,
    "predicted_clv": _predicted_clv,
    "days_since_last_order": _days_since_last_order,
    "consent": lambda c: c.state.may_receive_marketing,
    "country": lambda c: c.state.profile.country,
    "locale": lambda c: c.state.profile.locale,
    "cart_items": lambda c: sum(line.quantity for line in c.state.cart.values()),
    "cart_value": _cart_value,
    "signed_up": lambda c: c.state.signed_up_at is not None,
}


def record_value(path: str, ctx: Ctx) -> Any:
    """The value of a record path for this customer now; None when it has none."""
    if path.startswith("traits."):
        return ctx.known.traits().get(path.removeprefix("traits."))
    return RECORD_GETTERS[path](ctx)


def _event_values(path: str, event: Any) -> list[Any]:
    if path.startswith("properties."):
        properties = getattr(event, "properties", None) or {}
        return [properties.get(path.removeprefix("properties."))]
    if path.startswith("traits."):
        traits = getattr(event, "traits", None) or {}
        return [traits.get(path.removeprefix("traits."))]
    if path.startswith("items."):
        name = path.removeprefix("items.")
        return [getattr(item, name, None) for item in getattr(event, "items", None) or ()]
    return [getattr(event, path, None)]


# --- comparing --------------------------------------------------------------------------


def comparable(value: Any) -> Any:
    """Booleans stay, numbers become Decimal, enums their value, dates ``YYYY-MM-DD``;
    None for a non-finite number."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, date) and not isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, int | float | Decimal):
        number = value if isinstance(value, Decimal) else Decimal(str(value))
        return number if number.is_finite() else None
    return value


def choice_key(value: Any) -> str | None:
    """A picker's VALUE, or a customer's value at its path, as the text they match by.

    Both sides go through ``comparable`` first, so a number matches by its value
    (``500: x`` picks a revenue of 500.00, and a trait sent as ``"500.00"``, as a
    condition reads it), YAML's ``true``/``false`` keys match a boolean as the words,
    and a stage or tier by its name. None for no value."""
    if isinstance(value, str):
        number = number_text(value)
        value = value if number is None else number
    value = comparable(value)
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value.normalize() + 0, "f")
    return str(value)


_NUMERAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")


def number_text(text: str) -> Decimal | None:
    """A number sent as text (a property ``"19.90"``, a trait ``"30"``) as its Decimal,
    so it compares with a playbook's number as that number; None for other text."""
    return Decimal(text) if _NUMERAL.fullmatch(text) else None


def _same_kind(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool)
    return type(a) is type(b) or (isinstance(a, str) and isinstance(b, str))


def _read(a: Any, b: Any) -> Any:
    """A value ``a`` as a playbook's literal ``b`` reads it: text as a number where ``b``
    is one (``number_text``)."""
    return number_text(a) if isinstance(a, str) and isinstance(b, Decimal) else a


def _eq(a: Any, b: Any) -> bool:
    """A value ``a`` against a playbook's literal ``b``."""
    a = _read(a, b)
    return _same_kind(a, b) and a == b


def _order(op: str, a: Any, b: Any) -> bool:
    a = _read(a, b)
    if not _same_kind(a, b) or isinstance(a, bool):
        return False
    if op == "gt":
        return bool(a > b)
    if op == "gte":
        return bool(a >= b)
    if op == "lt":
        return bool(a < b)
    return bool(a <= b)


def _one(op: str, value: Any, literal: Any) -> bool:
    """One present value against the operator (``ne`` and ``not_in`` are handled by the caller)."""
    if op == "eq":
        return _eq(value, comparable(literal))
    if op == "in":
        return any(_eq(value, comparable(x)) for x in literal)
    return _order(op, value, comparable(literal))


_NEGATED = {"ne": "eq", "not_in": "in"}


def _leaf(leaf: Leaf, values: list[Any]) -> bool:
    present = [v for v in (comparable(x) for x in values) if v is not None]
    if leaf.op == "exists":
        return bool(present) == bool(leaf.value)
    if not present:
        return leaf.op in _NEGATED
    if leaf.op in _NEGATED:
        positive = _NEGATED[leaf.op]
        return any(not _one(positive, v, leaf.value) for v in present)
    return any(_one(leaf.op, v, leaf.value) for v in present)


# --- conditions -------------------------------------------------------------------------


def _matches(mark: Bought | View, activity: Activity) -> bool:
    if activity.product_id is not None:
        return mark.product_id == activity.product_id
    return mark.category == activity.category


def _in_window(at: datetime, now: datetime, within: timedelta | None) -> bool:
    return at <= now and (within is None or now - within <= at)


def _activity(activity: Activity, ctx: Ctx) -> bool:
    now = ctx.now
    if activity.kind == "viewed":
        count = sum(
            1
            for view in ctx.known.viewed()
            if _matches(view, activity) and _in_window(view.at, now, activity.within)
        )
        return count >= activity.min_count
    net = ctx.state.order_net
    orders = {
        line.order_id
        for line in ctx.known.bought()
        if _matches(line, activity)
        and _in_window(line.at, now, activity.within)
        and net.get(line.order_id, Decimal(1)) > 0  # a fully refunded order does not count
    }
    return len(orders) >= activity.min_count


def value_holds(leaf: Leaf, value: Any) -> bool:
    """Whether a leaf holds for a record whose value at its path is ``value``."""
    return _leaf(leaf, [value])


def holds(cond: Cond, ctx: Ctx) -> bool:
    """Whether a condition over the customer record holds in ``ctx``."""
    match cond:
        case Leaf():
            return _leaf(cond, [record_value(cond.path, ctx)])
        case AllOf(items=items):
            return all(holds(c, ctx) for c in items)
        case AnyOf(items=items):
            return any(holds(c, ctx) for c in items)
        case Not(cond=inner):
            return not holds(inner, ctx)
        case SegmentRef(name=name):
            segment = ctx.segments.get(name)
            if segment is None or not segment.enabled or segment.cond is None:
                return False
            return holds(segment.cond, ctx)
        case Activity():
            return _activity(cond, ctx)
    msg = f"not a condition: {cond!r}"
    raise TypeError(msg)


def event_holds(cond: Cond, event: Any) -> bool:
    """Whether a ``where`` condition holds for an event (its paths are the event's fields)."""
    match cond:
        case Leaf():
            return _leaf(cond, _event_values(cond.path, event))
        case AllOf(items=items):
            return all(event_holds(c, event) for c in items)
        case AnyOf(items=items):
            return any(event_holds(c, event) for c in items)
        case Not(cond=inner):
            return not event_holds(inner, event)
    msg = f"not a condition on an event: {cond!r}"
    raise TypeError(msg)

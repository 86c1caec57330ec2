"""The per-customer record: everything the rules need to decide, nothing more.

One record per customer key, owned by one partition, written by one agent. It
is a pydantic model, so every record is validated where it is made;
``decode_record`` reads back the bytes the engine wrote without validating
them a second time.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from enum import Enum
from types import UnionType
from typing import Annotated, Any, Literal, TypeVar, Union, get_args, get_origin

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from schemas.codec import loads
from schemas.events import Scalar, UtcDatetime
from schemas.records import Attributed, Channel, Group, Stage

__all__ = [
    "CLAIMS_KEPT",
    "HISTORY_KEPT",
    "TRAITS_KEPT",
    "WINDOWS_KEPT",
    "AttributionWindow",
    "CartLine",
    "CustomerState",
    "FlowRun",
    "GuestOrders",
    "Legacy",
    "Move",
    "PendingReview",
    "Profile",
    "RunLine",
    "RunOrder",
    "SentMark",
    "ViewMark",
    "decode_record",
    "deep_copy",
    "new_record",
    "trusted",
]

HISTORY_KEPT = 20
CLAIMS_KEPT = 20
"""Claims a record remembers until their history comes back; a claim that finds no
visitor sends none back, so the oldest go first."""
WINDOWS_KEPT = 64
"""Open attribution windows a record keeps; beyond it the earliest-closing ones close early."""
TRAITS_KEPT = 100
"""Traits a record keeps; a new trait name past it is dropped (a known one still changes)."""
CENT = Decimal("0.01")
"""What an average order value is rounded to."""

M = TypeVar("M", bound=BaseModel)


def deep_copy(model: M) -> M:
    """``model.model_copy(deep=True)``, for records made of models, lists, dicts and
    immutable values (str, int, Decimal, datetime, enums): the core copies a record
    before every change, and ``copy.deepcopy``'s generic machinery (memo, reduce
    protocol) was half of the core's time. Frozen models are shared, not copied:
    the ones in a record (``Move``, ``SentMark``, ``CartLine``) hold only immutable
    values, so nothing reachable from them can change.

    Each field is copied as its annotation says (``_plan``): the ``__dict__`` is
    copied in one C call, which shares every immutable value; then a list or dict
    of immutable values is copied in one C call each, and anything else goes
    through ``_copy``. Deciding that per element instead was still a tenth of the
    core's time (a record holds a few hundred ids and timestamps)."""
    cls = model.__class__
    plan = _PLANS.get(cls)
    if plan is None:
        plan = _plan(cls)
    values = model.__dict__.copy()
    for name, how in plan:
        values[name] = how(values[name])
    copied = cls.__new__(cls)
    object.__setattr__(copied, "__dict__", values)
    _set_fields_set(copied, set(model.__pydantic_fields_set__))
    extra, private = model.__pydantic_extra__, model.__pydantic_private__
    _set_extra(copied, None if extra is None else _copy(extra))
    _set_private(copied, None if private is None else _copy(private))
    return copied


def _copy(value: Any) -> Any:
    kind = type(value)
    if kind is list:
        return [_copy(v) for v in value]
    if kind is dict:
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, BaseModel) and not value.model_config.get("frozen"):
        return deep_copy(value)
    return value


_IMMUTABLE = (str, int, float, Decimal, date, time, timedelta, Enum, AwareDatetime)
"""Types whose values never change (``bool`` is an ``int``, ``datetime`` a ``date``)."""

_PLANS: dict[type[BaseModel], tuple[tuple[str, Callable[[Any], Any]], ...]] = {}
"""Per model class: the fields whose values are not shared, and how to copy each."""


def _immutable(annotation: Any) -> bool:
    """Whether every value the annotation admits is immutable (a frozen model counts)."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _immutable(get_args(annotation)[0])
    if origin is Union or origin is UnionType:
        return all(_immutable(a) for a in get_args(annotation))
    if origin is Literal or annotation is type(None):
        return True
    if not isinstance(annotation, type) or origin is not None:
        return False
    if issubclass(annotation, BaseModel):
        return bool(annotation.model_config.get("frozen"))
    return issubclass(annotation, _IMMUTABLE)


def _how(annotation: Any) -> Callable[[Any], Any] | None:
    origin = get_origin(annotation)
    args = get_args(annotation)
    if _immutable(annotation):
        return None
    if isinstance(annotation, type) and origin is None and issubclass(annotation, BaseModel):
        return deep_copy
    if origin is list and _immutable(args[0]):
        return list.copy
    if origin is dict and _immutable(args[0]) and _immutable(args[1]):
        return dict.copy
    return _copy


def _plan(cls: type[BaseModel]) -> tuple[tuple[str, Callable[[Any], Any]], ...]:
    hows = ((name, _how(f.annotation)) for name, f in cls.model_fields.items())
    plan = _PLANS[cls] = tuple((name, how) for name, how in hows if how is not None)
    return plan


def _empty(value: Any) -> bool:
    return not value


def _none(value: Any) -> bool:
    return value is None


CHANNELS: tuple[str, ...] = get_args(Channel)
"""Every channel a send may use."""


class Profile(BaseModel):
    """Contact facts; personal fields live here so logging code can avoid them in one place."""

    model_config = ConfigDict(extra="forbid")

    email: str | None = None
    first_name: str | None = None
    locale: str | None = None
    timezone: str | None = None
    country: str | None = None
    source: str | None = None
    referred_by: str | None = None
    marketing_consent: bool = False
    """Marketing consent on every channel: the signup's, or a consent naming no channel."""
    unsubscribed: bool = False
    """Unsubscribed from every channel (a record written before unsubscribes were kept
    per channel)."""
    traits: dict[str, Scalar] = Field(default_factory=dict, exclude_if=_empty)
    """What signup and identify said in ``traits``, per name the latest value (a ``null``
    removed it). Left out of the JSON while empty, so records without traits keep the
    bytes they had before traits existed."""
    channel_consent: dict[str, bool] = Field(default_factory=dict, exclude_if=_empty)
    """A consent naming a channel: granted or withdrawn for that channel alone, above
    ``marketing_consent``. Left out of the JSON while empty, as traits are."""
    unsubscribed_from: list[str] = Field(default_factory=list, exclude_if=_empty)
    """The channels the customer unsubscribed from (or complained on), in order."""

    def marketing_stop(self, channel: str) -> str | None:
        """Why a marketing message on ``channel`` may not go out (``unsubscribed``,
        ``no_consent``), or None when it may."""
        if self.unsubscribed or channel in self.unsubscribed_from:
            return "unsubscribed"
        if not self.channel_consent.get(channel, self.marketing_consent):
            return "no_consent"
        return None

    def consent(self, granted: bool, channel: str | None) -> None:
        """A consent given or withdrawn: on one channel, or (naming none) on every channel,
        replacing what each channel said before. Consent given lifts an unsubscribe."""
        if channel is None:
            self.marketing_consent = granted
            if self.channel_consent:  # assigned only when they change: see ``_profile``
                self.channel_consent = {}
            if granted:
                self.unsubscribed = False
                if self.unsubscribed_from:
                    self.unsubscribed_from = []
            return
        self.channel_consent = {**self.channel_consent, channel: granted}
        if granted:
            if self.unsubscribed:  # every channel but this one stays unsubscribed
                self.unsubscribed = False
                self.unsubscribed_from = [c for c in CHANNELS if c != channel]
            elif channel in self.unsubscribed_from:
                self.unsubscribed_from = [c for c in self.unsubscribed_from if c != channel]

    def unsubscribe(self, channel: str) -> None:
        if channel not in self.unsubscribed_from:
            self.unsubscribed_from = [*self.unsubscribed_from, channel]


class CartLine(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    quantity: int
    unit_price: Decimal
    currency: str


class PendingReview(BaseModel):
    """A purchase waiting for its review request: what was bought, and when."""

    model_config = ConfigDict(extra="forbid")

    at: UtcDatetime
    products: list[str]


class RunLine(BaseModel):
    """One line of the order a flow run was started by, its category None when the
    purchase gave none."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    product_id: str
    quantity: int
    unit_price: Decimal
    category: str | None = None


class RunOrder(BaseModel):
    """The order that started a run, kept while the run waits for a send that includes it.

    ``total`` and ``currency`` are None for a run adopted from a record an older
    version wrote (it kept only the products)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    order_id: str
    total: Decimal | None
    currency: str | None
    items: tuple[RunLine, ...]
    products: tuple[str, ...]


class FlowRun(BaseModel):
    """A run of a flow, asleep in one of its waits until ``wake_at``.

    A run that never waits is never stored. Frozen: the interpreter replaces a run
    when it moves on, so a copied record shares its runs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    flow: str
    key: str
    """The ``per`` value this run is for; empty for a flow without ``per``."""
    run_id: str
    started_at: UtcDatetime
    step: str
    """The index path of the wait it sleeps in (``"0"``, ``"3.then.1"``)."""
    wake_at: UtcDatetime
    holdout: bool
    order: RunOrder | None = None
    properties: dict[str, Scalar] | None = None
    """The trigger event's properties, when a later send includes them."""


class ViewMark(BaseModel):
    """A product the customer viewed, at the last time they viewed it (a visitor's
    come with its history at the merge)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    product: str
    at: UtcDatetime


class ActivityMark(BaseModel):
    """One product line bought or one view, for the ``bought`` and ``viewed`` conditions:
    kept only while an enabled flow's condition reads them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    at: UtcDatetime
    order_id: str | None = None
    product_id: str | None = None
    category: str | None = None


class GuestOrders(BaseModel):
    """A visitor's orders as a merge hands them on (``schemas.internal.ProspectHistory``):
    the facts the customer's record keeps of orders, so a guest checkout before the
    signup counts as the customer's."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    order_net: dict[str, Decimal]
    first_order_at: UtcDatetime
    last_order_at: UtcDatetime
    purchase_days: int
    purchase_times: tuple[UtcDatetime, ...]
    bought: tuple[str, ...] = ()
    bought_log: tuple[ActivityMark, ...] = Field(default=(), exclude_if=_empty)


class Legacy(BaseModel):
    """What a record written before flows existed held for the built-in campaigns.

    The core turns it into flow runs on the record's first touch
    (``lifecycle.flows.legacy.adopt_legacy``), then drops it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cart_touched_at: UtcDatetime | None = None
    browsed: tuple[str, ...] = ()
    browse_started_at: UtcDatetime | None = None
    pending_reviews: dict[str, PendingReview] = Field(default_factory=dict)
    nudged: bool = False


_LEGACY_FIELDS = ("cart_touched_at", "browsed", "browse_started_at", "pending_reviews", "nudged")


class SentMark(BaseModel):
    """A marketing message emitted to this customer: what frequency caps count."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    send_after: UtcDatetime
    campaign: str


class AttributionWindow(BaseModel):
    """A marketing decision whose conversions are still being counted, until ``closes_at``.

    Immutable (a credit replaces the window), so copying a record before a
    change can share its windows instead of copying them: every event copies
    its customer's record, and most records have a window or two open.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> AttributionWindow:
        return self

    trigger_id: str
    campaign: str
    flow: str = ""
    """The flow whose send made the decision; empty in a record an older version wrote
    (its flow is then the campaign's name)."""
    variant: str
    group: Group
    reason: str | None = None
    goal: Literal["purchase", "checkout"] = "purchase"
    opened_at: UtcDatetime
    closes_at: UtcDatetime
    conversions: tuple[Attributed, ...] = ()


class Move(BaseModel):
    """One stage transition, kept in the record for lookups (``/customers/{id}``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    at: UtcDatetime
    from_stage: Stage | None
    to_stage: Stage
    reason: str
    caused_by: str


class CustomerState(BaseModel):
    """One customer's record, including every deadline still pending for them.

    ``timers`` (name -> due) is derived from the other fields after every
    change (``lifecycle.timers.schedule``); it is stored so a partition's
    timer heap can be rebuilt from the table without re-deriving rules.
    """

    model_config = ConfigDict(extra="forbid")

    customer_id: str
    stage: Stage | None = None
    first_seen_at: UtcDatetime
    last_event_at: UtcDatetime
    signed_up_at: UtcDatetime | None = None
    profile: Profile = Field(default_factory=Profile)
    orders: int = 0
    revenue: Decimal = Decimal("0.00")
    first_order_at: UtcDatetime | None = None
    last_order_at: UtcDatetime | None = None
    order_net: dict[str, Decimal] = Field(default_factory=dict)
    """Net amount still standing per order id: dedups orders and bounds refunds."""
    recent_event_ids: list[str] = Field(default_factory=list)
    purchase_days: int = 0
    """Distinct days with a purchase: BG/NBD counts repeat purchases by day."""
    purchase_times: list[UtcDatetime] = Field(default_factory=list)
    """The latest purchases' times, ascending, for the loyal count and the typical gap."""
    anonymous_ids: list[str] = Field(default_factory=list)
    """Anonymous visitor ids merged into this customer (identity links)."""
    claimed: list[str] = Field(default_factory=list, exclude_if=_empty)
    """Visitor ids this record claimed whose history has not come back (at most
    ``CLAIMS_KEPT``): a history comes back to the record that claimed it, not to one the
    id began after an erase."""
    prospect_views: list[str] = Field(default_factory=list)
    """What the customer viewed before they were known, from merged prospects."""
    bought: list[str] = Field(default_factory=list)
    """Products bought, most recent last: never recommended again."""
    cart_id: str | None = None
    cart: dict[str, CartLine] = Field(default_factory=dict)
    views: list[ViewMark] = Field(default_factory=list, exclude_if=_empty)
    """Products a signed-up customer viewed, distinct, by the last view (at most
    ``max_products``): what a send's ``viewed_products`` reads."""
    runs: dict[str, FlowRun] = Field(default_factory=dict, exclude_if=_empty)
    """Runs of flows waiting, by ``flow`` or ``flow:per value``."""
    entered: dict[str, UtcDatetime] = Field(default_factory=dict, exclude_if=_empty)
    """When a run last started, by run key: kept for flows whose ``re_entry`` is not always."""
    segments: dict[str, bool] = Field(default_factory=dict, exclude_if=_empty)
    """Membership of the segments a ``segment_enter`` names, as last evaluated."""
    segments_due: UtcDatetime | None = Field(default=None, exclude_if=_none)
    """When a tracked segment's membership next turns as time passes, with no change to
    the record (``lifecycle.flows.turns``): the ``segments`` timer."""
    dates: dict[str, UtcDatetime] = Field(default_factory=dict, exclude_if=_empty)
    """The next due time of each date flow."""
    bought_log: list[ActivityMark] = Field(default_factory=list, exclude_if=_empty)
    view_log: list[ActivityMark] = Field(default_factory=list, exclude_if=_empty)
    legacy: Legacy | None = Field(default=None, exclude_if=_none)
    timers: dict[str, UtcDatetime] = Field(default_factory=dict)
    p_alive: float | None = None
    """BG/NBD probability the customer is still active, as of ``predicted_at``."""
    predicted_clv: Decimal | None = None
    predicted_at: UtcDatetime | None = None
    """The time of the latest step whose outputs used the predictions (a transition's
    snapshot, a payload, a condition): a step that needs none computes none."""
    marketing_sent: list[SentMark] = Field(default_factory=list)
    """Marketing messages within the longest frequency-cap window, oldest first."""
    history: list[Move] = Field(default_factory=list)
    """The latest stage transitions, oldest first (at most ``HISTORY_KEPT``)."""
    windows: list[AttributionWindow] = Field(default_factory=list)
    """Open attribution windows, in the order they opened (at most ``WINDOWS_KEPT``)."""

    @model_validator(mode="before")
    @classmethod
    def _older(cls, data: Any) -> Any:
        """A record written before flows: its campaign fields become ``legacy``."""
        if isinstance(data, dict) and any(name in data for name in _LEGACY_FIELDS):
            data = dict(data)
            data["legacy"] = {name: data.pop(name) for name in _LEGACY_FIELDS if name in data}
        return data

    @property
    def average_order_value(self) -> Decimal:
        if self.orders == 0:
            return Decimal("0.00")
        return (self.revenue / self.orders).quantize(CENT)

    @property
    def may_receive_marketing(self) -> bool:
        """Marketing email may go out: the ``consent`` record path (email is the default
        channel)."""
        return self.profile.marketing_stop("email") is None


# --- reading a stored record back ----------------------------------------------------


def decode_record(raw: bytes) -> CustomerState:
    """The record the engine stored as ``raw``: equal to ``model_validate_json(raw)``
    (same values, same types, same fields set, same bytes when encoded again),
    built without validating it again.

    Only for trusted input: bytes the engine itself wrote with
    ``schemas.codec.encode_model``, to its table or its changelog. Every record
    was validated when it was made, and a worker decodes each record it touches
    once per batch, so validating it again finds nothing and costs about a
    fifth of the decode (``bench.core --codec`` times both). The JSON is parsed
    by orjson, and each dict becomes its model's ``__dict__`` once its
    timestamps, decimals, enums and sub-records are converted in place, as
    validation converts them (the engine writes timestamps in UTC with ``Z``,
    which ``datetime.fromisoformat`` reads as UTC).

    Bytes of any other shape go through ``model_validate_json``, so they get
    exactly what they got before: a record an older version wrote (a newer field
    missing: its default; fields in another order), or one that is not a record
    at all (its ValidationError).
    """
    try:
        return _record(loads(raw))
    except (_ShapeError, KeyError, TypeError, ValueError, AttributeError, ArithmeticError):
        return CustomerState.model_validate_json(raw)


class _ShapeError(Exception):
    """A dict without exactly its model's fields, in order: not what this version writes."""


_new = object.__new__
_set = object.__setattr__
_set_fields_set = BaseModel.__dict__["__pydantic_fields_set__"].__set__
_set_extra = BaseModel.__dict__["__pydantic_extra__"].__set__
_set_private = BaseModel.__dict__["__pydantic_private__"].__set__
"""A model's own slots, set without ``object.__setattr__``'s lookup of the name."""
_timestamp = datetime.fromisoformat
_stage = {stage.value: stage for stage in Stage}.__getitem__

_FIELDS: dict[type[BaseModel], tuple[str, ...]] = {
    cls: tuple(cls.model_fields)
    for cls in (
        Profile,
        CartLine,
        PendingReview,
        RunLine,
        RunOrder,
        FlowRun,
        ViewMark,
        ActivityMark,
        Legacy,
        SentMark,
        Attributed,
        AttributionWindow,
        Move,
        CustomerState,
    )
}
"""Each record model's fields in declaration order: the keys, and their order, of
the JSON its serializer writes, and of the ``__dict__`` validation builds."""


def trusted(cls: type[M], **values: Any) -> M:
    """A model built from values of the right types already, every field given,
    without validating them: for what the core makes on every step (a flow run, a
    view, a trigger, a transition's snapshot), as ``decode_record`` builds what it
    reads. Validation would check types the core's own code already fixes, at
    about three times the cost."""
    fields = _FIELDS.get(cls)
    if fields is None:
        fields = _FIELDS[cls] = tuple(cls.model_fields)
    if tuple(values) != fields:  # the serializer writes the keys in ``__dict__``'s order
        values = {name: values[name] for name in fields}
    return _filled(cls, values)  # the call's own dict: nobody else holds it


_GIVEN = frozenset({"customer_id", "first_seen_at", "last_event_at"})
_DEFAULTS: tuple[tuple[str, Callable[[], Any]], ...] = tuple(
    (name, field.default_factory or (lambda default=field.default: default))  # type: ignore[misc]
    for name, field in CustomerState.model_fields.items()
)
"""Each field's default maker, in declaration order (the three required fields' give
pydantic's "undefined", replaced at once): pydantic's ``get_default`` inspects a
factory's signature on every call."""


def new_record(customer_id: str, at: datetime) -> CustomerState:
    """The record of a customer first seen at ``at``, as validating those three fields
    builds it (the rest their defaults, only those three counted as set), without
    validating: a new record is made for about one event in eight."""
    values = {name: make() for name, make in _DEFAULTS}
    values["customer_id"] = customer_id
    values["first_seen_at"] = values["last_event_at"] = at
    record = _filled(CustomerState, values)
    _set_fields_set(record, set(_GIVEN))
    return record


def _model(cls: type[M], data: dict[str, Any]) -> M:
    """``_filled``, for a dict read from JSON: refused unless it has exactly the
    model's fields, in order."""
    if tuple(data) != _FIELDS[cls]:
        raise _ShapeError
    return _filled(cls, data)


_SHARED_FIELDS_SET: dict[type[BaseModel], set[str]] = {
    cls: set(fields) for cls, fields in _FIELDS.items() if cls.model_config.get("frozen")
}
"""For each frozen record model, the one fields set every instance built with every
field given shares: a frozen model is never changed, nor is its set, and a set of its
own per instance would be a fifth of the objects of a decoded record that the garbage
collector tracks (one per ``Move``, ``ViewMark``, ``SentMark``)."""


def _filled(cls: type[M], data: dict[str, Any]) -> M:
    """A ``cls`` whose ``__dict__`` is ``data``, whose values are already converted,
    set as validation sets a model it read: every field given, no extra, no private."""
    model = _new(cls)
    _set(model, "__dict__", data)
    shared = _SHARED_FIELDS_SET.get(cls)
    _set_fields_set(model, set(data) if shared is None else shared)
    _set_extra(model, None)
    _set_private(model, None)
    return model


def _optional_timestamp(data: dict[str, Any], name: str) -> None:
    value = data[name]
    if value is not None:
        data[name] = _timestamp(value)


_LEFT_OUT_WHEN_EMPTY: dict[str, Callable[[], Any]] = {
    "traits": dict,
    "channel_consent": dict,
    "unsubscribed_from": list,
}
"""The profile's fields its JSON leaves out while empty, and their defaults."""


def _profile(data: dict[str, Any]) -> Profile:
    """A profile; its traits and channel choices are JSON values already, and absent when
    empty (validation then gives the default, and does not count the field as set).
    They are the profile's last fields, so a default goes at the end of the dict, in
    place; only a record with a later one present and an earlier one absent is rebuilt
    in field order."""
    absent = [name for name in _LEFT_OUT_WHEN_EMPTY if name not in data]
    if not absent:
        return _model(Profile, data)
    for name in absent:
        data[name] = _LEFT_OUT_WHEN_EMPTY[name]()
    fields = _FIELDS[Profile]
    if len(data) == len(fields) and tuple(data) != fields:
        data = {name: data[name] for name in fields}  # a KeyError: not a profile, validated
    profile = _model(Profile, data)
    _set_fields_set(profile, set(fields).difference(absent))
    return profile


def _cart_line(data: dict[str, Any]) -> CartLine:
    data["unit_price"] = Decimal(data["unit_price"])
    return _model(CartLine, data)


def _pending_review(data: dict[str, Any]) -> PendingReview:
    data["at"] = _timestamp(data["at"])
    return _model(PendingReview, data)


def _sent_mark(data: dict[str, Any]) -> SentMark:
    data["send_after"] = _timestamp(data["send_after"])
    return _model(SentMark, data)


def _attributed(data: dict[str, Any]) -> Attributed:
    data["at"] = _timestamp(data["at"])
    data["revenue"] = Decimal(data["revenue"])
    return _model(Attributed, data)


def _window(data: dict[str, Any]) -> AttributionWindow:
    data["opened_at"] = _timestamp(data["opened_at"])
    data["closes_at"] = _timestamp(data["closes_at"])
    data["conversions"] = tuple(map(_attributed, data["conversions"]))
    return _model(AttributionWindow, data)


def _run_line(data: dict[str, Any]) -> RunLine:
    data["unit_price"] = Decimal(data["unit_price"])
    data.setdefault("category", None)  # a record written before lines had one
    return _model(RunLine, data)


def _run_order(data: dict[str, Any]) -> RunOrder:
    if data["total"] is not None:
        data["total"] = Decimal(data["total"])
    data["items"] = tuple(map(_run_line, data["items"]))
    data["products"] = tuple(data["products"])
    return _model(RunOrder, data)


def _run(data: dict[str, Any]) -> FlowRun:
    data["started_at"] = _timestamp(data["started_at"])
    data["wake_at"] = _timestamp(data["wake_at"])
    if data["order"] is not None:
        data["order"] = _run_order(data["order"])
    return _model(FlowRun, data)


def _view(data: dict[str, Any]) -> ViewMark:
    data["at"] = _timestamp(data["at"])
    return _model(ViewMark, data)


def _mark(data: dict[str, Any]) -> ActivityMark:
    data["at"] = _timestamp(data["at"])
    return _model(ActivityMark, data)


def _legacy(data: dict[str, Any]) -> Legacy:
    _optional_timestamp(data, "cart_touched_at")
    data["browsed"] = tuple(data["browsed"])
    _optional_timestamp(data, "browse_started_at")
    pending = data["pending_reviews"]
    for order, review in pending.items():
        pending[order] = _pending_review(review)
    return _model(Legacy, data)


def _timestamps(values: dict[str, Any]) -> dict[str, Any]:
    for name, at in values.items():
        values[name] = _timestamp(at)
    return values


def _runs(values: dict[str, Any]) -> dict[str, Any]:
    for name, run in values.items():
        values[name] = _run(run)
    return values


_OPTIONAL: dict[str, tuple[Callable[[Any], Any], Callable[[], Any]]] = {
    "claimed": (lambda v: v, list),
    "views": (lambda v: list(map(_view, v)), list),
    "runs": (_runs, dict),
    "entered": (_timestamps, dict),
    "segments": (lambda v: v, dict),
    "segments_due": (_timestamp, lambda: None),
    "dates": (_timestamps, dict),
    "bought_log": (lambda v: list(map(_mark, v)), list),
    "view_log": (lambda v: list(map(_mark, v)), list),
    "legacy": (_legacy, lambda: None),
}
"""The record's fields left out of its JSON while empty: how to convert each one
present, and its default when absent."""


def _move(data: dict[str, Any]) -> Move:
    data["at"] = _timestamp(data["at"])
    if data["from_stage"] is not None:
        data["from_stage"] = _stage(data["from_stage"])
    data["to_stage"] = _stage(data["to_stage"])
    return _model(Move, data)


def _record(data: dict[str, Any]) -> CustomerState:
    """``data`` (a record's parsed JSON) as a ``CustomerState``: one line per field
    that validation converts; the others (strings, numbers, lists of strings) are
    what JSON gives already."""
    if data["stage"] is not None:
        data["stage"] = _stage(data["stage"])
    data["first_seen_at"] = _timestamp(data["first_seen_at"])
    data["last_event_at"] = _timestamp(data["last_event_at"])
    _optional_timestamp(data, "signed_up_at")
    data["profile"] = _profile(data["profile"])
    data["revenue"] = Decimal(data["revenue"])
    _optional_timestamp(data, "first_order_at")
    _optional_timestamp(data, "last_order_at")
    order_net = data["order_net"]
    for order, net in order_net.items():
        order_net[order] = Decimal(net)
    data["purchase_times"] = list(map(_timestamp, data["purchase_times"]))
    cart = data["cart"]
    for product, line in cart.items():
        cart[product] = _cart_line(line)
    for name, (convert, _) in _OPTIONAL.items():
        if name in data:
            data[name] = convert(data[name])
    timers = data["timers"]
    for name, due in timers.items():
        timers[name] = _timestamp(due)
    if data["predicted_clv"] is not None:
        data["predicted_clv"] = Decimal(data["predicted_clv"])
    _optional_timestamp(data, "predicted_at")
    data["marketing_sent"] = list(map(_sent_mark, data["marketing_sent"]))
    data["history"] = list(map(_move, data["history"]))
    data["windows"] = list(map(_window, data["windows"]))
    fields = _FIELDS[CustomerState]
    if tuple(data) == fields:
        return _model(CustomerState, data)
    given = set(data)
    if list(data) != [name for name in fields if name in given]:
        raise _ShapeError
    complete = {name: data[name] if name in given else _OPTIONAL[name][1]() for name in fields}
    record = _model(CustomerState, complete)
    _set_fields_set(record, given)
    return record

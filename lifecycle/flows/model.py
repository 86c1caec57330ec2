"""Segments and flows as data: frozen models the parser (``lifecycle.flows.parse``) builds.

Condition values stay as the YAML gave them (str, int, float, bool, or a list
of those); the evaluator compares numbers as ``Decimal(str(x))``, so money is
exact. Dates (``YYYY-MM-DD``) are strings, and compare as such.
"""

from __future__ import annotations

from datetime import time, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from schemas.records import Stage

__all__ = [
    "INCLUDES",
    "OPERATORS",
    "Activity",
    "AllOf",
    "AnyOf",
    "Branch",
    "Cond",
    "DateTrigger",
    "EventMatch",
    "FlowDef",
    "Leaf",
    "Not",
    "Picker",
    "SegmentDef",
    "SegmentEnter",
    "SegmentRef",
    "SendSpec",
    "StageEnter",
    "Step",
    "Trigger",
    "Wait",
]

OPERATORS = ("eq", "ne", "in", "not_in", "gt", "gte", "lt", "lte", "exists")
Operator = Literal["eq", "ne", "in", "not_in", "gt", "gte", "lt", "lte", "exists"]

INCLUDES = ("cart", "order", "viewed_products", "recommendations", "referral_code", "properties")
"""The contract's four, then two beyond it: the built-in referral code, the event's properties."""

Include = Literal[
    "cart", "order", "viewed_products", "recommendations", "referral_code", "properties"
]
Channel = Literal["email", "sms", "push", "webhook"]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Leaf(_Frozen):
    """``{field: PATH, OP: VALUE}`` (or its shorthand ``{PATH: VALUE}``)."""

    path: str
    op: Operator
    value: Any


class AllOf(_Frozen):
    items: tuple[Cond, ...]


class AnyOf(_Frozen):
    items: tuple[Cond, ...]


class Not(_Frozen):
    cond: Cond


class SegmentRef(_Frozen):
    name: str


class Activity(_Frozen):
    """``bought`` (orders, fully refunded ones excluded) or ``viewed`` (product views)."""

    kind: Literal["bought", "viewed"]
    product_id: str | None = None
    category: str | None = None
    within: timedelta | None = None
    min_count: int = 1


Cond = Leaf | AllOf | AnyOf | Not | SegmentRef | Activity


class SegmentDef(_Frozen):
    cond: Cond | None = None
    """None only for a built-in segment turned off, which never matches."""
    enabled: bool = True


class EventMatch(_Frozen):
    """An ``event`` trigger, or an ``exit_on`` entry: an event type and a condition on it."""

    event: str
    where: Cond | None = None


class StageEnter(_Frozen):
    stage_enter: Stage


class SegmentEnter(_Frozen):
    segment_enter: str


class DateTrigger(_Frozen):
    """Every year on the date in a date trait, at ``at`` in the customer's time zone."""

    date: str
    at: time = time(9, 0)


Trigger = EventMatch | StageEnter | SegmentEnter | DateTrigger


class Wait(_Frozen):
    wait: timedelta


class Picker(_Frozen):
    """A ``data`` value chosen per customer: ``{by: PATH, VALUE: X, ..., default: Y}``."""

    by: str
    values: dict[str, Any]
    default: Any = None
    has_default: bool = False


class SendSpec(_Frozen):
    """A ``send`` step. Unset fields resolve later (the campaign's rule, then the defaults)."""

    campaign: str
    channel: Channel | None = None
    transactional: bool | None = None
    priority: int | None = None
    variants: dict[str, float] | None = None
    include: tuple[Include, ...] = ()
    data: dict[str, Any] = {}
    """Values are JSON values or ``Picker``s."""


class Send(_Frozen):
    send: SendSpec


class Branch(_Frozen):
    if_: Cond
    then: tuple[Step, ...]
    else_: tuple[Step, ...] = ()


Step = Wait | Send | Branch


class FlowDef(_Frozen):
    """One flow. A built-in turned off by ``NAME: {enabled: false}`` keeps its definition."""

    trigger: Trigger
    steps: tuple[Step, ...]
    exit_on: tuple[EventMatch, ...] = ()
    filters: tuple[Cond, ...] = ()
    re_entry: Literal["always", "once"] | timedelta = "always"
    on_retrigger: Literal["restart", "ignore"] = "restart"
    per: str | None = None
    holdout: float | None = None
    enabled: bool = True
    builtin: bool = False
    """Whether the default playbook defines it (a shop's flow of the same name replaces it)."""


for _model in (AllOf, AnyOf, Not, SegmentDef, EventMatch, Branch, FlowDef):
    _model.model_rebuild()

"""What the engine writes for itself: internal messages and its view of a stored record.

An identity merge crosses partitions in two hops (docs/architecture.md,
Identity merge across partitions): a ``Claim`` keyed by the anonymous id
reaches the partition owning the prospect, which retires it and sends a
``ProspectHistory`` keyed by the customer id back. Both carry the signup's
time and id, which order them among events and make each hop idempotent.

A ``Tick`` on the ticks topic wakes every partition with the sending app's
time (docs/architecture.md, Time: timers and the two clocks). A
``RecordSummary`` is the part of a stored record that a rebuild after a
rebalance reads, parsed straight from the stored JSON without validating the
rest of it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_serializer

from lifecycle.flows.dates import trait_date
from lifecycle.state import ActivityMark, CartLine, FlowRun, GuestOrders, ViewMark
from schemas.events import UtcDatetime

__all__ = [
    "Claim",
    "DatedSummary",
    "MergeAdapter",
    "MergeMessage",
    "ProspectHistory",
    "RecordSummary",
    "Tick",
]


def _empty(value: object) -> bool:
    """A field left out of the message when it has nothing to carry, so a history
    without views or runs is the message a worker of an earlier version reads."""
    return not value


class _Internal(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Claim(_Internal):
    """A known customer claims an anonymous visitor's record."""

    kind: Literal["claim"] = "claim"
    anonymous_id: str
    customer_id: str
    at: UtcDatetime
    cause: str


class ProspectHistory(_Internal):
    """What a retired prospect record hands on to the customer who claimed it."""

    kind: Literal["history"] = "history"
    anonymous_id: str
    customer_id: str
    at: UtcDatetime
    cause: str
    first_seen_at: UtcDatetime
    views: tuple[str, ...] = ()
    view_log: tuple[ActivityMark, ...] = Field(default=(), exclude_if=_empty)
    """The visitor's views with their product, category and time, as ``viewed``
    conditions read them (kept only while an enabled flow reads them)."""
    view_marks: tuple[ViewMark, ...] = Field(default=(), exclude_if=_empty)
    """The products the visitor viewed, each at its last view: a waiting run's
    ``viewed_products`` goes on with the views since it began."""
    runs: tuple[FlowRun, ...] = Field(default=(), exclude_if=_empty)
    """The visitor's waiting runs of flows, to go on as the customer's."""
    entered: dict[str, UtcDatetime] = Field(default_factory=dict, exclude_if=_empty)
    """When the visitor's runs last started, by run key, for ``re_entry``."""
    cart_id: str | None = Field(default=None, exclude_if=_empty)
    cart: dict[str, CartLine] = Field(default_factory=dict, exclude_if=_empty)
    """The visitor's cart, lines by product: a guest's cart becomes the customer's
    when the customer has none (a shop carries it over at login)."""
    orders: GuestOrders | None = Field(default=None, exclude_if=_empty)
    """The visitor's orders (a guest checkout): they become the customer's."""


MergeMessage = Claim | ProspectHistory
MergeAdapter: TypeAdapter[MergeMessage] = TypeAdapter(MergeMessage)


class Tick(BaseModel):
    """A wake-up for one partition, carrying the sending app's time.

    Unknown fields are ignored and missing ones read as None, so a tick from
    another version still wakes the merge; ``at`` must be RFC 3339 text, as the
    engine writes it, never a number.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    at: UtcDatetime | None = Field(default=None, strict=True)
    app: str | None = None

    @field_serializer("at", when_used="json")
    def _offset_form(self, at: datetime | None) -> str | None:
        """``+00:00`` rather than pydantic's ``Z``: the bytes orjson wrote before
        ticks had a model, which workers of earlier versions read."""
        return None if at is None else at.isoformat()


class RecordSummary(BaseModel):
    """A stored record's timers, stage and last event time, and nothing else.

    A rebuild reads this of every record a worker holds, once per rebalance,
    so the rest of the record is skipped rather than validated.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    timers: dict[str, UtcDatetime] | None = None
    stage: str | None = None
    last_event_at: UtcDatetime | None = None

    @property
    def earliest_timer(self) -> datetime | None:
        """The next deadline among the record's timers, if it has any."""
        return min(self.timers.values(), default=None) if self.timers else None

    def wake_at(self, date_traits: Mapping[str, str]) -> datetime | None:
        """When the rebuilt heap wakes the customer: the earliest timer (the playbook
        has no date flow here; ``DatedSummary`` reads what a date flow needs)."""
        return self.earliest_timer


class _Traits(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    traits: dict[str, object] = {}


class DatedSummary(RecordSummary):
    """A ``RecordSummary`` that also reads the record's scheduled date flows and its
    traits, for a playbook with date flows (a rebuild reads the plain one otherwise)."""

    dates: dict[str, object] | None = None
    profile: _Traits | None = None

    def wake_at(self, date_traits: Mapping[str, str]) -> datetime | None:
        """The earliest timer, or the record's last event time when a date flow of
        ``date_traits`` (flow: trait) has no moment in the record though its trait is
        a date: a flow the playbook gained since the record last changed. The wake-up
        schedules it (``core._advance``); a record's own changes schedule every date
        flow, so only a new playbook leaves one out."""
        earliest = self.earliest_timer
        dates = self.dates or {}
        traits = self.profile.traits if self.profile is not None else {}
        lacks = any(
            flow not in dates and trait_date(traits.get(trait)) is not None
            for flow, trait in date_traits.items()
        )
        if not lacks or self.last_event_at is None:
            return earliest
        return self.last_event_at if earliest is None else min(earliest, self.last_event_at)

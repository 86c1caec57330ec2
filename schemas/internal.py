"""Messages the engine sends itself on the internal ``lifecycle.merge`` topic.

An identity merge crosses partitions in two hops (DESIGN.md, Processing
model): a ``Claim`` keyed by the anonymous id reaches the partition owning
the prospect, which retires it and sends a ``ProspectHistory`` keyed by the
customer id back. Both carry the signup's time and id, which order them
among events and make each hop idempotent.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, TypeAdapter

from schemas.events import UtcDatetime

__all__ = ["Claim", "MergeAdapter", "MergeMessage", "ProspectHistory"]


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


MergeMessage = Claim | ProspectHistory
MergeAdapter: TypeAdapter[MergeMessage] = TypeAdapter(MergeMessage)

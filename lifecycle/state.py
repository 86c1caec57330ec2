"""The per-customer record: everything the rules need to decide, nothing more.

One record per customer key, owned by one partition, written by one agent. It
is a pydantic model so a record read back from the changelog is validated.
"""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

from schemas.events import UtcDatetime
from schemas.records import Stage

__all__ = ["CustomerState", "Profile"]


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
    unsubscribed: bool = False


class CustomerState(BaseModel):
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

    @property
    def average_order_value(self) -> Decimal:
        if self.orders == 0:
            return Decimal("0.00")
        return (self.revenue / self.orders).quantize(Decimal("0.01"))

    @property
    def may_receive_marketing(self) -> bool:
        return self.profile.marketing_consent and not self.profile.unsubscribed

"""Outbound records: what downstream services (CRM, analytics, mailers) consume.

Every timestamp here derives from event time (README.md, Outputs),
so the same input gives byte-for-byte the same outputs.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.events import UtcDatetime

__all__ = [
    "OUTPUT_TOPICS",
    "Attributed",
    "Attribution",
    "Campaign",
    "CampaignName",
    "Channel",
    "DeadLetter",
    "Group",
    "Rfm",
    "Snapshot",
    "Stage",
    "Transition",
    "Trigger",
    "topic_of",
]


class Stage(StrEnum):
    PROSPECT = "prospect"
    LEAD = "lead"
    FIRST_TIME_BUYER = "first_time_buyer"
    REPEAT_CUSTOMER = "repeat_customer"
    LOYAL = "loyal"
    ADVOCATE = "advocate"
    AT_RISK = "at_risk"
    CHURNED = "churned"
    REACTIVATED = "reactivated"


class Campaign(StrEnum):
    WELCOME = "welcome"
    BROWSE_ABANDONMENT = "browse_abandonment"
    CART_ABANDONMENT = "cart_abandonment"
    ORDER_THANK_YOU = "order_thank_you"
    REVIEW_REQUEST = "review_request"
    SECOND_PURCHASE_NUDGE = "second_purchase_nudge"
    CHURN_PREVENTION = "churn_prevention"
    WIN_BACK = "win_back"
    WELCOME_BACK = "welcome_back"
    LOYALTY_REWARD = "loyalty_reward"
    ADVOCATE_REFERRAL = "advocate_referral"


CampaignName = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")]
"""A campaign's name: a built-in one (``Campaign``) or a shop's own, from a flow's send."""

Channel = Literal["email", "sms", "push", "webhook"]
"""How a trigger reaches the customer; which service delivers it is the consumer's choice."""


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Rfm(_Record):
    """Recency, frequency, monetary scores, 1 (low) to 5 (high) each."""

    r: int = Field(ge=1, le=5)
    f: int = Field(ge=1, le=5)
    m: int = Field(ge=1, le=5)


class Snapshot(_Record):
    """The customer's scores at the moment of a transition."""

    orders: int
    revenue: Decimal
    clv: Decimal
    aov: Decimal
    rfm: Rfm | None
    typical_gap_days: float | None = None
    """Median days between the customer's recent purchases; None before a second one."""
    p_alive: float | None = None
    """BG/NBD probability that the customer is still active; None before a purchase."""
    predicted_clv: Decimal | None = None
    """Expected spend over the playbook's horizon (BG/NBD x Gamma-Gamma)."""


class Transition(_Record):
    transition_id: str
    customer_id: str
    from_stage: Stage | None
    to_stage: Stage
    reason: str
    at: UtcDatetime
    caused_by: str
    snapshot: Snapshot


class Trigger(_Record):
    trigger_id: str
    customer_id: str
    campaign: CampaignName
    flow: str
    """The flow that sent it (the built-ins: the campaign's own name)."""
    step: str
    """The send's index path in its flow (``"0"``, ``"3.then.0"``)."""
    channel: Channel
    stage: Stage | None
    created_at: UtcDatetime
    send_after: UtcDatetime
    variant: str
    holdout: bool
    payload: dict[str, Any]


Group = Literal["treated", "holdout", "suppressed"]
"""Who a marketing decision reached: sent, held out on purpose, or stopped by a policy."""


class Attributed(_Record):
    """One conversion inside an attribution window: the goal event, and its revenue."""

    event_id: str
    order_id: str | None
    at: UtcDatetime
    revenue: Decimal


class Attribution(_Record):
    """Whether the customer converted within one marketing decision's attribution window.

    One record per decision (sent, held out or suppressed), emitted when its
    window closes (``at`` is the window's end, an event time), so a report
    only ever counts finished windows and the holdout comparison is fair.
    """

    attribution_id: str
    trigger_id: str
    customer_id: str
    campaign: CampaignName
    flow: str
    """The flow whose send made the decision."""
    variant: str
    group: Group
    reason: str | None
    """The policy's reason for a suppressed decision; None otherwise."""
    goal: Literal["purchase", "checkout"]
    opened_at: UtcDatetime
    closes_at: UtcDatetime
    converted: bool
    conversions: tuple[Attributed, ...]
    revenue: Decimal
    """Sum of the attributed purchases' totals (gross, at purchase time)."""
    at: UtcDatetime


class DeadLetter(_Record):
    """An inbound message the engine could not accept, kept whole for repair and replay."""

    topic: str
    partition: int
    offset: int
    key: str | None
    value: str
    value_encoding: Literal["utf-8", "base64"]
    reason: str
    message: str
    at: UtcDatetime


OUTPUT_TOPICS = ("transitions", "triggers", "attribution")
"""Logical names of every topic the core's records go to (``topic_of``)."""


def topic_of(record: Transition | Trigger | Attribution) -> str:
    """The logical output topic of a record the core emits (settings' ``TopicNames``)."""
    if isinstance(record, Transition):
        return "transitions"
    return "triggers" if isinstance(record, Trigger) else "attribution"

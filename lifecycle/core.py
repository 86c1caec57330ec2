"""The lifecycle core: (state, event, playbook) -> (state, transitions, triggers).

Every business decision of the engine is made here, as a pure function: no
broker, no clock (time is the event's own occurred_at), no randomness. The
backtest and the Kafka agents both call ``apply``, which is why they agree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from lifecycle.ids import stable_id
from lifecycle.playbook import Playbook
from lifecycle.policy import Suppression, decide
from lifecycle.scoring import snapshot
from lifecycle.state import CustomerState, Profile
from schemas.events import (
    BrowseEvent,
    CartEvent,
    EngagementEvent,
    Event,
    IdentifyEvent,
    PrivacyEvent,
    PurchaseEvent,
    RefundEvent,
    SignupEvent,
)
from schemas.records import Campaign, Stage, Transition, Trigger

__all__ = ["Outcome", "apply"]

_BEFORE_PURCHASE = (None, Stage.PROSPECT, Stage.LEAD)


@dataclass(slots=True)
class Outcome:
    """What one input did. ``state`` None with ``erased`` means: delete the record."""

    state: CustomerState | None
    transitions: list[Transition] = field(default_factory=list)
    triggers: list[Trigger] = field(default_factory=list)
    suppressed: list[Suppression] = field(default_factory=list)
    duplicate: bool = False
    erased: bool = False


class _Step:
    """Collects the effects of one event on one record, then hands back an Outcome."""

    def __init__(self, state: CustomerState, event: Event, playbook: Playbook) -> None:
        self.state = state
        self.event = event
        self.playbook = playbook
        self.outcome = Outcome(state=state)

    @property
    def at(self) -> datetime:
        return self.event.occurred_at

    def move(self, to: Stage, reason: str) -> None:
        if self.state.stage == to:
            return
        self.outcome.transitions.append(
            Transition(
                transition_id=stable_id(
                    "transition", self.state.customer_id, self.event.event_id, to.value
                ),
                customer_id=self.state.customer_id,
                from_stage=self.state.stage,
                to_stage=to,
                reason=reason,
                at=self.at,
                caused_by=self.event.event_id,
                snapshot=snapshot(self.state, self.at, self.playbook.scores.rfm),
            )
        )
        self.state.stage = to

    def contact(self, campaign: Campaign, payload: dict[str, Any]) -> None:
        decision = decide(
            self.state,
            campaign,
            cause=self.event.event_id,
            at=self.at,
            payload=payload,
            playbook=self.playbook,
        )
        if isinstance(decision, Trigger):
            self.outcome.triggers.append(decision)
        elif isinstance(decision, Suppression):
            self.outcome.suppressed.append(decision)


def _signup(step: _Step, event: SignupEvent) -> None:
    state = step.state
    first_signup = state.signed_up_at is None
    # An absent field keeps what a privacy consent event already said.
    given = "marketing_consent" in event.model_fields_set
    consent = event.marketing_consent if given else state.profile.marketing_consent
    state.profile = Profile(
        email=event.email,
        first_name=event.first_name or state.profile.first_name,
        locale=event.locale or state.profile.locale,
        timezone=event.timezone or state.profile.timezone,
        country=event.country or state.profile.country,
        source=event.source or state.profile.source,
        referred_by=event.referred_by or state.profile.referred_by,
        marketing_consent=consent,
        unsubscribed=state.profile.unsubscribed and not consent,
    )
    if not first_signup:
        return
    state.signed_up_at = event.occurred_at
    if state.stage in _BEFORE_PURCHASE:
        step.move(Stage.LEAD, "signup")
    step.contact(
        Campaign.WELCOME,
        {
            "email": event.email,
            "first_name": state.profile.first_name,
            "locale": state.profile.locale,
        },
    )


def _identify(step: _Step, _event: IdentifyEvent) -> None:
    if step.state.stage in _BEFORE_PURCHASE:
        step.move(Stage.LEAD, "identify")


def _activity(step: _Step, event: BrowseEvent | CartEvent) -> None:
    if step.state.stage is None:
        step.move(Stage.PROSPECT, f"{event.type}_without_signup")


def _purchase(step: _Step, event: PurchaseEvent) -> None:
    state = step.state
    if event.order_id in state.order_net:
        step.outcome.duplicate = True  # the same order under a new event id
        return
    state.order_net[event.order_id] = event.total
    state.orders += 1
    state.revenue += event.total
    state.first_order_at = state.first_order_at or event.occurred_at
    state.last_order_at = event.occurred_at
    if state.orders == 1:
        step.move(Stage.FIRST_TIME_BUYER, "first_purchase")
    elif state.orders >= step.playbook.stages.repeat_min_orders and state.stage in (
        *_BEFORE_PURCHASE,
        Stage.FIRST_TIME_BUYER,
    ):
        step.move(Stage.REPEAT_CUSTOMER, "repeat_purchase")
    step.contact(
        Campaign.ORDER_THANK_YOU,
        {
            "email": state.profile.email,
            "first_name": state.profile.first_name,
            "locale": state.profile.locale,
            "order_id": event.order_id,
            "total": str(event.total),
            "currency": event.currency,
            "items": [
                {
                    "product_id": item.product_id,
                    "quantity": item.quantity,
                    "unit_price": str(item.unit_price),
                }
                for item in event.items
            ],
        },
    )


def _refund(step: _Step, event: RefundEvent) -> None:
    """Refunds lower net revenue; a fully refunded order no longer counts as an order.

    A refund for an order this customer never placed changes nothing, and the
    amount is capped at what is left of the order, so revenue never goes negative.
    """
    state = step.state
    standing = state.order_net.get(event.order_id)
    if standing is None or standing == 0:
        return
    amount = min(event.amount, standing)
    state.order_net[event.order_id] = standing - amount
    state.revenue -= amount
    if state.order_net[event.order_id] == 0:
        state.orders -= 1


def _engagement(step: _Step, event: EngagementEvent) -> None:
    if event.action in ("unsubscribe", "complaint"):
        step.state.profile.unsubscribed = True


def _privacy(step: _Step, event: PrivacyEvent) -> None:
    if event.action == "erase":
        step.outcome.state = None
        step.outcome.erased = True
    elif event.granted is not None:
        step.state.profile.marketing_consent = event.granted
        step.state.profile.unsubscribed = step.state.profile.unsubscribed and not event.granted


def _remember(state: CustomerState, event_id: str, window: int) -> None:
    state.recent_event_ids.append(event_id)
    if len(state.recent_event_ids) > window:
        del state.recent_event_ids[: len(state.recent_event_ids) - window]


def apply(state: CustomerState | None, event: Event, playbook: Playbook) -> Outcome:
    """Apply one accepted event to one customer's record (None for a new customer).

    The input record is never mutated, so a caller may keep it; a redelivered
    event (same event_id) returns the record unchanged with ``duplicate`` set.
    """
    if state is not None and event.event_id in state.recent_event_ids:
        return Outcome(state=state, duplicate=True)
    if state is None:
        current = CustomerState(
            customer_id=event.key, first_seen_at=event.occurred_at, last_event_at=event.occurred_at
        )
    else:
        current = state.model_copy(deep=True)
        current.last_event_at = max(current.last_event_at, event.occurred_at)
    step = _Step(current, event, playbook)
    match event:
        case SignupEvent():
            _signup(step, event)
        case IdentifyEvent():
            _identify(step, event)
        case BrowseEvent() | CartEvent():
            _activity(step, event)
        case PurchaseEvent():
            _purchase(step, event)
        case EngagementEvent():
            _engagement(step, event)
        case PrivacyEvent():
            _privacy(step, event)
        case RefundEvent():
            _refund(step, event)
    if step.outcome.state is not None:
        _remember(step.outcome.state, event.event_id, playbook.dedup.event_ids_per_customer)
    return step.outcome

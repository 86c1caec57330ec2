"""Builders for a journey's steps (inbound events as shops publish them) and for
its expectations (the ``Move`` and ``Send`` a policy gives), in the default playbook."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from schemas.records import Campaign, Stage
from tests.scenarios.model import Body, Move, Send

# --- events ------------------------------------------------------------------------------

_DAY0 = datetime(2025, 1, 6, tzinfo=UTC)
"""Midnight UTC of a Monday: journeys count their days from here."""


def day(n: int, hour: int = 10, minute: int = 0) -> datetime:
    """``hour:minute`` UTC on day ``n`` of a journey."""
    return _DAY0 + timedelta(days=n, hours=hour, minutes=minute)


def at(text: str) -> datetime:
    """An RFC 3339 time as given (keeping its offset, so an event shows its local time)."""
    return datetime.fromisoformat(text)


def _event(type_: str, event_id: str, when: datetime, **fields: object) -> Body:
    assert when.tzinfo is not None
    return {"event_id": event_id, "type": type_, "occurred_at": when.isoformat(), **fields}


def signup(
    event_id: str, when: datetime, customer: str, *, consent: bool = True, **fields: object
) -> Body:
    return _event(
        "signup",
        event_id,
        when,
        customer_id=customer,
        email=f"{customer}@mail.example",
        marketing_consent=consent,
        **fields,
    )


def as_guest(event: Body, anonymous: str) -> Body:
    """``event`` as a guest sends it: the browser's anonymous id, no customer id."""
    guest = {name: value for name, value in event.items() if name != "customer_id"}
    return {**guest, "anonymous_id": anonymous}


def login(event_id: str, when: datetime, customer: str, anonymous: str) -> Body:
    """An identify naming the guest's anonymous id: the visitor merges into the customer."""
    return _event("identify", event_id, when, customer_id=customer, anonymous_id=anonymous)


def browse(
    event_id: str,
    when: datetime,
    *,
    customer: str | None = None,
    anonymous: str | None = None,
    product: str | None = None,
    category: str | None = None,
) -> Body:
    fields: dict[str, object] = {}
    if customer is not None:
        fields["customer_id"] = customer
    if anonymous is not None:
        fields["anonymous_id"] = anonymous
    if product is not None:
        fields["product_id"] = product
    if category is not None:
        fields["category"] = category
    return _event("browse", event_id, when, **fields)


def cart(
    event_id: str,
    when: datetime,
    customer: str,
    action: str,
    cart_id: str,
    product: str | None = None,
    quantity: int = 1,
    unit_price: str = "10.00",
) -> Body:
    item: dict[str, object] = {}
    if product is not None:
        item = {
            "product_id": product,
            "quantity": quantity,
            "unit_price": unit_price,
            "currency": "EUR",
        }
    return _event(
        "cart", event_id, when, customer_id=customer, action=action, cart_id=cart_id, **item
    )


def purchase(
    event_id: str, when: datetime, customer: str, order: str, total: str, product: str = "p-tea"
) -> Body:
    return _event(
        "purchase",
        event_id,
        when,
        customer_id=customer,
        order_id=order,
        total=total,
        currency="EUR",
        items=[{"product_id": product, "category": "tea", "quantity": 1, "unit_price": total}],
    )


def refund(event_id: str, when: datetime, customer: str, order: str, amount: str) -> Body:
    return _event("refund", event_id, when, customer_id=customer, order_id=order, amount=amount)


def engagement(
    event_id: str, when: datetime, customer: str, action: str, channel: str | None = "email"
) -> Body:
    fields: dict[str, object] = {"customer_id": customer, "action": action}
    if channel is not None:
        fields["channel"] = channel
    return _event("engagement", event_id, when, **fields)


def privacy(
    event_id: str, when: datetime, customer: str, action: str, granted: bool | None = None
) -> Body:
    fields: dict[str, object] = {"customer_id": customer, "action": action}
    if granted is not None:
        fields["granted"] = granted
    return _event("privacy", event_id, when, **fields)


# --- expectations --------------------------------------------------------------------------

P, L, F, R = Stage.PROSPECT, Stage.LEAD, Stage.FIRST_TIME_BUYER, Stage.REPEAT_CUSTOMER
LOYAL, ADV, RISK, GONE, BACK = (
    Stage.LOYAL,
    Stage.ADVOCATE,
    Stage.AT_RISK,
    Stage.CHURNED,
    Stage.REACTIVATED,
)


def at_risk(from_stage: Stage, when: datetime) -> Move:
    return Move(from_stage, RISK, "no_purchase_at_risk", "timer:at_risk", when)


def churned(when: datetime) -> Move:
    return Move(RISK, GONE, "no_purchase_churned", "timer:churned", when)


def welcome(when: datetime, *, holdout: bool = False) -> Send:
    return Send(Campaign.WELCOME, when, holdout)


def thanks(when: datetime, order: str) -> Send:
    return Send(Campaign.ORDER_THANK_YOU, when, payload={"order_id": order})


def review(
    when: datetime, order: str, product: str = "p-tea", send_after: datetime | None = None
) -> Send:
    payload = {"order_id": order, "products": [product]}
    return Send(Campaign.REVIEW_REQUEST, when, send_after=send_after, payload=payload, step="1")


def order_mails(key: str, n: int, on: int, product: str = "p-tea") -> tuple[Send, Send]:
    """What order ``{key}-o{n}``, placed on ``day(on)``, gets: order_thank_you at once and
    review_request 7 days later (a journey lists them together when nothing falls between)."""
    order = f"{key}-o{n}"
    return thanks(day(on), order), review(day(on + 7), order, product)


def nudge(when: datetime, send_after: datetime | None = None) -> Send:
    return Send(Campaign.SECOND_PURCHASE_NUDGE, when, send_after=send_after, step="1")


def cart_mail(
    when: datetime,
    lines: Sequence[tuple[str, int, str]],
    value: str,
    send_after: datetime | None = None,
) -> Send:
    items = [{"product_id": p, "quantity": q, "unit_price": u} for p, q, u in lines]
    payload = {"items": items, "value": value}
    return Send(Campaign.CART_ABANDONMENT, when, send_after=send_after, payload=payload, step="1")


def browse_mail(when: datetime, products: Sequence[str]) -> Send:
    viewed = {"viewed_products": list(products), "products": list(products)}
    return Send(Campaign.BROWSE_ABANDONMENT, when, payload=viewed, step="1")


def churn_prevention(when: datetime, send_after: datetime | None = None) -> Send:
    payload = {"survey": True, "discount_percent": 5}
    return Send(Campaign.CHURN_PREVENTION, when, send_after=send_after, payload=payload)


def win_back(when: datetime, discount_percent: int) -> Send:
    return Send(Campaign.WIN_BACK, when, payload={"discount_percent": discount_percent})


def welcome_back(when: datetime) -> Send:
    return Send(Campaign.WELCOME_BACK, when)


def loyalty_reward(when: datetime) -> Send:
    return Send(Campaign.LOYALTY_REWARD, when)


def advocate_referral(when: datetime) -> Send:
    return Send(Campaign.ADVOCATE_REFERRAL, when)

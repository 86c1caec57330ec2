"""Named customer journeys with their exact expected outputs (DESIGN.md, default playbook).

A journey is a list of steps for one customer: an inbound event (the JSON body
a shop backend publishes, with a unique ``event_id`` and an explicit RFC 3339
``occurred_at``) or an ``Advance`` of the partition's clock (a tick). The
expectation is the exact, ordered list of stage transitions (``Move``) and
triggers (``Send``) the journey produces. ``run_journey`` walks the steps
through the partition runtime; the unit tests compare, and the integration tests
can publish the event steps of a subset to a real broker and compare the same way.

Every expectation was derived from DESIGN.md and the default playbook; where
DESIGN.md is silent (reason names, which browse starts the 2 h wait, a
redelivered order under a new event id) the core's choice is followed.

Conventions, so that no policy other than the one a journey is about changes
its outputs:

- customers are chosen so that no campaign holds them out (``holdout`` is a
  hash of campaign and customer id), except in ``holdout_customer_is_marked``;
- marketing triggers of one customer are more than 24 h apart and at most three
  fall in any 7 days, except in the ``frequency_cap_*`` journeys;
- customer and anonymous ids, and event ids, are unique across journeys (one
  event is deliberately repeated, unchanged, in ``duplicate_event_changes_nothing``),
  so the event steps of many journeys can share one set of topics.

Kafka: a journey is ``kafka_ready`` when only its final ``Advance`` needs the
worker's clock: every earlier ``Advance`` is implied by the events after it,
since ``apply`` first fires the customer's own timers due before the event.
A worker whose clock passes ``horizon`` emits the expectation, plus records
stamped after ``horizon`` (timers the journey leaves pending; none falls due
exactly at ``horizon``). In event-time mode, publish the events of all chosen
journeys in ``occurred_at`` order (``events_in_time_order``): a partition's
clock is its watermark, shared by every customer in it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from lifecycle.backtest import MERGE_TOPIC
from lifecycle.clock import ClockMode
from lifecycle.core import Outcome
from lifecycle.playbook import Playbook
from lifecycle.recommend import MemoryPairs, Recommender
from lifecycle.runtime import Applied, DictStore, PartitionRuntime, Result, complete
from lifecycle.state import CustomerState
from schemas.events import INBOUND_TOPICS, TOPIC_OF_TYPE, Event, EventAdapter
from schemas.internal import Claim, ProspectHistory
from schemas.records import Campaign, Stage

__all__ = [
    "HIGHLIGHTS",
    "JOURNEYS",
    "Advance",
    "Body",
    "Journey",
    "Move",
    "Send",
    "Step",
    "event_time",
    "events_in_time_order",
    "final_states",
    "record_outputs",
    "run_journey",
]

Body = Mapping[str, object]
"""An inbound event exactly as a producer publishes it (JSON-compatible values)."""


@dataclass(frozen=True, slots=True)
class Advance:
    """Move the clock to ``to``: every timer due strictly before it fires."""

    to: datetime


Step = Body | Advance


class Move(NamedTuple):
    """An expected transition; ``key`` None means the journey's own customer."""

    from_stage: Stage | None
    to_stage: Stage
    reason: str
    caused_by: str
    at: datetime
    key: str | None = None


class Send(NamedTuple):
    """An expected trigger.

    ``send_after`` None means "the same as created_at". ``payload`` holds exactly
    the campaign's highlight fields (``HIGHLIGHTS``), None for other campaigns.
    """

    campaign: Campaign
    created_at: datetime
    holdout: bool = False
    send_after: datetime | None = None
    payload: Mapping[str, object] | None = None
    key: str | None = None


HIGHLIGHTS: Mapping[Campaign, tuple[str, ...]] = {
    Campaign.BROWSE_ABANDONMENT: ("products",),
    Campaign.CART_ABANDONMENT: ("items", "value"),
    Campaign.ORDER_THANK_YOU: ("order_id",),
    Campaign.REVIEW_REQUEST: ("order_id", "products"),
    Campaign.CHURN_PREVENTION: ("survey", "discount_percent"),
    Campaign.WIN_BACK: ("discount_percent",),
}
"""The payload fields compared per campaign (DESIGN.md, Triggers: payload highlights)."""


@dataclass(frozen=True, slots=True)
class Journey:
    """One named customer story: its steps and exactly what they must produce.

    ``customer`` is the journey's own key (``Move.key``/``Send.key`` None means
    it); ``kafka_ready`` is checked by the unit tests (see the module docstring).
    """

    name: str
    about: str
    customer: str
    steps: tuple[Step, ...]
    moves: tuple[Move, ...]
    sends: tuple[Send, ...]
    kafka_ready: bool = True

    @property
    def events(self) -> list[Body]:
        return [s for s in self.steps if not isinstance(s, Advance)]

    @property
    def horizon(self) -> datetime:
        """How far the journey's clock gets: its last step's time."""
        last = self.steps[-1]
        return last.to if isinstance(last, Advance) else event_time(last)


def event_time(body: Body) -> datetime:
    occurred = body["occurred_at"]
    assert isinstance(occurred, str)
    return datetime.fromisoformat(occurred).astimezone(UTC)


def events_in_time_order(journeys: Iterable[Journey]) -> list[Body]:
    """The event steps of ``journeys``, stably sorted by ``occurred_at``."""
    return sorted((e for j in journeys for e in j.events), key=event_time)


# --- running -------------------------------------------------------------------------


def record_outputs(
    outcome: Outcome, key: str, journey: Journey, moves: list[Move], sends: list[Send]
) -> None:
    own = None if key == journey.customer else key
    for t in outcome.transitions:
        moves.append(Move(t.from_stage, t.to_stage, t.reason, t.caused_by, t.at, own))
    for trigger in outcome.triggers:
        fields = HIGHLIGHTS.get(trigger.campaign)
        sends.append(
            Send(
                trigger.campaign,
                trigger.created_at,
                trigger.holdout,
                None if trigger.send_after == trigger.created_at else trigger.send_after,
                None if fields is None else {f: trigger.payload.get(f) for f in fields},
                own,
            )
        )


def final_states(
    journey: Journey, playbook: Playbook, steps: Sequence[Step] | None = None
) -> tuple[list[Move], list[Send], dict[str, CustomerState]]:
    """``run_journey``, plus the records left at the end, by key."""
    states: dict[str, CustomerState] = {}
    moves: list[Move] = []
    sends: list[Send] = []
    runtime: PartitionRuntime[int] = PartitionRuntime.open(
        [*INBOUND_TOPICS, MERGE_TOPIC],
        ClockMode.WALL,
        timedelta(0),
        playbook,
        DictStore(states),
        Recommender(MemoryPairs(), playbook.recommendations),
    )

    def take(results: Iterable[Result[int]], position: int) -> None:
        for result in results:
            assert isinstance(result, Applied), result  # a core failure fails the journey
            outcome = result.outcome
            record_outputs(outcome, result.key, journey, moves, sends)
            merges: list[Claim | ProspectHistory] = [*outcome.claims]
            if outcome.history is not None:
                merges.append(outcome.history)
            for message in merges:
                runtime.offer(MERGE_TOPIC, position, message)  # one partition: all keys
                take(runtime.drain(), position)

    for position, step in enumerate(journey.steps if steps is None else steps):
        if isinstance(step, Advance):
            take(runtime.tick(step.to, complete), position)
            continue
        event: Event = EventAdapter.validate_python(dict(step))
        runtime.offer(TOPIC_OF_TYPE[event.type], position, event)
        take(runtime.drain(), position)
    return moves, sends, states


def run_journey(
    journey: Journey, playbook: Playbook, steps: Sequence[Step] | None = None
) -> tuple[list[Move], list[Send]]:
    """Walk ``journey`` (or ``steps`` in its place) through the pure core.

    The steps go through one partition's runtime (``lifecycle.runtime``), as a
    worker in wall-clock mode runs them: records kept per event key (one journey
    may see an anonymous prospect and the customer it became, merged as on the
    broker); erase deletes one. An event fires its own customer's due timers
    first; an ``Advance`` is a tick, firing every record's timers due before
    it, earliest first. Returns the transitions and the triggers, in order.
    """
    moves, sends, _ = final_states(journey, playbook, steps)
    return moves, sends


# --- building events -----------------------------------------------------------------

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


# --- building expectations -------------------------------------------------------------

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
    return Send(Campaign.REVIEW_REQUEST, when, send_after=send_after, payload=payload)


def nudge(when: datetime, send_after: datetime | None = None) -> Send:
    return Send(Campaign.SECOND_PURCHASE_NUDGE, when, send_after=send_after)


def cart_mail(
    when: datetime,
    lines: Sequence[tuple[str, int, str]],
    value: str,
    send_after: datetime | None = None,
) -> Send:
    items = [{"product_id": p, "quantity": q, "unit_price": u} for p, q, u in lines]
    payload = {"items": items, "value": value}
    return Send(Campaign.CART_ABANDONMENT, when, send_after=send_after, payload=payload)


def browse_mail(when: datetime, products: Sequence[str]) -> Send:
    return Send(Campaign.BROWSE_ABANDONMENT, when, payload={"products": list(products)})


def churn_prevention(when: datetime, send_after: datetime | None = None) -> Send:
    payload = {"survey": True, "discount_percent": "5"}
    return Send(Campaign.CHURN_PREVENTION, when, send_after=send_after, payload=payload)


def win_back(when: datetime, discount_percent: str) -> Send:
    return Send(Campaign.WIN_BACK, when, payload={"discount_percent": discount_percent})


def welcome_back(when: datetime) -> Send:
    return Send(Campaign.WELCOME_BACK, when)


def loyalty_reward(when: datetime) -> Send:
    return Send(Campaign.LOYALTY_REWARD, when)


def advocate_referral(when: datetime) -> Send:
    return Send(Campaign.ADVOCATE_REFERRAL, when)


# --- the journeys ----------------------------------------------------------------------


def _prospect_browses_then_signs_up() -> Journey:
    c, a = "cust-visitor-3", "anon-visitor"
    return Journey(
        "prospect_browses_then_signs_up",
        "an anonymous visitor browses (prospect), signs up 3 days later as a new lead",
        c,
        (
            browse("visitor-e1", day(0), anonymous=a, product="p-teapot"),
            browse("visitor-e2", day(0, 10, 30), anonymous=a, category="green-tea"),
            signup("visitor-e3", day(3), c, anonymous_id=a, first_name="Ada"),
            Advance(day(4)),
        ),
        (
            Move(None, P, "browse_without_signup", "visitor-e1", day(0), key=a),
            Move(None, L, "signup", "visitor-e3", day(3)),
        ),
        (welcome(day(3)),),  # an anonymous prospect's browsing is never abandoned
    )


def _known_visitor_becomes_lead() -> Journey:
    c = "cust-known-browser"
    return Journey(
        "known_visitor_becomes_lead",
        "browse without signup under a customer id (prospect), then signup: prospect -> lead",
        c,
        (
            browse("known-browser-e1", day(0), customer=c, product="p-mug"),
            signup("known-browser-e2", day(1), c),
            Advance(day(2)),
        ),
        (
            Move(None, P, "browse_without_signup", "known-browser-e1", day(0)),
            Move(P, L, "signup", "known-browser-e2", day(1)),
        ),
        (welcome(day(1)),),  # browsing before signup is not a known customer's browsing
    )


def _lead_never_buys() -> Journey:
    c = "cust-lead-only-3"
    return Journey(
        "lead_never_buys",
        "a lead opens the welcome mail and never buys: no at_risk, no churn, for over a year",
        c,
        (
            signup("lead-only-e1", day(0), c),
            engagement("lead-only-e2", day(1), c, "open"),
            Advance(day(400)),
        ),
        (Move(None, L, "signup", "lead-only-e1", day(0)),),
        (welcome(day(0)),),
    )


def _cart_abandoned_after_an_hour() -> Journey:
    c = "cust-cart-abandoner-4"
    return Journey(
        "cart_abandoned_after_an_hour",
        "two items added, no purchase: cart_abandonment exactly 1 h later with items and value",
        c,
        (
            signup("cart-abandoner-e1", day(0), c),
            cart("cart-abandoner-e2", day(2, 11), c, "add", "k1", "p-kettle", 1, "40.00"),
            cart("cart-abandoner-e3", day(2, 11), c, "add", "k1", "p-filter", 2, "5.50"),
            Advance(day(3)),
        ),
        (Move(None, L, "signup", "cart-abandoner-e1", day(0)),),
        (
            welcome(day(0)),
            cart_mail(day(2, 12), [("p-kettle", 1, "40.00"), ("p-filter", 2, "5.50")], "51.00"),
        ),
    )


def _cart_saved_at_59_minutes() -> Journey:
    c = "cust-cart-saver-2"
    return Journey(
        "cart_saved_at_59_minutes",
        "cart add, purchase 59 min later: no cart mail",
        c,
        (
            signup("cart-saver-e1", day(0), c),
            cart("cart-saver-e2", day(2, 11), c, "add", "k1", "p-kettle", 1, "40.00"),
            purchase("cart-saver-e3", day(2, 11, 59), c, "cart-saver-o1", "40.00", "p-kettle"),
            Advance(day(3)),
        ),
        (
            Move(None, L, "signup", "cart-saver-e1", day(0)),
            Move(L, F, "first_purchase", "cart-saver-e3", day(2, 11, 59)),
        ),
        (welcome(day(0)), thanks(day(2, 11, 59), "cart-saver-o1")),
    )


def _cart_saved_at_exactly_one_hour() -> Journey:
    c = "cust-cart-exact-4"
    return Journey(
        "cart_saved_at_exactly_one_hour",
        "purchase exactly 1 h after the cart add: still no cart mail (timers fire strictly before)",
        c,
        (
            signup("cart-exact-e1", day(0), c),
            cart("cart-exact-e2", day(2, 11), c, "add", "k1", "p-kettle", 1, "40.00"),
            purchase("cart-exact-e3", day(2, 12), c, "cart-exact-o1", "40.00", "p-kettle"),
            Advance(day(3)),
        ),
        (
            Move(None, L, "signup", "cart-exact-e1", day(0)),
            Move(L, F, "first_purchase", "cart-exact-e3", day(2, 12)),
        ),
        (welcome(day(0)), thanks(day(2, 12), "cart-exact-o1")),
    )


def _checkout_restarts_the_wait() -> Journey:
    c = "cust-checkout-restart-4"
    k = "checkout-restart"
    return Journey(
        "checkout_restarts_the_wait",
        "add, add, remove one, checkout: the mail comes 1 h after checkout with what is left",
        c,
        (
            signup(f"{k}-e1", day(0), c),
            cart(f"{k}-e2", day(2, 11), c, "add", "k1", "p-cup", 2, "10.00"),
            cart(f"{k}-e3", day(2, 11, 20), c, "add", "k1", "p-pot", 1, "25.00"),
            cart(f"{k}-e4", day(2, 11, 30), c, "remove", "k1", "p-cup", 1, "10.00"),
            cart(f"{k}-e5", day(2, 11, 50), c, "checkout_started", "k1"),
            Advance(day(3)),
        ),
        (Move(None, L, "signup", f"{k}-e1", day(0)),),
        (
            welcome(day(0)),
            cart_mail(day(2, 12, 50), [("p-cup", 1, "10.00"), ("p-pot", 1, "25.00")], "35.00"),
        ),
    )


def _browse_abandoned_after_two_hours() -> Journey:
    c = "cust-browse-known-3"
    return Journey(
        "browse_abandoned_after_two_hours",
        "a known customer browses, no cart: browse_abandonment 2 h after the first view",
        c,
        (
            signup("browse-known-e1", day(0), c),
            browse("browse-known-e2", day(2, 14), customer=c, product="p-teapot"),
            browse("browse-known-e3", day(2, 14, 30), customer=c, category="green-tea"),
            browse("browse-known-e4", day(2, 15), customer=c, product="p-teapot"),
            Advance(day(3)),
        ),
        (Move(None, L, "signup", "browse-known-e1", day(0)),),
        (welcome(day(0)), browse_mail(day(2, 16), ["p-teapot", "green-tea"])),
    )


def _browse_then_cart_sends_cart_mail_only() -> Journey:
    c = "cust-browse-to-cart-13"
    return Journey(
        "browse_then_cart_sends_cart_mail_only",
        "a cart add within 2 h cancels browse_abandonment; the cart is abandoned instead",
        c,
        (
            signup("browse-to-cart-e1", day(0), c),
            browse("browse-to-cart-e2", day(2, 14), customer=c, product="p-teapot"),
            cart("browse-to-cart-e3", day(2, 15), c, "add", "k1", "p-teapot", 1, "30.00"),
            Advance(day(3)),
        ),
        (Move(None, L, "signup", "browse-to-cart-e1", day(0)),),
        (welcome(day(0)), cart_mail(day(2, 16), [("p-teapot", 1, "30.00")], "30.00")),
    )


def _review_request_after_each_purchase() -> Journey:
    c = "cust-reviewer-2"
    return Journey(
        "review_request_after_each_purchase",
        "two purchases 3 days apart: a review request 7 days after each, with its products",
        c,
        (
            signup("reviewer-e1", day(0), c),
            purchase("reviewer-e2", day(1), c, "reviewer-o1", "30.00", "p-green"),
            purchase("reviewer-e3", day(4), c, "reviewer-o2", "45.00", "p-black"),
            Advance(day(12)),
        ),
        (
            Move(None, L, "signup", "reviewer-e1", day(0)),
            Move(L, F, "first_purchase", "reviewer-e2", day(1)),
            Move(F, R, "repeat_purchase", "reviewer-e3", day(4)),
        ),
        (
            welcome(day(0)),
            thanks(day(1), "reviewer-o1"),
            thanks(day(4), "reviewer-o2"),
            review(day(8), "reviewer-o1", "p-green"),
            review(day(11), "reviewer-o2", "p-black"),
        ),
    )


def _no_review_for_a_refunded_order() -> Journey:
    c = "cust-refunder-7"
    return Journey(
        "no_review_for_a_refunded_order",
        "order 2 fully refunded: no review request for it; order 1 partly refunded still gets one",
        c,
        (
            signup("refunder-e1", day(0), c),
            purchase("refunder-e2", day(1), c, "refunder-o1", "60.00", "p-green"),
            purchase("refunder-e3", day(3), c, "refunder-o2", "40.00", "p-black"),
            refund("refunder-e4", day(5), c, "refunder-o2", "40.00"),
            refund("refunder-e5", day(6), c, "refunder-o1", "10.00"),
            Advance(day(12)),
        ),
        (
            Move(None, L, "signup", "refunder-e1", day(0)),
            Move(L, F, "first_purchase", "refunder-e2", day(1)),
            Move(F, R, "repeat_purchase", "refunder-e3", day(3)),
        ),
        (
            welcome(day(0)),
            thanks(day(1), "refunder-o1"),
            thanks(day(3), "refunder-o2"),
            review(day(8), "refunder-o1", "p-green"),
        ),
    )


def _second_purchase_nudge_after_30_days() -> Journey:
    c = "cust-nudged"
    return Journey(
        "second_purchase_nudge_after_30_days",
        "a first-time buyer with no second purchase gets the nudge 30 days after the first",
        c,
        (
            signup("nudged-e1", day(0), c),
            purchase("nudged-e2", day(1), c, "nudged-o1", "30.00"),
            Advance(day(40)),
        ),
        (
            Move(None, L, "signup", "nudged-e1", day(0)),
            Move(L, F, "first_purchase", "nudged-e2", day(1)),
        ),
        (
            welcome(day(0)),
            thanks(day(1), "nudged-o1"),
            review(day(8), "nudged-o1"),
            nudge(day(31)),
        ),
    )


def _no_nudge_after_second_purchase_on_day_20() -> Journey:
    c = "cust-no-nudge"
    return Journey(
        "no_nudge_after_second_purchase_on_day_20",
        "the second purchase 20 days after the first cancels the nudge",
        c,
        (
            signup("no-nudge-e1", day(0), c),
            purchase("no-nudge-e2", day(1), c, "no-nudge-o1", "30.00"),
            purchase("no-nudge-e3", day(21), c, "no-nudge-o2", "30.00"),
            Advance(day(40)),
        ),
        (
            Move(None, L, "signup", "no-nudge-e1", day(0)),
            Move(L, F, "first_purchase", "no-nudge-e2", day(1)),
            Move(F, R, "repeat_purchase", "no-nudge-e3", day(21)),
        ),
        (
            welcome(day(0)),
            thanks(day(1), "no-nudge-o1"),
            review(day(8), "no-nudge-o1"),
            thanks(day(21), "no-nudge-o2"),
            review(day(28), "no-nudge-o2"),
        ),
    )


def _first_time_buyer_churns_low_value() -> Journey:
    c = "cust-churn-low-2"
    return Journey(
        "first_time_buyer_churns_low_value",
        "one 49.90 order: at_risk at 60 days, churned at 120, win_back 10% (low tier)",
        c,
        (
            signup("churn-low-e1", day(0), c),
            purchase("churn-low-e2", day(1), c, "churn-low-o1", "49.90"),
            Advance(day(200)),
        ),
        (
            Move(None, L, "signup", "churn-low-e1", day(0)),
            Move(L, F, "first_purchase", "churn-low-e2", day(1)),
            at_risk(F, day(61)),
            churned(day(121)),
        ),
        (
            welcome(day(0)),
            thanks(day(1), "churn-low-o1"),
            review(day(8), "churn-low-o1"),
            nudge(day(31)),
            churn_prevention(day(61)),
            win_back(day(121), "10"),
        ),
    )


def _repeat_customer_churns_mid_value() -> Journey:
    c = "cust-churn-mid"
    return Journey(
        "repeat_customer_churns_mid_value",
        "orders of 100 + 150 (exactly the mid tier's 250): at_risk, churned, win_back 15%",
        c,
        (
            signup("churn-mid-e1", day(0), c),
            purchase("churn-mid-e2", day(1), c, "churn-mid-o1", "100.00"),
            purchase("churn-mid-e3", day(11), c, "churn-mid-o2", "150.00"),
            Advance(day(100)),
            Advance(day(140)),
        ),
        (
            Move(None, L, "signup", "churn-mid-e1", day(0)),
            Move(L, F, "first_purchase", "churn-mid-e2", day(1)),
            Move(F, R, "repeat_purchase", "churn-mid-e3", day(11)),
            at_risk(R, day(71)),
            churned(day(131)),
        ),
        (
            welcome(day(0)),
            thanks(day(1), "churn-mid-o1"),
            review(day(8), "churn-mid-o1"),
            thanks(day(11), "churn-mid-o2"),
            review(day(18), "churn-mid-o2"),
            churn_prevention(day(71)),
            win_back(day(131), "15"),
        ),
    )


def _big_spender_churns_high_value() -> Journey:
    c = "cust-churn-high"
    return Journey(
        "big_spender_churns_high_value",
        "a 1200 order partly refunded to 1050 net: still the high tier, win_back 20%",
        c,
        (
            signup("churn-high-e1", day(0), c),
            purchase("churn-high-e2", day(1), c, "churn-high-o1", "1200.00"),
            refund("churn-high-e3", day(3), c, "churn-high-o1", "150.00"),
            Advance(day(130)),
        ),
        (
            Move(None, L, "signup", "churn-high-e1", day(0)),
            Move(L, F, "first_purchase", "churn-high-e2", day(1)),
            at_risk(F, day(61)),
            churned(day(121)),
        ),
        (
            welcome(day(0)),
            thanks(day(1), "churn-high-o1"),
            review(day(8), "churn-high-o1"),
            nudge(day(31)),
            churn_prevention(day(61)),
            win_back(day(121), "20"),
        ),
    )


def _slow_buyer_at_risk_after_twice_their_gap() -> Journey:
    c = "cust-slow-buyer-7"
    k = "slow-buyer"
    return Journey(
        "slow_buyer_at_risk_after_twice_their_gap",
        "purchases every 45 days: at_risk 90 days after the last (2x gap), not 60; churned at 120",
        c,
        (
            signup(f"{k}-e1", day(0), c),
            purchase(f"{k}-e2", day(1), c, f"{k}-o1", "30.00"),
            purchase(f"{k}-e3", day(46), c, f"{k}-o2", "30.00"),
            purchase(f"{k}-e4", day(91), c, f"{k}-o3", "30.00"),
            Advance(day(160)),
            Advance(day(250)),
        ),
        (
            Move(None, L, "signup", f"{k}-e1", day(0)),
            Move(L, F, "first_purchase", f"{k}-e2", day(1)),
            Move(F, R, "repeat_purchase", f"{k}-e3", day(46)),
            at_risk(R, day(181)),
            churned(day(211)),
        ),
        (
            welcome(day(0)),
            thanks(day(1), f"{k}-o1"),
            review(day(8), f"{k}-o1"),
            nudge(day(31)),
            thanks(day(46), f"{k}-o2"),
            review(day(53), f"{k}-o2"),
            thanks(day(91), f"{k}-o3"),
            review(day(98), f"{k}-o3"),
            churn_prevention(day(181)),
            win_back(day(211), "10"),
        ),
    )


def _churned_customer_comes_back() -> Journey:
    c = "cust-churn-return-2"
    k = "churn-return"
    return Journey(
        "churned_customer_comes_back",
        "churned, then a purchase: reactivated (welcome_back); the next one: repeat_customer",
        c,
        (
            signup(f"{k}-e1", day(0), c),
            purchase(f"{k}-e2", day(1), c, f"{k}-o1", "35.00"),
            Advance(day(130)),
            purchase(f"{k}-e3", day(150), c, f"{k}-o2", "35.00"),
            purchase(f"{k}-e4", day(170), c, f"{k}-o3", "35.00"),
            Advance(day(180)),
        ),
        (
            Move(None, L, "signup", f"{k}-e1", day(0)),
            Move(L, F, "first_purchase", f"{k}-e2", day(1)),
            at_risk(F, day(61)),
            churned(day(121)),
            Move(GONE, BACK, "purchase_while_churned", f"{k}-e3", day(150)),
            Move(BACK, R, "purchase_after_reactivation", f"{k}-e4", day(170)),
        ),
        (
            welcome(day(0)),
            thanks(day(1), f"{k}-o1"),
            review(day(8), f"{k}-o1"),
            nudge(day(31)),
            churn_prevention(day(61)),
            win_back(day(121), "10"),
            welcome_back(day(150)),
            thanks(day(150), f"{k}-o2"),
            review(day(157), f"{k}-o2"),
            thanks(day(170), f"{k}-o3"),
            review(day(177), f"{k}-o3"),
        ),
    )


def _at_risk_customer_comes_back() -> Journey:
    c = "cust-at-risk-return"
    k = "at-risk-return"
    return Journey(
        "at_risk_customer_comes_back",
        "at_risk, then a purchase on day 80: reactivated with welcome_back",
        c,
        (
            signup(f"{k}-e1", day(0), c),
            purchase(f"{k}-e2", day(1), c, f"{k}-o1", "35.00"),
            Advance(day(70)),
            purchase(f"{k}-e3", day(80), c, f"{k}-o2", "35.00"),
            Advance(day(90)),
        ),
        (
            Move(None, L, "signup", f"{k}-e1", day(0)),
            Move(L, F, "first_purchase", f"{k}-e2", day(1)),
            at_risk(F, day(61)),
            Move(RISK, BACK, "purchase_while_at_risk", f"{k}-e3", day(80)),
        ),
        (
            welcome(day(0)),
            thanks(day(1), f"{k}-o1"),
            review(day(8), f"{k}-o1"),
            nudge(day(31)),
            churn_prevention(day(61)),
            welcome_back(day(80)),
            thanks(day(80), f"{k}-o2"),
            review(day(87), f"{k}-o2"),
        ),
    )


def _four_purchases_in_a_year_make_loyal() -> Journey:
    c = "cust-loyal-four-2"
    k = "loyal-four"
    return Journey(
        "four_purchases_in_a_year_make_loyal",
        "the fourth purchase within 365 days makes a loyal customer (loyalty_reward)",
        c,
        (
            signup(f"{k}-e1", day(0), c),
            purchase(f"{k}-e2", day(1), c, f"{k}-o1", "40.00"),
            purchase(f"{k}-e3", day(20), c, f"{k}-o2", "40.00"),
            purchase(f"{k}-e4", day(50), c, f"{k}-o3", "40.00"),
            purchase(f"{k}-e5", day(80), c, f"{k}-o4", "40.00"),
            Advance(day(90)),
        ),
        (
            Move(None, L, "signup", f"{k}-e1", day(0)),
            Move(L, F, "first_purchase", f"{k}-e2", day(1)),
            Move(F, R, "repeat_purchase", f"{k}-e3", day(20)),
            Move(R, LOYAL, "loyal_orders", f"{k}-e5", day(80)),
        ),
        (
            welcome(day(0)),
            thanks(day(1), f"{k}-o1"),
            review(day(8), f"{k}-o1"),
            thanks(day(20), f"{k}-o2"),
            review(day(27), f"{k}-o2"),
            thanks(day(50), f"{k}-o3"),
            review(day(57), f"{k}-o3"),
            loyalty_reward(day(80)),
            thanks(day(80), f"{k}-o4"),
            review(day(87), f"{k}-o4"),
        ),
    )


def _loyal_customer_reviews_and_becomes_advocate() -> Journey:
    c = "cust-loyal-review-3"
    k = "loyal-review"
    return Journey(
        "loyal_customer_reviews_and_becomes_advocate",
        "a review before loyalty moves nothing; a loyal customer's review makes an advocate",
        c,
        (
            signup(f"{k}-e1", day(0), c),
            purchase(f"{k}-e2", day(1), c, f"{k}-o1", "50.00"),
            purchase(f"{k}-e3", day(10), c, f"{k}-o2", "50.00"),
            engagement(f"{k}-e4", day(15), c, "review", channel=None),
            purchase(f"{k}-e5", day(20), c, f"{k}-o3", "50.00"),
            purchase(f"{k}-e6", day(30), c, f"{k}-o4", "50.00"),
            engagement(f"{k}-e7", day(40), c, "review", channel=None),
            Advance(day(45)),
        ),
        (
            Move(None, L, "signup", f"{k}-e1", day(0)),
            Move(L, F, "first_purchase", f"{k}-e2", day(1)),
            Move(F, R, "repeat_purchase", f"{k}-e3", day(10)),
            Move(R, LOYAL, "loyal_orders", f"{k}-e6", day(30)),
            Move(LOYAL, ADV, "loyal_review", f"{k}-e7", day(40)),
        ),
        (
            welcome(day(0)),
            thanks(day(1), f"{k}-o1"),
            review(day(8), f"{k}-o1"),
            thanks(day(10), f"{k}-o2"),
            review(day(17), f"{k}-o2"),
            thanks(day(20), f"{k}-o3"),
            review(day(27), f"{k}-o3"),
            loyalty_reward(day(30)),
            thanks(day(30), f"{k}-o4"),
            review(day(37), f"{k}-o4"),
            advocate_referral(day(40)),
        ),
    )


def _advocate_by_referral_then_lapses() -> Journey:
    c = "cust-advocate-lapse-8"
    k = "advocate-lapse"
    return Journey(
        "advocate_by_referral_then_lapses",
        "loyal, a referral makes an advocate, who stops buying: at_risk, then churned",
        c,
        (
            signup(f"{k}-e1", day(0), c),
            purchase(f"{k}-e2", day(1), c, f"{k}-o1", "80.00"),
            purchase(f"{k}-e3", day(15), c, f"{k}-o2", "80.00"),
            purchase(f"{k}-e4", day(29), c, f"{k}-o3", "80.00"),
            purchase(f"{k}-e5", day(43), c, f"{k}-o4", "80.00"),
            engagement(f"{k}-e6", day(52), c, "referral", channel=None),
            Advance(day(170, 11)),  # past win_back's attribution window, closing at 10:00
        ),
        (
            Move(None, L, "signup", f"{k}-e1", day(0)),
            Move(L, F, "first_purchase", f"{k}-e2", day(1)),
            Move(F, R, "repeat_purchase", f"{k}-e3", day(15)),
            Move(R, LOYAL, "loyal_orders", f"{k}-e5", day(43)),
            Move(LOYAL, ADV, "loyal_referral", f"{k}-e6", day(52)),
            at_risk(ADV, day(103)),
            churned(day(163)),
        ),
        (
            welcome(day(0)),
            thanks(day(1), f"{k}-o1"),
            review(day(8), f"{k}-o1"),
            thanks(day(15), f"{k}-o2"),
            review(day(22), f"{k}-o2"),
            thanks(day(29), f"{k}-o3"),
            review(day(36), f"{k}-o3"),
            loyalty_reward(day(43)),
            thanks(day(43), f"{k}-o4"),
            review(day(50), f"{k}-o4"),
            advocate_referral(day(52)),
            churn_prevention(day(103)),
            win_back(day(163), "15"),
        ),
    )


def _loyal_lapses_and_comes_back_loyal() -> Journey:
    c = "cust-loyal-cycle-9"
    k = "loyal-cycle"
    return Journey(
        "loyal_lapses_and_comes_back_loyal",
        "loyal -> at_risk -> churned -> reactivated -> repeat_customer -> loyal (6 orders in 365d)",
        c,
        (
            signup(f"{k}-e1", day(0), c),
            purchase(f"{k}-e2", day(1), c, f"{k}-o1", "100.00"),
            purchase(f"{k}-e3", day(11), c, f"{k}-o2", "100.00"),
            purchase(f"{k}-e4", day(21), c, f"{k}-o3", "100.00"),
            purchase(f"{k}-e5", day(31), c, f"{k}-o4", "100.00"),
            Advance(day(160)),
            purchase(f"{k}-e6", day(200), c, f"{k}-o5", "100.00"),
            purchase(f"{k}-e7", day(215), c, f"{k}-o6", "100.00"),
            Advance(day(230)),
        ),
        (
            Move(None, L, "signup", f"{k}-e1", day(0)),
            Move(L, F, "first_purchase", f"{k}-e2", day(1)),
            Move(F, R, "repeat_purchase", f"{k}-e3", day(11)),
            Move(R, LOYAL, "loyal_orders", f"{k}-e5", day(31)),
            at_risk(LOYAL, day(91)),
            churned(day(151)),
            Move(GONE, BACK, "purchase_while_churned", f"{k}-e6", day(200)),
            Move(BACK, R, "purchase_after_reactivation", f"{k}-e7", day(215)),
            Move(R, LOYAL, "loyal_orders", f"{k}-e7", day(215)),
        ),
        (
            welcome(day(0)),
            thanks(day(1), f"{k}-o1"),
            review(day(8), f"{k}-o1"),
            thanks(day(11), f"{k}-o2"),
            review(day(18), f"{k}-o2"),
            thanks(day(21), f"{k}-o3"),
            review(day(28), f"{k}-o3"),
            loyalty_reward(day(31)),
            thanks(day(31), f"{k}-o4"),
            review(day(38), f"{k}-o4"),
            churn_prevention(day(91)),
            win_back(day(151), "15"),
            welcome_back(day(200)),
            thanks(day(200), f"{k}-o5"),
            review(day(207), f"{k}-o5"),
            loyalty_reward(day(215)),
            thanks(day(215), f"{k}-o6"),
            review(day(222), f"{k}-o6"),
        ),
    )


def _top_rfm_segment_makes_loyal() -> Journey:
    c = "cust-rfm-loyal-9"
    k = "rfm-loyal"
    return Journey(
        "top_rfm_segment_makes_loyal",
        "five 120.00 orders 200 days apart over two years: never 4 in 365 days, loyal by RFM",
        c,
        (
            signup(f"{k}-e1", day(0), c),
            purchase(f"{k}-e2", day(1), c, f"{k}-o1", "120.00"),
            Advance(day(130)),
            purchase(f"{k}-e3", day(201), c, f"{k}-o2", "120.00"),
            purchase(f"{k}-e4", day(401), c, f"{k}-o3", "120.00"),
            purchase(f"{k}-e5", day(601), c, f"{k}-o4", "120.00"),
            purchase(f"{k}-e6", day(801), c, f"{k}-o5", "120.00"),
            Advance(day(820)),
        ),
        (
            Move(None, L, "signup", f"{k}-e1", day(0)),
            Move(L, F, "first_purchase", f"{k}-e2", day(1)),
            at_risk(F, day(61)),
            churned(day(121)),
            Move(GONE, BACK, "purchase_while_churned", f"{k}-e3", day(201)),
            Move(BACK, R, "purchase_after_reactivation", f"{k}-e4", day(401)),
            Move(R, LOYAL, "loyal_rfm", f"{k}-e6", day(801)),
        ),
        (
            welcome(day(0)),
            thanks(day(1), f"{k}-o1"),
            review(day(8), f"{k}-o1"),
            nudge(day(31)),
            churn_prevention(day(61)),
            win_back(day(121), "10"),
            welcome_back(day(201)),
            thanks(day(201), f"{k}-o2"),
            review(day(208), f"{k}-o2"),
            thanks(day(401), f"{k}-o3"),
            review(day(408), f"{k}-o3"),
            thanks(day(601), f"{k}-o4"),
            review(day(608), f"{k}-o4"),
            loyalty_reward(day(801)),
            thanks(day(801), f"{k}-o5"),
            review(day(808), f"{k}-o5"),
        ),
    )


def _quiet_hours_hold_a_late_cart_mail() -> Journey:
    c = "cust-quiet-berlin"
    k = "quiet-berlin"
    return Journey(
        "quiet_hours_hold_a_late_cart_mail",
        "Berlin customer: a cart timing out at 23:00 local is sent at 08:00 local; "
        "order_thank_you at night is not held",
        c,
        (
            signup(f"{k}-e1", at("2025-01-06T11:00:00+01:00"), c, timezone="Europe/Berlin"),
            cart(
                f"{k}-e2", at("2025-01-08T22:00:00+01:00"), c, "add", "k1", "p-kettle", 1, "40.00"
            ),
            purchase(f"{k}-e3", at("2025-01-10T23:30:00+01:00"), c, f"{k}-o1", "40.00", "p-kettle"),
            Advance(at("2025-01-18T12:00:00+00:00")),
        ),
        (
            Move(None, L, "signup", f"{k}-e1", at("2025-01-06T10:00:00+00:00")),
            Move(L, F, "first_purchase", f"{k}-e3", at("2025-01-10T22:30:00+00:00")),
        ),
        (
            welcome(at("2025-01-06T10:00:00+00:00")),
            cart_mail(
                at("2025-01-08T22:00:00+00:00"),
                [("p-kettle", 1, "40.00")],
                "40.00",
                send_after=at("2025-01-09T07:00:00+00:00"),
            ),
            thanks(at("2025-01-10T22:30:00+00:00"), f"{k}-o1"),
            review(
                at("2025-01-17T22:30:00+00:00"),
                f"{k}-o1",
                "p-kettle",
                send_after=at("2025-01-18T07:00:00+00:00"),
            ),
        ),
    )


def _quiet_hours_across_daylight_saving() -> Journey:
    c = "cust-quiet-newyork-11"
    k = "quiet-newyork"
    utc = "+00:00"
    return Journey(
        "quiet_hours_across_daylight_saving",
        "New York customer buying at 23:30 EST: timed mails wait for 08:00 local, EST then EDT",
        c,
        (
            signup(f"{k}-e1", at("2025-01-31T12:00:00-05:00"), c, timezone="America/New_York"),
            purchase(f"{k}-e2", at("2025-02-01T23:30:00-05:00"), c, f"{k}-o1", "55.00"),
            Advance(at(f"2025-04-10T12:00:00{utc}")),
        ),
        (
            Move(None, L, "signup", f"{k}-e1", at(f"2025-01-31T17:00:00{utc}")),
            Move(L, F, "first_purchase", f"{k}-e2", at(f"2025-02-02T04:30:00{utc}")),
            at_risk(F, at(f"2025-04-03T04:30:00{utc}")),
        ),
        (
            welcome(at(f"2025-01-31T17:00:00{utc}")),
            thanks(at(f"2025-02-02T04:30:00{utc}"), f"{k}-o1"),
            review(
                at(f"2025-02-09T04:30:00{utc}"),
                f"{k}-o1",
                send_after=at(f"2025-02-09T13:00:00{utc}"),  # 08:00 EST
            ),
            nudge(at(f"2025-03-04T04:30:00{utc}"), send_after=at(f"2025-03-04T13:00:00{utc}")),
            churn_prevention(
                at(f"2025-04-03T04:30:00{utc}"),
                send_after=at(f"2025-04-03T12:00:00{utc}"),  # 08:00 EDT
            ),
        ),
    )


def _no_consent_gets_only_transactional_mail() -> Journey:
    c = "cust-no-consent-10"
    k = "no-consent"
    return Journey(
        "no_consent_gets_only_transactional_mail",
        "signup without marketing consent: stages move, only order_thank_you is sent",
        c,
        (
            signup(f"{k}-e1", day(0), c, consent=False),
            cart(f"{k}-e2", day(2, 11), c, "add", "k1", "p-kettle", 1, "40.00"),
            purchase(f"{k}-e3", day(3), c, f"{k}-o1", "40.00", "p-kettle"),
            Advance(day(70, 11)),  # past the suppressed churn_prevention's window (10:00)
        ),
        (
            Move(None, L, "signup", f"{k}-e1", day(0)),
            Move(L, F, "first_purchase", f"{k}-e3", day(3)),
            at_risk(F, day(63)),
        ),
        (thanks(day(3), f"{k}-o1"),),
    )


def _consent_granted_later() -> Journey:
    c = "cust-consent-later-4"
    k = "consent-later"
    return Journey(
        "consent_granted_later",
        "no consent at signup (no welcome), consent granted on day 5: the review request goes",
        c,
        (
            signup(f"{k}-e1", day(0), c, consent=False),
            privacy(f"{k}-e2", day(5), c, "consent", granted=True),
            purchase(f"{k}-e3", day(6), c, f"{k}-o1", "30.00"),
            Advance(day(14)),
        ),
        (
            Move(None, L, "signup", f"{k}-e1", day(0)),
            Move(L, F, "first_purchase", f"{k}-e3", day(6)),
        ),
        (thanks(day(6), f"{k}-o1"), review(day(13), f"{k}-o1")),
    )


def _unsubscribe_mid_journey() -> Journey:
    c = "cust-unsubscriber"
    k = "unsubscriber"
    return Journey(
        "unsubscribe_mid_journey",
        "unsubscribes after the first order: no more marketing, thank-you mails still go",
        c,
        (
            signup(f"{k}-e1", day(0), c),
            purchase(f"{k}-e2", day(1), c, f"{k}-o1", "30.00"),
            engagement(f"{k}-e3", day(3), c, "unsubscribe"),
            purchase(f"{k}-e4", day(10), c, f"{k}-o2", "30.00"),
            Advance(day(75)),
        ),
        (
            Move(None, L, "signup", f"{k}-e1", day(0)),
            Move(L, F, "first_purchase", f"{k}-e2", day(1)),
            Move(F, R, "repeat_purchase", f"{k}-e4", day(10)),
            at_risk(R, day(70)),
        ),
        (welcome(day(0)), thanks(day(1), f"{k}-o1"), thanks(day(10), f"{k}-o2")),
    )


def _duplicate_event_changes_nothing() -> Journey:
    c = "cust-duplicate-5"
    k = "duplicate"
    first_order = purchase(f"{k}-e2", day(1), c, f"{k}-o1", "30.00")
    return Journey(
        "duplicate_event_changes_nothing",
        "a purchase delivered twice, and its order again under a new event id: counted once",
        c,
        (
            signup(f"{k}-e1", day(0), c),
            first_order,
            first_order,
            purchase(f"{k}-e3", day(1, 10, 5), c, f"{k}-o1", "30.00"),
            purchase(f"{k}-e4", day(5), c, f"{k}-o2", "30.00"),
            Advance(day(13)),
        ),
        (
            Move(None, L, "signup", f"{k}-e1", day(0)),
            Move(L, F, "first_purchase", f"{k}-e2", day(1)),
            Move(F, R, "repeat_purchase", f"{k}-e4", day(5)),
        ),
        (
            welcome(day(0)),
            thanks(day(1), f"{k}-o1"),
            thanks(day(5), f"{k}-o2"),
            review(day(8), f"{k}-o1"),
            review(day(12), f"{k}-o2"),
        ),
    )


def _erase_stops_everything() -> Journey:
    c = "cust-eraser-3"
    k = "eraser"
    return Journey(
        "erase_stops_everything",
        "erase with a cart, a review, a nudge and at_risk pending: nothing more, ever",
        c,
        (
            signup(f"{k}-e1", day(0), c),
            purchase(f"{k}-e2", day(1), c, f"{k}-o1", "30.00"),
            cart(f"{k}-e3", day(2, 11), c, "add", "k1", "p-kettle", 1, "40.00"),
            privacy(f"{k}-e4", day(2, 11, 30), c, "erase"),
            Advance(day(200)),
        ),
        (
            Move(None, L, "signup", f"{k}-e1", day(0)),
            Move(L, F, "first_purchase", f"{k}-e2", day(1)),
        ),
        (welcome(day(0)), thanks(day(1), f"{k}-o1")),
    )


def _holdout_customer_is_marked() -> Journey:
    c = "cust-held-out-46"  # in welcome's 10% holdout bucket, in no other campaign's
    k = "held-out"
    return Journey(
        "holdout_customer_is_marked",
        "a customer in welcome's holdout: the trigger is still emitted, with holdout=true",
        c,
        (
            signup(f"{k}-e1", day(0), c),
            purchase(f"{k}-e2", day(1), c, f"{k}-o1", "30.00"),
            Advance(day(9)),
        ),
        (
            Move(None, L, "signup", f"{k}-e1", day(0)),
            Move(L, F, "first_purchase", f"{k}-e2", day(1)),
        ),
        (welcome(day(0), holdout=True), thanks(day(1), f"{k}-o1"), review(day(8), f"{k}-o1")),
    )


# DESIGN.md, Triggers: "frequency caps (default at most 1 marketing message per 24 h
# and 3 per 7 days, higher-priority campaign wins)". In both journeys below the capped
# mail has no higher priority than any mail already sent, so every reading agrees.


def _frequency_cap_one_per_day() -> Journey:
    c = "cust-cap-daily-2"
    k = "cap-daily"
    return Journey(
        "frequency_cap_one_per_day",
        "browse 1 h after the welcome: browse_abandonment (priority 55 < welcome's 70) is capped",
        c,
        (
            signup(f"{k}-e1", day(0), c),
            browse(f"{k}-e2", day(0, 11), customer=c, product="p-teapot"),
            Advance(day(1, 9)),
        ),
        (Move(None, L, "signup", f"{k}-e1", day(0)),),
        (welcome(day(0)),),
    )


def _frequency_cap_three_per_week() -> Journey:
    c = "cust-cap-weekly-4"
    k = "cap-weekly"
    return Journey(
        "frequency_cap_three_per_week",
        "four marketing mails a day apart within one week: the fourth (lowest priority) is capped",
        c,
        (
            signup(f"{k}-e1", day(0), c),
            cart(f"{k}-e2", day(1, 12), c, "add", "k1", "p-kettle", 1, "40.00"),
            browse(f"{k}-e3", day(2, 15), customer=c, product="p-teapot"),
            browse(f"{k}-e4", day(3, 19), customer=c, product="p-mug"),
            Advance(day(4)),
        ),
        (Move(None, L, "signup", f"{k}-e1", day(0)),),
        (
            welcome(day(0)),
            cart_mail(day(1, 13), [("p-kettle", 1, "40.00")], "40.00"),
            browse_mail(day(2, 17), ["p-teapot"]),
        ),
    )


JOURNEYS: tuple[Journey, ...] = (
    _prospect_browses_then_signs_up(),
    _known_visitor_becomes_lead(),
    _lead_never_buys(),
    _cart_abandoned_after_an_hour(),
    _cart_saved_at_59_minutes(),
    _cart_saved_at_exactly_one_hour(),
    _checkout_restarts_the_wait(),
    _browse_abandoned_after_two_hours(),
    _browse_then_cart_sends_cart_mail_only(),
    _review_request_after_each_purchase(),
    _no_review_for_a_refunded_order(),
    _second_purchase_nudge_after_30_days(),
    _no_nudge_after_second_purchase_on_day_20(),
    _first_time_buyer_churns_low_value(),
    _repeat_customer_churns_mid_value(),
    _big_spender_churns_high_value(),
    _slow_buyer_at_risk_after_twice_their_gap(),
    _churned_customer_comes_back(),
    _at_risk_customer_comes_back(),
    _four_purchases_in_a_year_make_loyal(),
    _loyal_customer_reviews_and_becomes_advocate(),
    _advocate_by_referral_then_lapses(),
    _loyal_lapses_and_comes_back_loyal(),
    _top_rfm_segment_makes_loyal(),
    _quiet_hours_hold_a_late_cart_mail(),
    _quiet_hours_across_daylight_saving(),
    _no_consent_gets_only_transactional_mail(),
    _consent_granted_later(),
    _unsubscribe_mid_journey(),
    _duplicate_event_changes_nothing(),
    _erase_stops_everything(),
    _holdout_customer_is_marked(),
    _frequency_cap_one_per_day(),
    _frequency_cap_three_per_week(),
)
"""Every journey, by name in ``Journey.name``; names and customer ids are unique."""

"""The lifecycle core: (state, input, playbook) -> (state, transitions, triggers).

Every business decision of the engine is made here, as a pure function: no
broker, no clock, no randomness. Time is an input: an event's own
``occurred_at``, or the ``now`` of a ``Due`` that advances a customer. One
entry point, ``apply``, takes every kind of input a customer's record can
receive (an event, a due timer, a merge claim, a prospect's history), so the
one partition runtime (``lifecycle.runtime``) that the backtest and the
worker share has one call to make, and they agree by construction.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from lifecycle.attribution import ATTRIBUTION_PREFIX, Conversion, close, credit, open_window
from lifecycle.flows import activity, interpreter
from lifecycle.flows.conditions import Ctx
from lifecycle.flows.counts import FlowEvent, flow_event
from lifecycle.flows.legacy import adopt_legacy
from lifecycle.flows.program import program
from lifecycle.ids import stable_id
from lifecycle.playbook import Playbook
from lifecycle.policy import ResolvedSend, Suppression, apply_caps, decide
from lifecycle.recommend import Recommender
from lifecycle.scoring import ScoresAt
from lifecycle.state import (
    CLAIMS_KEPT,
    HISTORY_KEPT,
    TRAITS_KEPT,
    CartLine,
    CustomerState,
    GuestOrders,
    Move,
    Profile,
    deep_copy,
    new_record,
    trusted,
)
from lifecycle.timers import AT_RISK, CHURNED, schedule
from schemas.events import (
    BrowseEvent,
    CartEvent,
    CustomEvent,
    EngagementEvent,
    Event,
    IdentifyEvent,
    PrivacyEvent,
    PurchaseEvent,
    RefundEvent,
    Scalar,
    SignupEvent,
    TraitValue,
)
from schemas.internal import Claim, ProspectHistory
from schemas.records import Attribution, Campaign, Group, Stage, Transition, Trigger

__all__ = ["Claim", "Due", "Input", "Outcome", "ProspectHistory", "apply"]

_BEFORE_PURCHASE = (None, Stage.PROSPECT, Stage.LEAD)

_MAX_TIMERS_PER_ADVANCE = 10_000


@dataclass(slots=True)
class Outcome:
    """What one input did. ``state`` None with ``erased`` means: delete the record."""

    state: CustomerState | None
    emitted: list[Transition | Trigger | Attribution] = field(default_factory=list)
    """Transitions, triggers and closed attribution windows, in the order they were decided."""
    suppressed: list[Suppression] = field(default_factory=list)
    duplicate: bool = False
    erased: bool = False
    fired: list[str] = field(default_factory=list)
    """Names of the timers that fired, in order."""
    claims: list[Claim] = field(default_factory=list)
    """Anonymous records to merge into this customer: the caller routes each one."""
    orders: list[list[str]] = field(default_factory=list)
    """The products of each order applied, for the caller to count in its
    co-purchase store once the record is safely written."""
    conversions: list[Conversion] = field(default_factory=list)
    """Goal events credited to open attribution windows, for live counters."""
    history: ProspectHistory | None = None
    """A retired prospect's history, for the caller to route to its customer."""
    flow_events: list[FlowEvent] = field(default_factory=list)
    """Runs of flows entered, exited (with the reason) and starts skipped, in order."""
    traits_dropped: int = 0
    """New trait names the record had no room for (``TRAITS_KEPT``), dropped."""
    changed: bool = True
    """False when ``state`` is the record as given, untouched (a redelivered event,
    nothing due, a merge already made): there is nothing to write."""

    @property
    def transitions(self) -> list[Transition]:
        return [r for r in self.emitted if isinstance(r, Transition)]

    @property
    def triggers(self) -> list[Trigger]:
        return [r for r in self.emitted if isinstance(r, Trigger)]

    @property
    def attributions(self) -> list[Attribution]:
        return [r for r in self.emitted if isinstance(r, Attribution)]


@dataclass(frozen=True, slots=True)
class Due:
    """The customer's partition clock reached ``now``: timers due strictly before it fire.

    Not a message: the runtime makes one for each customer its timer heap
    finds due, so a timer is an input to ``apply`` like any event.
    """

    now: datetime


Input = Event | Due | Claim | ProspectHistory
"""Everything that can change one customer's record."""

_Decided = tuple[int, Trigger, ResolvedSend, Callable[[], dict[str, Any]]]
"""A send a cause decided, not capped yet: where its trigger goes among the outputs,
the trigger, the send, and the maker of its payload."""


@dataclass(frozen=True, slots=True)
class _Cause:
    """What made a change: ``ref`` keys the ids, ``caused_by`` is what outputs show."""

    ref: str
    caused_by: str
    at: datetime


class _Step:
    """Collects the effects of one cause on one record into the shared Outcome."""

    def __init__(
        self,
        state: CustomerState,
        cause: _Cause,
        playbook: Playbook,
        outcome: Outcome,
        recommender: Recommender | None,
        *,
        fresh: bool = False,
    ) -> None:
        self.state = state
        self.cause = cause
        self.at = cause.at
        self.ref = cause.ref
        self.flow_events: list[FlowEvent] = outcome.flow_events
        self.playbook = playbook
        self.outcome = outcome
        self.recommender = recommender
        self.fresh = fresh
        """Whether this cause created the record (its segments start false)."""
        self.entered: list[Stage] = []
        """Stages entered by this cause, in order, for the flows that start on them."""
        self.scores = ScoresAt(state, cause.at, playbook.scores)
        """The record's scores at this step's time, computed once however often asked."""
        self.flow_ctx: Ctx | None = None
        """The flows' view of the record for this step, made when a condition first asks."""
        self._decided: list[_Decided] = []
        """Triggers awaiting the caps, with where they go among ``outcome.emitted``,
        the send each came from and its payload's maker."""

    def move(self, to: Stage, reason: str) -> None:
        """Change stage and record the transition; the flows react once the facts are in."""
        if self.state.stage == to:
            return
        self.outcome.emitted.append(
            trusted(
                Transition,
                transition_id=stable_id(
                    "transition", self.state.customer_id, self.cause.ref, to.value
                ),
                customer_id=self.state.customer_id,
                from_stage=self.state.stage,
                to_stage=to,
                reason=reason,
                at=self.at,
                caused_by=self.cause.caused_by,
                snapshot=self.scores.snapshot(),
            )
        )
        self.state.history.append(
            trusted(
                Move,
                at=self.at,
                from_stage=self.state.stage,
                to_stage=to,
                reason=reason,
                caused_by=self.cause.caused_by,
            )
        )
        del self.state.history[:-HISTORY_KEPT]
        self.state.stage = to
        self.entered.append(to)

    def send(
        self,
        send: ResolvedSend,
        *,
        trigger_id: str,
        holdout: bool,
        payload: Callable[[], dict[str, Any]],
    ) -> None:
        """Decide a flow's send: the policies, then the caps when the cause is done.

        The payload is built in ``finish``, for the triggers the caps keep: a
        suppression carries none, and a busy playbook's sends are often suppressed.
        Everything a payload reads was set by the cause's handler before any flow
        ran, so building it later builds the same payload."""
        decision = decide(
            self.state,
            send,
            trigger_id=trigger_id,
            holdout=holdout,
            cause=self.cause.ref,
            at=self.at,
            payload={},
            playbook=self.playbook,
        )
        if isinstance(decision, Trigger):
            self._decided.append((len(self.outcome.emitted), decision, send, payload))
        else:
            self.outcome.suppressed.append(decision)
            self._open(decision.trigger_id, send, decision.variant, "suppressed", decision)

    def _open(
        self,
        trigger_id: str,
        send: ResolvedSend,
        variant: str,
        group: Group,
        suppression: Suppression | None = None,
    ) -> None:
        """Start the decision's attribution window (marketing sends only)."""
        self.outcome.emitted.extend(
            open_window(
                self.state,
                trigger_id=trigger_id,
                send=send,
                variant=variant,
                group=group,
                reason=None if suppression is None else suppression.reason,
                at=self.at,
            )
        )

    def credit(
        self,
        event_id: str,
        *,
        purchase: bool,
        order_id: str | None = None,
        revenue: Decimal = Decimal(0),
    ) -> None:
        """Credit a goal event to the windows open before this cause decided anything."""
        self.outcome.conversions.extend(
            credit(
                self.state,
                event_id=event_id,
                at=self.at,
                purchase=purchase,
                order_id=order_id,
                revenue=revenue,
            )
        )

    def recommend(self, seeds: list[str]) -> list[str]:
        if self.recommender is None:
            return []
        return self.recommender.recommend(seeds, owned=self.state.bought)

    def finish(self) -> None:
        """Apply the frequency caps to what this cause decided, then emit the survivors,
        each with its payload, where they were decided (after the transition that sent
        them)."""
        if not self._decided:
            return
        kept, capped = apply_caps(
            self.state, [(t, send) for _, t, send, _ in self._decided], self.playbook, self.at
        )
        self.outcome.suppressed.extend(capped)
        sends = {t.trigger_id: send for _, t, send, _ in self._decided}
        survivors = {t.trigger_id for t in kept}
        for position, trigger, _, payload in reversed(self._decided):
            if trigger.trigger_id in survivors:
                trigger.payload.update(payload())  # ``send`` gave it a dict of its own
                self.outcome.emitted.insert(position, trigger)
        for trigger in kept:
            group: Group = "holdout" if trigger.holdout else "treated"
            self._open(trigger.trigger_id, sends[trigger.trigger_id], trigger.variant, group)
        for suppression in capped:
            self._open(
                suppression.trigger_id,
                sends[suppression.trigger_id],
                suppression.variant,
                "suppressed",
                suppression,
            )
        self._decided.clear()

    def keep_payloads(self) -> None:
        """Build this cause's payloads now, from the record as the cause leaves it: its
        sends go through the caps later, with those of another cause at the same instant
        (``_fire_due``), which may change the record first."""
        self._decided = [
            (position, trigger, send, _made(payload()))
            for position, trigger, send, payload in self._decided
        ]

    def absorb(self, earlier: list[_Step]) -> None:
        """Take the sends of the causes ``earlier`` (in their order, before this one's),
        not capped yet, to cap them with this cause's own."""
        self._decided[:0] = [decided for step in earlier for decided in step.hand_over()]

    def hand_over(self) -> list[_Decided]:
        """This cause's sends, not capped yet, for another cause to cap (``absorb``)."""
        decided, self._decided = self._decided, []
        return decided

    def greeting(self) -> dict[str, Any]:
        """What every template may use: who, in which language, and which segment."""
        state = self.state
        profile = state.profile
        prediction = self.scores.prediction()
        return {
            "email": profile.email,
            "first_name": profile.first_name,
            "locale": profile.locale,
            "segment": self.scores.rfm_segment(),
            "clv": str(state.revenue),
            "clv_tier": self.playbook.scores.clv_tiers.tier(state.revenue),
            "p_alive": None if prediction is None else prediction.p_alive,
            "predicted_clv": None if prediction is None else str(prediction.predicted_clv),
        }


def _made(payload: dict[str, Any]) -> Callable[[], dict[str, Any]]:
    """The maker of a payload built already."""
    return lambda: payload


def _signup(step: _Step, event: SignupEvent) -> None:
    state = step.state
    first_signup = state.signed_up_at is None
    # An absent field keeps what a privacy consent event already said.
    given = "marketing_consent" in event.model_fields_set
    before = state.profile
    state.profile = Profile(
        email=event.email,
        first_name=event.first_name or state.profile.first_name,
        locale=event.locale or state.profile.locale,
        timezone=event.timezone or state.profile.timezone,
        country=event.country or state.profile.country,
        source=event.source or state.profile.source,
        referred_by=event.referred_by or state.profile.referred_by,
        marketing_consent=before.marketing_consent,
        unsubscribed=before.unsubscribed,
        traits=_traits(step, before.traits, event.traits),
    )
    # Set only when there are some, as decoding the record counts them (absent when empty).
    if before.channel_consent:
        state.profile.channel_consent = before.channel_consent
    if before.unsubscribed_from:
        state.profile.unsubscribed_from = before.unsubscribed_from
    if given:
        state.profile.consent(event.marketing_consent, None)
    _claim(step, event.anonymous_id)
    if not first_signup:
        return
    state.signed_up_at = event.occurred_at
    if state.stage in _BEFORE_PURCHASE:
        step.move(Stage.LEAD, "signup")


def _traits(
    step: _Step, traits: dict[str, Scalar], given: dict[str, TraitValue]
) -> dict[str, Scalar]:
    """The record's traits after an event's: per name, the event's value replaces the one
    on record, and ``null`` removes it. A name not on record is added while there is
    room for it (``TRAITS_KEPT``), else dropped and counted."""
    if not given:
        return traits
    merged = dict(traits)
    for name, value in given.items():
        if value is None:
            merged.pop(name, None)
        elif name in merged or len(merged) < TRAITS_KEPT:
            merged[name] = value
        else:
            step.outcome.traits_dropped += 1
    return merged


def _identify(step: _Step, event: IdentifyEvent) -> None:
    if event.traits:
        profile = step.state.profile
        profile.traits = _traits(step, profile.traits, event.traits)
    if step.state.stage in _BEFORE_PURCHASE:
        step.move(Stage.LEAD, "identify")
    _claim(step, event.anonymous_id)


def _claim(step: _Step, anonymous_id: str | None) -> None:
    state = step.state
    if (
        anonymous_id
        and anonymous_id != state.customer_id
        and anonymous_id not in state.anonymous_ids
    ):
        claim = Claim(
            anonymous_id=anonymous_id,
            customer_id=state.customer_id,
            at=step.at,
            cause=step.cause.ref,
        )
        step.outcome.claims.append(claim)
        if anonymous_id not in state.claimed:
            state.claimed.append(anonymous_id)
            del state.claimed[:-CLAIMS_KEPT]


def _browse(step: _Step, event: BrowseEvent) -> None:
    state = step.state
    if state.stage is None:
        step.move(Stage.PROSPECT, "browse_without_signup")
    activity.log_view(step, event)
    viewed = event.product_id  # a category page starts a browse run, but is no product
    if viewed is None:
        return
    limit = step.playbook.campaigns[Campaign.BROWSE_ABANDONMENT].max_products
    if state.signed_up_at is None:  # kept for when the visitor becomes known
        _remember_view(state.prospect_views, viewed, step.playbook)
        if not state.runs:  # a run's viewed_products reads only the views since it began
            return
    activity.remember_view(state, viewed, event.occurred_at, limit)


def _remember_view(views: list[str], viewed: str, playbook: Playbook) -> None:
    if viewed in views:
        views.remove(viewed)
    views.append(viewed)
    del views[: -playbook.campaigns[Campaign.BROWSE_ABANDONMENT].max_products]


def _cart(step: _Step, event: CartEvent) -> None:
    """Track the cart's lines (the cart_abandonment flow reads them).

    A checkout that names a product (a buy-now button, or a shop that reports
    checkouts but not adds) sets that line as it stands rather than adding to it:
    the checkout's cart is what a cart_abandonment mail shows, and without its
    line an abandoned checkout of a cart never reported would send nothing.
    """
    state = step.state
    if state.stage is None:
        step.move(Stage.PROSPECT, "cart_without_signup")
    if state.cart_id != event.cart_id:
        state.cart.clear()
        state.cart_id = event.cart_id
    product = event.product_id
    if event.action != "remove" and product and event.quantity and event.unit_price is not None:
        line = state.cart.get(product)
        quantity = event.quantity
        if event.action == "add" and line is not None:
            quantity += line.quantity
        state.cart[product] = CartLine(
            quantity=quantity, unit_price=event.unit_price, currency=event.currency or "XXX"
        )
    elif event.action == "remove" and product in state.cart and event.quantity:
        left = state.cart[product].quantity - event.quantity
        if left > 0:
            state.cart[product] = state.cart[product].model_copy(update={"quantity": left})
        else:
            del state.cart[product]
    if event.action == "checkout_started":
        step.credit(event.event_id, purchase=False)


def _loyal_reason(step: _Step) -> str | None:
    state = step.state
    rule = step.playbook.stages.loyal
    since = step.at - rule.within
    recent = len(state.purchase_times) - bisect.bisect_left(state.purchase_times, since)
    if recent >= rule.min_orders:
        return "loyal_orders"
    scores = step.scores.rfm()
    top = rule.rfm
    if top and scores and scores.r >= top.r and scores.f >= top.f and scores.m >= top.m:
        return "loyal_rfm"
    return None


def _purchase(step: _Step, event: PurchaseEvent) -> None:
    state = step.state
    if event.order_id in state.order_net:
        step.outcome.duplicate = True  # the same order under a new event id
        return
    step.credit(event.event_id, purchase=True, order_id=event.order_id, revenue=event.total)
    state.order_net[event.order_id] = event.total
    state.orders += 1
    state.revenue += event.total
    state.first_order_at = min(state.first_order_at or event.occurred_at, event.occurred_at)
    state.last_order_at = max(state.last_order_at or event.occurred_at, event.occurred_at)
    if all(t.date() != event.occurred_at.date() for t in state.purchase_times):
        state.purchase_days += 1
    bisect.insort(state.purchase_times, event.occurred_at)
    del state.purchase_times[: -step.playbook.stages.purchases_kept]
    products = [item.product_id for item in event.items]
    state.cart.clear()
    state.cart_id = None
    activity.log_purchase(step, event)
    _purchase_moves(step)
    state.bought = [p for p in state.bought if p not in products] + list(dict.fromkeys(products))
    del state.bought[: -step.playbook.recommendations.owned_kept]
    step.outcome.orders.append(products)


def _purchase_moves(step: _Step, merged: str | None = None, *, latest: bool = True) -> None:
    """A purchase makes one move on the ladder, then loyalty is checked.

    At risk or churned comes back as reactivated, and the purchase after
    reactivation makes a repeat customer (docs/campaigns.md, Stages). A merge's guest
    orders (``_order_moves``) name every move ``merged``, and make those two only when
    one of them is ``latest``: placed after the customer's last move.
    """
    state = step.state
    stage = state.stage
    if stage in (Stage.AT_RISK, Stage.CHURNED):
        if latest:
            step.move(Stage.REACTIVATED, merged or f"purchase_while_{stage.value}")
        return
    if stage is Stage.REACTIVATED:
        if latest:
            step.move(Stage.REPEAT_CUSTOMER, merged or "purchase_after_reactivation")
    elif stage in _BEFORE_PURCHASE:
        step.move(Stage.FIRST_TIME_BUYER, merged or "first_purchase")
    if (
        state.stage is Stage.FIRST_TIME_BUYER
        and state.orders >= step.playbook.stages.repeat_min_orders
    ):
        step.move(Stage.REPEAT_CUSTOMER, merged or "repeat_purchase")
    if state.stage is Stage.REPEAT_CUSTOMER:
        reason = _loyal_reason(step)
        if reason is not None:
            step.move(Stage.LOYAL, reason)


def _refund(step: _Step, event: RefundEvent) -> None:
    """Refunds lower net revenue; a fully refunded order no longer counts as an order.

    A refund for an order this customer never placed changes nothing, and the
    amount is capped at what is left of the order, so revenue never goes negative.
    (The review_request flow ends on a refund that leaves nothing of the order.)
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
    if event.action in ("unsubscribe", "complaint") and event.channel is not None:
        step.state.profile.unsubscribe(event.channel)
    elif event.action in ("review", "referral") and step.state.stage is Stage.LOYAL:
        step.move(Stage.ADVOCATE, f"loyal_{event.action}")


def _privacy(step: _Step, event: PrivacyEvent) -> None:
    if event.action == "erase":
        step.outcome.state = None
        step.outcome.erased = True
    elif event.granted is not None:
        step.state.profile.consent(event.granted, event.channel)


def _remember(state: CustomerState, event_id: str, window: int) -> None:
    state.recent_event_ids.append(event_id)
    if len(state.recent_event_ids) > window:
        del state.recent_event_ids[: len(state.recent_event_ids) - window]


# --- timers ------------------------------------------------------------------------


def _fire_one(step: _Step, name: str) -> None:
    """One due timer; ``schedule`` only lists timers whose rule still applies."""
    if name == AT_RISK:
        step.move(Stage.AT_RISK, "no_purchase_at_risk")
    elif name == CHURNED:
        step.move(Stage.CHURNED, "no_purchase_churned")
    else:
        interpreter.on_timer(step, name)
    interpreter.after_cause(step)


def _refresh_prediction(step: _Step) -> None:
    """Store in the record the prediction this step computed for an output (a
    transition's snapshot, a payload, a condition), as of the step's time.

    A step that needed none computes none: the record's copy is a convenience
    (``/customers/{id}`` computes its own scores at its own time), so it holds
    the latest prediction an output used, and a suppressed send, which carries
    no payload, is not such an output."""
    state = step.state
    if state.predicted_at is not None and step.at < state.predicted_at:
        return  # a late event: the predictions already look further ahead
    prediction = step.scores.known_prediction()
    if prediction is not None:
        state.p_alive = prediction.p_alive
        state.predicted_clv = prediction.predicted_clv
        state.predicted_at = step.at


def _fire(
    state: CustomerState,
    before: datetime,
    playbook: Playbook,
    outcome: Outcome,
    recommender: Recommender | None,
) -> None:
    """Fire, earliest first, every timer of ``state`` due before ``before``.

    After each one that needs a step the timers are derived again: going at
    risk may leave churn due too, and a timer whose rule no longer holds has
    disappeared. A window's close removes only its own timer, so the due ones
    are sorted once per derivation and closed in that order. Timers due at the
    same instant go through the caps together (``_fire_due``).
    """
    fired = 0
    while fired < _MAX_TIMERS_PER_ADVANCE:
        due_now = [(due, name) for name, due in state.timers.items() if due < before]
        if not due_now:
            return
        due_now.sort()
        for due, name in due_now:
            fired += 1
            if not name.startswith(ATTRIBUTION_PREFIX):
                break
            # A window's close removes the window and nothing else: of the timers
            # ``schedule`` derives only its own goes, and no rule needs a step.
            trigger_id = name.removeprefix(ATTRIBUTION_PREFIX)
            outcome.emitted.append(close(state, trigger_id, due))
            outcome.fired.append(name)
            del state.timers[name]
            if fired >= _MAX_TIMERS_PER_ADVANCE:
                return
        else:
            return  # every due timer was a window's close
        together = [
            other
            for at, other in due_now
            if at == due and other != name and not other.startswith(ATTRIBUTION_PREFIX)
        ]
        fired += len(together)
        _fire_due(state, due, [name, *together], playbook, outcome, recommender)


def _fire_due(
    state: CustomerState,
    due: datetime,
    names: list[str],
    playbook: Playbook,
    outcome: Outcome,
    recommender: Recommender | None,
) -> None:
    """Fire the timers ``names``, all due at ``due``, in that order, and cap their sends
    together: the higher priority wins, as among one cause's sends (the frequency caps,
    docs/campaigns.md), not the timer whose name sorts first (two flows whose waits end
    together).

    Each is a cause of its own (its id, and the payloads of its sends built from the
    record as it leaves it), and the timers are derived again after it, so a timer
    whose rule the one before removed or moved does not fire. The last cause's
    payloads are built after the caps, for the sends they keep, as for a timer due
    alone. After the caps the timers are derived once more (the windows the sends
    opened); a timer whose rule did not consume it is dropped, so none fires twice.
    """
    steps: list[_Step] = []
    fired: list[str] = []
    pending = False  # a timer fired, and the record's timers are not derived since
    for name in names:
        if pending:
            steps[-1].keep_payloads()
            _derive(state, playbook, due, fired[-1:])
            pending = False
        if state.timers.get(name) != due:
            continue
        step = _Step(
            state,
            _Cause(f"timer:{name}:{due.isoformat()}", f"timer:{name}", due),
            playbook,
            outcome,
            recommender,
        )
        _fire_one(step, name)
        steps.append(step)
        fired.append(name)
        outcome.fired.append(name)
        pending = True
    last = steps[-1]
    last.absorb(steps[:-1])
    last.finish()
    for step in steps:
        _refresh_prediction(step)
    _derive(state, playbook, due, fired)


def _derive(state: CustomerState, playbook: Playbook, due: datetime, fired: list[str]) -> None:
    """The record's timers derived again after ``fired`` fired at ``due``; one that its
    rule did not consume goes, so it never fires twice."""
    state.timers = schedule(state, playbook)
    for name in fired:
        if state.timers.get(name) == due:
            del state.timers[name]


def apply(
    state: CustomerState | None,
    input: Input,
    playbook: Playbook,
    recommender: Recommender | None = None,
    *,
    in_place: bool = False,
) -> Outcome:
    """Apply one input to one customer's record (None for a customer not seen yet).

    - an ``Event``: the customer's own timers due before the event's time fire
      first, so the result does not depend on how far the caller's clock had
      got; a redelivered event (same event_id) returns the record unchanged
      with ``duplicate`` set;
    - a ``Due``: every timer due before its ``now`` fires, in due order; with
      nothing due (or no record) the same record comes back, Outcome empty;
    - a ``Claim``: the anonymous visitor's side of a merge, the prospect is
      deleted and its history handed on in ``Outcome.history``;
    - a ``ProspectHistory``: the customer's side of a merge, folded in.

    The input record is never mutated, unless ``in_place``: then the given
    record itself is changed instead of a copy, for a caller that keeps no
    other reference to it and drops or rebuilds it if this raises (the
    partition runtime, on a record its store says is its own). Copying a
    record before every change is a tenth of the core's time. A copy shares
    nothing mutable with the given record, so the caller may change it in
    place in turn (a worker's batch does).
    """
    match input:
        case Due():
            return _advance(state, input.now, playbook, recommender, in_place)
        case Claim():
            return _retire(state, input)
        case ProspectHistory():
            return _fold(state, input, playbook, in_place)
        case _:
            return _event(state, input, playbook, recommender, in_place)


def _advance(
    state: CustomerState | None,
    now: datetime,
    playbook: Playbook,
    recommender: Recommender | None,
    in_place: bool,
) -> Outcome:
    """Advance one customer to ``now``: every timer due before it fires, in due order.

    Date flows the playbook gained since the record last changed are scheduled first,
    from ``now`` on (``interpreter.unscheduled_dates``): a worker wakes each record
    that may lack one once, when it rebuilds its timers (``agents.partitions``)."""
    if state is None:
        return Outcome(state=None, changed=False)  # erased since the timer was scheduled
    due = [name for name, at in state.timers.items() if at < now]
    dates = interpreter.unscheduled_dates(state, playbook, now)
    if not due and not dates:
        return Outcome(state=state, changed=False)
    current = state if in_place else deep_copy(state)
    outcome = Outcome(state=current)
    _adopt(current, playbook)
    if dates:
        current.dates.update(dates)
        current.timers = schedule(current, playbook)
    _fire(current, now, playbook, outcome, recommender)
    return outcome


def _adopt(state: CustomerState, playbook: Playbook) -> None:
    """A record an older version wrote: its campaign fields become flow runs, first."""
    if state.legacy is not None:
        adopt_legacy(state, playbook)
        state.timers = schedule(state, playbook)


def _event(
    state: CustomerState | None,
    event: Event,
    playbook: Playbook,
    recommender: Recommender | None,
    in_place: bool,
) -> Outcome:
    """One accepted event, after the customer's own timers due before it."""
    if state is not None and event.event_id in state.recent_event_ids:
        return Outcome(state=state, duplicate=True, changed=False)
    if state is None:
        current = new_record(event.key, event.occurred_at)
    else:
        current = state if in_place else deep_copy(state)
        current.last_event_at = max(current.last_event_at, event.occurred_at)
    outcome = Outcome(state=current)
    _adopt(current, playbook)
    _fire(current, event.occurred_at, playbook, outcome, recommender)
    cause = _Cause(event.event_id, event.event_id, event.occurred_at)
    step = _Step(current, cause, playbook, outcome, recommender, fresh=state is None)
    match event:
        case SignupEvent():
            _signup(step, event)
        case IdentifyEvent():
            _identify(step, event)
        case BrowseEvent():
            _browse(step, event)
        case CartEvent():
            _cart(step, event)
        case PurchaseEvent():
            _purchase(step, event)
        case EngagementEvent():
            _engagement(step, event)
        case PrivacyEvent():
            _privacy(step, event)
        case RefundEvent():
            _refund(step, event)
        case CustomEvent():
            pass  # a fact for flows to match on
    if outcome.state is None:
        interpreter.on_erase(step)
    elif not outcome.duplicate:  # an order already counted is invisible to flows
        interpreter.on_event(step, event)
    step.finish()
    if outcome.state is not None:
        _remember(outcome.state, event.event_id, playbook.dedup.event_ids_per_customer)
        outcome.state.timers = schedule(outcome.state, playbook)
        _refresh_prediction(step)
    return outcome


def _retire(state: CustomerState | None, claim: Claim) -> Outcome:
    """The anonymous visitor's side of a merge: delete the prospect, hand on its history.

    Only a record that never signed up is retired; a missing one (already
    merged, or never seen) gives nothing, so a repeated claim is harmless.
    """
    if state is None or state.signed_up_at is not None:
        return Outcome(state=state, duplicate=True, changed=False)
    history = ProspectHistory(
        anonymous_id=claim.anonymous_id,
        customer_id=claim.customer_id,
        at=claim.at,
        cause=claim.cause,
        first_seen_at=state.first_seen_at,
        views=tuple(state.prospect_views),
        view_log=tuple(state.view_log),
        view_marks=tuple(state.views) if state.runs else (),  # what a run's send may read
        runs=tuple(state.runs.values()),
        entered=dict(state.entered),
        cart_id=state.cart_id if state.cart else None,
        cart=dict(state.cart),
        orders=_guest_orders(state),
    )
    return Outcome(state=None, history=history)


def _guest_orders(state: CustomerState) -> GuestOrders | None:
    """The visitor's orders, for the customer's record; None for a visitor who bought
    nothing (the history is then the message a worker of an earlier version reads)."""
    if not state.order_net or state.first_order_at is None or state.last_order_at is None:
        return None
    return GuestOrders(
        order_net=dict(state.order_net),
        first_order_at=state.first_order_at,
        last_order_at=state.last_order_at,
        purchase_days=state.purchase_days,
        purchase_times=tuple(state.purchase_times),
        bought=tuple(state.bought),
        bought_log=tuple(state.bought_log),
    )


def _fold_orders(
    state: CustomerState, guest: GuestOrders, at: datetime, playbook: Playbook
) -> bool:
    """A guest's orders become the customer's, as if the customer had placed them: the
    order count, revenue, order times and products bought. An order the customer's
    record has already (the shop sent it again with the customer's id) counts once.
    False when none was new."""
    new = {order: net for order, net in guest.order_net.items() if order not in state.order_net}
    if not new:
        return False
    state.order_net.update(new)
    state.orders += sum(1 for net in new.values() if net > 0)
    state.revenue += sum(new.values(), Decimal(0))
    first, last = state.first_order_at, state.last_order_at
    # Days with a purchase on both sides count once. The records keep only their latest
    # times, and their first: a day shared outside those is counted twice.
    own_days = {t.date() for t in (*state.purchase_times, *([first] if first else []))}
    guest_days = {t.date() for t in (*guest.purchase_times, guest.first_order_at)}
    state.purchase_days += guest.purchase_days - len(own_days & guest_days)
    state.first_order_at = (
        guest.first_order_at if first is None else min(first, guest.first_order_at)
    )
    state.last_order_at = guest.last_order_at if last is None else max(last, guest.last_order_at)
    if len(new) == len(guest.order_net):  # distinct orders: each time counts, ties too
        times = sorted([*state.purchase_times, *guest.purchase_times])
    else:  # an order on both sides: its time once (when the shop sent the same time)
        times = sorted(set(state.purchase_times).union(guest.purchase_times))
    state.purchase_times = times[-playbook.stages.purchases_kept :]
    # Most recent last: the guest's products after the customer's own when the guest
    # bought later (a guest checkout, then a login), before them otherwise.
    if last is not None and guest.last_order_at > last:
        theirs = set(guest.bought)
        bought = [p for p in state.bought if p not in theirs] + list(guest.bought)
    else:
        mine = set(state.bought)
        bought = [p for p in guest.bought if p not in mine] + state.bought
    state.bought = bought[-playbook.recommendations.owned_kept :]
    activity.fold_bought(state, guest.bought_log, at, playbook)
    return True


def _order_moves(step: _Step, guest: GuestOrders) -> None:
    """The moves a guest's orders make once they are the customer's, as a purchase's
    would (``merged_orders``). A guest order placed after the customer went at risk or
    churned (a login after a guest checkout) reactivates them, and one after the
    reactivation makes a repeat customer; an order placed before that move does not
    undo it."""
    state = step.state
    if state.orders == 0:  # every guest order refunded
        return
    last = state.history[-1] if state.history else None
    since = last.at if last is not None and last.to_stage is state.stage else None
    _purchase_moves(step, "merged_orders", latest=since is not None and guest.last_order_at > since)


def _reborn(state: CustomerState, history: ProspectHistory) -> bool:
    """Whether ``state`` is a record the id began after an erase, not the one whose signup
    or login claimed the visitor: it holds no such claim (``claimed``; a record an
    earlier version wrote holds none, but the claiming event among its recent ids)."""
    return history.anonymous_id not in state.claimed and history.cause not in state.recent_event_ids


def _fold(
    state: CustomerState | None, history: ProspectHistory, playbook: Playbook, in_place: bool
) -> Outcome:
    """The customer's side of a merge: keep the prospect's history and the identity link.

    The visitor's views join the customer's (``viewed`` conditions count the
    browsing before signup), its waiting runs go on as the customer's, at
    their step and wake time, its cart becomes the customer's if the customer
    has none (a guest's cart, carried over at login), and its orders count as the
    customer's (``_fold_orders``, with the stage moves they make); segments are
    evaluated after, as after any change.
    The views, first-seen time and runs' last starts fold in as a union, a minimum and a
    maximum, which the history's arrival among the customer's own events does not
    change; the cart and the waiting runs do depend on it (a cart the customer filled
    meanwhile is kept; a run meets only the events applied after the fold: see
    docs/architecture.md, "Identity merge across partitions"). A second fold of the
    same visitor changes nothing.
    """
    if state is not None and history.anonymous_id in state.anonymous_ids:
        return Outcome(state=state, duplicate=True, changed=False)  # folded before
    if state is None or _reborn(state, history):
        # Erased meanwhile, the record gone or begun again after the claim: the
        # visitor's history went with the erased record, and its runs end with it.
        ended = [flow_event(run.flow, "exited", "erased") for run in history.runs]
        return Outcome(state=state, duplicate=not ended, changed=False, flow_events=ended)
    current = state if in_place else deep_copy(state)
    current.anonymous_ids.append(history.anonymous_id)
    if history.anonymous_id in current.claimed:
        current.claimed.remove(history.anonymous_id)
    current.first_seen_at = min(current.first_seen_at, history.first_seen_at)
    for viewed in history.views:
        if viewed not in current.prospect_views:
            current.prospect_views.append(viewed)
    limit = playbook.campaigns[Campaign.BROWSE_ABANDONMENT].max_products
    current.prospect_views = sorted(current.prospect_views)[:limit]
    for mark in history.view_marks:  # a union by product and last view, as fold_views makes
        activity.remember_view(current, mark.product, mark.at, limit)
    for key, entered in history.entered.items():  # the latest start, for re_entry
        current.entered[key] = max(current.entered.get(key, entered), entered)
    if history.cart and not current.cart:  # a guest's cart, carried over at signup or login
        current.cart_id = history.cart_id
        current.cart = dict(history.cart)
    # The history crosses two partitions and may arrive after the customer's later
    # events: what it changes is decided at the record's own latest time.
    at = max(history.at, current.last_event_at)
    activity.fold_views(current, history.view_log, at, playbook)
    ordered = history.orders is not None and _fold_orders(current, history.orders, at, playbook)
    outcome = Outcome(state=current)
    if ordered or history.runs or program(playbook).index.tracked_segments:
        _adopt(current, playbook)
        ref = f"merge:{history.anonymous_id}:{history.cause}"
        # A stage move shows the signup or login that merged the visitor as its cause.
        step = _Step(current, _Cause(ref, history.cause, at), playbook, outcome, None)
        if ordered and history.orders is not None:
            _order_moves(step, history.orders)
        interpreter.take_runs(step, history.runs)
        interpreter.after_cause(step)  # a merge is a change too
        step.finish()
        _refresh_prediction(step)
        current.timers = schedule(current, playbook)
    return outcome

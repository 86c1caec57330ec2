"""The contract's flows and segments example, run as journeys with exact outputs.

The playbook is the example's YAML block, verbatim (``DESIGN_PLAYBOOK``), plus one
flow of our own (``nordic_wishlist``) that uses the two segments the example
defines but no flow of it uses (``nordics``, ``coffee``). It is laid over the
default playbook, as a shop's file is, so the built-in campaigns still run and
the policies (docs/flows.md, Sends) apply to everything literally: at most 1
marketing message per 24 h and 3 per 7 days (two messages count against each
other when their send times are closer than the window; messages already sent
stand, and among those decided together the higher priority goes first, the one
decided first on a tie), a 10% holdout per flow, quiet hours only for a customer
with a zone.

What that means for the example's ``cart_series``: the built-in
``cart_abandonment`` (priority 80) waits the same hour, so at the first hour
one of the two is capped by the other (the built-in's timer fires first and it
is the higher priority, so ``cart_1`` loses either way), and ``cart_2`` at
T+24 h is 23 h after it and capped too. A series' later mail goes out only when
the first hour's mails were both capped by a message sent at most 23 h before
the cart (here, the welcome or the VIP welcome). The journeys state exactly that.

Readings where the contract is silent, which these journeys hold: steps are index
paths as strings; an entry or send-time filter failure shows as ``entered`` then
``exited filters``; the holdout draw is a hash of (flow, customer); a run's waits
count from the decision time; an ``exit_on`` and a trigger on the same event end
the old run before a new one starts; a flow named like a built-in replaces it
whole (so ``win_back``'s ints replace the built-in's strings); the built-ins are
flows named like their campaigns whose sends sit at step ``"0"``, or ``"1"`` after
their wait; within one cause, stage_enter sends are decided before event sends,
and segment_enter sends after both.

Customers are chosen (``tests.scenarios`` conventions) so that no flow holds
them out, except ``cust-coffee-held-239``, in replenish_coffee's 10% only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from decimal import Decimal

from lifecycle.flows.counts import FlowEvent
from schemas.records import Campaign
from tests.scenarios.model import Advance, Body, Journey, Move, Send, Suppressed
from tests.scenarios.steps import (
    ADV,
    LOYAL,
    F,
    L,
    P,
    R,
    at,
    at_risk,
    browse,
    cart,
    cart_mail,
    churned,
    day,
    engagement,
    loyalty_reward,
    nudge,
    purchase,
    refund,
    review,
    signup,
    thanks,
    welcome,
)
from tests.scenarios.stories import lapses, lead

DESIGN_PLAYBOOK = """\
segments:                    # named conditions over the customer record
  vip:       {all: [{field: revenue, gte: 500}, {field: stage, in: [loyal, advocate]}]}
  coffee:    {bought: {category: coffee, within: 180d}}
  nordics:   {field: traits.country, in: [NO, SE, DK]}

flows:
  replenish_coffee:
    trigger: {event: purchase, where: {items.category: coffee}}
    exit_on: [{event: purchase, where: {items.category: coffee}}]
    filters: [{field: p_alive, gte: 0.2}]     # at entry and before every send
    re_entry: always                          # always (default) | once | DURATION
    holdout: 0.1                              # per flow, drawn at entry
    steps:
      - wait: 25d
      - send: {campaign: replenish_coffee, channel: email, priority: 50}
  cart_series:
    trigger: {event: cart, where: {action: add}}
    exit_on: [{event: purchase}]
    steps:
      - wait: 1h
      - send: {campaign: cart_1}
      - wait: 23h
      - branch:
          if: {segment: vip}
          then: [{send: {campaign: cart_2_vip, data: {discount_percent: 10}}}]
          else: [{send: {campaign: cart_2}}]
  vip_welcome:   {trigger: {segment_enter: vip}, steps: [{send: {campaign: vip_welcome}}]}
  win_back:
    trigger: {stage_enter: churned}
    steps: [{send: {campaign: win_back, data: {discount_percent: {by: clv_tier, high: 20, mid: 15, low: 10}}}}]
  birthday:      {trigger: {date: traits.birthday, at: "09:00"}, steps: [{send: {campaign: birthday}}]}
"""  # noqa: E501
"""The contract's flows and segments example, its YAML block exactly as written there."""

NORDIC_WISHLIST = """\
  nordic_wishlist:           # ours: the example's nordics and coffee segments at work
    trigger: {event: custom, where: {name: wishlist_add}}
    filters: [{segment: nordics}]
    steps:
      - wait: 1d
      - branch:
          if: {segment: coffee}
          then: [{send: {campaign: wishlist_coffee, channel: push}}]
          else: [{send: {campaign: wishlist_reminder}}]
"""

FLOWS_PLAYBOOK = DESIGN_PLAYBOOK + NORDIC_WISHLIST
"""The journeys' playbook: the example's block, and one more flow in its ``flows``."""

HIGHLIGHTS = {
    "replenish_coffee": ("p_alive",),
    "cart_2_vip": ("discount_percent",),
}
"""The payload fields judged for the example's own campaigns (beyond ``model.HIGHLIGHTS``)."""

# --- events ------------------------------------------------------------------------------


def order(
    event_id: str,
    when: datetime,
    customer: str,
    order_id: str,
    lines: Sequence[tuple[str, str, int, str]],
) -> Body:
    """A purchase of ``lines`` (product, category, quantity, unit price), totalled."""
    total = sum((Decimal(price) * quantity for _, _, quantity, price in lines), Decimal(0))
    body = dict(purchase(event_id, when, customer, order_id, f"{total:.2f}"))
    body["items"] = [
        {"product_id": p, "category": c, "quantity": q, "unit_price": u} for p, c, q, u in lines
    ]
    return body


def coffee(event_id: str, when: datetime, customer: str, order_id: str) -> Body:
    """A bag of beans (category ``coffee``) for 14.00."""
    return order(event_id, when, customer, order_id, [("p-beans", "coffee", 1, "14.00")])


def custom(event_id: str, when: datetime, customer: str, name: str, **properties: object) -> Body:
    return {
        "event_id": event_id,
        "type": "custom",
        "occurred_at": when.isoformat(),
        "customer_id": customer,
        "name": name,
        "properties": properties,
    }


# --- expectations --------------------------------------------------------------------------


def sent(
    campaign: str,
    flow: str,
    step: str,
    when: datetime,
    payload: dict[str, object] | None = None,
    *,
    holdout: bool = False,
    channel: str = "email",
) -> Send:
    """A send of one of the playbook's own flows (``flow`` None when named like the campaign)."""
    own = None if flow == campaign else flow
    return Send(campaign, when, holdout, None, payload, None, own, step, channel)


def capped(campaign: str, flow: str, step: str) -> Suppressed:
    return Suppressed(campaign, flow, step, "frequency_cap")


CART_MAIL_CAPPED = capped("cart_abandonment", "cart_abandonment", "1")
CART_1_CAPPED = capped("cart_1", "cart_series", "1")


def ran(flow: str, reason: str = "completed") -> tuple[FlowEvent, FlowEvent]:
    """A run of ``flow``: entered, then exited for ``reason``."""
    return FlowEvent(flow, "entered"), FlowEvent(flow, "exited", reason)


def flows_journey(
    journey: Journey,
    *,
    suppressed: Sequence[Suppressed] = (),
    flow_events: Sequence[FlowEvent] = (),
) -> Journey:
    """``journey`` (built with the default playbook's builders) on ``FLOWS_PLAYBOOK``."""
    return replace(
        journey,
        playbook=FLOWS_PLAYBOOK,
        highlights=HIGHLIGHTS,
        suppressed=tuple(suppressed),
        flow_events=tuple(flow_events),
    )


# --- replenish_coffee ------------------------------------------------------------------------


def _replenished_after_25_days(customer: str, key: str, *, held_out: bool) -> Journey:
    name = "replenish_coffee_held_out_is_marked" if held_out else "replenish_coffee_after_25_days"
    about = (
        "in replenish_coffee's 10% holdout: the reminder is emitted with holdout=true"
        if held_out
        else "a coffee order: replenish_coffee 25 days later (p_alive 1.0, one order), then "
        "the nudge on day 31"
    )
    return flows_journey(
        lead(
            name,
            about,
            customer,
            key,
            (coffee(f"{key}-e2", day(1), customer, f"{key}-o1"), Advance(day(32))),
            (Move(L, F, "first_purchase", f"{key}-e2", day(1)),),
            (
                thanks(day(1), f"{key}-o1"),
                review(day(8), f"{key}-o1", "p-beans"),
                sent(
                    "replenish_coffee",
                    "replenish_coffee",
                    "1",
                    day(26),
                    {"p_alive": 1.0},
                    holdout=held_out,
                ),
                nudge(day(31)),
            ),
        ),
        flow_events=ran("replenish_coffee"),
    )


def _replenish_without_consent() -> Journey:
    c, k = "cust-coffee-no-consent-14", "coffee-no-consent"
    return flows_journey(
        lead(
            "replenish_coffee_without_consent_is_suppressed",
            "no marketing consent: the run still goes its 25 days, and its send is "
            "suppressed (no_consent) like every marketing mail; only the thank-you goes",
            c,
            k,
            (coffee(f"{k}-e2", day(1), c, f"{k}-o1"), Advance(day(32))),
            (Move(L, F, "first_purchase", f"{k}-e2", day(1)),),
            (thanks(day(1), f"{k}-o1"),),
            consent=False,
        ),
        suppressed=[
            Suppressed("welcome", "welcome", "0", "no_consent"),
            Suppressed("review_request", "review_request", "1", "no_consent"),
            Suppressed("replenish_coffee", "replenish_coffee", "1", "no_consent"),
            Suppressed("second_purchase_nudge", "second_purchase_nudge", "1", "no_consent"),
        ],
        flow_events=ran("replenish_coffee"),
    )


def _replenish_needs_coffee_among_the_items() -> Journey:
    c, k = "cust-tea-only-3", "tea-only"
    return flows_journey(
        lead(
            "replenish_coffee_needs_coffee_among_the_items",
            "a tea order starts nothing; an order of tea and coffee (items.category: any "
            "element) starts the 25 days",
            c,
            k,
            (
                order(f"{k}-e2", day(1), c, f"{k}-o1", [("p-sencha", "tea", 1, "9.00")]),
                order(
                    f"{k}-e3",
                    day(3),
                    c,
                    f"{k}-o2",
                    [("p-sencha", "tea", 1, "9.00"), ("p-beans", "coffee", 2, "14.00")],
                ),
                Advance(day(29)),
            ),
            (
                Move(L, F, "first_purchase", f"{k}-e2", day(1)),
                Move(F, R, "repeat_purchase", f"{k}-e3", day(3)),
            ),
            (
                thanks(day(1), f"{k}-o1"),
                thanks(day(3), f"{k}-o2"),
                review(day(8), f"{k}-o1", "p-sencha"),
                Send(
                    Campaign.REVIEW_REQUEST,
                    day(10),
                    payload={"order_id": f"{k}-o2", "products": ["p-sencha", "p-beans"]},
                    step="1",
                ),
                sent("replenish_coffee", "replenish_coffee", "1", day(28), {"p_alive": 0.6024}),
            ),
        ),
        flow_events=ran("replenish_coffee"),
    )


def _replenish_restarts_on_the_next_coffee() -> Journey:
    c, k = "cust-coffee-restart-5", "coffee-restart"
    return flows_journey(
        lead(
            "replenish_coffee_restarts_on_the_next_coffee",
            "coffee on day 1, coffee again on day 20: the first run exits (exit_on), a new one "
            "starts, and the reminder comes on day 45, not 26",
            c,
            k,
            (
                coffee(f"{k}-e2", day(1), c, f"{k}-o1"),
                coffee(f"{k}-e3", day(20), c, f"{k}-o2"),
                Advance(day(46)),
            ),
            (
                Move(L, F, "first_purchase", f"{k}-e2", day(1)),
                Move(F, R, "repeat_purchase", f"{k}-e3", day(20)),
            ),
            (
                thanks(day(1), f"{k}-o1"),
                review(day(8), f"{k}-o1", "p-beans"),
                thanks(day(20), f"{k}-o2"),
                review(day(27), f"{k}-o2", "p-beans"),
                sent("replenish_coffee", "replenish_coffee", "1", day(45), {"p_alive": 0.6487}),
            ),
        ),
        flow_events=(*ran("replenish_coffee", "exit_on"), *ran("replenish_coffee")),
    )


def _replenish_skipped_when_p_alive_falls() -> Journey:
    """Nine orders on nine days (tea, the last one coffee), then silence: 25 days on,
    p_alive is 0.1696 (0.9224 when the run began), so the filter ends the run.

    Order n comes on day n at (9 + n):00, so that its review request, 7 days later,
    is 25 h after the one before; the caps then take exactly the third, fifth, sixth
    and seventh reviews (three marketing messages already within 7 days of each).
    """
    c, k = "cust-coffee-lapsed-9", "coffee-lapsed"
    steps: list[Body | Advance] = []
    sends: list[Send] = []
    for n in range(1, 10):
        when = day(n, 9 + n)
        line = ("p-beans", "coffee", 1, "10.00") if n == 9 else ("p-sencha", "tea", 1, "10.00")
        steps.append(order(f"{k}-e{n + 1}", when, c, f"{k}-o{n}", [line]))
        if n == 4:
            sends.append(loyalty_reward(when))
        sends.append(thanks(when, f"{k}-o{n}"))
    for n in (1, 2, 4, 8, 9):
        product = "p-beans" if n == 9 else "p-sencha"
        sends.append(review(day(n + 7, 9 + n), f"{k}-o{n}", product))
    sends.sort(key=lambda s: s.created_at)  # stable: loyalty_reward before its order's thanks
    return flows_journey(
        lead(
            "replenish_coffee_ends_when_p_alive_falls",
            "nine daily orders then silence: at day 34 p_alive is 0.17 < 0.2, the run ends "
            "(filters), no reminder",
            c,
            k,
            (*steps, Advance(day(35))),
            (
                Move(L, F, "first_purchase", f"{k}-e2", day(1, 10)),
                Move(F, R, "repeat_purchase", f"{k}-e3", day(2, 11)),
                Move(R, LOYAL, "loyal_orders", f"{k}-e5", day(4, 13)),
            ),
            sends,
        ),
        suppressed=[capped("review_request", "review_request", "1")] * 4,
        flow_events=ran("replenish_coffee", "filters"),
    )


# --- cart_series and vip ----------------------------------------------------------------------


def _cart_series_collides_with_the_cart_mail() -> Journey:
    c, k = "cust-cart-regular-2", "cart-regular"
    return flows_journey(
        lead(
            "cart_series_collides_with_the_built_in_cart_mail",
            "two adds 30 min apart restart both: at 12:30 cart_abandonment goes and cart_1 is "
            "capped; cart_2 (else branch) 23 h later is capped too",
            c,
            k,
            (
                cart(f"{k}-e2", day(2, 11), c, "add", "k1", "p-kettle", 1, "40.00"),
                cart(f"{k}-e3", day(2, 11, 30), c, "add", "k1", "p-filter", 2, "5.50"),
                Advance(day(4)),
            ),
            sends=(
                cart_mail(
                    day(2, 12, 30), [("p-kettle", 1, "40.00"), ("p-filter", 2, "5.50")], "51.00"
                ),
            ),
        ),
        suppressed=(CART_1_CAPPED, capped("cart_2", "cart_series", "3.else.0")),
        flow_events=(*ran("cart_series", "restarted"), *ran("cart_series")),
    )


def _cart_series_second_mail_after_the_welcome() -> Journey:
    c, k = "cust-cart-welcomed-6", "cart-welcomed"
    return flows_journey(
        lead(
            "cart_series_second_mail_after_the_welcome",
            "a cart 1 h after the welcome: both 12:00 mails capped by it; cart_2 (else branch) "
            "at T+24 h, 25 h after the welcome, goes",
            c,
            k,
            (cart(f"{k}-e2", day(0, 11), c, "add", "k1", "p-mug", 1, "12.00"), Advance(day(2))),
            sends=(sent("cart_2", "cart_series", "3.else.0", day(1, 11)),),
        ),
        suppressed=(CART_MAIL_CAPPED, CART_1_CAPPED),
        flow_events=ran("cart_series"),
    )


def _cart_series_exits_on_a_purchase() -> Journey:
    c, k = "cust-cart-bought-4", "cart-bought"
    return flows_journey(
        lead(
            "cart_series_exits_on_a_purchase",
            "as cart_series_second_mail_after_the_welcome, but a purchase at 20:00 ends the run "
            "(exit_on): no cart_2",
            c,
            k,
            (
                cart(f"{k}-e2", day(0, 11), c, "add", "k1", "p-mug", 1, "12.00"),
                purchase(f"{k}-e3", day(0, 20), c, f"{k}-o1", "12.00", "p-mug"),
                Advance(day(2)),
            ),
            (Move(L, F, "first_purchase", f"{k}-e3", day(0, 20)),),
            (thanks(day(0, 20), f"{k}-o1"),),
        ),
        suppressed=(CART_MAIL_CAPPED, CART_1_CAPPED),
        flow_events=ran("cart_series", "exit_on"),
    )


def _cart_series_vip_branch() -> Journey:
    """Orders of 150, 150, 150, 40 make a loyal customer with 490; a fifth of 20 makes
    510 and a VIP (vip_welcome). A cart an hour later: both 12:00 mails are capped by
    the VIP welcome; 23 h on the branch finds the VIP, and cart_2_vip goes at 11:00,
    25 h after the VIP welcome (and the second of three mails in 7 days)."""
    c, k = "cust-cart-vip-1", "cart-vip"
    totals = ("150.00", "150.00", "150.00", "40.00", "20.00")
    days = (1, 10, 20, 30, 40)
    steps: list[Body | Advance] = [
        purchase(f"{k}-e{n + 1}", day(on), c, f"{k}-o{n}", total)
        for n, (on, total) in enumerate(zip(days, totals, strict=True), 1)
    ]
    steps += [
        cart(f"{k}-e7", day(40, 11), c, "add", "k1", "p-grinder", 1, "60.00"),
        Advance(day(48)),
    ]
    sends = [
        thanks(day(1), f"{k}-o1"),
        review(day(8), f"{k}-o1"),
        thanks(day(10), f"{k}-o2"),
        review(day(17), f"{k}-o2"),
        thanks(day(20), f"{k}-o3"),
        review(day(27), f"{k}-o3"),
        loyalty_reward(day(30)),
        thanks(day(30), f"{k}-o4"),
        review(day(37), f"{k}-o4"),
        thanks(day(40), f"{k}-o5"),
        sent("vip_welcome", "vip_welcome", "0", day(40)),
        sent("cart_2_vip", "cart_series", "3.then.0", day(41, 11), {"discount_percent": 10}),
        review(day(47), f"{k}-o5"),
    ]
    return flows_journey(
        lead(
            "cart_series_vip_gets_the_then_branch",
            "a VIP (revenue >= 500, loyal) abandons a cart: cart_2_vip, step 3.then.0, "
            "discount_percent 10",
            c,
            k,
            steps,
            (
                Move(L, F, "first_purchase", f"{k}-e2", day(1)),
                Move(F, R, "repeat_purchase", f"{k}-e3", day(10)),
                Move(R, LOYAL, "loyal_orders", f"{k}-e5", day(30)),
            ),
            sends,
        ),
        suppressed=(CART_MAIL_CAPPED, CART_1_CAPPED),
        flow_events=(*ran("vip_welcome"), *ran("cart_series")),
    )


def _vip_welcome_on_the_turn_to_true_only() -> Journey:
    """Four orders of 100 (loyal, 400), a fifth of 150 (550: VIP). A review makes an
    advocate, still a VIP: no second welcome. A refund of 60 off the fifth order
    leaves 490 (no longer a VIP, silently); an order of 30 makes 520: VIP again."""
    c, k = "cust-vip-turns-5", "vip-turns"
    steps: list[Body | Advance] = [
        purchase(f"{k}-e{n + 1}", day(on), c, f"{k}-o{n}", total)
        for n, (on, total) in enumerate(
            zip((1, 11, 21, 31, 41), ("100.00",) * 4 + ("150.00",), strict=True), 1
        )
    ]
    steps += [
        engagement(f"{k}-e7", day(45, 15), c, "review", channel=None),
        refund(f"{k}-e8", day(50), c, f"{k}-o5", "60.00"),
        purchase(f"{k}-e9", day(55), c, f"{k}-o6", "30.00"),
        Advance(day(56)),
    ]
    sends = [
        thanks(day(1), f"{k}-o1"),
        review(day(8), f"{k}-o1"),
        thanks(day(11), f"{k}-o2"),
        review(day(18), f"{k}-o2"),
        thanks(day(21), f"{k}-o3"),
        review(day(28), f"{k}-o3"),
        loyalty_reward(day(31)),
        thanks(day(31), f"{k}-o4"),
        review(day(38), f"{k}-o4"),
        thanks(day(41), f"{k}-o5"),
        sent("vip_welcome", "vip_welcome", "0", day(41)),
        Send(Campaign.ADVOCATE_REFERRAL, day(45, 15)),
        review(day(48), f"{k}-o5"),
        thanks(day(55), f"{k}-o6"),
        sent("vip_welcome", "vip_welcome", "0", day(55)),
    ]
    return flows_journey(
        lead(
            "vip_welcome_on_the_turn_to_true_only",
            "vip_welcome when the vip segment turns true; not while it stays true (loyal -> "
            "advocate), again after it turned false (a refund) and true (an order)",
            c,
            k,
            steps,
            (
                Move(L, F, "first_purchase", f"{k}-e2", day(1)),
                Move(F, R, "repeat_purchase", f"{k}-e3", day(11)),
                Move(R, LOYAL, "loyal_orders", f"{k}-e5", day(31)),
                Move(LOYAL, ADV, "loyal_review", f"{k}-e7", day(45, 15)),
            ),
            sends,
        ),
        flow_events=(*ran("vip_welcome"), *ran("vip_welcome")),
    )


# --- win_back, birthday, nordics -------------------------------------------------------------


def _win_back_by_tier(
    name: str, customer: str, key: str, totals: tuple[str, ...], percent: int, churn: int
) -> Journey:
    """The example's win_back replaces the built-in: its ``data`` gives ints by tier."""
    return flows_journey(
        lapses(
            name,
            f"churned: the playbook's win_back, discount_percent {percent} (an int) by clv_tier",
            customer,
            key,
            totals,
            (Advance(day(churn + 5)),),
            (churned(day(churn)),),
            (Send(Campaign.WIN_BACK, day(churn), payload={"discount_percent": percent}),),
            refunded="150.00" if totals == ("1200.00",) else None,
        ),
        flow_events=ran("win_back"),
    )


def _birthday_in_berlin_two_years() -> Journey:
    c, k = "cust-birthday-berlin-5", "birthday-berlin"
    return flows_journey(
        Journey(
            "birthday_at_nine_in_berlin_two_years",
            "birthday 1990-04-02 in Europe/Berlin: at 09:00 CEST (07:00 UTC) on 2 April 2025 "
            "and again on 2 April 2026",
            c,
            (
                signup(
                    f"{k}-e1",
                    at("2025-01-06T11:00:00+01:00"),
                    c,
                    timezone="Europe/Berlin",
                    traits={"birthday": "1990-04-02"},
                ),
                Advance(at("2026-04-03T00:00:00+00:00")),
            ),
            (Move(None, L, "signup", f"{k}-e1", day(0)),),
            (
                welcome(day(0)),
                sent("birthday", "birthday", "0", at("2025-04-02T07:00:00+00:00")),
                sent("birthday", "birthday", "0", at("2026-04-02T07:00:00+00:00")),
            ),
        ),
        flow_events=(*ran("birthday"), *ran("birthday")),
    )


def _nordic_wishlist(
    name: str, about: str, customer: str, key: str, country: str, *, coffee_buyer: bool
) -> Journey:
    """A signup with ``traits.country``, then (a coffee order on day 1 and) a wishlist_add
    on day 3 at 15:00: ``nordic_wishlist`` sends a day later if ``nordics`` holds."""
    joined = signup(f"{key}-e1", day(0), customer, traits={"country": country})
    wish = custom(f"{key}-e3", day(3, 15), customer, "wishlist_add", product_id="p-grinder")
    nordic = country in ("NO", "SE", "DK")
    sends: list[Send] = [welcome(day(0))]
    moves = [Move(None, L, "signup", f"{key}-e1", day(0))]
    events: list[FlowEvent] = []
    steps: list[Body | Advance] = [joined]
    if coffee_buyer:
        steps.append(coffee(f"{key}-e2", day(1), customer, f"{key}-o1"))
        moves.append(Move(L, F, "first_purchase", f"{key}-e2", day(1)))
        sends.append(thanks(day(1), f"{key}-o1"))
        events.append(FlowEvent("replenish_coffee", "entered"))
    steps += [wish, Advance(day(5))]
    if nordic and coffee_buyer:
        sends.append(
            sent("wishlist_coffee", "nordic_wishlist", "1.then.0", day(4, 15), channel="push")
        )
    elif nordic:
        sends.append(sent("wishlist_reminder", "nordic_wishlist", "1.else.0", day(4, 15)))
    events += ran("nordic_wishlist", "completed" if nordic else "filters")
    return flows_journey(
        Journey(name, about, customer, tuple(steps), tuple(moves), tuple(sends)),
        flow_events=events,
    )


JOURNEYS: tuple[Journey, ...] = (
    _replenished_after_25_days("cust-coffee-10", "coffee", held_out=False),
    _replenished_after_25_days("cust-coffee-held-239", "coffee-held", held_out=True),
    _replenish_without_consent(),
    _replenish_needs_coffee_among_the_items(),
    _replenish_restarts_on_the_next_coffee(),
    _replenish_skipped_when_p_alive_falls(),
    _cart_series_collides_with_the_cart_mail(),
    _cart_series_second_mail_after_the_welcome(),
    _cart_series_exits_on_a_purchase(),
    _cart_series_vip_branch(),
    _vip_welcome_on_the_turn_to_true_only(),
    _win_back_by_tier(
        "win_back_playbook_low_tier", "cust-winback-low-24", "winback-low", ("49.90",), 10, 121
    ),
    _win_back_by_tier(
        "win_back_playbook_mid_tier",
        "cust-winback-mid-8",
        "winback-mid",
        ("100.00", "150.00"),
        15,
        131,
    ),
    _win_back_by_tier(
        "win_back_playbook_high_tier", "cust-winback-high-2", "winback-high", ("1200.00",), 20, 121
    ),
    _birthday_in_berlin_two_years(),
    _nordic_wishlist(
        "nordic_coffee_buyer_gets_the_wishlist_push",
        "a Norwegian (NO, a string in YAML 1.2) who bought coffee adds to a wishlist: "
        "wishlist_coffee by push a day later",
        "cust-nordic-coffee-1",
        "nordic-coffee",
        "NO",
        coffee_buyer=True,
    ),
    _nordic_wishlist(
        "nordic_lead_gets_the_wishlist_reminder",
        "a Swedish lead adds to a wishlist: not a coffee buyer, the else branch's email",
        "cust-nordic-lead-10",
        "nordic-lead",
        "SE",
        coffee_buyer=False,
    ),
    _nordic_wishlist(
        "wishlist_outside_the_nordics_is_filtered",
        "a German customer adds to a wishlist: the nordics filter ends the run at entry",
        "cust-not-nordic-14",
        "not-nordic",
        "DE",
        coffee_buyer=False,
    ),
)
"""The example's journeys, each with ``FLOWS_PLAYBOOK``; names and ids unique among all."""


# --- beyond the example: the contract's other rules for segments --------------------------

RECORD_CHANGES_PLAYBOOK = """\
segments:
  tea_fan: {viewed: {category: tea, within: 30d, min_count: 2}}
  lapsing: {field: stage, eq: at_risk}
flows:
  tea_fan_welcome:
    trigger: {segment_enter: tea_fan}
    steps: [{send: {campaign: tea_fan_welcome}}]
  lapsing_note:
    trigger: {segment_enter: lapsing}
    steps: [{send: {campaign: lapsing_note, priority: 65}}]
"""
"""Segments re-evaluated after a timer and after a merge (docs/flows.md, Conditions: "after
every change of the record (an event, a timer, an identity merge)")."""


def _segment_turns_true_at_a_timer() -> Journey:
    c, k = "cust-lapsing-4", "lapsing"
    journey = lead(
        "segment_turns_true_when_a_timer_moves_the_stage",
        "the at_risk timer makes the lapsing segment true: lapsing_note (priority 65) wins "
        "the cap against churn_prevention (60), decided in the same cause",
        c,
        k,
        (purchase(f"{k}-e2", day(1), c, f"{k}-o1", "20.00"), Advance(day(62))),
        (Move(L, F, "first_purchase", f"{k}-e2", day(1)), at_risk(F, day(61))),
        (
            thanks(day(1), f"{k}-o1"),
            review(day(8), f"{k}-o1"),
            nudge(day(31)),
            sent("lapsing_note", "lapsing_note", "0", day(61)),
        ),
    )
    return replace(
        journey,
        playbook=RECORD_CHANGES_PLAYBOOK,
        suppressed=(capped("churn_prevention", "churn_prevention", "0"),),
        flow_events=ran("lapsing_note"),
    )


def _viewed_counts_browsing_before_signup() -> Journey:
    """One tea view as an anonymous visitor, the signup that merges it in, one more
    view as the customer: two tea views within 30 days, so ``tea_fan`` turns true at
    the second (the browse mail two hours later is capped by the welcome to it)."""
    c, a, k = "cust-tea-fan-9", "anon-tea-fan-9", "tea-fan"
    return Journey(
        "viewed_counts_browsing_before_signup",
        "a viewed segment counts the visitor's views the signup merged in: tea_fan_welcome "
        "at the customer's second tea view",
        c,
        (
            browse(f"{k}-e1", day(0, 8), anonymous=a, category="tea"),
            signup(f"{k}-e2", day(0, 10), c, anonymous_id=a),
            browse(f"{k}-e3", day(1, 12), customer=c, category="tea"),
            Advance(day(2)),
        ),
        (
            Move(None, P, "browse_without_signup", f"{k}-e1", day(0, 8), key=a),
            Move(None, L, "signup", f"{k}-e2", day(0, 10)),
        ),
        (welcome(day(0, 10)), sent("tea_fan_welcome", "tea_fan_welcome", "0", day(1, 12))),
        playbook=RECORD_CHANGES_PLAYBOOK,
        suppressed=(capped("browse_abandonment", "browse_abandonment", "1"),),
        flow_events=ran("tea_fan_welcome"),
    )


WISHLIST_PLAYBOOK = """\
flows:
  wishlist_nudge:
    trigger: {event: custom, where: {name: wishlist_add}}
    exit_on: [{event: purchase}]
    steps:
      - wait: 2d
      - send: {campaign: wishlist_nudge}
"""
"""A flow a visitor can start before signing up: its run must survive the merge."""


def _anonymous(type_: str, event_id: str, when: datetime, visitor: str, **fields: object) -> Body:
    return {
        "event_id": event_id,
        "type": type_,
        "occurred_at": when.isoformat(),
        "anonymous_id": visitor,
        **fields,
    }


def _visitor_run_goes_on_after_signup() -> Journey:
    """A visitor adds to the wishlist at 08:00 and signs up at 10:00: the run started on
    the visitor's record moves to the customer and sends two days after the wishlist_add,
    to the customer (46 h after the welcome, so the daily cap lets it through)."""
    c, a, k = "cust-wish-merged-4", "anon-wish-merged-4", "wish-merged"
    return Journey(
        "visitor_run_goes_on_after_signup",
        "a run a visitor's custom event started goes on as the customer's after the signup "
        "merges the visitor: wishlist_nudge two days after the wishlist_add",
        c,
        (
            _anonymous("custom", f"{k}-e1", day(0, 8), a, name="wishlist_add"),
            signup(f"{k}-e2", day(0, 10), c, anonymous_id=a),
            Advance(day(3)),
        ),
        (Move(None, L, "signup", f"{k}-e2", day(0, 10)),),
        (welcome(day(0, 10)), sent("wishlist_nudge", "wishlist_nudge", "1", day(2, 8))),
        playbook=WISHLIST_PLAYBOOK,
        flow_events=ran("wishlist_nudge"),
    )


def _customers_own_run_wins_at_identify() -> Journey:
    """The visitor adds to the wishlist at 08:00, then signs up (without the visitor's
    id) and adds again as the customer at 09:30; identify at 10:00 merges the visitor,
    whose run ends ``merged``: the customer's own run sends, once, at 09:30 two days on."""
    c, a, k = "cust-wish-twice-5", "anon-wish-twice-5", "wish-twice"
    return Journey(
        "customers_own_run_wins_over_the_visitors_at_merge",
        "identify merges a visitor whose wishlist run the customer already has: the "
        "visitor's run ends merged, the customer's sends once",
        c,
        (
            _anonymous("custom", f"{k}-e1", day(0, 8), a, name="wishlist_add"),
            signup(f"{k}-e2", day(0, 9), c),
            custom(f"{k}-e3", day(0, 9, 30), c, "wishlist_add"),
            _anonymous("identify", f"{k}-e4", day(0, 10), a, customer_id=c),
            Advance(day(3)),
        ),
        (Move(None, L, "signup", f"{k}-e2", day(0, 9)),),
        (welcome(day(0, 9)), sent("wishlist_nudge", "wishlist_nudge", "1", day(2, 9, 30))),
        playbook=WISHLIST_PLAYBOOK,
        flow_events=(
            FlowEvent("wishlist_nudge", "entered"),
            FlowEvent("wishlist_nudge", "entered"),
            FlowEvent("wishlist_nudge", "exited", "merged"),
            FlowEvent("wishlist_nudge", "exited", "completed"),
        ),
    )


RECORD_CHANGES: tuple[Journey, ...] = (
    _segment_turns_true_at_a_timer(),
    _viewed_counts_browsing_before_signup(),
    _visitor_run_goes_on_after_signup(),
    _customers_own_run_wins_at_identify(),
)
"""Journeys of the contract's rules for when segments are evaluated and of what an identity
merge brings to the customer (views, runs), each on its own playbook."""

OPEN_BUGS: dict[str, str] = {}
"""Journeys that fail on the interpreter as it is, with why: reported, expected to fail."""

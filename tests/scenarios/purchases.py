"""After each order: thank-you and review mails, the second-purchase nudge."""

from __future__ import annotations

from collections.abc import Sequence

from tests.scenarios.model import Advance, Journey, Move, Send, Step
from tests.scenarios.steps import (
    F,
    L,
    R,
    as_guest,
    day,
    login,
    nudge,
    order_mails,
    purchase,
    refund,
    review,
    thanks,
)
from tests.scenarios.stories import buyer, lead


def _two_teas(
    name: str,
    about: str,
    customer: str,
    key: str,
    totals: tuple[str, str],
    second_on: int,
    refunds: Sequence[tuple[int, int, str]] = (),
) -> Journey:
    """A green tea for ``totals[0]`` on day 1, a black tea for ``totals[1]`` on day
    ``second_on``, then the ``refunds`` (order number, day, amount): a review request
    7 days after each order, with its product, except for an order refunded in full."""
    products = ("p-green", "p-black")
    days = (1, second_on)
    refunded = {n for n, _, amount in refunds if amount == totals[n - 1]}
    return buyer(
        name,
        about,
        customer,
        key,
        totals[0],
        (
            purchase(f"{key}-e3", day(second_on), customer, f"{key}-o2", totals[1], products[1]),
            *(
                refund(f"{key}-e{4 + i}", day(on), customer, f"{key}-o{n}", amount)
                for i, (n, on, amount) in enumerate(refunds)
            ),
            Advance(day(12)),
        ),
        (Move(F, R, "repeat_purchase", f"{key}-e3", day(second_on)),),
        (
            thanks(day(second_on), f"{key}-o2"),
            *(
                review(day(days[n - 1] + 7), f"{key}-o{n}", products[n - 1])
                for n in (1, 2)
                if n not in refunded
            ),
        ),
        product=products[0],
    )


def _second_order(name: str, about: str, customer: str, key: str, second_on: int | None) -> Journey:
    """A 30.00 order on day 1 and, unless ``second_on`` is None, another on that day
    of the journey: a second order before day 31 cancels the nudge due on day 31."""
    steps: tuple[Step, ...] = ()
    moves: tuple[Move, ...] = ()
    sends: tuple[Send, ...] = (nudge(day(31)),)
    if second_on is not None:
        steps = (purchase(f"{key}-e3", day(second_on), customer, f"{key}-o2", "30.00"),)
        moves = (Move(F, R, "repeat_purchase", f"{key}-e3", day(second_on)),)
        sends = order_mails(key, 2, second_on)
    return buyer(
        name,
        about,
        customer,
        key,
        "30.00",
        (*steps, Advance(day(40))),
        moves,
        (review(day(8), f"{key}-o1"), *sends),
    )


def _guest_checkout_then_login() -> Journey:
    """A lead buys as a guest on day 2 at 11:00 (the shop knows only the browser's
    anonymous id), then logs in at 11:20 (identify with that id). The guest's order
    becomes the customer's: a first-time buyer from the login on. The order's thank-you
    went to the guest; its review request and the nudge go on as the customer's (the
    nudge restarted by the customer's own entry into first_time_buyer)."""
    c, a, k = "cust-guest-order-5", "anon-guest-order-5", "guest-order"
    order = f"{k}-o1"
    guest = as_guest(purchase(f"{k}-e2", day(2, 11), c, order, "30.00"), a)
    return lead(
        "guest_checkout_then_login",
        "a guest's order, then a login that merges the guest: the order is the customer's first",
        c,
        k,
        (guest, login(f"{k}-e3", day(2, 11, 20), c, a), Advance(day(40))),
        (
            Move(None, F, "first_purchase", f"{k}-e2", day(2, 11), key=a),
            Move(L, F, "merged_orders", f"{k}-e3", day(2, 11, 20)),
        ),
        (
            thanks(day(2, 11), order)._replace(key=a),
            review(day(9, 11), order),
            nudge(day(32, 11, 20)),
        ),
    )


JOURNEYS: tuple[Journey, ...] = (
    _two_teas(
        "review_request_after_each_purchase",
        "two purchases 3 days apart: a review request 7 days after each, with its products",
        "cust-reviewer-2",
        "reviewer",
        ("30.00", "45.00"),
        4,
    ),
    _two_teas(
        "no_review_for_a_refunded_order",
        "order 2 fully refunded: no review request for it; order 1 partly refunded still gets one",
        "cust-refunder-7",
        "refunder",
        ("60.00", "40.00"),
        3,
        refunds=((2, 5, "40.00"), (1, 6, "10.00")),
    ),
    _second_order(
        "second_purchase_nudge_after_30_days",
        "a first-time buyer with no second purchase gets the nudge 30 days after the first",
        "cust-nudged",
        "nudged",
        None,
    ),
    _second_order(
        "no_nudge_after_second_purchase_on_day_20",
        "the second purchase 20 days after the first cancels the nudge",
        "cust-no-nudge",
        "no-nudge",
        21,
    ),
    _guest_checkout_then_login(),
)

"""After each order: thank-you and review mails, the second-purchase nudge."""

from __future__ import annotations

from collections.abc import Sequence

from tests.scenarios.model import Advance, Journey, Move, Send, Step
from tests.scenarios.steps import (
    F,
    R,
    day,
    nudge,
    order_mails,
    purchase,
    refund,
    review,
    thanks,
)
from tests.scenarios.stories import buyer


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
)

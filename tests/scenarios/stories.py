"""Journeys that begin alike, built from what sets each apart.

Every builder here names its customer's events ``{key}-e1``, ``{key}-e2``, ... and
orders ``{key}-o1``, ... in time order; what a caller adds (``steps``, with the
``moves`` and ``sends`` they give) comes after the builder's own, numbered on.
"""

from __future__ import annotations

from collections.abc import Sequence

from tests.scenarios.model import Advance, Journey, Move, Send, Step
from tests.scenarios.steps import (
    BACK,
    GONE,
    LOYAL,
    RISK,
    F,
    L,
    R,
    at_risk,
    churn_prevention,
    churned,
    day,
    loyalty_reward,
    nudge,
    order_mails,
    purchase,
    refund,
    review,
    signup,
    thanks,
    welcome,
    welcome_back,
    win_back,
)


def lead(
    name: str,
    about: str,
    customer: str,
    key: str,
    steps: Sequence[Step],
    moves: Sequence[Move] = (),
    sends: Sequence[Send] = (),
    *,
    consent: bool = True,
    holdout: bool = False,
) -> Journey:
    """A customer who signs up (event ``{key}-e1``) at 10:00 on day 0, then ``steps``.

    The signup makes a lead and, with marketing ``consent``, sends the welcome (held
    out if ``holdout``); ``moves`` and ``sends`` are what the later steps give.
    """
    joined = f"{key}-e1"
    welcomed = (welcome(day(0), holdout=holdout),) if consent else ()
    return Journey(
        name,
        about,
        customer,
        (signup(joined, day(0), customer, consent=consent), *steps),
        (Move(None, L, "signup", joined, day(0)), *moves),
        (*welcomed, *sends),
    )


def buyer(
    name: str,
    about: str,
    customer: str,
    key: str,
    total: str,
    steps: Sequence[Step],
    moves: Sequence[Move] = (),
    sends: Sequence[Send] = (),
    *,
    product: str = "p-tea",
    holdout: bool = False,
) -> Journey:
    """A ``lead`` whose first order (event ``{key}-e2``, order ``{key}-o1``, one ``product``
    for ``total``) comes on day 1: a first-time buyer, thanked at once. Its review
    request, 7 days later, is the caller's to list among ``sends``."""
    return lead(
        name,
        about,
        customer,
        key,
        (purchase(f"{key}-e2", day(1), customer, f"{key}-o1", total, product), *steps),
        (Move(L, F, "first_purchase", f"{key}-e2", day(1)), *moves),
        (thanks(day(1), f"{key}-o1"), *sends),
        holdout=holdout,
    )


def lapses(
    name: str,
    about: str,
    customer: str,
    key: str,
    totals: Sequence[str],
    steps: Sequence[Step],
    moves: Sequence[Move] = (),
    sends: Sequence[Send] = (),
    *,
    refunded: str | None = None,
    win_back_percent: int | None = None,
) -> Journey:
    """A ``buyer`` whose orders of ``totals`` (one or two: days 1 and 11), less
    ``refunded`` off the first on day 3, are the last for months.

    One order gets the nudge on day 31, two make a repeat customer. At_risk comes 60
    days after the last order, with churn_prevention; with ``win_back_percent`` (the
    value tier's discount) the customer churns 60 days later and gets win_back. The
    journey's own events (``{key}-e2`` on) come first, then ``steps`` with the
    ``moves`` and ``sends`` they give.
    """
    assert len(totals) in (1, 2), totals
    last = 1 + 10 * (len(totals) - 1)
    first = f"{key}-o1"
    own: list[Step] = []
    own_moves: list[Move] = []
    own_sends: list[Send] = [review(day(8), first)]
    if refunded is not None:
        own.append(refund(f"{key}-e{len(own) + 3}", day(3), customer, first, refunded))
    if len(totals) == 2:
        again = f"{key}-e{len(own) + 3}"
        own.append(purchase(again, day(last), customer, f"{key}-o2", totals[1]))
        own_moves.append(Move(F, R, "repeat_purchase", again, day(last)))
        own_sends.extend(order_mails(key, 2, last))
    else:
        own_sends.append(nudge(day(31)))
    own_moves.append(at_risk(R if len(totals) == 2 else F, day(last + 60)))
    own_sends.append(churn_prevention(day(last + 60)))
    if win_back_percent is not None:
        own_moves.append(churned(day(last + 120)))
        own_sends.append(win_back(day(last + 120), win_back_percent))
    return buyer(
        name,
        about,
        customer,
        key,
        totals[0],
        (*own, *steps),
        (*own_moves, *moves),
        (*own_sends, *sends),
    )


def comes_back(
    name: str,
    about: str,
    customer: str,
    key: str,
    total: str,
    lapsed: int,
    returns: Sequence[int],
    until: int,
    *,
    churns: bool,
    loyal_by_rfm: bool = False,
) -> Journey:
    """One order of ``total``, then none until ``day(lapsed)``: at_risk, or, if it
    ``churns``, churned (win_back at the low tier's 10%). Orders of ``total`` come
    back on the days of ``returns``: the first reactivates (welcome_back), the second
    makes a repeat customer, and with ``loyal_by_rfm`` the last makes a loyal one
    (loyalty_reward). The clock ends at ``day(until)``."""
    events = [f"{key}-e{n}" for n in range(3, 3 + len(returns))]
    was, reason = (GONE, "purchase_while_churned") if churns else (RISK, "purchase_while_at_risk")
    moves = [Move(was, BACK, reason, events[0], day(returns[0]))]
    sends: list[Send] = [welcome_back(day(returns[0]))]
    for n, on in enumerate(returns, 2):
        if n == 3:
            moves.append(Move(BACK, R, "purchase_after_reactivation", events[1], day(on)))
        if loyal_by_rfm and on == returns[-1]:
            moves.append(Move(R, LOYAL, "loyal_rfm", events[-1], day(on)))
            sends.append(loyalty_reward(day(on)))
        sends.extend(order_mails(key, n, on))
    return lapses(
        name,
        about,
        customer,
        key,
        (total,),
        (
            Advance(day(lapsed)),
            *(
                purchase(event, day(on), customer, f"{key}-o{n}", total)
                for n, (event, on) in enumerate(zip(events, returns, strict=True), 2)
            ),
            Advance(day(until)),
        ),
        moves,
        sends,
        win_back_percent=10 if churns else None,
    )

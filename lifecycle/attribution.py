"""Attribution: which marketing decisions a customer's conversions are credited to.

Every marketing decision (sent, held out, or suppressed by a policy) opens a
window in the customer's record; a goal event inside it (a purchase, or a
checkout for campaigns whose goal is the checkout) is credited to it; when
the window closes, one ``Attribution`` record says whether the customer
converted and with how much revenue. Held-out and treated customers are
measured by the same rule from the same moment (the decision's event time),
so the difference between them is the campaign's effect, and a backtest and
the live path give the same records.

Every open window gets the credit (no last-touch rule): lift is measured per
campaign against that campaign's own holdout, which is exactly what a
campaign adds on top of all the others.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from lifecycle.ids import stable_id
from lifecycle.policy import ResolvedSend
from lifecycle.state import WINDOWS_KEPT, AttributionWindow, CustomerState, trusted
from schemas.records import Attributed, Attribution, Group

__all__ = [
    "ATTRIBUTION_PREFIX",
    "CONVERSIONS_KEPT",
    "Conversion",
    "close",
    "credit",
    "open_window",
]

ATTRIBUTION_PREFIX = "attribution:"
"""Timer names of closing windows: the prefix, then the decision's trigger_id."""

CONVERSIONS_KEPT = 100
"""Conversions a window lists; later ones in the same window are not credited."""


@dataclass(frozen=True, slots=True)
class Conversion:
    """A goal event credited to one open window, for live counters."""

    campaign: str
    variant: str
    group: Group
    revenue: Decimal
    flow: str


def open_window(
    state: CustomerState,
    *,
    trigger_id: str,
    send: ResolvedSend,
    variant: str,
    group: Group,
    reason: str | None,
    at: datetime,
) -> list[Attribution]:
    """Start counting conversions for a decision; returns windows closed early to make room.

    A record keeps at most ``WINDOWS_KEPT`` open windows; past that the one
    closing first is closed now (its record shows the shorter window), so the
    record stays bounded and no decision goes unreported.
    """
    if send.transactional:
        return []
    state.windows.append(
        trusted(
            AttributionWindow,
            trigger_id=trigger_id,
            campaign=send.campaign,
            flow=send.flow,
            variant=variant,
            group=group,
            reason=reason,
            goal=send.goal,
            opened_at=at,
            closes_at=at + send.attribution_window,
            conversions=(),
        )
    )
    early: list[Attribution] = []
    while len(state.windows) > WINDOWS_KEPT:
        first = min(state.windows, key=lambda w: (w.closes_at, w.trigger_id))
        early.append(close(state, first.trigger_id, at))
    return early


def credit(
    state: CustomerState,
    *,
    event_id: str,
    at: datetime,
    purchase: bool,
    order_id: str | None = None,
    revenue: Decimal = Decimal(0),
) -> list[Conversion]:
    """Credit a goal event to every window open at ``at``.

    Open means ``opened_at < at <= closes_at``: the event that caused the
    decision never converts it, and the closing timer fires only once the
    clock is past ``closes_at``. A checkout converts only checkout goals; a
    purchase converts both and brings its revenue.
    """
    credited: list[Conversion] = []
    amount = revenue if purchase else Decimal(0)
    for index, window in enumerate(state.windows):
        if not window.opened_at < at <= window.closes_at:
            continue
        if not purchase and window.goal != "checkout":
            continue
        if len(window.conversions) >= CONVERSIONS_KEPT:
            continue
        conversion = trusted(
            Attributed, event_id=event_id, order_id=order_id, at=at, revenue=amount
        )
        state.windows[index] = window.model_copy(
            update={"conversions": (*window.conversions, conversion)}
        )
        credited.append(
            Conversion(
                window.campaign,
                window.variant,
                window.group,
                amount,
                window.flow or window.campaign,
            )
        )
    return credited


def close(state: CustomerState, trigger_id: str, at: datetime) -> Attribution:
    """Remove the window of ``trigger_id`` and say what it saw, as of ``at``."""
    windows = state.windows
    for index, window in enumerate(windows):  # noqa: B007 - the one found is used below
        if window.trigger_id == trigger_id:
            break
    else:
        raise KeyError(trigger_id)  # a timer names only a window the record has
    del windows[index]
    closes_at = min(window.closes_at, at)
    return trusted(
        Attribution,
        attribution_id=stable_id("attribution", window.trigger_id),
        trigger_id=window.trigger_id,
        customer_id=state.customer_id,
        campaign=window.campaign,
        flow=window.flow or window.campaign,
        variant=window.variant,
        group=window.group,
        reason=window.reason,
        goal=window.goal,
        opened_at=window.opened_at,
        closes_at=closes_at,
        converted=bool(window.conversions),
        conversions=window.conversions,
        revenue=sum((c.revenue for c in window.conversions), Decimal(0)),
        at=closes_at,
    )

"""RFM breakpoints from history: the playbook's ``scores.rfm``, fitted offline
(``lifecycle rfm calibrate``). The scores themselves are computed per event by
``lifecycle.scoring.rfm`` with the breakpoints this returns."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable
from datetime import datetime

from lifecycle.playbook import RfmBreakpoints
from lifecycle.state import CustomerState

__all__ = ["calibrate_rfm"]


def _quintile_points(values: list[float], step: float) -> list[float]:
    """The 20/40/60/80% points of ``values``, pushed apart by ``step`` where they tie
    (most customers order once: the frequency quintiles would otherwise coincide)."""
    ordered = sorted(values)
    points: list[float] = []
    for share in (0.2, 0.4, 0.6, 0.8):
        point = ordered[min(len(ordered) - 1, int(share * len(ordered)))]
        # A score counts values at or above its breakpoint: where the quantile falls on
        # a run of equal values (most customers order once), the run stays below it.
        above = bisect_right(ordered, point)
        if above < len(ordered) and ordered[above - 1] == ordered[0]:
            point = ordered[above]
        if points and point <= points[-1]:
            point = points[-1] + step
        points.append(round(point, 2))
    return points


def calibrate_rfm(states: Iterable[CustomerState], now: datetime) -> RfmBreakpoints:
    """Quintile breakpoints from customers with at least one order, as of ``now``.

    Each score then splits the customer base into fifths (where ties allow):
    recency in days since the last order (fewer scores higher), frequency in
    orders, monetary in net revenue.
    """
    buyers = [s for s in states if s.last_order_at is not None and s.orders > 0]
    if not buyers:
        msg = "no customer with an order: nothing to calibrate on"
        raise ValueError(msg)
    days = [(now - s.last_order_at).total_seconds() / 86400 for s in buyers if s.last_order_at]
    recency = [-p for p in _quintile_points([-d for d in days], 1.0)]
    # Ties pushed apart past the last order's day (every buyer ordered today) would give
    # negative days: the points slide up together, a day apart, down to today.
    below = min(recency[-1], 0.0)
    return RfmBreakpoints(
        recency_days=[round(p - below, 2) for p in recency],
        frequency=_quintile_points([float(s.orders) for s in buyers], 1.0),
        monetary=_quintile_points([float(s.revenue) for s in buyers], 0.01),
    )

"""Customer scores: RFM and value, as pure functions of the record and a time."""

from __future__ import annotations

from bisect import bisect_right
from datetime import datetime

from lifecycle.playbook import RfmBreakpoints
from lifecycle.state import CustomerState
from schemas.records import Rfm, Snapshot

__all__ = ["rfm", "snapshot"]


def _score(value: float, ascending: list[float]) -> int:
    return 1 + bisect_right(ascending, value)


def rfm(state: CustomerState, now: datetime, breakpoints: RfmBreakpoints) -> Rfm | None:
    """RFM at ``now``; None before the first order, when recency has no meaning."""
    if state.last_order_at is None:
        return None
    days = (now - state.last_order_at).total_seconds() / 86400
    recency = 1 + sum(1 for limit in breakpoints.recency_days if days <= limit)
    return Rfm(
        r=recency,
        f=_score(state.orders, breakpoints.frequency),
        m=_score(float(state.revenue), breakpoints.monetary),
    )


def snapshot(state: CustomerState, now: datetime, breakpoints: RfmBreakpoints) -> Snapshot:
    return Snapshot(
        orders=state.orders,
        revenue=state.revenue,
        clv=state.revenue,
        aov=state.average_order_value,
        rfm=rfm(state, now, breakpoints),
    )

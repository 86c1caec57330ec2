"""The facts some conditions and sends read, kept by the core's fact handlers:
the products viewed (``views``, for a send's ``viewed_products``) and the logs
of lines bought and views (``bought_log``, ``view_log``, for the ``bought`` and
``viewed`` conditions).

The logs are kept only while an enabled flow reads them, and only as far back
as its longest window, so a playbook that reads none keeps none.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from lifecycle.flows.effects import Effects
from lifecycle.flows.program import program
from lifecycle.playbook import Playbook
from lifecycle.state import ActivityMark, CustomerState, ViewMark, trusted
from schemas.records import Campaign

__all__ = ["LOG_KEPT", "fold_bought", "fold_views", "log_purchase", "log_view", "remember_view"]

LOG_KEPT = 500
"""Entries a bought or view log keeps at most (the oldest go first)."""


def remember_view(state: CustomerState, product: str, at: datetime, limit: int) -> None:
    """Keep ``product`` as viewed at ``at`` (distinct, by the last view, at most ``limit``)."""
    views = [v for v in state.views if v.product != product]
    previous = next((v for v in state.views if v.product == product), None)
    last = at if previous is None else max(previous.at, at)
    views.append(trusted(ViewMark, product=product, at=last))
    views.sort(key=lambda v: v.at)
    state.views[:] = views[-limit:]


def _trim(log: list[ActivityMark], now: datetime, window: timedelta | None) -> list[ActivityMark]:
    if window is not None:
        log = [mark for mark in log if mark.at >= now - window]
    return log[-LOG_KEPT:]


def log_purchase(fx: Effects, event: Any) -> None:
    """Keep the order's lines for ``bought`` conditions, if an enabled flow reads them."""
    need = program(fx.playbook).index.bought_log
    if not need.needed:
        return
    state = fx.state
    marks = [
        trusted(
            ActivityMark,
            at=event.occurred_at,
            order_id=event.order_id,
            product_id=item.product_id,
            category=item.category,
        )
        for item in event.items
    ]
    state.bought_log = _trim([*state.bought_log, *marks], fx.at, need.window)


def log_view(fx: Effects, event: Any) -> None:
    """Keep a view for ``viewed`` conditions, if an enabled flow reads them."""
    need = program(fx.playbook).index.view_log
    if not need.needed:
        return
    state = fx.state
    mark = trusted(
        ActivityMark,
        at=event.occurred_at,
        order_id=None,
        product_id=event.product_id,
        category=event.category,
    )
    state.view_log = _trim([*state.view_log, mark], fx.at, need.window)


def fold_bought(
    state: CustomerState, marks: tuple[ActivityMark, ...], now: datetime, playbook: Playbook
) -> None:
    """A merged guest's order lines join the customer's ``bought_log`` (a union, in
    time order), for ``bought`` conditions, if an enabled flow reads them."""
    need = program(playbook).index.bought_log
    if need.needed and marks:
        state.bought_log = _union(state.bought_log, marks, now, need.window)


def _union(
    log: list[ActivityMark], marks: Iterable[ActivityMark], now: datetime, window: timedelta | None
) -> list[ActivityMark]:
    """``log`` and ``marks`` as one log in time order, each mark once."""
    return _trim(sorted(set(log).union(marks), key=_mark_order), now, window)


def _mark_order(mark: ActivityMark) -> tuple[datetime, str, str, str]:
    return (mark.at, mark.order_id or "", mark.product_id or "", mark.category or "")


def fold_views(
    state: CustomerState, marks: Iterable[ActivityMark], now: datetime, playbook: Playbook
) -> None:
    """A merged visitor's views join the customer's ``view_log`` (a union, in time order)
    and, for the products among them, ``views`` (by the last view): what ``viewed``
    conditions and a send's ``viewed_products`` read. Folding the same views twice
    changes nothing."""
    need = program(playbook).index.view_log
    marks = list(marks)
    if not need.needed or not marks:
        return
    state.view_log = _union(state.view_log, marks, now, need.window)
    limit = playbook.campaigns[Campaign.BROWSE_ABANDONMENT].max_products
    for mark in marks:
        if mark.product_id is not None:
            remember_view(state, mark.product_id, mark.at, limit)

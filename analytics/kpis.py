"""Lifecycle KPIs over a period [from, to), from the inbound events and the transitions.

Each definition is written once, here (and repeated in docs/campaigns.md):

- **sign-ups**: customers whose first signup event falls in the period.
- **new customers**: customers whose first order falls in the period.
- **first-time to repeat rate**: of the new customers, the share who placed a
  second order before the period's end.
- **active at start**: customers with an order before the period whose stage
  at its start was not ``churned``. **Retention rate**: the share of them who
  ordered in the period. **Churn rate**: the share of them who moved to
  ``churned`` in the period.
- **reactivation rate**: of the customers who were at risk or churned at the
  start or became so during the period, the share who moved to
  ``reactivated`` in the period.
- **customers per stage**: the stage of every customer at the period's end
  (anonymous visitors merged into a customer, and erased customers, are gone).
  **Revenue per stage**: order totals in the period, by the stage the
  customer was in when they ordered (before that order moved them).
- **orders, revenue (gross), refunds, average order value** (gross revenue /
  orders) and **purchase frequency** (orders / customers who ordered), all in
  the period; an order is counted once per order_id, as the engine counts it.
- **CLV by tier**: customers with an order before the end, by the playbook's
  value tier of their net revenue (orders minus refunds) up to the end.
- **dead-letter rate**: dead letters / (accepted events + dead letters) in the
  period; a dead letter is dated by the broker's receive time (its ``at``).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from analytics.period import Period
from lifecycle.ordering import order_key
from lifecycle.playbook import ClvTiers
from schemas.events import (
    Event,
    IdentifyEvent,
    PrivacyEvent,
    PurchaseEvent,
    RefundEvent,
    SignupEvent,
)
from schemas.records import Stage, Transition

__all__ = ["Kpis", "lifecycle_kpis"]

_LAPSED = (Stage.AT_RISK.value, Stage.CHURNED.value)


@dataclass(frozen=True, slots=True)
class _Order:
    customer: str
    event_id: str
    order_id: str
    at: datetime
    total: Decimal


@dataclass(slots=True)
class _History:
    """Everything the KPIs need, per customer key, in event-time order."""

    orders: dict[str, list[_Order]] = field(default_factory=lambda: defaultdict(list))
    refunds: list[tuple[str, datetime, Decimal]] = field(default_factory=list)
    signups: dict[str, datetime] = field(default_factory=dict)
    gone: dict[str, list[datetime]] = field(default_factory=lambda: defaultdict(list))
    """When a key's record ended: an erase, or an anonymous visitor merged away."""
    accepted: list[datetime] = field(default_factory=list)

    @classmethod
    def of(cls, events: Iterable[Event]) -> _History:
        history = cls()
        seen: set[tuple[str, str]] = set()
        net: dict[tuple[str, str], Decimal] = {}
        for event in sorted(events, key=order_key):
            if (event.key, event.event_id) in seen:
                continue  # a redelivery: the engine ignores it too
            seen.add((event.key, event.event_id))
            history.accepted.append(event.occurred_at)
            history._add(event, net)
        return history

    def _add(self, event: Event, net: dict[tuple[str, str], Decimal]) -> None:
        key = event.key
        match event:
            case PurchaseEvent() if (key, event.order_id) not in net:
                net[(key, event.order_id)] = event.total
                order = _Order(key, event.event_id, event.order_id, event.occurred_at, event.total)
                self.orders[key].append(order)
            case RefundEvent() if net.get((key, event.order_id)):
                amount = min(event.amount, net[(key, event.order_id)])
                net[(key, event.order_id)] -= amount
                self.refunds.append((key, event.occurred_at, amount))
            case SignupEvent():
                self.signups.setdefault(key, event.occurred_at)
                self._merge(event.anonymous_id, key, event.occurred_at)
            case IdentifyEvent():
                self._merge(event.anonymous_id, key, event.occurred_at)
            case PrivacyEvent() if event.action == "erase":
                self.gone[key].append(event.occurred_at)
                self.orders.pop(key, None)
                self.signups.pop(key, None)
            case _:
                pass

    def _merge(self, anonymous_id: str | None, customer: str, at: datetime) -> None:
        if anonymous_id and anonymous_id != customer and anonymous_id not in self.signups:
            self.gone[anonymous_id].append(at)


class _Stages:
    """Each customer's stage at any time, from their transitions."""

    def __init__(self, transitions: Iterable[Transition], history: _History) -> None:
        self.moves: dict[str, list[tuple[datetime, str, str]]] = defaultdict(list)
        for t in transitions:
            self.moves[t.customer_id].append((t.at, t.to_stage.value, t.caused_by))
        self.gone = history.gone

    def at(self, customer: str, when: datetime | None) -> str | None:
        """The stage just before ``when``; None: the latest stage."""
        stage: str | None = None
        since: datetime | None = None
        for at, to, _ in self.moves.get(customer, []):
            if when is not None and at >= when:
                break
            stage, since = to, at
        if since is None:
            return None
        if any(since <= g and (when is None or g < when) for g in self.gone.get(customer, [])):
            return None
        return stage

    def before_order(self, order: _Order) -> str | None:
        """The stage an order was placed in: the moves up to it, not the ones it caused."""
        stage = None
        for at, to, caused_by in self.moves.get(order.customer, []):
            if at > order.at:
                break
            if caused_by != order.event_id:
                stage = to
        return stage

    def entered(self, customer: str, stages: tuple[str, ...], period: Period) -> bool:
        return any(
            to in stages and period.contains(at) for at, to, _ in self.moves.get(customer, [])
        )

    def customers(self) -> Iterable[str]:
        return self.moves.keys()


def _rate(part: int, whole: int) -> dict[str, Any]:
    return {"customers": whole, "count": part, "rate": round(part / whole, 6) if whole else None}


@dataclass(slots=True)
class Kpis:
    figures: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return self.figures


def lifecycle_kpis(
    events: Iterable[Event],
    transitions: Iterable[Transition],
    dead_letters: Iterable[datetime | None],
    period: Period,
    tiers: ClvTiers,
) -> Kpis:
    """The KPIs of the module docstring; a dead letter dated None (a backtest's rejected
    line, which has no broker time) counts in every period."""
    history = _History.of(events)
    stages = _Stages(transitions, history)
    end = period.end
    orders = [o for found in history.orders.values() for o in found]
    in_period = [o for o in orders if period.contains(o.at)]

    firsts = {c: found[0] for c, found in history.orders.items() if found}
    new = [c for c, first in firsts.items() if period.contains(first.at)]
    repeat = [
        c
        for c in new
        if len(history.orders[c]) > 1 and (end is None or history.orders[c][1].at < end)
    ]

    start = period.start
    active: list[str] = []
    if start is not None:
        active = [
            c
            for c, first in firsts.items()
            if first.at < start and stages.at(c, start) not in (None, Stage.CHURNED.value)
        ]
    ordered = {o.customer for o in in_period}
    churned = [c for c in active if stages.entered(c, (Stage.CHURNED.value,), period)]
    lapsed = {
        c
        for c in stages.customers()
        if (start is not None and stages.at(c, start) in _LAPSED)
        or stages.entered(c, _LAPSED, period)
    }
    reactivated = [c for c in lapsed if stages.entered(c, (Stage.REACTIVATED.value,), period)]

    per_stage = Counter(
        stage for c in stages.customers() if (stage := stages.at(c, end)) is not None
    )
    revenue_by_stage: dict[str, Decimal] = defaultdict(Decimal)
    for order in in_period:
        revenue_by_stage[stages.before_order(order) or "none"] += order.total

    gross = sum((o.total for o in in_period), Decimal(0))
    refunds = sum((a for _, at, a in history.refunds if period.contains(at)), Decimal(0))
    net: dict[str, Decimal] = defaultdict(Decimal)
    for o in orders:
        if end is None or o.at < end:
            net[o.customer] += o.total
    for customer, at, amount in history.refunds:
        if customer in net and (end is None or at < end):
            net[customer] -= amount
    tier_values: dict[str, list[Decimal]] = defaultdict(list)
    for value in net.values():
        tier_values[tiers.tier(value)].append(value)

    accepted = sum(1 for at in history.accepted if period.contains(at))
    dead = sum(1 for at in dead_letters if at is None or period.contains(at))
    figures: dict[str, Any] = {
        "signups": sum(1 for at in history.signups.values() if period.contains(at)),
        "new_customers": len(new),
        "first_to_repeat": _rate(len(repeat), len(new)),
        "active_at_start": len(active),
        "retention": _rate(sum(1 for c in active if c in ordered), len(active)),
        "churn": _rate(len(churned), len(active)),
        "reactivation": _rate(len(reactivated), len(lapsed)),
        "customers_by_stage": {s.value: per_stage[s.value] for s in Stage},
        "revenue_by_stage": {
            s: str(v) for s, v in sorted(revenue_by_stage.items(), key=lambda i: _stage_rank(i[0]))
        },
        "orders": len(in_period),
        "buyers": len(ordered),
        "revenue": str(gross),
        "refunds": str(refunds),
        "average_order_value": str((gross / len(in_period)).quantize(Decimal("0.01")))
        if in_period
        else None,
        "purchase_frequency": round(len(in_period) / len(ordered), 6) if ordered else None,
        "clv_by_tier": {
            tier: {
                "customers": len(values),
                "revenue": str(sum(values, Decimal(0))),
                "average_clv": str(
                    (sum(values, Decimal(0)) / len(values)).quantize(Decimal("0.01"))
                )
                if values
                else None,
            }
            for tier in ("high", "mid", "low")
            for values in [tier_values.get(tier, [])]
        },
        "accepted_events": accepted,
        "dead_letters": dead,
        "dead_letter_rate": round(dead / (accepted + dead), 6) if accepted + dead else None,
    }
    return Kpis(figures)


_STAGE_ORDER = [s.value for s in Stage]


def _stage_rank(stage: str) -> int:
    """Stages in funnel order; orders before any stage (``none``) last."""
    return _STAGE_ORDER.index(stage) if stage in _STAGE_ORDER else len(_STAGE_ORDER)

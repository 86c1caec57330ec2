"""When a tracked segment's membership next turns with no event: the segment's own timer.

A ``segment_enter`` flow starts "the moment the condition turns true", and some
conditions turn as time passes, with nothing happening to the record:
``days_since_last_order`` grows, RFM's recency falls a score at each of its
breakpoints, a ``bought`` or ``viewed`` mark leaves its ``within`` window, and
BG/NBD's ``p_alive`` and ``predicted_clv`` decay. Each tracked segment that reads
one of these gets a turn finder here: after every change of the record the
interpreter asks it for the next instant at which the segment's membership
differs from what it is now, and keeps the earliest as the record's ``segments``
timer (``CustomerState.segments_due``). When that timer fires, the segments are
evaluated as after any change, so a segment turns true (and its flows start) at
its exact moment, and turns false at its moment too, so that a later turn back to
true is seen as one.

The candidates are the instants at which a time-based value crosses a bound the
condition (or RFM's breakpoints) names, and the instant just after it, for the
bounds that hold from just past the crossing (``gt``, ``lte``, a window's end);
the segment is evaluated at each in turn, at that time, and the first where it
differs is the turn. A prediction has no bound in closed form: its crossing is
found by bisection to the second, within ``HORIZON`` of the last order (one further
out is seen at a later change of the record).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from decimal import ROUND_CEILING, Decimal

from lifecycle.flows.closures import record_test
from lifecycle.flows.conditions import Ctx
from lifecycle.flows.model import Activity, AllOf, AnyOf, Cond, Leaf, Not, SegmentDef, SegmentRef

__all__ = ["HORIZON", "SEGMENTS_TIMER", "TIME_PATHS", "Later", "Turn", "at_time", "turn_finder"]

SEGMENTS_TIMER = "segments"
"""The timer name of a record's next segment turn."""

HORIZON = timedelta(days=3650)
"""How far past the last order a prediction's crossing is looked for."""

_TICK = timedelta(microseconds=1)
_DAY_US = Decimal(86_400_000_000)
_PRECISION = timedelta(seconds=1)
_ONE = Decimal(1)

TIME_PATHS = frozenset(
    {"days_since_last_order", "rfm.r", "rfm_segment", "p_alive", "predicted_clv"}
)
"""Record paths whose value changes as time passes, with no change to the record."""

_PREDICTIONS = frozenset({"p_alive", "predicted_clv"})
_RECENCY = frozenset({"rfm.r", "rfm_segment"})

Candidates = Callable[[Ctx], Iterable[datetime]]
Later = Callable[[datetime], Ctx]
"""The step's record at a later instant (one ``Ctx`` per instant, shared by the segments)."""
Turn = Callable[[Ctx, bool, Later], datetime | None]
"""A segment's turn finder: given the step's ``Ctx``, the membership it has now and
the record at later instants, the next instant after ``ctx.now`` at which the
membership differs, or None."""


def turn_finder(name: str, segments: Mapping[str, SegmentDef]) -> Turn | None:
    """The turn finder of segment ``name``; None when nothing in it changes with time."""
    segment = segments.get(name)
    if segment is None or not segment.enabled or segment.cond is None:
        return None
    sources: list[Candidates] = []
    _collect(segment.cond, segments, sources, set())
    if not sources:
        return None
    test = record_test(SegmentRef(name=name), segments)

    def turn(ctx: Ctx, member: bool, later: Later) -> datetime | None:
        now = ctx.now
        found = [at for source in sources for at in source(ctx) if at > now]
        if len(found) > 1:
            found = sorted(set(found))
        for at in found:
            if test(later(at)) != member:
                return at
        return None

    return turn


def at_time(ctx: Ctx, at: datetime) -> Ctx:
    """The same record's ``Ctx`` at another time (its scores computed at that time)."""
    return Ctx(
        state=ctx.state,
        now=at,
        scores=ctx.scores.at(at),
        tiers=ctx.tiers,
        segments=ctx.segments,
        facts=ctx.facts,
    )


def _collect(
    cond: Cond, segments: Mapping[str, SegmentDef], out: list[Candidates], seen: set[str]
) -> None:
    match cond:
        case Leaf(path=path) if path in TIME_PATHS:
            out.append(_leaf_candidates(cond))
        case AllOf(items=items) | AnyOf(items=items):
            for item in items:
                _collect(item, segments, out, seen)
        case Not(cond=inner):
            _collect(inner, segments, out, seen)
        case SegmentRef(name=name) if name not in seen:
            seen.add(name)
            segment = segments.get(name)
            if segment is not None and segment.enabled and segment.cond is not None:
                _collect(segment.cond, segments, out, seen)
        case Activity():
            out.append(_activity_candidates(cond))


def _days(value: Decimal) -> timedelta:
    """``value`` days as a timedelta, rounded up to the microsecond."""
    return timedelta(microseconds=int((value * _DAY_US).to_integral_value(ROUND_CEILING)))


def _bounds(leaf: Leaf) -> list[Decimal]:
    """The numbers a leaf compares with (one, or those of an ``in`` list)."""
    literals = leaf.value if isinstance(leaf.value, list) else [leaf.value]
    found: list[Decimal] = []
    for literal in literals:
        if isinstance(literal, bool) or not isinstance(literal, int | float | Decimal | str):
            continue
        try:
            number = Decimal(str(literal))
        except ArithmeticError:
            continue
        if number.is_finite() and number >= 0:
            found.append(number)
    return found


def _leaf_candidates(leaf: Leaf) -> Candidates:
    if leaf.path in _PREDICTIONS:
        return _crossing(leaf)
    if leaf.path in _RECENCY:

        def recency(ctx: Ctx) -> Iterable[datetime]:
            last = ctx.state.last_order_at
            if last is None:
                return ()
            return [last + offset for offset in _recency_offsets(ctx.scores.recency_limits())]

        return recency
    offsets = [d for bound in _bounds(leaf) for d in (_days(bound), _days(bound) + _TICK)]

    def since_last_order(ctx: Ctx) -> Iterable[datetime]:
        last = ctx.state.last_order_at
        return () if last is None else [last + offset for offset in offsets]

    return since_last_order


@functools.lru_cache(maxsize=8)
def _recency_offsets(limits: tuple[float, ...]) -> tuple[timedelta, ...]:
    """A score counts ``days <= limit``: it falls just after each limit."""
    return tuple(_days(Decimal(str(limit))) + _TICK for limit in limits)


def _crossing(leaf: Leaf) -> Candidates:
    """Where a prediction's leaf first differs from what it is at the last order: by
    bisection, as a prediction only decays while the orders stay as they are. The
    instant depends on the orders alone, so it is found once per set of them."""
    test = record_test(leaf)
    found: dict[tuple[object, ...], datetime | None] = {}

    def crossing(ctx: Ctx) -> Iterable[datetime]:
        state = ctx.state
        last = state.last_order_at
        if last is None:
            return ()
        key = (
            state.first_order_at,
            last,
            state.purchase_days,
            state.orders,
            state.revenue,
        )
        if key not in found:
            if len(found) >= _CROSSINGS_KEPT:
                found.clear()
            found[key] = _bisect(test, ctx, last)
        at = found[key]
        return () if at is None else (at,)

    return crossing


_CROSSINGS_KEPT = 4096


def _bisect(test: Callable[[Ctx], bool], ctx: Ctx, start: datetime) -> datetime | None:
    """The first instant (to the second) after ``start`` at which ``test`` differs from
    what it is at ``start``; None when it does not within ``HORIZON``."""
    holds = test(at_time(ctx, start))
    low, high = start, start + HORIZON
    if test(at_time(ctx, high)) == holds:
        return None
    while high - low > _PRECISION:
        middle = low + (high - low) / 2
        if test(at_time(ctx, middle)) == holds:
            low = middle
        else:
            high = middle
    return high


def _activity_candidates(activity: Activity) -> Candidates:
    """Where a ``bought`` / ``viewed`` count falls below ``min_count``: just past the
    ``min_count``-th newest mark's window (distinct orders for ``bought``), as marks only
    leave a window while the record stays as it is; and each mark dated later than now,
    which enters then."""
    within = activity.within
    need = activity.min_count
    by_product = activity.product_id is not None
    wanted = activity.product_id if by_product else activity.category
    viewed = activity.kind == "viewed"

    def marks(ctx: Ctx) -> Iterable[datetime]:
        now = ctx.now
        found: list[datetime] = []
        times: list[datetime] = []
        if viewed:
            for view in ctx.known.viewed():
                if (view.product_id if by_product else view.category) == wanted:
                    (found if view.at > now else times).append(view.at)
        else:
            net = ctx.state.order_net
            orders: dict[str, datetime] = {}
            for line in ctx.known.bought():
                if (line.product_id if by_product else line.category) != wanted:
                    continue
                if line.at > now:
                    found.append(line.at)
                elif net.get(line.order_id, _ONE) > 0:  # a fully refunded order does not count
                    known = orders.get(line.order_id)
                    if known is None or known < line.at:
                        orders[line.order_id] = line.at
            times = list(orders.values())
        if within is not None and 0 < need <= len(times):
            times.sort(reverse=True)
            found.append(times[need - 1] + within + _TICK)
        return found

    return marks

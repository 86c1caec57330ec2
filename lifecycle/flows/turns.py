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

The candidates are the instants at which one of the segment's time-based conditions
changes its truth while the record stays as it is: ``days_since_last_order`` at a
bound (``gte``, ``lt``) or just past it (``gt``, ``lte``), RFM's recency just past a
breakpoint where the score or segment it gives stops (or starts) meeting the
condition, a ``bought`` / ``viewed`` count just past the ``min_count``-th newest
mark's window. The segment is evaluated at each in turn, at that time, and the
first where it differs is the turn; most steps evaluate it nowhere ahead. A
prediction has no bound in closed form: its crossing is found by bisection to the
second, within ``HORIZON`` of the last order (one further out is seen at a later
change of the record).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from decimal import Decimal

from lifecycle.flows.closures import number_value, record_test, value_test
from lifecycle.flows.conditions import RECORD_GETTERS, Ctx
from lifecycle.flows.model import Activity, AllOf, AnyOf, Cond, Leaf, Not, SegmentDef, SegmentRef
from lifecycle.units import days_up

__all__ = ["HORIZON", "SEGMENTS_TIMER", "TIME_PATHS", "Ahead", "Turn", "at_time", "turn_finder"]

SEGMENTS_TIMER = "segments"
"""The timer name of a record's next segment turn."""

HORIZON = timedelta(days=3650)
"""How far past the last order a prediction's crossing is looked for."""

_TICK = timedelta(microseconds=1)
_PRECISION = timedelta(seconds=1)
_ONE = Decimal(1)

TIME_PATHS = frozenset(
    {"days_since_last_order", "rfm.r", "rfm_segment", "p_alive", "predicted_clv"}
)
"""Record paths whose value changes as time passes, with no change to the record."""

_PREDICTIONS = frozenset({"p_alive", "predicted_clv"})
_RECENCY = frozenset({"rfm.r", "rfm_segment"})

Candidates = Callable[[Ctx], Iterable[datetime]]


class Ahead:
    """One step's look ahead, shared by its segments: the record at each later instant
    asked for (one ``Ctx`` each), and each condition's instants (a condition two
    segments share, through a ``segment`` reference, is looked at once)."""

    __slots__ = ("_found", "_later", "ctx")

    def __init__(self, ctx: Ctx) -> None:
        self.ctx = ctx
        self._later: dict[datetime, Ctx] = {}
        self._found: dict[Candidates, Iterable[datetime]] = {}

    def at(self, when: datetime) -> Ctx:
        found = self._later.get(when)
        if found is None:
            found = self._later[when] = at_time(self.ctx, when)
        return found

    def instants(self, source: Candidates) -> Iterable[datetime]:
        found = self._found.get(source)
        if found is None:
            found = self._found[source] = source(self.ctx)
        return found


Turn = Callable[[Ahead, bool], datetime | None]
"""A segment's turn finder: given the step's look ahead and the membership the segment
has now, the next instant after now at which the membership differs, or None."""


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

    def turn(ahead: Ahead, member: bool) -> datetime | None:
        now = ahead.ctx.now
        found = [at for source in sources for at in ahead.instants(source) if at > now]
        if len(found) > 1:
            found = sorted(set(found))
        for at in found:
            if test(ahead.at(at)) != member:
                if member and test(ahead.at(at + _TICK)):
                    continue  # false for one instant only (``ne`` a bound): no turn
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


def _bounds(leaf: Leaf) -> list[Decimal | int]:
    """The numbers a leaf compares with (one, or those of an ``in`` list), read as the
    condition reads them (``closures.number_value``); no time is a negative one."""
    literals = leaf.value if isinstance(leaf.value, list | tuple) else [leaf.value]
    numbers = (number_value(literal) for literal in literals)
    return [number for number in numbers if number is not None and number >= 0]


_CHANGES_AT: dict[str, tuple[bool, bool]] = {
    "gte": (True, False),
    "lt": (True, False),
    "gt": (False, True),
    "lte": (False, True),
}
"""For an order on ``days_since_last_order``: whether it turns at the bound itself, and
whether just past it (the others, ``eq``, ``in`` and their negations, both)."""


def _leaf_candidates(leaf: Leaf) -> Candidates:
    """The instants at which the leaf's truth changes while the record stays as it is."""
    if leaf.path in _PREDICTIONS:
        return _crossing(leaf)
    if leaf.path in _RECENCY:
        by_segment = leaf.path == "rfm_segment"
        value = value_test(leaf)
        getter = RECORD_GETTERS[leaf.path]

        def recency(ctx: Ctx) -> Iterable[datetime]:
            falls = ctx.scores.recency_falls()
            if not falls:
                return ()
            found = []
            holds = value(getter(ctx))
            for at, r, segment in falls:
                now_holds = value(segment if by_segment else r)
                if now_holds != holds:
                    found.append(at)
                    holds = now_holds
            return found

        return recency
    at_bound, past_bound = _CHANGES_AT.get(leaf.op, (True, True))
    if leaf.op == "exists":
        at_bound = past_bound = False
    offsets = []
    for bound in _bounds(leaf):
        if at_bound:
            offsets.append(days_up(bound))
        if past_bound:
            offsets.append(days_up(bound) + _TICK)

    def since_last_order(ctx: Ctx) -> Iterable[datetime]:
        last = ctx.state.last_order_at
        return () if last is None else [last + offset for offset in offsets]

    return since_last_order


def _crossing(leaf: Leaf) -> Candidates:
    """Where a prediction's leaf may change its truth: where the value, which only decays
    while the orders stay as they are, first falls to each bound the leaf names and
    where it first falls below it (by bisection, to the second; the value as the engine
    keeps it, rounded). They depend on the orders alone, so they are found once per set
    of them."""
    getter = RECORD_GETTERS[leaf.path]
    bounds = _bounds(leaf)
    found: dict[tuple[object, ...], tuple[datetime, ...]] = {}

    def crossing(ctx: Ctx) -> Iterable[datetime]:
        state = ctx.state
        last = state.last_order_at
        if last is None or not bounds:
            return ()
        key = (state.first_order_at, last, state.purchase_days, state.orders, state.revenue)
        instants = found.get(key)
        if instants is None:
            if len(found) >= _CROSSINGS_KEPT:
                found.clear()
            falls = (
                _first_below(getter, bound, strict, ctx, last)
                for bound in bounds
                for strict in (False, True)
            )
            instants = found[key] = tuple(at for at in falls if at is not None)
        return instants

    return crossing


_CROSSINGS_KEPT = 4096


def _first_below(
    getter: Callable[[Ctx], object],
    bound: Decimal | int,
    strict: bool,
    ctx: Ctx,
    start: datetime,
) -> datetime | None:
    """The first instant (to the second) after ``start`` at which the value is at most
    ``bound`` (below it, ``strict``); None when it is not within ``HORIZON``."""

    def below(at: datetime) -> bool:
        number = number_value(getter(at_time(ctx, at)))
        if number is None:
            return False
        return number < bound if strict else number <= bound

    if below(start):
        return start
    low, high = start, start + HORIZON
    if not below(high):
        return None
    while high - low > _PRECISION:
        middle = low + (high - low) / 2
        if below(middle):
            high = middle
        else:
            low = middle
    return high


@functools.lru_cache(maxsize=256)
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

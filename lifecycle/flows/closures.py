"""Conditions compiled once per playbook into closures, for the ones every event meets.

A built-in flow's ``where`` and ``filters`` are checked on almost every event
(a browse, a cart add), and tracked segments after every cause, so they are
turned into plain closures here: a leaf on a single value (an event field, a
record path, a trait, a property) compares that value directly, a path through
the items compares each, a ``segment`` is the segment's own closure, and
``bought`` / ``viewed`` count the log newest first, stopping once ``min_count``
is reached. Everything else (literals of mixed kinds, ordering on text) goes
through ``lifecycle.flows.conditions``, whose semantics every closure keeps
exactly (tests/unit/test_conditions.py decides every record condition of its
tests both ways, and test_flows.py compares segments).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from lifecycle.flows.conditions import (
    RECORD_GETTERS,
    Ctx,
    comparable,
    event_holds,
    holds,
    number_text,
)
from lifecycle.flows.conditions import value_holds as _value_holds
from lifecycle.flows.model import (
    Activity,
    AllOf,
    AnyOf,
    Cond,
    Leaf,
    Not,
    SegmentDef,
    SegmentRef,
)

__all__ = ["event_test", "number_value", "record_test", "value_test"]

Test = Callable[[Any], bool]


def number_value(value: Any) -> Decimal | int | None:
    """A present, finite number as Decimal, or an int as it is (it compares with a Decimal
    exactly, as its Decimal would), or a number sent as text as its Decimal; None for
    anything else (a bool is not one)."""
    kind = type(value)
    if kind is Decimal:  # money and the core's other amounts: most values
        return value if value.is_finite() else None
    if kind is int:
        whole: int = value
        return whole
    if kind is str:
        return number_text(value)
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        return None
    number = value if isinstance(value, Decimal) else Decimal(str(value))
    return number if number.is_finite() else None


def _exists(wanted: bool) -> Callable[[Any], bool]:
    return lambda v: (comparable(v) is not None) == wanted


def _compare(op: str, literal: Any) -> Callable[[Any], bool] | None:
    """``op`` against ``literal`` on one value, as ``conditions._leaf`` decides it; None
    where no closure is made (the generic path decides)."""
    if op == "exists":
        return _exists(bool(literal))
    if op in ("in", "not_in"):
        if not all(isinstance(x, str) for x in literal):
            return None
        names = frozenset(literal)
        if op == "in":
            return lambda v: isinstance(v, str) and v in names
        return lambda v: not (isinstance(v, str) and v in names)
    if isinstance(literal, str):
        if op == "eq":
            return lambda v: isinstance(v, str) and v == literal
        if op == "ne":
            return lambda v: not (isinstance(v, str) and v == literal)
        return None
    if isinstance(literal, bool):
        if op == "eq":
            return lambda v: isinstance(v, bool) and v == literal
        if op == "ne":
            return lambda v: not (isinstance(v, bool) and v == literal)
        return None
    bound = number_value(literal)
    if bound is None:
        return None
    if op == "eq":
        return lambda v: (n := number_value(v)) is not None and n == bound
    if op == "ne":
        return lambda v: not ((n := number_value(v)) is not None and n == bound)
    if op == "gt":
        return lambda v: (n := number_value(v)) is not None and n > bound
    if op == "gte":
        return lambda v: (n := number_value(v)) is not None and n >= bound
    if op == "lt":
        return lambda v: (n := number_value(v)) is not None and n < bound
    if op == "lte":
        return lambda v: (n := number_value(v)) is not None and n <= bound
    return None


def _combine(
    cond: Cond, leaf: Callable[[Leaf], Test | None], generic: Callable[[Cond], Test]
) -> Test:
    match cond:
        case Leaf():
            return leaf(cond) or generic(cond)
        case AllOf(items=items):
            return _all([_combine(c, leaf, generic) for c in items])
        case AnyOf(items=items):
            return _any([_combine(c, leaf, generic) for c in items])
        case Not(cond=inner):
            test = _combine(inner, leaf, generic)
            return lambda x: not test(x)
    return generic(cond)


def _all(tests: list[Test]) -> Test:
    def test(x: Any) -> bool:
        for one in tests:  # noqa: SIM110 - no generator per call on the hot path
            if not one(x):
                return False
        return True

    return test


def _any(tests: list[Test]) -> Test:
    def test(x: Any) -> bool:
        for one in tests:  # noqa: SIM110 - no generator per call on the hot path
            if one(x):
                return True
        return False

    return test


def _event_generic(cond: Cond) -> Test:
    return lambda event: event_holds(cond, event)


def _record_other(cond: Cond) -> Test:
    """A record condition no leaf closure decides: an activity's own closure, or ``holds``."""
    if isinstance(cond, Activity):
        return _activity(cond)
    return lambda ctx: holds(cond, ctx)


def _mapped(field: str, name: str, compare: Test) -> Test:
    """A leaf on ``properties.NAME`` or ``traits.NAME``: one value, absent as None."""
    return lambda event: compare((getattr(event, field, None) or {}).get(name))


def _items(leaf: Leaf, name: str, compare: Test) -> Test:
    """A leaf on ``items.NAME``: as ``conditions._leaf`` decides a list of values."""
    if leaf.op == "exists":
        wanted = bool(leaf.value)
        return lambda event: (
            any(comparable(getattr(i, name, None)) is not None for i in _lines(event)) == wanted
        )
    if leaf.op in ("ne", "not_in"):

        def negated(event: Any) -> bool:
            present = [
                v for i in _lines(event) if comparable(v := getattr(i, name, None)) is not None
            ]
            return not present or any(compare(v) for v in present)

        return negated
    # a positive operator never holds for an absent value (None, a non-finite number)
    return lambda event: any(compare(getattr(i, name, None)) for i in _lines(event))


def _lines(event: Any) -> Any:
    return getattr(event, "items", None) or ()


def _event_leaf(leaf: Leaf) -> Test | None:
    path = leaf.path
    compare = _compare(leaf.op, leaf.value)
    if compare is None:
        return None
    if "." not in path:
        return lambda event: compare(getattr(event, path, None))
    field, _, name = path.partition(".")
    if field in ("properties", "traits"):
        return _mapped(field, name, compare)
    if field == "items":
        return _items(leaf, name, compare)
    return None


def _trait(name: str) -> Callable[[Ctx], Any]:
    """A trait's value; a date (a ``Facts`` may hold one) as its ``YYYY-MM-DD``, as
    ``comparable`` makes it."""

    def value(ctx: Ctx) -> Any:
        found = ctx.known.traits().get(name)
        if isinstance(found, date) and not isinstance(found, datetime):
            return found.isoformat()
        return found

    return value


def _record_leaf(leaf: Leaf) -> Test | None:
    path = leaf.path
    getter = _trait(path.removeprefix("traits.")) if path.startswith("traits.") else None
    getter = getter or RECORD_GETTERS.get(path)
    if getter is None:
        return None
    compare = _compare(leaf.op, leaf.value)
    if compare is None:
        return None
    return lambda ctx: compare(getter(ctx))


def _never(_: Any) -> bool:
    return False


_ONE = Decimal(1)


def _activity(activity: Activity) -> Test:
    """``bought`` / ``viewed`` as ``conditions._activity`` decides it, stopping at the
    ``min_count``-th match: the newest marks first, where a ``within`` finds them."""
    need = activity.min_count
    if need <= 0:
        return lambda ctx: True
    within = activity.within
    by_product = activity.product_id is not None
    wanted = activity.product_id if by_product else activity.category

    def since(ctx: Ctx) -> Any:
        return None if within is None else ctx.now - within

    if activity.kind == "viewed":

        def viewed(ctx: Ctx) -> bool:
            now, start = ctx.now, since(ctx)
            count = 0
            for view in _newest_first(ctx.known.viewed()):
                if (
                    (view.product_id if by_product else view.category) == wanted
                    and view.at <= now
                    and (start is None or start <= view.at)
                ):
                    count += 1
                    if count >= need:
                        return True
            return False

        return viewed

    def bought(ctx: Ctx) -> bool:
        now, start = ctx.now, since(ctx)
        net = ctx.state.order_net
        orders: set[str] = set()
        for line in _newest_first(ctx.known.bought()):
            if (
                (line.product_id if by_product else line.category) == wanted
                and line.at <= now
                and (start is None or start <= line.at)
                and net.get(line.order_id, _ONE) > 0  # a fully refunded order does not count
            ):
                orders.add(line.order_id)
                if len(orders) >= need:
                    return True
        return False

    return bought


def _newest_first(marks: Iterable[Any]) -> Iterable[Any]:
    return reversed(marks) if isinstance(marks, list) else marks


def value_test(leaf: Leaf) -> Callable[[Any], bool]:
    """The leaf's test of one value, as a leaf on a record path decides it."""
    compare = _compare(leaf.op, leaf.value)
    if compare is not None:
        return compare
    return lambda value: _value_holds(leaf, value)


def event_test(cond: Cond) -> Callable[[Any], bool]:
    """``event_holds(cond, event)`` as a closure of the event."""
    return _combine(cond, _event_leaf, _event_generic)


def record_test(
    cond: Cond, segments: Mapping[str, SegmentDef] | None = None
) -> Callable[[Ctx], bool]:
    """``holds(cond, ctx)`` as a closure of the decision's ``Ctx``.

    With ``segments`` (the ``Ctx.segments`` every decision will see), a ``segment``
    condition is the referenced segment's own closure, compiled once (the parser
    refuses a segment that refers to itself)."""
    if segments is None:
        return _combine(cond, _record_leaf, _record_other)
    known: dict[str, Test] = {}

    def generic(inner: Cond) -> Test:
        if not isinstance(inner, SegmentRef):
            return _record_other(inner)
        name = inner.name
        if name not in known:
            segment = segments.get(name)
            if segment is None or not segment.enabled or segment.cond is None:
                known[name] = _never
            else:
                known[name] = _combine(segment.cond, _record_leaf, generic)
        return known[name]

    return _combine(cond, _record_leaf, generic)

"""``deep_copy`` must be exactly ``model_copy(deep=True)``: the core relies on it never
to change a record it was given, and on the copy to encode to the same bytes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from pydantic import BaseModel

from analytics.simulation import simulate
from lifecycle.attribution import ATTRIBUTION_PREFIX
from lifecycle.backtest import Backtest
from lifecycle.core import Due, apply
from lifecycle.playbook import default_playbook
from lifecycle.state import CustomerState, deep_copy, new_record
from schemas.codec import dumps, encode_model
from schemas.events import EventAdapter


def records() -> list[CustomerState]:
    runner = Backtest(default_playbook())
    for _ in runner.run([dumps(e) for e in simulate(120, seed=3)]):
        pass
    return list(runner.states.values())


def test_deep_copy_equals_pydantic_deep_copy_and_shares_nothing_mutable() -> None:
    states = records()
    for kind in ("cart", "runs", "views", "entered", "history"):
        assert any(getattr(s, kind) for s in states), kind
    for state in states:
        copied = deep_copy(state)
        assert copied == state.model_copy(deep=True)
        assert encode_model(copied) == encode_model(state)
        assert copied.model_fields_set == state.model_fields_set
        before = encode_model(state)
        copied.profile.unsubscribed = not copied.profile.unsubscribed
        copied.recent_event_ids.append("x")
        copied.history.clear()
        copied.timers.clear()
        copied.runs.clear()
        copied.views.clear()
        copied.entered.clear()
        copied.cart.clear()
        copied.order_net.clear()
        copied.purchase_times.clear()
        copied.windows.clear()
        copied.marketing_sent.clear()
        assert encode_model(state) == before


def test_in_place_gives_the_same_outcome_as_a_copy() -> None:
    """The runtime's ``in_place`` (a record its store owns: no copy) decides what a copy does."""
    playbook = default_playbook()
    later = max(s.last_event_at for s in records()) + timedelta(days=400)
    purchase = EventAdapter.validate_python(
        {
            "type": "purchase",
            "event_id": "in-place",
            "occurred_at": later.isoformat(),
            "customer_id": "x",
            "order_id": "in-place-order",
            "total": "12.50",
            "currency": "EUR",
            "items": [{"product_id": "p1", "quantity": 1, "unit_price": "12.50"}],
        }
    )
    for state in records():
        before = encode_model(state)
        for run in (
            lambda s, **kw: apply(s, purchase, playbook, **kw),
            lambda s, **kw: apply(s, Due(later), playbook, **kw),
        ):
            copied = run(state)
            assert encode_model(state) == before
            mutated = run(deep_copy(state), in_place=True)
            assert mutated.state is not None
            assert copied.state is not None
            assert encode_model(mutated.state) == encode_model(copied.state)
            assert [encode_model(r) for r in mutated.emitted] == [
                encode_model(r) for r in copied.emitted
            ]


def test_a_new_record_is_the_validated_one_and_shares_nothing_mutable() -> None:
    at = datetime(2026, 3, 1, 12, tzinfo=UTC)
    made = new_record("c1", at)
    validated = CustomerState(customer_id="c1", first_seen_at=at, last_event_at=at)
    assert made == validated
    assert encode_model(made) == encode_model(validated)
    assert made.model_fields_set == validated.model_fields_set
    other = new_record("c2", at)
    made.profile.traits["tier"] = "gold"
    made.recent_event_ids.append("e1")
    made.order_net["o1"] = Decimal(1)
    fresh = CustomerState(customer_id="c2", first_seen_at=at, last_event_at=at)
    assert encode_model(other) == encode_model(fresh)  # untouched by the changes to ``made``


def _mutable(value: object, found: set[int]) -> set[int]:
    """The ids of the lists, dicts and unfrozen models reachable from ``value``; a frozen
    model's contents are shared on purpose (nothing changes them)."""
    if isinstance(value, BaseModel):
        if value.model_config.get("frozen"):
            return found
        found.add(id(value))
        for inner in value.__dict__.values():
            _mutable(inner, found)
    elif isinstance(value, list | dict):
        found.add(id(value))
        for inner in value.values() if isinstance(value, dict) else value:
            _mutable(inner, found)
    elif isinstance(value, tuple):
        for inner in value:
            _mutable(inner, found)
    return found


def test_a_copy_the_core_changes_shares_nothing_mutable_with_the_given_record() -> None:
    """A worker's batch changes in place the copy the core made of a record being
    written (the sealed batch's): a list or dict shared between the two would change
    the record on its way to the table too. A timer that only closes windows included."""
    playbook = default_playbook()
    closing_only = 0
    for state in records():
        if not state.timers:
            continue
        name, due = min(state.timers.items(), key=lambda item: item[1])
        closing_only += (
            name.startswith(ATTRIBUTION_PREFIX) and list(state.timers.values()).count(due) == 1
        )
        copied = apply(state, Due(due + timedelta(microseconds=1)), playbook)
        assert copied.state is not None
        assert copied.state is not state
        assert not _mutable(copied.state, set()) & _mutable(state, set())
    assert closing_only

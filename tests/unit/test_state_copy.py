"""``deep_copy`` must be exactly ``model_copy(deep=True)``: the core relies on it never
to change a record it was given, and on the copy to encode to the same bytes."""

from __future__ import annotations

from lifecycle.backtest import Backtest
from lifecycle.playbook import default_playbook
from lifecycle.simulation import simulate
from lifecycle.state import CustomerState, deep_copy
from schemas.codec import dumps, encode_model


def records() -> list[CustomerState]:
    runner = Backtest(default_playbook())
    for _ in runner.run([dumps(e) for e in simulate(120, seed=3)]):
        pass
    return list(runner.states.values())


def test_deep_copy_equals_pydantic_deep_copy_and_shares_nothing_mutable() -> None:
    states = records()
    assert any(s.cart or s.pending_reviews or s.history for s in states)
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
        for review in copied.pending_reviews.values():
            review.products.append("x")
        copied.cart.clear()
        copied.order_net.clear()
        copied.purchase_times.clear()
        copied.windows.clear()
        copied.marketing_sent.clear()
        assert encode_model(state) == before

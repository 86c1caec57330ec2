"""Traits, properties and the custom event in the core (README.md, Event contract):
traits are kept per name, properties and custom events change no rule of the default
playbook."""

from __future__ import annotations

from typing import Any

from agents.metrics import EngineMetrics
from analytics.simulation import simulate
from lifecycle.backtest import Backtest, Output
from lifecycle.core import Outcome, apply
from lifecycle.playbook import Playbook, default_playbook
from lifecycle.state import TRAITS_KEPT, CustomerState, decode_record
from schemas.codec import dumps, encode_model
from schemas.events import Event, EventAdapter
from streams.producer import partitioner

AT = "2025-01-10T09:00:00Z"


def event(type_: str, event_id: str, **fields: Any) -> Event:
    body = {"type": type_, "event_id": event_id, "occurred_at": AT, "customer_id": "c1"}
    return EventAdapter.validate_python({**body, **fields})


def signup(event_id: str, **traits: Any) -> Event:
    return event("signup", event_id, email="c1@mail.example", traits=traits)


def identify(event_id: str, **traits: Any) -> Event:
    return event("identify", event_id, anonymous_id="a1", traits=traits)


def feed(playbook: Playbook, *events: Event) -> tuple[CustomerState, list[Outcome]]:
    state: CustomerState | None = None
    outcomes = []
    for e in events:
        outcome = apply(state, e, playbook)
        outcomes.append(outcome)
        state = outcome.state
    assert state is not None
    return state, outcomes


def test_traits_are_kept_and_a_later_value_replaces_an_earlier_one() -> None:
    state, _ = feed(
        default_playbook(),
        signup("e1", birthday="1990-05-12", tier="gold", points=10),
        identify("e2", tier="platinum", vip=True),
        signup("e3", points=12.5),
        signup("e4"),  # no traits: the record keeps its own
    )
    assert state.profile.traits == {
        "birthday": "1990-05-12",
        "tier": "platinum",
        "points": 12.5,
        "vip": True,
    }


def test_an_identify_without_a_visitor_updates_traits_and_merges_nothing() -> None:
    state, outcomes = feed(
        default_playbook(),
        signup("e1", tier="gold"),
        event("identify", "e2", traits={"birthday": "1990-05-12", "tier": "silver"}),
    )
    assert state.profile.traits == {"tier": "silver", "birthday": "1990-05-12"}
    assert outcomes[1].claims == []
    assert [t.campaign for t in outcomes[1].triggers] == []


def test_null_removes_a_trait() -> None:
    state, _ = feed(
        default_playbook(),
        signup("e1", tier="gold", vip=True),
        identify("e2", tier=None, unknown=None),
    )
    assert state.profile.traits == {"vip": True}


def test_a_record_keeps_at_most_so_many_traits() -> None:
    first = {f"t{i}": i for i in range(50)}
    second = {f"u{i}": i for i in range(50)}
    state, outcomes = feed(
        default_playbook(),
        signup("e1", **first),
        identify("e2", **second),
        identify("e3", t0="changed", extra=1, more=2),
    )
    assert len(state.profile.traits) == TRAITS_KEPT == 100
    assert state.profile.traits["t0"] == "changed"  # a known name still changes
    assert "extra" not in state.profile.traits
    assert [o.traits_dropped for o in outcomes] == [0, 0, 2]
    metrics = EngineMetrics()
    for outcome in outcomes:
        metrics.count(outcome)
    assert b"lifecycle_traits_dropped_total 2.0" in metrics.exposition()
    state, outcomes = feed(default_playbook(), signup("e1", **first), identify("e2", **second))
    outcome = apply(state, identify("e3", t0=None, extra=1), default_playbook())
    assert outcome.state is not None
    assert "t0" not in outcome.state.profile.traits  # a null makes room first
    assert outcome.state.profile.traits["extra"] == 1
    assert outcome.traits_dropped == 0


def test_a_custom_event_is_a_fact_no_default_rule_reads() -> None:
    playbook = default_playbook()
    before, _ = feed(playbook, signup("e1"))
    later = event("custom", "e2", name="wishlist_add", properties={"product_id": "p1"})
    later = later.model_copy(update={"occurred_at": before.last_event_at.replace(hour=10)})
    outcome = apply(before, later, playbook)
    assert outcome.emitted == []
    assert outcome.state is not None
    assert outcome.state.stage == before.stage
    assert outcome.state.last_event_at == later.occurred_at
    assert outcome.state.recent_event_ids[-1] == "e2"
    assert apply(outcome.state, later, playbook).duplicate


def test_records_without_traits_encode_as_before_and_with_them_decode_fast() -> None:
    state, _ = feed(default_playbook(), signup("e1"))
    assert b"traits" not in encode_model(state)
    state, _ = feed(default_playbook(), signup("e1", tier="gold", n=1, f=0.5, b=False))
    raw = encode_model(state)
    assert b'"traits":{"tier":"gold","n":1,"f":0.5,"b":false}' in raw
    decoded = decode_record(raw)
    assert decoded == CustomerState.model_validate_json(raw)
    assert decoded.profile.model_fields_set == state.profile.model_fields_set
    assert encode_model(decoded) == raw


def with_properties(body: dict[str, Any], n: int) -> dict[str, Any]:
    return {**body, "properties": {"n": n, "source": "app", "flag": n % 2 == 0}}


def run(lines: list[bytes]) -> tuple[list[bytes], list[bytes]]:
    runner = Backtest(default_playbook(), partitioner(3))
    rows = [
        item.topic.encode() + encode_model(item.value)
        for item in runner.run(lines)
        if isinstance(item, Output)
    ]
    states = [encode_model(runner.states[key]) for key in sorted(runner.states)]
    return rows, states


def test_properties_change_no_output_of_the_default_playbook() -> None:
    bodies = list(simulate(60, seed=5, days=120))
    plain = run([dumps(b) for b in bodies])
    assert plain[0]
    assert run([dumps(with_properties(b, n)) for n, b in enumerate(bodies)]) == plain

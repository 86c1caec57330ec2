"""Property: no input makes the inbound parser raise; it returns an event or a reason."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.hostile import VALID, corpus, mutations
from schemas.events import Event
from schemas.inbound import Reason, Rejection, parse_event

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=50),
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5)
    ),
    max_leaves=30,
)


def outcome(raw: bytes) -> Event | Rejection:
    parsed = parse_event(raw, received_at=datetime.now(UTC))
    assert isinstance(parsed, Rejection) or parsed.event_id
    if isinstance(parsed, Rejection):
        assert isinstance(parsed.reason, Reason)
        assert parsed.message
    return parsed


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_arbitrary_bytes(raw: bytes) -> None:
    outcome(raw)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(JSON)
def test_arbitrary_json(value: Any) -> None:
    outcome(orjson.dumps(value))


@settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(sorted(VALID)), JSON, max_size=4))
def test_a_valid_event_with_fields_replaced_by_anything(changes: dict[str, Any]) -> None:
    outcome(orjson.dumps({**VALID, **changes}))


@settings(max_examples=200)
@given(st.sampled_from(sorted(VALID)))
def test_a_valid_event_missing_a_field(field: str) -> None:
    body = {k: v for k, v in VALID.items() if k != field}
    parsed = outcome(orjson.dumps(body))
    if field in ("event_id", "type", "occurred_at", "customer_id", "order_id", "total", "currency"):
        assert isinstance(parsed, Rejection)


def test_hostile_corpus_is_rejected_with_a_reason() -> None:
    cases = corpus()
    got = [outcome(raw) for raw, _ in cases]
    assert [(p.reason.value if isinstance(p, Rejection) else "accepted") for p in got] == [
        reason for _, reason in cases
    ]


def test_mutations_are_all_refused_and_reproducible() -> None:
    first = mutations(50, seed=3)
    assert first == mutations(50, seed=3)
    assert len(set(first)) == 50
    assert all(isinstance(outcome(raw), Rejection) for raw in first)

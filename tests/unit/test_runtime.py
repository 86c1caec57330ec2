"""The partition runtime: the merge, the clock, the timers and the apply, in one order."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

import pytest

from lifecycle.clock import ClockMode
from lifecycle.core import Due, Input, Outcome, apply
from lifecycle.playbook import Playbook
from lifecycle.recommend import MemoryPairs, Recommender
from lifecycle.runtime import Applied, DictStore, Failed, PartitionRuntime, Refused, Result
from lifecycle.state import CustomerState
from schemas.events import INBOUND_TOPICS, TOPIC_OF_TYPE, BrowseEvent, Event
from schemas.inbound import Reason, Rejection
from schemas.internal import Claim
from tests.unit.test_core import event

MERGE = "merge"
TOPICS = [*INBOUND_TOPICS, MERGE]


def runtime(
    playbook: Playbook, mode: ClockMode, states: dict[str, CustomerState] | None = None
) -> PartitionRuntime[int]:
    return PartitionRuntime.open(
        TOPICS,
        mode,
        timedelta(0),
        playbook,
        DictStore({} if states is None else states),
        Recommender(MemoryPairs(), playbook.recommendations),
    )


def offer(part: PartitionRuntime[int], position: int, item: Event) -> None:
    part.offer(TOPIC_OF_TYPE[item.type], position, item)


def causes(results: Iterable[Result[int]]) -> list[tuple[str, str]]:
    """(key, what) of each result: an event id, ``due`` or ``refused``."""
    out = []
    for r in results:
        match r:
            case Refused():
                out.append(("-", "refused"))
            case Applied(key=key, input=Due()) | Failed(key=key, input=Due()):
                out.append((key, "due"))
            case Applied(key=key, input=cause) | Failed(key=key, input=cause):
                out.append((key, getattr(cause, "event_id", type(cause).__name__)))
    return out


CART = {"action": "add", "cart_id": "k1", "product_id": "p1", "quantity": 1,
        "unit_price": "10.00", "currency": "EUR"}  # fmt: skip


def test_the_merge_waits_for_a_topic_not_caught_up_then_releases_in_event_time(
    playbook: Playbook,
) -> None:
    part = runtime(playbook, ClockMode.EVENT)
    offer(part, 1, event("purchase", "p1", "2026-03-01T10:05:00Z", customer_id="c1",
                         order_id="o1", total="5", currency="EUR"))  # fmt: skip
    assert list(part.drain(lambda topic: topic != "signup")) == []
    offer(part, 1, event("signup", "s1", "2026-03-01T10:00:00Z", customer_id="c1",
                         email="c1@mail.example"))  # fmt: skip
    assert causes(part.drain()) == [("c1", "s1"), ("c1", "p1")]


def test_an_event_moves_the_partition_clock_and_fires_another_customers_timer_first(
    playbook: Playbook,
) -> None:
    """Event mode: the clock is the partition's watermark, shared by its customers."""
    part = runtime(playbook, ClockMode.EVENT)
    offer(part, 1, event("cart", "a1", "2026-03-01T10:00:00Z", customer_id="a", **CART))
    offer(part, 2, event("browse", "b1", "2026-03-01T12:00:00Z", customer_id="b"))
    assert causes(part.drain()) == [("a", "a1"), ("a", "due"), ("b", "b1")]
    assert "cart_abandonment" not in part.store.get("a")[0].timers  # type: ignore[union-attr]


def test_in_wall_mode_only_a_tick_moves_the_clock(playbook: Playbook) -> None:
    part = runtime(playbook, ClockMode.WALL)
    offer(part, 1, event("cart", "a1", "2026-03-01T10:00:00Z", customer_id="a", **CART))
    offer(part, 2, event("browse", "b1", "2026-03-01T12:00:00Z", customer_id="b"))
    assert causes(part.drain()) == [("a", "a1"), ("b", "b1")]
    at = datetime.fromisoformat("2026-03-01T12:00:00+00:00")
    [fired] = part.tick(at, lambda _topic: True)
    assert isinstance(fired, Applied)
    assert fired.key == "a"
    assert fired.outcome.fired == ["flow:cart_abandonment"]
    assert list(part.tick(at, lambda _topic: True)) == []  # the clock did not move


def test_a_refusal_waits_behind_what_its_topic_holds(playbook: Playbook) -> None:
    part = runtime(playbook, ClockMode.EVENT)
    refused = Rejection(Reason.INVALID_JSON, "no")
    assert part.offer("browse", 1, refused) == Refused(1, refused)  # nothing held: out now
    offer(part, 2, event("browse", "b1", "2026-03-01T12:00:00Z", customer_id="b"))
    part.offer("browse", 3, refused)
    results = list(part.drain())
    assert causes(results) == [("b", "b1"), ("-", "refused")]
    assert [r.position for r in results] == [2, 3]


def test_a_claim_retires_the_prospect_and_hands_its_history_on(playbook: Playbook) -> None:
    states: dict[str, CustomerState] = {}
    part = runtime(playbook, ClockMode.EVENT, states)
    offer(part, 1, event("browse", "b1", "2026-03-01T10:00:00Z", anonymous_id="anon",
                         product_id="teapot"))  # fmt: skip
    list(part.drain())
    at = datetime.fromisoformat("2026-03-01T10:05:00+00:00")
    part.offer(MERGE, 2, Claim(anonymous_id="anon", customer_id="c1", at=at, cause="s1"))
    [retired] = part.drain()
    assert isinstance(retired, Applied)
    assert retired.outcome.history is not None
    assert retired.outcome.history.views == ("teapot",)
    assert "anon" not in states


def fail_on(monkeypatch: pytest.MonkeyPatch, kind: type) -> None:
    """The core raises on every input of ``kind``, as a bug would."""

    def failing(state: CustomerState | None, cause: Input, *args: Any, **kwargs: Any) -> Outcome:
        if isinstance(cause, kind):
            raise ZeroDivisionError
        return apply(state, cause, *args, **kwargs)

    monkeypatch.setattr("lifecycle.runtime.apply", failing)


def prepared(playbook: Playbook, states: dict[str, CustomerState]) -> PartitionRuntime[int]:
    """A customer with a cart (its abandonment due at 11:00) and a prospect."""
    part = runtime(playbook, ClockMode.EVENT, states)
    offer(part, 1, event("cart", "a1", "2026-03-01T10:00:00Z", customer_id="a", **CART))
    offer(part, 2, event("browse", "p1", "2026-03-01T10:00:00Z", anonymous_id="anon",
                         product_id="teapot"))  # fmt: skip
    assert all(isinstance(r, Applied) for r in part.drain())
    return part


AT = datetime.fromisoformat("2026-03-01T10:05:00+00:00")


@pytest.mark.parametrize("kind", ["event", "timer", "claim", "history"])
def test_a_core_failure_on_any_input_is_yielded_and_the_partition_carries_on(
    playbook: Playbook, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the worker dead-letters (or, for a timer, drops) instead of crashing:
    the record stays as it was, and the next input is applied."""
    states: dict[str, CustomerState] = {}
    part = prepared(playbook, states)
    history = None
    if kind == "history":
        part.offer(MERGE, 3, Claim(anonymous_id="anon", customer_id="a", at=AT, cause="x"))
        [retired] = part.drain()
        assert isinstance(retired, Applied)
        history = retired.outcome.history
    before = {k: s.model_dump() for k, s in states.items()}
    fail_on(
        monkeypatch, {"event": BrowseEvent, "timer": Due, "claim": Claim}.get(kind, type(history))
    )
    if kind == "event":
        offer(part, 3, event("browse", "b0", "2026-03-01T10:30:00Z", customer_id="a"))
    elif kind == "claim":
        part.offer(MERGE, 3, Claim(anonymous_id="anon", customer_id="a", at=AT, cause="x"))
    elif kind == "history":
        assert history is not None
        part.offer(MERGE, 3, history)
    later = "2026-03-01T12:00:00Z" if kind == "timer" else "2026-03-01T10:40:00Z"
    offer(part, 4, event("signup", "s1", later, customer_id="b", email="b@mail.example"))
    results = list(part.drain())
    assert [type(r).__name__ for r in results] == ["Failed", "Applied"]
    assert isinstance(results[0], Failed)
    assert isinstance(results[0].error, ZeroDivisionError)
    assert isinstance(results[1], Applied)
    assert results[1].key == "b"
    assert {k: s.model_dump() for k, s in states.items() if k != "b"} == before
    if kind == "timer":
        # dropped from the heap, not retried on every sweep
        assert "a" not in set(
            part.timers.pop_due(datetime.fromisoformat("2027-01-01T00:00:00+00:00"))
        )


class CountingStore(DictStore):
    """A dict store that counts writes: the worker's batch writes each one to the table."""

    def __init__(self, records: dict[str, CustomerState]) -> None:
        super().__init__(records)
        self.puts = 0

    def put(self, key: str, state: CustomerState | None, cause: Input, position: object) -> None:
        self.puts += 1
        super().put(key, state, cause, position)


def test_a_record_the_core_left_as_it_was_is_not_written_again(playbook: Playbook) -> None:
    """A redelivered event, a claim on a known customer, a merge made twice: no write."""
    part = runtime(playbook, ClockMode.EVENT)
    store = part.store = CountingStore({})
    signup = event("signup", "s1", "2026-03-01T10:00:00Z", customer_id="c1",
                   email="c1@mail.example")  # fmt: skip
    offer(part, 1, signup)
    assert [r.outcome.changed for r in part.drain() if isinstance(r, Applied)] == [True]
    assert store.puts == 1
    offer(part, 2, signup)
    part.offer(MERGE, 3, Claim(anonymous_id="c1", customer_id="c2", at=AT, cause="x"))
    results = [r for r in part.drain() if isinstance(r, Applied)]
    assert [(r.outcome.duplicate, r.outcome.changed) for r in results] == [(True, False)] * 2
    assert store.puts == 1

"""PartitionMerger: one partition's inbound topics merged in event-time order."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from lifecycle.ordering import EventOrder, PartitionMerger, order_key
from schemas.events import Event, EventAdapter

T0 = datetime(2025, 1, 10, 9, 0, tzinfo=UTC)
TOPICS = ("signup", "browse", "purchase")


def at(minutes: int, rank: int = 0, event_id: str = "") -> EventOrder:
    return (T0 + timedelta(minutes=minutes), rank, event_id)


def caught_up(*topics: str) -> Callable[[str], bool]:
    return lambda topic: topic in topics


ALL = caught_up(*TOPICS)


@pytest.fixture
def merger() -> PartitionMerger[str]:
    return PartitionMerger(TOPICS)


def test_releases_in_event_time_across_topics_when_caught_up(
    merger: PartitionMerger[str],
) -> None:
    merger.push("purchase", at(5), "purchase@5")
    merger.push("browse", at(1), "browse@1")
    merger.push("signup", at(3), "signup@3")
    merger.push("browse", at(7), "browse@7")
    assert list(merger.pop_ready(ALL)) == ["browse@1", "signup@3", "purchase@5", "browse@7"]
    assert merger.buffered == 0


def test_holds_while_a_topic_is_empty_and_not_caught_up(merger: PartitionMerger[str]) -> None:
    merger.push("purchase", at(5), "purchase@5")
    merger.push("browse", at(6), "browse@6")
    assert list(merger.pop_ready(caught_up("browse", "purchase"))) == []
    assert merger.blocking(caught_up("browse", "purchase")) == ["signup"]
    assert merger.buffered == 2
    merger.push("signup", at(1), "signup@1")
    # every topic has a head now: the earliest head is always safe
    assert list(merger.pop_ready(caught_up())) == ["signup@1"]
    # signup's queue is empty again and it is not caught up: hold the rest
    assert list(merger.pop_ready(caught_up())) == []
    assert list(merger.pop_ready(ALL)) == ["purchase@5", "browse@6"]


def test_depth_counts_what_a_topic_has_queued(merger: PartitionMerger[str]) -> None:
    """What the worker's read-ahead bound reads: a topic with a queue never blocks."""
    merger.push("browse", at(2), "browse@2")
    merger.push("browse", at(4), "browse@4")
    merger.push("purchase", at(3), "purchase@3")
    assert (merger.depth("browse"), merger.depth("purchase"), merger.depth("signup")) == (2, 1, 0)
    assert merger.blocking(caught_up()) == ["signup"]
    assert list(merger.pop_ready(caught_up("signup"))) == ["browse@2", "purchase@3"]
    assert (merger.depth("browse"), merger.depth("purchase")) == (1, 0)


def test_empty_topic_that_is_caught_up_does_not_block(merger: PartitionMerger[str]) -> None:
    merger.push("purchase", at(5), "purchase@5")
    assert merger.blocking(caught_up("signup", "browse")) == []
    assert list(merger.pop_ready(caught_up("signup", "browse"))) == ["purchase@5"]


def test_fifo_within_a_topic_even_when_a_later_message_is_earlier(
    merger: PartitionMerger[str],
) -> None:
    merger.push("purchase", at(10), "purchase@10")
    merger.push("purchase", at(2), "refund@2")
    merger.push("signup", at(5), "signup@5")
    # heads are purchase@10 and signup@5: signup first, then the purchase FIFO queue in order
    assert list(merger.pop_ready(ALL)) == ["signup@5", "purchase@10", "refund@2"]


def test_max_buffered_forces_release_of_the_earliest_head() -> None:
    merger: PartitionMerger[str] = PartitionMerger(TOPICS, max_buffered=2)
    merger.push("browse", at(3), "browse@3")
    merger.push("purchase", at(1), "purchase@1")
    assert list(merger.pop_ready(caught_up())) == []
    merger.push("browse", at(4), "browse@4")
    assert list(merger.pop_ready(caught_up())) == ["purchase@1"]
    assert merger.buffered == 2
    assert merger.forced == 1  # signup was still blocking: the worker warns
    merger.push("purchase", at(2), "purchase@2")
    merger.push("browse", at(5), "browse@5")
    assert list(merger.pop_ready(caught_up())) == ["purchase@2", "browse@3"]
    assert merger.forced == 3
    assert list(merger.drain()) == ["browse@4", "browse@5"]
    assert merger.forced == 3  # nothing blocks a drain


def test_drain_releases_everything_in_order(merger: PartitionMerger[str]) -> None:
    merger.push("browse", at(4), "browse@4")
    merger.push("purchase", at(2), "purchase@2")
    assert list(merger.drain()) == ["purchase@2", "browse@4"]
    assert merger.buffered == 0
    assert list(merger.drain()) == []


def event(type_: str, event_id: str, **fields: str) -> Event:
    return EventAdapter.validate_python(
        {
            "type": type_,
            "event_id": event_id,
            "occurred_at": "2025-01-10T09:00:00Z",
            "customer_id": "c1",
            **fields,
        }
    )


def test_order_key_puts_signup_before_purchase_at_the_same_instant() -> None:
    signup = event("signup", "z-late-id", email="a@b.c")
    purchase = event("purchase", "a-early-id", order_id="o1", total="1", currency="EUR")
    assert order_key(signup) < order_key(purchase)
    merger: PartitionMerger[Event] = PartitionMerger(TOPICS)
    merger.push("purchase", order_key(purchase), purchase)
    merger.push("signup", order_key(signup), signup)
    assert [e.type for e in merger.drain()] == ["signup", "purchase"]


def test_order_key_ranks_types_then_event_ids() -> None:
    events = [
        event("privacy", "e1", action="erase"),
        event("engagement", "e1", action="open", channel="email"),
        event("refund", "e1", order_id="o1", amount="1"),
        event("purchase", "e2", order_id="o1", total="1", currency="EUR"),
        event("purchase", "e1", order_id="o1", total="1", currency="EUR"),
        event("cart", "e1", action="checkout_started", cart_id="k"),
        event("browse", "e1"),
        event("identify", "e1", anonymous_id="a1"),
        event("signup", "e1", email="a@b.c"),
    ]
    ordered = sorted(events, key=order_key)
    assert [(e.type, e.event_id) for e in ordered] == [
        ("signup", "e1"),
        ("identify", "e1"),
        ("browse", "e1"),
        ("cart", "e1"),
        ("purchase", "e1"),
        ("purchase", "e2"),
        ("refund", "e1"),
        ("engagement", "e1"),
        ("privacy", "e1"),
    ]


def test_order_key_is_event_time_first() -> None:
    early_privacy = EventAdapter.validate_python(
        {
            "type": "privacy",
            "event_id": "e",
            "occurred_at": "2025-01-10T08:59:59Z",
            "customer_id": "c1",
            "action": "erase",
        }
    )
    assert order_key(early_privacy) < order_key(event("signup", "e", email="a@b.c"))

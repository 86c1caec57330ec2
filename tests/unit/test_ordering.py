"""PartitionMerger: one partition's inbound topics merged in event-time order."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from lifecycle.ordering import EventOrder, PartitionMerger, merge_order, order_key, reply_order
from schemas.events import Event, EventAdapter
from schemas.internal import Claim, ProspectHistory

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


# --- a reply the partition expects: the visitor's history a signup's claim asks for


def claim_at(minutes: int, visitor: str = "anon-1") -> Claim:
    return Claim(anonymous_id=visitor, customer_id="cust-1", at=T0 + timedelta(minutes=minutes),
                 cause=f"signup-{minutes}")  # fmt: skip


MERGING = ("signup", "purchase", "merge")


def test_nothing_after_an_expected_reply_is_released_until_it_comes() -> None:
    """The purchase after a signup waits for the visitor's history the signup asked for:
    applied first, the purchase would miss the visitor's runs it should end."""
    merger: PartitionMerger[str] = PartitionMerger(MERGING, replies="merge")
    claim = claim_at(0)
    merger.expect(reply_order(claim))
    merger.push("purchase", at(30), "purchase@30")
    merger.push("signup", at(-5), "signup@-5")
    everything = caught_up(*MERGING)
    assert list(merger.pop_ready(everything)) == ["signup@-5"]  # before the reply: free
    assert merger.blocking(everything) == ["merge"]
    assert merger.horizon == reply_order(claim)
    merger.push("merge", merge_order(ProspectHistory.nothing(claim)), "history@0")
    assert list(merger.pop_ready(everything)) == ["history@0", "purchase@30"]
    assert (merger.horizon, merger.answered, merger.blocking(everything)) == (None, 1, [])


def test_the_merge_topic_is_kept_in_key_order_so_a_reply_behind_a_later_one_comes_first() -> None:
    """Merge messages come from other partitions in no order: a reply queued behind a
    later claim would otherwise wait behind it forever, and the partition with it."""
    merger: PartitionMerger[str] = PartitionMerger(MERGING, replies="merge")
    early, late = claim_at(0), claim_at(60, "anon-2")
    merger.expect(reply_order(early))
    merger.push("merge", merge_order(late), "claim@60")
    merger.push("purchase", at(30), "purchase@30")
    merger.push("merge", merge_order(ProspectHistory.nothing(early)), "history@0")
    assert list(merger.pop_ready(caught_up(*MERGING))) == ["history@0", "purchase@30", "claim@60"]


def test_other_topics_stay_in_arrival_order_and_a_merger_without_replies_expects_none() -> None:
    merger: PartitionMerger[str] = PartitionMerger(MERGING)
    merger.expect(reply_order(claim_at(0)))
    assert merger.horizon is None
    merger.push("purchase", at(30), "purchase@30")
    merger.push("purchase", at(10), "purchase@10")  # a late event: released where it sits
    assert list(merger.pop_ready(caught_up(*MERGING))) == ["purchase@30", "purchase@10"]


def test_drain_gives_up_the_replies_it_waited_for() -> None:
    """The worker's valve and the end of a file release all, the replies not come too."""
    merger: PartitionMerger[str] = PartitionMerger(MERGING, replies="merge")
    merger.expect(reply_order(claim_at(0)))
    merger.push("purchase", at(30), "purchase@30")
    assert list(merger.pop_ready(caught_up(*MERGING))) == []
    assert list(merger.drain()) == ["purchase@30"]
    assert merger.horizon is None

"""Gap-free delivery: what the agent applies, skips and seeks back, per partition."""

from __future__ import annotations

from streams.delivery import Delivery, Verdict

A = ("inbound", 0)
B = ("inbound", 1)


def test_nothing_is_taken_before_the_resume_points_are_known() -> None:
    delivery: Delivery[tuple[str, int]] = Delivery()
    assert delivery.check(A, 0) is Verdict.UNKNOWN
    delivery.start({A: 5})
    assert delivery.check(B, 0) is Verdict.UNKNOWN  # not ours in this assignment


def test_records_are_taken_in_offset_order_from_the_resume_point() -> None:
    delivery: Delivery[tuple[str, int]] = Delivery()
    delivery.start({A: 5, B: 0})
    assert [delivery.check(A, o) for o in (5, 6, 6, 4, 7)] == [
        Verdict.TAKE,
        Verdict.TAKE,
        Verdict.REPEAT,
        Verdict.REPEAT,
        Verdict.TAKE,
    ]
    assert delivery.expected == {A: 8, B: 0}


def test_a_fetch_from_before_the_seek_is_skipped_and_sought_back() -> None:
    """Faust hands out 10..12 fetched before its seek to 5, then drops 5..9: the
    agent must not take 10, and must seek back to 5 until 5 comes."""
    delivery: Delivery[tuple[str, int]] = Delivery(retry_after=1.0)
    delivery.start({A: 5})
    assert delivery.check(A, 10) is Verdict.AHEAD
    assert delivery.should_seek(A, now=100.0)
    assert delivery.check(A, 11) is Verdict.AHEAD
    assert not delivery.should_seek(A, now=100.5)  # the seek is on its way
    assert list(delivery.overdue(now=100.9)) == []
    assert list(delivery.overdue(now=101.0)) == [A]  # nothing came: seek again
    assert delivery.expected[A] == 5
    assert delivery.check(A, 5) is Verdict.TAKE
    assert list(delivery.overdue(now=200.0)) == []  # the gap is closed


def test_a_rebalance_forgets_everything_until_the_next_assignment() -> None:
    delivery: Delivery[tuple[str, int]] = Delivery()
    delivery.start({A: 5})
    delivery.check(A, 9)
    delivery.should_seek(A, now=1.0)
    delivery.clear()
    assert delivery.expected == {}
    assert delivery.check(A, 5) is Verdict.UNKNOWN
    assert list(delivery.overdue(now=10.0)) == []


def test_a_partition_fetched_past_what_it_took_is_sought_back_once_it_stalls() -> None:
    """The consumer fetched A to 390 but the agent never got 26..389, and nothing
    later comes to reveal the gap (a crash test's worker, after a rebalance)."""
    delivery: Delivery[tuple[str, int]] = Delivery(stall_after=10.0)
    delivery.start({A: 26, B: 7})
    positions = {A: 390, B: 7}
    assert delivery.stalled(positions, now=100.0) == []  # B has all it fetched
    assert delivery.stalled(positions, now=109.9) == []  # may still be queued
    assert delivery.stalled(positions, now=110.0) == [A]
    assert delivery.stalled(positions, now=115.0) == []  # the seek is given time
    assert delivery.stalled(positions, now=120.0) == [A]  # and repeated if it fails


def test_a_partition_that_makes_progress_is_not_stalled() -> None:
    delivery: Delivery[tuple[str, int]] = Delivery(stall_after=10.0)
    delivery.start({A: 0})
    for second in range(30):
        assert delivery.stalled({A: 500}, now=float(second)) == []
        assert delivery.check(A, second) is Verdict.TAKE  # the queue drains, slowly
    delivery.start({A: 0})
    assert delivery.stalled({A: 500}, now=100.0) == []  # a new assignment starts afresh
    delivery.clear()
    assert delivery.stalled({A: 500}, now=200.0) == []


def test_a_partition_already_sought_back_is_left_to_the_retry() -> None:
    delivery: Delivery[tuple[str, int]] = Delivery(stall_after=1.0)
    delivery.start({A: 5})
    assert delivery.check(A, 10) is Verdict.AHEAD
    assert delivery.should_seek(A, now=0.0)
    assert delivery.stalled({A: 20}, now=0.0) == []
    assert delivery.stalled({A: 20}, now=5.0) == []  # overdue() repeats that seek

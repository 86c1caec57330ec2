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

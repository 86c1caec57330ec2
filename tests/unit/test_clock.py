"""The partition clock: what ``now`` a partition's timers see, in each mode."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from lifecycle.clock import ClockMode, PartitionClock, just_after, reading_time

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_event_mode_follows_the_watermark_minus_lateness() -> None:
    clock = PartitionClock(ClockMode.EVENT, lateness=timedelta(minutes=10))
    assert clock.now is None
    assert clock.on_event(T0)
    assert clock.now == T0 - timedelta(minutes=10)
    assert not clock.on_event(T0 - timedelta(hours=1))  # a late event never moves it back
    assert clock.now == T0 - timedelta(minutes=10)
    assert clock.on_event(T0 + timedelta(hours=1))
    assert clock.now == T0 + timedelta(minutes=50)


def test_event_mode_ignores_ticks_until_the_partition_is_idle() -> None:
    clock = PartitionClock(ClockMode.EVENT)
    clock.on_event(T0)
    later = T0 + timedelta(days=1)
    assert not clock.on_tick(later, idle=False)
    assert clock.now == T0
    assert clock.on_tick(later, idle=True)
    assert clock.now == just_after(later)  # timers due at the tick's time fire too


def test_wall_mode_follows_ticks_and_not_events() -> None:
    clock = PartitionClock(ClockMode.WALL, lateness=timedelta(seconds=5))
    assert not clock.on_event(T0)
    assert clock.now is None
    assert clock.on_tick(T0, idle=False)
    assert clock.now == T0 - timedelta(seconds=5)
    assert not clock.on_tick(T0 - timedelta(seconds=1), idle=True)  # never backwards
    assert clock.now == T0 - timedelta(seconds=5)


def test_end_of_input_fires_what_is_due_at_the_end_itself() -> None:
    clock = PartitionClock(ClockMode.EVENT)
    clock.on_event(T0)
    assert clock.end_of_input(T0)
    assert clock.now is not None
    assert clock.now > T0
    assert not clock.end_of_input(T0 - timedelta(days=1))


def test_scores_are_read_at_the_partition_clock_in_event_mode() -> None:
    wall = datetime(2031, 1, 1, tzinfo=UTC)
    last = T0 - timedelta(days=3)
    assert reading_time(ClockMode.EVENT, T0, last, wall) == T0
    # Behind the record's own last event (lateness), or no clock yet: the last event.
    assert reading_time(ClockMode.EVENT, last - timedelta(minutes=10), last, wall) == last
    assert reading_time(ClockMode.EVENT, None, last, wall) == last
    assert reading_time(ClockMode.WALL, T0, last, wall) == wall

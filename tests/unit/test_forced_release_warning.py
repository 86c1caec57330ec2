"""The worker's warning when its merge releases messages past its bound: the only sign
that a replay's outputs may differ, so it must name what ops need and not flood the log."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest

from lifecycle.ordering import EventOrder, PartitionMerger
from lifecycle.playbook import default_playbook
from streams.settings import Settings
from tests.fakes import MemoryWorker

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def at(minutes: int) -> EventOrder:
    return (T0 + timedelta(minutes=minutes), 0, f"cust-{minutes}")


class Clock:
    def __init__(self) -> None:
        self.now = 5.0  # soon after boot: the first warning must still be said

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr("agents.partitions.time.monotonic", clock)
    return clock


def overflow(merger: PartitionMerger[str], start: int, count: int) -> None:
    """Queue ``count`` browses past the bound while signup still blocks, and release them."""
    for i in range(start, start + count):
        merger.push("browse", at(i), f"cust-{i}")
    list(merger.pop_ready(lambda _topic: False))


def blocked(topic: str) -> bool:
    """Whether ``topic`` is caught up: signup is not, so it blocks the merge."""
    return topic == "browse"


def test_the_warning_names_partition_count_and_topic_at_most_every_ten_seconds(
    clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    partitions = MemoryWorker.of(Settings(), default_playbook()).processor.partitions
    merger: PartitionMerger[str] = PartitionMerger(["browse", "signup"], max_buffered=2)
    other: PartitionMerger[str] = PartitionMerger(["browse", "signup"], max_buffered=2)
    caplog.set_level(logging.WARNING, logger="agents.partitions")

    overflow(merger, 0, 5)
    partitions.warn_forced(3, merger, blocked)
    clock.now += 5
    overflow(merger, 10, 4)
    partitions.warn_forced(3, merger, blocked)  # too soon: counted, not said
    overflow(other, 0, 3)
    partitions.warn_forced(4, other, blocked)  # another partition has its own clock
    clock.now += 6
    partitions.warn_forced(3, merger, blocked)

    said = [r.getMessage() for r in caplog.records]
    assert said == [
        "partition 3: the merge held over 2 messages; 3 released without waiting "
        "for signup, so their order may differ from a replay's",
        "partition 4: the merge held over 2 messages; 1 released without waiting "
        "for signup, so their order may differ from a replay's",
        "partition 3: the merge held over 2 messages; 4 released without waiting "
        "for signup, so their order may differ from a replay's",
    ]
    assert (merger.forced, other.forced) == (0, 0)  # each count starts again once said
    assert not any("cust-" in line for line in said)  # no customer id in the log

"""The shop's publisher on the real broker: a count per acknowledgement, leaders before clients."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from analytics.simulation import simulate
from harness.engine import collect, create_topics, unique_settings
from schemas.events import TOPIC_OF_TYPE
from streams.admin import ensure_topics, wait_for_leaders
from streams.kafka import consumer
from streams.producer import publish_events


@pytest.mark.parametrize("rate", [0.0, 500.0], ids=["unpaced", "paced"])
def test_progress_counts_every_acknowledged_event(
    kafka_bootstrap: str, tmp_path: Path, rate: float
) -> None:
    settings = unique_settings(kafka_bootstrap, tmp_path, partitions=2)
    create_topics(settings)
    events = list(simulate(15, seed=3))
    assert 20 < len(events) < 1000  # fewer than the step the count used to move by
    counts: list[int] = []
    sent = asyncio.run(publish_events(settings, events, rate=rate, progress=counts.append))
    assert sent == len(events)
    assert counts == list(range(1, len(events) + 1))
    topics = sorted(set(TOPIC_OF_TYPE.values()))
    assert len(collect(settings, topics, expected=len(events), quiet=1)) == len(events)


def test_no_not_leader_error_once_the_leaders_answered(
    kafka_bootstrap: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """What ``lifecycle dev`` does: create, wait for leaders, then start reading at once."""
    settings = unique_settings(kafka_bootstrap, tmp_path, partitions=8)

    async def create_then_read() -> None:
        reports = await ensure_topics(settings)
        assert {r.status for r in reports} == {"created"}
        await wait_for_leaders(settings, reports)
        outputs = [settings.topic(t) for t in ("transitions", "triggers", "deadletter")]
        reader = consumer(settings, *outputs, group_id=None, auto_offset_reset="latest")
        await reader.start()
        try:
            await reader.getmany(timeout_ms=2000)
            assert len(reader.assignment()) == 3 * 8
        finally:
            await reader.stop()

    with caplog.at_level(logging.DEBUG, logger="aiokafka"):
        asyncio.run(create_then_read())
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert not [e for e in errors if "NotLeader" in e], errors

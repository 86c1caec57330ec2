"""Recovery from the changelogs: read in bulk, the same records as Faust's own reading.

A worker on a fresh disk must hold every record the changelogs hold (the latest
value of each key, an erased customer's tombstone honoured) and read each
changelog record once, in bulk, leaving Faust's record-by-record recovery
nothing to read. A worker back on its own disk after another one moved on must
read only what was written since it stopped: its store's persisted offsets
are where the bulk read starts.
"""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path
from typing import Any

from analytics.simulation import simulate
from bench.harness import changelog_topics
from harness.engine import (
    Worker,
    create_topics,
    lag_report,
    publish,
    stored_states,
    unique_settings,
    wait_caught_up,
    wait_ready,
)
from streams.broker import find_free_port
from streams.reader import read_to_end
from streams.settings import Settings
from tests.integration.test_erase import CUSTOMER, story
from tests.integration.test_web import get

BULK = re.compile(r"recovery: (\d+) changelog records read in bulk")


def customer(settings: Settings, key: str) -> tuple[int, Any]:
    return get(settings, f"/customers/{key}", token=None)


def changelog_keys(settings: Settings) -> list[tuple[bytes | None, bool]]:
    """Each record of both changelogs: its key, and whether it is a tombstone."""
    messages = asyncio.run(asyncio.wait_for(read_to_end(settings, changelog_topics(settings)), 120))
    return [(m.key, m.value is None) for m in messages]


def changelog_records(settings: Settings) -> int:
    return len(changelog_keys(settings))


def read_in_bulk(worker: Worker, since: int = 0) -> list[int]:
    """The record counts of each bulk read in the worker's log from ``since``, oldest first."""
    return [int(n) for n in BULK.findall(worker.log_text()[since:])]


def caught_up_and_stopped(worker: Worker) -> None:
    try:
        assert wait_caught_up(worker.settings), lag_report(worker.settings)
        worker.assert_alive()
    finally:
        worker.stop()


def assert_holds(settings: Settings, want: dict[str, Any]) -> None:
    """The worker of ``settings`` answers for every stored key with the changelog's value."""
    wrong = []
    for key, record in want.items():
        status, body = customer(settings, key)
        if status != 200 or body["record"] != record:
            wrong.append(key)
    assert wrong == [], wrong[:5]


def test_a_fresh_worker_and_a_returning_one_read_the_changelogs_in_bulk(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    settings = unique_settings(kafka_bootstrap, tmp_path, partitions=3)
    create_topics(settings)
    events = list(simulate(60, seed=29))
    half = len(events) // 2
    first = Worker(settings, tmp_path / "first.log").start()
    erasure = story()  # a customer who buys, then is erased: a record, then its tombstone
    publish(settings, [*events[:half], *erasure[:-1]])
    assert wait_caught_up(settings), lag_report(settings)
    publish(settings, erasure[-1:])
    caught_up_and_stopped(first)
    written = changelog_records(settings)
    assert (CUSTOMER.encode(), True) in changelog_keys(settings)
    want = stored_states(settings)
    assert want
    assert CUSTOMER not in want

    fresh = settings.model_copy(
        update={"data_dir": tmp_path / "fresh", "web_port": find_free_port(1)}
    )
    second = Worker(fresh, tmp_path / "second.log").start()
    try:
        assert wait_ready(fresh)["status"] == 200, second.status()
        assert read_in_bulk(second) == [written]  # every record once, from the log's start
        assert "Restoring state from changelog topics" not in second.log_text()  # Faust: none
        assert_holds(fresh, want)
        assert customer(fresh, CUSTOMER)[0] == 404  # the erasure's tombstone was applied
        publish(fresh, events[half:])
    finally:
        caught_up_and_stopped(second)
    since = changelog_records(settings) - written
    assert since > 0
    want = stored_states(settings)

    back = first.settings.model_copy(update={"web_port": find_free_port(1)})
    returning = Worker(back, tmp_path / "first.log")
    logged = len(returning.log_text())
    returning.start()
    try:
        assert wait_ready(back)["status"] == 200, returning.status()
        assert read_in_bulk(returning, logged) == [since]  # only what the other worker wrote
        assert_holds(back, want)
    finally:
        returning.stop()


WITHOUT_BULK_READ = """\
from streams.faust_compat import BulkRecovery

BulkRecovery.reader = property(lambda self: None)  # "None reads as Faust does"
"""
"""A ``sitecustomize`` for a worker whose recovery reads as Faust's own, as it does
after a failed bulk read."""


def test_faust_reads_the_changelogs_itself_when_the_bulk_read_leaves_them(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """Faust's consumer does not fetch a changelog partition while Faust has it paused
    (``HandOffConsumer.pause_partitions``); when the bulk read leaves a recovery to
    Faust (it failed), Faust's resume must reach aiokafka too, or the worker never
    gets ready."""
    settings = unique_settings(kafka_bootstrap, tmp_path, partitions=3)
    create_topics(settings)
    first = Worker(settings, tmp_path / "first.log").start()
    publish(settings, list(simulate(40, seed=31)))
    caught_up_and_stopped(first)
    want = stored_states(settings)
    assert want

    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(WITHOUT_BULK_READ)
    fresh = settings.model_copy(
        update={"data_dir": tmp_path / "fresh", "web_port": find_free_port(1)}
    )
    path = os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH")) if p)
    second = Worker(fresh, tmp_path / "second.log", env={"PYTHONPATH": path}).start()
    try:
        assert wait_ready(fresh)["status"] == 200, second.status()
        assert read_in_bulk(second) == []
        assert "Restoring state from changelog topics" in second.log_text()  # Faust's own
        assert_holds(fresh, want)
    finally:
        second.stop()

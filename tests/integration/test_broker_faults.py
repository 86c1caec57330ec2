"""Broker faults: a restart mid-run, then at least 30 s with no broker at all.

The test runs its own broker, so it can stop and kill it. One worker runs
throughout: it must keep running, report not-ready while the broker is
gone, be ready again after, and end with exactly the pure core's records and
outputs, so nothing published before, between or after the faults is lost,
and nothing is written twice: a batch the producer sends again after a fault
is written once, as the broker's log shows (each batch carries the producer's
id, which only an idempotent producer has).
"""

from __future__ import annotations

import os
import signal
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from aiokafka.record.memory_records import MemoryRecords

from analytics.simulation import simulate
from harness.engine import (
    OUTPUTS,
    Worker,
    backtest,
    collect,
    create_topics,
    publish,
    stored_states,
    unique_settings,
    wait_for,
)
from schemas.codec import dumps, to_jsonable
from streams.broker import LocalBroker, find_free_port

OUTAGE = 30.0
PACE = 2000.0
"""Events per second at most, each partition number's events kept in order across
topics (``publish_events``, ``PartitionOrder``). Published in bulk right after a
restart, a batch refused with NotLeaderForPartition lands after the later batches of
other topics, so the broker itself would hold a customer's cart ahead of the signup
before it and no consumer could recover the published order (seen once in CI: a
prospect stage the backtest never had)."""


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[LocalBroker]:
    own = LocalBroker(port=find_free_port(), home=tmp_path / "kafka")
    own.start()
    try:
        yield own
    finally:
        own.stop()


def readiness(port: int) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=5) as reply:
            return reply.status, orjson.loads(reply.read())["reason"]
    except urllib.error.HTTPError as err:
        return err.code, orjson.loads(err.read())["reason"]
    except OSError:
        return 0, "no answer"


def producer_ids(broker: LocalBroker, topic: str) -> list[int]:
    """The producer id of every record batch the broker stored for ``topic``, read from
    its log segments (-1: a batch of a producer without idempotence)."""
    ids = []
    for segment in sorted(broker.data_dir.glob(f"{topic}-*/*.log")):
        records = MemoryRecords(segment.read_bytes())
        while (batch := records.next_batch()) is not None:
            ids.append(batch.producer_id)
    return ids


def test_worker_rides_out_a_restart_and_an_outage(broker: LocalBroker, tmp_path: Path) -> None:
    settings = unique_settings(broker.bootstrap, tmp_path).model_copy(update={"lag_interval": 1.0})
    create_topics(settings)
    events = list(simulate(90, seed=31))
    runner, expected = backtest(settings, events)
    thirds = [events[: len(events) // 3], events[len(events) // 3 : 2 * len(events) // 3]]
    rest = events[2 * len(events) // 3 :]
    worker = Worker(settings, tmp_path / "worker.log").start()
    port = settings.web_port
    try:
        assert wait_for(lambda: readiness(port)[0] == 200)
        publish(settings, thirds[0], rate=PACE)
        time.sleep(2)
        broker.stop()  # a clean restart, mid-stream
        broker.start()
        publish(settings, thirds[1], rate=PACE)
        time.sleep(2)
        pid = broker.status().pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)  # then no broker at all
        gone = time.monotonic()
        down = wait_for(lambda: readiness(port)[0] == 503)  # the outage lasts until it is seen
        reason = readiness(port)[1]
        time.sleep(max(0.0, OUTAGE - (time.monotonic() - gone)))
        worker.assert_alive()
        broker.start()
        assert wait_for(lambda: readiness(port)[0] == 200), readiness(port)
        publish(settings, rest, rate=PACE)
        records = collect(settings, OUTPUTS, expected=len(expected))
        worker.assert_alive()
        states = stored_states(settings)
    finally:
        worker.stop()
    assert down, "the worker never reported not-ready while the broker was gone"
    assert reason == "broker unreachable"
    assert sorted((r["key"], dumps(r["value"])) for r in records) == sorted(
        (o.key, dumps(to_jsonable(o.value))) for o in expected
    )
    assert states == {k: to_jsonable(s) for k, s in runner.states.items()}
    written = [i for name in OUTPUTS for i in producer_ids(broker, settings.topic(name))]
    assert written
    assert min(written) >= 0, f"output batches of producer ids {set(written)}"

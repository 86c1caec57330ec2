"""Real data nobody here wrote: all of CDNOW through the backtest and the broker.

69,659 purchases of 23,570 customers (1997-1998). The worker, in event time,
must emit exactly the backtest's records and end with exactly its customer
records; the per-stage counts at the end of the data are printed for the
record (run with -s).
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

from schemas.codec import to_jsonable
from tests.datasets import cdnow_events
from tests.integration.engine import (
    OUTPUTS,
    Worker,
    backtest,
    collect,
    create_topics,
    publish,
    stored_states,
    unique_settings,
)


def test_cdnow_master_through_the_broker_equals_the_backtest(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    events = cdnow_events("CDNOW_master.txt")
    assert len(events) == 69_659
    assert len({e["customer_id"] for e in events}) == 23_570
    settings = unique_settings(kafka_bootstrap, tmp_path)
    create_topics(settings)

    started = time.perf_counter()
    runner, outputs = backtest(settings, events)
    expected: dict[str, list[Any]] = {}
    for item in outputs:
        expected.setdefault(f"{item.topic}|{item.key}", []).append(to_jsonable(item.value))
    backtest_seconds = time.perf_counter() - started

    assert publish(settings, events) == len(events)
    worker = Worker(settings, tmp_path / "worker.log").start()
    started = time.perf_counter()
    try:
        total = sum(len(v) for v in expected.values())
        records = collect(settings, OUTPUTS, expected=total, timeout=600)
        worker_seconds = time.perf_counter() - started
        worker.assert_alive()
    finally:
        worker.stop()
    got: dict[str, list[Any]] = {}
    for r in sorted(records, key=lambda r: (r["topic"], r["partition"], r["offset"])):
        logical = {settings.topic(n): n for n in OUTPUTS}[r["topic"]]
        got.setdefault(f"{logical}|{r['key']}", []).append(r["value"])
    assert got == expected
    assert stored_states(settings, timeout=120) == {
        k: to_jsonable(s) for k, s in runner.states.items()
    }
    stages = Counter(s.stage.value for s in runner.states.values() if s.stage)
    print(
        f"\nCDNOW master: {len(events)} purchases, {len(runner.states)} customers; "
        f"backtest {backtest_seconds:.1f}s, worker {worker_seconds:.1f}s "
        f"(start-up included); {total} records; stages {dict(sorted(stages.items()))}; "
        f"{runner.summary.line()}"
    )

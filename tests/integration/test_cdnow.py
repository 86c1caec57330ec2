"""Real data nobody here wrote: CDNOW through the broker, compared with the backtest.

The CDNOW sample (6,919 purchases of 2,357 customers, 1997-1998; the papers'
one-in-ten draw of the master file) is published as a shop would. The worker,
in event time, must emit exactly the backtest's records and, once stopped,
have stored exactly its customer records: nothing it had applied may be lost
by the stop (a stop that dropped its last batch showed up here). The whole
master file (69,659 purchases) runs through the backtest alone in
tests/unit/test_cdnow_backtest.py, and through the broker with
``python -m bench.cdnow``.
"""

from __future__ import annotations

from pathlib import Path

from harness.datasets import cdnow_events
from harness.engine import create_topics, through_the_broker, unique_settings


def test_cdnow_sample_through_the_broker_equals_the_backtest(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    events = cdnow_events("CDNOW_sample.txt")
    assert len(events) == 6_919
    assert len({e["customer_id"] for e in events}) == 2_357
    settings = unique_settings(kafka_bootstrap, tmp_path)
    create_topics(settings)
    run = through_the_broker(settings, events, tmp_path / "worker.log")
    assert run.returncode == 0, run.log[-3000:]
    assert run.outputs == run.expected_outputs
    assert run.records == run.expected_records

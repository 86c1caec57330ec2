"""A clean stop finishes its work: SIGTERM under load, restart, nothing re-sent.

A rolling deploy stops every worker with SIGTERM while it is busy. The worker
must finish the message in flight, make its pending batch durable (outputs
acknowledged, records and changelog written, offsets committed) and exit 0,
so the next start neither applies those events again nor re-sends their
outputs. Every output then appears exactly once, and the stored records equal
the backtest's. (SIGKILL stays at-least-once: tests/integration/test_crash.py.)
"""

from __future__ import annotations

import signal
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from lifecycle.simulation import simulate
from schemas.codec import to_jsonable
from tests.integration.engine import (
    OUTPUTS,
    Worker,
    backtest,
    collect,
    create_topics,
    publish,
    scrape,
    stored_states,
    unique_settings,
    wait_caught_up,
    wait_for,
)


def applied(settings: Any) -> float:
    """Inbound messages the worker has taken so far, by its /metrics (0 while it starts)."""
    try:
        samples = scrape(settings)
    except OSError:
        return 0.0
    return sum(v for (name, _), v in samples.items() if name == "lifecycle_events_total")


def output_keys(records: list[dict[str, Any]]) -> Counter[str]:
    """Each output by its identity: the trigger or transition id, else topic, key and value."""
    ids: Counter[str] = Counter()
    for r in records:
        value = r["value"] or {}
        ident = value.get("trigger_id") or value.get("transition_id") or repr(sorted(value.items()))
        ids[f"{r['topic']}|{r['key']}|{ident}"] += 1
    return ids


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT], ids=["term", "int"])
def test_a_clean_stop_under_load_re_sends_nothing(
    kafka_bootstrap: str, tmp_path: Path, stop_signal: signal.Signals
) -> None:
    settings = unique_settings(kafka_bootstrap, tmp_path)
    create_topics(settings)
    events = list(simulate(2000, seed=41))
    runner, expected = backtest(settings, events)
    assert publish(settings, events) == len(events)

    first = Worker(settings, tmp_path / "first.log").start()
    try:
        # Stop it mid-stream: a fifth of the input taken, most of it still to come.
        assert wait_for(lambda: applied(settings) >= len(events) / 5, timeout=600), (
            first.log_text()[-3000:]
        )
        assert first.process is not None
        first.process.send_signal(stop_signal)
        returncode = first.process.wait(timeout=settings.stop_timeout + 120)
    finally:
        first.stop()
    log = first.log_text()
    assert returncode == 0, log[-3000:]
    assert "stop: last batch of" in log, log[-3000:]
    before = len(collect(settings, OUTPUTS, expected=0, timeout=30, quiet=2))
    assert 0 < before < len(expected), "the stop did not come mid-stream"

    second = Worker(settings, tmp_path / "second.log").start()
    try:
        assert wait_caught_up(settings, timeout=900), second.log_text()[-3000:]
        records = collect(settings, OUTPUTS, expected=len(expected), timeout=300)
        second.assert_alive()
    finally:
        second.stop()
    assert "did not stop cleanly" not in second.log_text()
    got = output_keys(records)
    re_sent = {k: n - 1 for k, n in got.items() if n > 1}
    assert re_sent == {}, f"{sum(re_sent.values())} output(s) re-sent after a clean stop"
    by_topic = {settings.topic(n): n for n in OUTPUTS}
    want = output_keys(
        [
            {"topic": settings.topic(o.topic), "key": o.key, "value": to_jsonable(o.value)}
            for o in expected
        ]
    )
    assert set(got) == set(want), (len(got), len(want), sorted(by_topic.values()))
    assert stored_states(settings, timeout=300) == {
        k: to_jsonable(s) for k, s in runner.states.items()
    }

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

from analytics.simulation import simulate
from harness.engine import (
    OUTPUTS,
    Worker,
    backtest,
    collect,
    create_topics,
    events_left,
    lag_report,
    publish,
    scrape,
    stored_states,
    unique_settings,
    wait_caught_up,
    wait_for,
)
from schemas.codec import to_jsonable


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


def stop_mid_stream(worker: Worker, settings: Any, taken: float, how: signal.Signals) -> None:
    """Signal ``worker`` once it has taken ``taken`` inbound messages; it must exit 0
    after writing its last batch."""
    try:
        assert wait_for(lambda: applied(settings) >= taken, timeout=600), worker.log_text()[-3000:]
        assert worker.process is not None
        worker.process.send_signal(how)
        returncode = worker.process.wait(timeout=settings.stop_timeout + 120)
    finally:
        worker.stop()
    log = worker.log_text()
    assert returncode == 0, log[-3000:]
    assert "stop: last batch of" in log, log[-3000:]


def test_clean_stops_under_load_re_send_nothing(kafka_bootstrap: str, tmp_path: Path) -> None:
    """SIGTERM at a fifth of the input, SIGINT (Ctrl-C) at two fifths of what is left,
    then a worker that finishes: every output once, the stored records the backtest's.

    Each stop's mark counts in what is left when its worker starts: a worker applies on
    between the count the test reads and the signal's effect (in one CI run the first
    worker, signalled at a fifth, had applied 40 to 43% of the input), and a second
    worker asked for a share of the whole input waited for events no longer there."""
    settings = unique_settings(kafka_bootstrap, tmp_path)
    create_topics(settings)
    events = list(simulate(2000, seed=41))
    runner, expected = backtest(settings, events)
    assert publish(settings, events) == len(events)

    for n, (share, how) in enumerate([(0.2, signal.SIGTERM), (0.4, signal.SIGINT)]):
        left = events_left(settings) if n else len(events)  # no group before the first
        assert left > 0, "the first stop did not come mid-stream"
        worker = Worker(settings, tmp_path / f"worker-{n}.log").start()
        stop_mid_stream(worker, settings, share * left, how)
    before = len(collect(settings, OUTPUTS, expected=0, timeout=30, quiet=2))
    assert 0 < before < len(expected), "the stops did not come mid-stream"

    last = Worker(settings, tmp_path / "last.log").start()
    try:
        assert wait_caught_up(settings, timeout=900), f"{lag_report(settings)}\n{last.status()}"
        records = collect(settings, OUTPUTS, expected=len(expected), timeout=300)
        last.assert_alive()
    finally:
        last.stop()
    assert "did not stop cleanly" not in last.log_text()
    got = output_keys(records)
    re_sent = {k: n - 1 for k, n in got.items() if n > 1}
    assert re_sent == {}, f"{sum(re_sent.values())} output(s) re-sent after a clean stop"
    want = output_keys(
        [
            {"topic": settings.topic(o.topic), "key": o.key, "value": to_jsonable(o.value)}
            for o in expected
        ]
    )
    assert set(got) == set(want)
    assert stored_states(settings, timeout=300) == {
        k: to_jsonable(s) for k, s in runner.states.items()
    }

"""/metrics after a known input on the real broker, and lag while a worker is paused."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from analytics.simulation import simulate
from harness.engine import (
    OUTPUTS,
    ROOT,
    Worker,
    backtest,
    collect,
    create_topics,
    flow_counts,
    publish,
    publish_raw,
    scrape,
    settings_env,
    unique_settings,
    value,
    wait_for,
)
from schemas.records import Attribution
from streams.settings import Settings


def lag_cli(settings: Settings, *args: str) -> tuple[int, dict[str, Any]]:
    done = subprocess.run(
        [sys.executable, "-m", "cli", "lag", "--json", *args],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", **settings_env(settings)},
        capture_output=True,
        check=False,
    )
    return done.returncode, json.loads(done.stdout)


def test_metrics_after_a_known_input_and_lag_while_paused(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    settings = unique_settings(kafka_bootstrap, tmp_path).model_copy(update={"lag_interval": 1.0})
    create_topics(settings)
    events = list(simulate(60, seed=5, duplicate_rate=0.05))
    runner, expected = backtest(settings, events)
    assert publish(settings, events) == len(events)
    no_order_id = b'{"type": "purchase", "event_id": "bad-1", "customer_id": "k", "total": "1",'
    no_order_id += b' "currency": "EUR", "occurred_at": "2025-01-01T00:00:00Z"}'
    bad = [
        (settings.topic("purchase"), b"k", b"{not json"),
        (settings.topic("browse"), None, b"[]"),
        (settings.topic("purchase"), b"k", no_order_id),  # its type is known
    ]
    publish_raw(settings, bad)
    worker = Worker(settings, tmp_path / "worker.log").start()
    try:
        collect(settings, OUTPUTS, expected=len(expected))
        samples = wait_for(
            lambda: (
                (m := scrape(settings))
                and value(m, "kafka_consumergroup_lag_sum", consumergroup=settings.app_id) == 0
                and m
            ),
        )
        assert samples, "lag did not reach 0"
        summary = runner.summary
        by_type = Counter(e["type"] for e in events)
        accepted = sum(
            value(samples, "lifecycle_events_total", type=t, outcome="accepted", reason="")
            for t in by_type
        )
        duplicates = sum(
            value(samples, "lifecycle_events_total", type=t, outcome="duplicate", reason="")
            for t in by_type
        )
        assert accepted == summary.events - summary.duplicates
        assert duplicates == summary.duplicates > 0
        dead = {
            labels: v
            for (name, labels), v in samples.items()
            if name == "lifecycle_events_total" and ("outcome", "dead_lettered") in labels
        }
        assert sorted((dict(k)["type"], dict(k)["reason"]) for k in dead) == [
            ("purchase", "missing_field"),
            ("unknown", "invalid_json"),
            ("unknown", "not_an_object"),
        ]
        for stage, n in summary.stages.items():
            assert value(samples, "lifecycle_customers", stage=stage) == n, stage
        assert value(samples, "lifecycle_timers_pending") == sum(
            1 for s in runner.states.values() if s.timers
        )
        fired = sum(v for (n, _), v in samples.items() if n == "lifecycle_timers_fired_total")
        assert fired == summary.timers_fired > 0
        moves = sum(v for (n, _), v in samples.items() if n == "lifecycle_transitions_total")
        assert moves == summary.transitions
        # Closed attribution windows, by campaign, variant, group and conversion.
        closed = Counter(
            (o.value.campaign, o.value.variant, o.value.group, str(o.value.converted).lower())
            for o in expected
            if isinstance(o.value, Attribution)
        )
        assert closed
        assert {
            tuple(dict(labels)[k] for k in ("campaign", "variant", "group", "converted")): v
            for (name, labels), v in samples.items()
            if name == "lifecycle_attributed_triggers_total"
        } == {k: float(v) for k, v in closed.items()}
        # Per flow: the backtest's table and /metrics give the same numbers.
        assert flow_counts(samples) == summary.flows.as_dict()
        assert sum(f["sent"] for f in summary.flows.as_dict().values()) > 0
        by_flow = Counter(
            (o.value.flow, o.value.group, str(o.value.converted).lower())
            for o in expected
            if isinstance(o.value, Attribution)
        )
        assert {
            tuple(dict(labels)[k] for k in ("flow", "group", "converted")): v
            for (name, labels), v in samples.items()
            if name == "lifecycle_flow_attributed_total"
        } == {k: float(v) for k, v in by_flow.items()}
        assert value(samples, "lifecycle_event_to_trigger_seconds_count", cause="event") > 0

        code, report = lag_cli(settings, "--interval", "0", "--max-lag", "0")
        assert (code, report["total"]) == (0, 0)

        # Paused, the worker reads nothing: lag rises on the broker and in the CLI.
        worker.pause()
        more = list(simulate(20, seed=6))
        assert publish(settings, more) == len(more)
        code, report = lag_cli(settings, "--interval", "0", "--max-lag", "0")
        assert code == 1
        assert report["total"] >= len(more)
        per_topic = Counter()
        for row in report["partitions"]:
            per_topic[row["topic"]] += row["lag"]
        assert per_topic[settings.topic("browse")] > 0
        worker.resume()
        assert wait_for(lambda: lag_cli(settings, "--interval", "0")[1]["total"] == 0)
        assert wait_for(
            lambda: (
                value(
                    scrape(settings), "kafka_consumergroup_lag_sum", consumergroup=settings.app_id
                )
                == 0
            )
        )
        worker.assert_alive()
    finally:
        worker.resume()
        worker.stop()

"""The Grafana dashboard and the alert rules, run by Debian's real Prometheus.

Prometheus scrapes a live worker on the test broker every second with the
shipped config (deploy/prometheus/prometheus.yml: its job, path and rule files).
The worker reads a simulated shop in two parts, with dead letters in both, so
every counter grows while Prometheus watches and rates are not just zero. Then
every panel's query (deploy/grafana/lifecycle.json, Grafana's variables filled
in) must return a number, and every alert rule must run: through the query API,
and as Prometheus itself evaluates it.
"""

from __future__ import annotations

import math
import subprocess
import time
from pathlib import Path
from typing import Any

import yaml

from analytics.simulation import simulate
from harness.engine import (
    ROOT,
    Worker,
    create_topics,
    publish,
    publish_raw,
    unique_settings,
    wait_for,
    wait_ready,
)
from streams.settings import Settings
from tests.grafana import fill, load_dashboard, panel_queries
from tests.integration.prometheus import CONFIG, CONFIG_DIR, Prometheus, binary, scrape_config

ALERTS = CONFIG_DIR / "alerts.yml"
ALERTS_TEST = CONFIG_DIR / "alerts.test.yml"


def alert_rules() -> dict[str, str]:
    """Each alert of alerts.yml, name -> expression."""
    groups = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))["groups"]
    return {rule["alert"]: rule["expr"] for group in groups for rule in group["rules"]}


def promtool(*args: str | Path) -> str:
    done = subprocess.run(
        [binary("promtool"), *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def bad_records(settings: Settings) -> list[tuple[str, bytes | None, bytes]]:
    """One message of each kind a worker dead-letters before reading it as an event."""
    return [
        (settings.topic("purchase"), b"k", b"{not json"),
        (settings.topic("browse"), None, b"[]"),
    ]


def test_promtool_accepts_the_config_and_rules_and_their_unit_tests_pass() -> None:
    assert f"SUCCESS: {len(alert_rules())} rules found" in promtool("check", "rules", ALERTS)
    assert "SUCCESS" in promtool("test", "rules", ALERTS_TEST)
    assert "SUCCESS: 1 rule files found" in promtool("check", "config", CONFIG)


def test_dashboard_and_alert_queries_on_prometheus_scraping_a_live_worker(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    settings = unique_settings(kafka_bootstrap, tmp_path).model_copy(update={"lag_interval": 1.0})
    create_topics(settings)
    target = f"{settings.web_host}:{settings.web_port}"
    config = scrape_config([target])
    job = config["scrape_configs"][0]["job_name"]
    rules = alert_rules()
    prometheus = Prometheus(tmp_path, config)
    promtool("check", "config", prometheus.config_path)
    worker = Worker(settings, tmp_path / "worker.log").start()
    started_at = time.time()

    def counted(expected: int) -> bool:
        """Prometheus has scraped all ``expected`` inbound messages, and the group's lag is 0."""
        seen = prometheus.value(f'sum(lifecycle_events_total{{job="{job}"}})')
        lag = prometheus.value(f'max(kafka_consumergroup_lag_sum{{job="{job}"}})')
        return seen == expected and lag == 0

    try:  # from the worker's start on: a failure must not leave it running
        prometheus.start()
        assert wait_for(prometheus.ready), prometheus.log_text()[-3000:]
        assert wait_ready(settings)["status"] == 200, worker.log_text()[-3000:]
        assert wait_for(lambda: prometheus.value(f'up{{job="{job}"}}') == 1)

        # Running and scraped, but nothing read yet: the no-events alert finds it.
        idle = wait_for(lambda: prometheus.query(rules["LifecycleNoEvents"]))
        assert idle == [{"metric": {"job": job}, "value": 1.0}]

        events = list(simulate(60, seed=5, duplicate_rate=0.05))
        half = len(events) // 2
        sent = 0
        for part, copies in ((events[:half], 1), (events[half:], 8)):
            assert publish(settings, part) == len(part)
            publish_raw(settings, bad_records(settings) * copies)
            sent += len(part) + 2 * copies
            assert wait_for(lambda n=sent: counted(n), timeout=180), worker.log_text()[-3000:]

        # A range query's last point falls up to a step before ``end``: wait for a
        # scrape a second past the one that saw the final totals, so the range holds
        # it (a fast run is over within a few scrapes, and missed it).
        counted_at = time.time()
        scraped = f'timestamp(up{{job="{job}"}})'
        assert wait_for(lambda: (prometheus.value(scraped) or 0) > counted_at + 1)

        # Every panel's query, as Grafana sends it, returns at least one number: a
        # stat or bar gauge's instant query now, a time series' range query over the
        # run, one point a second, $__rate_interval four scrapes as in Grafana.
        end = time.time()
        run = f"{math.ceil(end - started_at) + 5}s"
        variables = {"job": job, "__rate_interval": "4s", "__interval": "1s", "__range": run}
        queries = panel_queries(load_dashboard())
        no_data: list[Any] = []
        for query in queries:
            expr = fill(query.expr, variables)
            if query.instant:
                values = [row["value"] for row in prometheus.query(expr)]
            else:
                values = prometheus.query_range(expr, started_at, end, step=1)
            if not [v for v in values if math.isfinite(v)]:
                no_data.append((query.panel, query.ref, expr))
        assert no_data == [], f"{len(no_data)} of {len(queries)} queries without data"

        # Every alert expression runs; only the dead-letter share is above its
        # threshold (8 of each kind among ~270 messages in the second part).
        firing = {name: prometheus.query(expr) for name, expr in rules.items()}
        dead = firing.pop("LifecycleDeadLetters")
        assert sorted(row["metric"]["reason"] for row in dead) == ["invalid_json", "not_an_object"]
        assert firing == {name: [] for name in firing}

        # Prometheus evaluates the shipped rules itself: all healthy, and the
        # dead-letter alert pending (its `for:` is 10 minutes).
        def health() -> dict[str, tuple[str, str]]:
            groups = prometheus.api("rules")["groups"]
            return {
                r["name"]: (r["health"], r.get("lastError", "")) for g in groups for r in g["rules"]
            }

        assert wait_for(lambda: health() == dict.fromkeys(rules, ("ok", ""))), health()

        def alerts() -> set[tuple[str, str, str]]:
            return {
                (a["labels"]["alertname"], a["labels"].get("reason", ""), a["state"])
                for a in prometheus.api("alerts")["alerts"]
            }

        reasons = ("invalid_json", "not_an_object")
        pending = {("LifecycleDeadLetters", reason, "pending") for reason in reasons}
        assert wait_for(lambda: alerts() == pending), alerts()

        # A worker that stops answering is down for the rule that watches workers.
        worker.assert_alive()
        worker.stop()
        down = wait_for(lambda: prometheus.query(rules["LifecycleWorkerDown"]))
        assert [row["metric"]["instance"] for row in down] == [target]
    finally:
        worker.stop()
        prometheus.stop()

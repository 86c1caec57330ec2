"""Health, readiness, customer lookup and the bearer token, on two workers sharing the
partitions."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from analytics.simulation import simulate
from harness.engine import (
    OUTPUTS,
    ROOT,
    Worker,
    backtest,
    collect,
    create_topics,
    publish,
    settings_env,
    topic_config,
    unique_settings,
    wait_ready,
)
from streams.broker import find_free_port
from streams.settings import Settings
from tests.scenarios.steps import purchase

TOKEN = secrets.token_urlsafe(24)


def fetch(
    settings: Settings, path: str, authorization: str | None
) -> tuple[int, Mapping[str, str], bytes]:
    request = urllib.request.Request(f"http://{settings.web_host}:{settings.web_port}{path}")
    if authorization:
        request.add_header("Authorization", authorization)
    try:
        with urllib.request.urlopen(request, timeout=15) as response:  # noqa: S310 - localhost
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


def get(settings: Settings, path: str, token: str | None = TOKEN) -> tuple[int, Any]:
    status, _, body = fetch(settings, path, f"Bearer {token}" if token else None)
    return status, json.loads(body or b"{}")


def test_any_worker_answers_for_any_customer(kafka_bootstrap: str, tmp_path: Path) -> None:
    first = unique_settings(kafka_bootstrap, tmp_path).model_copy(
        update={"api_token": SecretStr(TOKEN)}
    )
    second = first.model_copy(
        update={"web_port": find_free_port(1), "data_dir": tmp_path / "second"}
    )
    create_topics(first)
    events = list(simulate(80, seed=21))
    runner, outputs = backtest(first, events)
    assert publish(first, events) == len(events)
    env = {"LIFECYCLE_API_TOKEN": TOKEN}
    workers = [
        Worker(first, tmp_path / "first.log", env=env).start(),
        Worker(second, tmp_path / "second.log", env=env).start(),
    ]
    try:
        collect(first, OUTPUTS, expected=len(outputs), quiet=5)
        for settings in (first, second):
            assert get(settings, "/health", token=None) == (200, {"status": "ok"})
            assert wait_ready(settings) == {"status": 200, "ready": True, "reason": "ready"}
        customers = sorted(k for k in runner.states if k.startswith("cust-"))[:12]
        assert customers
        for customer_id in customers:
            answers = [get(settings, f"/customers/{customer_id}") for settings in (first, second)]
            assert answers[0] == answers[1]  # one of them was forwarded to the owner
            status, body = answers[0]
            expected = runner.states[customer_id]
            assert status == 200
            assert body["stage"] == (expected.stage.value if expected.stage else None)
            assert body["record"]["orders"] == expected.orders
            assert [m["to_stage"] for m in body["recent_transitions"]] == [
                m.to_stage.value for m in expected.history
            ]
            assert [t["timer"] for t in body["pending_timers"]] == sorted(
                expected.timers, key=lambda name: expected.timers[name]
            )
        assert get(first, f"/customers/{customers[0]}", token=None)[0] == 401
        assert get(first, f"/customers/{customers[0]}", token="wrong")[0] == 401
        assert get(second, "/customers/nobody-at-all")[0] == 404
        assert_token_guards_all_but_the_probes(first)

        done = subprocess.run(
            [sys.executable, "-m", "cli", "customer", customers[0]],
            cwd=ROOT,
            env={"PATH": "/usr/bin:/bin", **settings_env(second), **env},
            capture_output=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["customer_id"] == customers[0]
        for worker in workers:
            worker.assert_alive()
            assert "@mail.example" not in worker.log_text()  # the lookups logged no personal data
            assert "LIFECYCLE_API_TOKEN is not set" not in worker.log_text()
    finally:
        for worker in workers:
            worker.stop()


def assert_token_guards_all_but_the_probes(settings: Settings) -> None:
    """Deny by default: only /health and /ready answer without the token."""
    paths = ("/", "/dashboard.json", "/cluster.json", "/metrics", "/customers/x", "/router")
    for path in (*paths, "/no-such-page"):
        for authorization in (None, "Bearer wrong", f"Basic {TOKEN}", f"Bearer {TOKEN}x"):
            status, headers, body = fetch(settings, path, authorization)
            assert status == 401, (path, authorization)
            assert headers["WWW-Authenticate"] == 'Bearer realm="lifecycle"'
            if path != "/":
                assert json.loads(body) == {"error": "unauthorized"}
    for path in ("/health", "/ready"):
        assert fetch(settings, path, None)[0] == 200, path
    status, headers, body = fetch(settings, "/", f"bearer {TOKEN}")  # the scheme's case is free
    assert status == 200
    assert b'<form id="login"' in body
    assert "script-src 'sha256-" in headers["Content-Security-Policy"]
    assert headers["Cache-Control"] == "no-store"
    # Without the token, / is the same page (it holds no data, only the form that asks).
    assert fetch(settings, "/", None)[2] == body
    status, _, body = fetch(settings, "/dashboard.json", f"Bearer {TOKEN}")
    assert status == 200
    assert set(json.loads(body)) >= {"stages", "campaigns", "lag_total"}
    status, _, body = fetch(settings, "/cluster.json", f"Bearer {TOKEN}")
    assert status == 200
    cluster = json.loads(body)
    assert (cluster["expected"], cluster["answered"]) == (2, 2)  # the peer got the token too
    status, headers, body = fetch(settings, "/metrics", f"Bearer {TOKEN}")
    assert status == 200
    assert b"lifecycle_events_total" in body
    assert fetch(settings, "/no-such-page", f"Bearer {TOKEN}")[0] == 404


def test_customer_scores_are_read_at_the_event_clock(kafka_bootstrap: str, tmp_path: Path) -> None:
    """In event-clock mode a customer who just bought reads as the transition of that
    purchase says (r=5, the same predicted CLV), not as of today's wall clock."""
    settings = unique_settings(kafka_bootstrap, tmp_path)
    create_topics(settings)
    events = list(simulate(30, seed=4))
    runner, _ = backtest(settings, events)
    buyer = next(
        key for key, state in sorted(runner.states.items()) if state.orders == 1 and state.stage
    )
    latest = max(datetime.fromisoformat(e["occurred_at"]) for e in events)
    bought_at = latest + timedelta(days=1)  # the newest event of every partition
    events.append(purchase("ev-just-bought", bought_at, buyer, "ord-just-bought", "48.00"))
    _, outputs = backtest(settings, events)
    assert publish(settings, events) == len(events)
    worker = Worker(settings, tmp_path / "worker.log").start()
    try:
        records = collect(settings, OUTPUTS, expected=len(outputs))
        [moved] = [
            r["value"]
            for r in records
            if r["topic"] == settings.topic("transitions")
            and r["value"]["caused_by"] == "ev-just-bought"
        ]
        status, body = get(settings, f"/customers/{buyer}", token=None)
        worker.assert_alive()
    finally:
        worker.stop()
    assert status == 200
    assert moved["snapshot"]["rfm"]["r"] == 5
    scores = {k: v for k, v in body["scores"].items() if k in moved["snapshot"]}
    assert scores == moved["snapshot"]
    assert body["scores"]["days_since_last_order"] == 0
    # The partition's clock: the purchase's own time, or a tick's microsecond after it.
    read_at = datetime.fromisoformat(body["scores_at"])
    assert timedelta(0) <= read_at - bought_at <= timedelta(milliseconds=1)


def test_workers_that_make_the_topics_route_lookups_from_their_first_start(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """Two workers of a new app start together on a broker without its topics. The
    first makes them all (the tables' changelogs and Faust's leader topic too) and
    both wait for their leaders, so the group's first assignment has every topic:
    none is "not found in cluster metadata", and a lookup is routed (404 for an
    unknown id, not 503 for a table whose keys no worker is known to hold)."""
    first = unique_settings(kafka_bootstrap, tmp_path)
    second = first.model_copy(
        update={"web_port": find_free_port(1), "data_dir": tmp_path / "second"}
    )
    workers = [
        Worker(first, tmp_path / "first.log").start(),
        Worker(second, tmp_path / "second.log").start(),
    ]
    try:
        for settings in (first, second):
            assert wait_ready(settings) == {"status": 200, "ready": True, "reason": "ready"}
            assert get(settings, "/customers/nobody-at-all", token=None)[0] == 404
        for table in first.changelog_topics:
            assert topic_config(first, table)["cleanup.policy"] == "compact"
        for worker in workers:
            worker.assert_alive()
            assert "not found in cluster metadata" not in worker.log_text()
            assert "Ignoring missing topic" not in worker.log_text()
    finally:
        for worker in workers:
            worker.stop()

"""The engine end to end on a local broker that demands TLS or a login (or both).

What ``test_sasl.py`` and ``test_tls.py`` share: a second local broker started
the way a developer would (``lifecycle kafka start`` with flags), and one
journey run through a worker whose outputs must equal the backtest's, with
the worker's lag probe and ``lifecycle lag`` logging in as well.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from analytics.simulation import simulate
from cli.kafka import kafka_group
from harness.engine import (
    OUTPUTS,
    Worker,
    backtest,
    collect,
    publish,
    run_cli,
    scrape,
    wait_for,
)
from schemas.codec import to_jsonable
from streams.broker import LocalBroker, find_free_port
from streams.settings import Settings

DEADLINE = 240.0
"""Seconds any one wait of the journey may take: about 15 s here, on two shared cores."""


@dataclass(frozen=True)
class Started:
    """What ``lifecycle kafka start`` printed, and ``lifecycle kafka status --json`` after it."""

    output: str
    status: dict[str, Any]

    @property
    def bootstrap(self) -> str:
        return str(self.status["bootstrap"])


@contextlib.contextmanager
def local_broker(
    tmp_path_factory: pytest.TempPathFactory, *flags: str, typed: str | None = None
) -> Iterator[Started]:
    """A broker of its own home and port, started by the CLI with ``flags`` (``typed``
    answers its prompt, e.g. the SASL password), stopped at the end."""
    port = find_free_port()
    home = tmp_path_factory.mktemp("secured-kafka")
    env = {"LIFECYCLE_KAFKA_DIR": str(home), "LIFECYCLE_KAFKA_PORT": str(port)}
    try:
        started = CliRunner().invoke(
            kafka_group, ["start", *flags], env=env, input=None if typed is None else f"{typed}\n"
        )
        assert started.exit_code == 0, started.output
        status = CliRunner().invoke(kafka_group, ["status", "--json"], env=env)
        assert status.exit_code == 0, status.output
        yield Started(started.output, json.loads(status.stdout))
    finally:
        LocalBroker(port=port, home=home).stop()


def ordered(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = [{"topic": r["topic"], "key": r["key"], "value": r["value"]} for r in records]
    return sorted(rows, key=lambda r: json.dumps(r, sort_keys=True))


def run_journey(settings: Settings, tmp_path: Path, env: dict[str, str] | None = None) -> Worker:
    """Create the topics, publish a small simulated journey, run a worker on it and assert
    that its outputs equal the backtest's and that its group's lag reaches 0, as seen by
    the worker's own probe (/metrics) and by ``lifecycle lag``. Returns the stopped
    worker, for checks of its log."""
    created = run_cli(settings, "topics", "create", timeout=120)
    assert created.returncode == 0, created.stderr
    every = [*settings.inbound_topics, *settings.outbound_topics, *settings.internal_topics]
    every += [*settings.changelog_topics, settings.leader_topic]
    # 7 inbound, 4 out, 2 internal; the app's 2 changelogs and its leader topic
    assert created.stdout.count("created ") == len(every) == 16
    events = list(simulate(40, seed=3))
    _, outputs = backtest(settings, events)
    assert publish(settings, events) == len(events)
    worker = Worker(settings, tmp_path / "worker.log", env=env).start()
    try:
        got = collect(settings, OUTPUTS, expected=len(outputs), timeout=DEADLINE)
        expected = [
            {"topic": settings.topic(o.topic), "key": o.key, "value": to_jsonable(o.value)}
            for o in outputs
        ]
        assert ordered(got) == ordered(expected)
        lag_sum = ("kafka_consumergroup_lag_sum", (("consumergroup", settings.app_id),))
        assert wait_for(lambda: scrape(settings).get(lag_sum) == 0, timeout=DEADLINE)
        lag = wait_for(
            lambda: (
                (done := run_cli(settings, "lag", "--json", "--interval", "0")).returncode == 0
                and json.loads(done.stdout)["total"] == 0
                and json.loads(done.stdout)
            ),
            timeout=DEADLINE,
        )
        assert lag, f"lifecycle lag did not reach 0 over {settings.broker_security_protocol}"
        assert {p["topic"] for p in lag["partitions"]} >= set(settings.inbound_topics)
        assert all(p["committed"] is not None for p in lag["partitions"] if p["end"] > 0)
        worker.assert_alive()
    finally:
        worker.stop()
    return worker


def error_line(stderr: str) -> str:
    """The one ``Error: ...`` line a failed command prints instead of a traceback."""
    assert "Traceback" not in stderr
    return next(line for line in stderr.splitlines() if line.startswith("Error: "))

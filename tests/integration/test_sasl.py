"""The engine end to end through SASL/PLAIN, on a second local broker that demands a login.

One broker for the module, started the way a developer would
(``lifecycle kafka start --sasl-user``), with a password made for this run.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from pydantic import SecretStr

from agents.cli_kafka import kafka_group
from lifecycle.simulation import simulate
from schemas.codec import to_jsonable
from streams.broker import LocalBroker, SaslUser, broker_ready, find_free_port
from streams.settings import Settings
from tests.integration.engine import (
    OUTPUTS,
    ROOT,
    Worker,
    backtest,
    collect,
    publish,
    scrape,
    settings_env,
    unique_settings,
    wait_for,
)

USER = "engine"


@pytest.fixture(scope="module")
def password() -> str:
    return secrets.token_urlsafe(18)


@pytest.fixture(scope="module")
def sasl_bootstrap(tmp_path_factory: pytest.TempPathFactory, password: str) -> Iterator[str]:
    port = find_free_port()
    home = tmp_path_factory.mktemp("sasl-kafka")
    env = {"LIFECYCLE_KAFKA_DIR": str(home), "LIFECYCLE_KAFKA_PORT": str(port)}
    try:
        started = CliRunner().invoke(
            kafka_group, ["start", "--sasl-user", USER], env=env, input=f"{password}\n"
        )
        assert started.exit_code == 0, started.output
        assert f"127.0.0.1:{port} with SASL_PLAINTEXT (PLAIN, user {USER})" in started.stdout
        assert "LIFECYCLE_BROKER_SECURITY_PROTOCOL=SASL_PLAINTEXT" in started.stdout
        assert password not in started.output
        status = json.loads(CliRunner().invoke(kafka_group, ["status", "--json"], env=env).stdout)
        assert status["security_protocol"] == "SASL_PLAINTEXT"
        yield status["bootstrap"]
    finally:
        LocalBroker(port=port, home=home).stop()


def login(settings: Settings, password: str) -> Settings:
    return settings.model_copy(
        update={
            "broker_security_protocol": "SASL_PLAINTEXT",
            "broker_sasl_mechanism": "PLAIN",
            "broker_sasl_username": USER,
            "broker_sasl_password": SecretStr(password),
        }
    )


def ordered(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = [{"topic": r["topic"], "key": r["key"], "value": r["value"]} for r in records]
    return sorted(rows, key=lambda r: json.dumps(r, sort_keys=True))


def cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agents.cli", *args],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", **settings_env(settings)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_broker_takes_only_its_user(sasl_bootstrap: str, password: str) -> None:
    assert broker_ready(sasl_bootstrap, sasl=SaslUser(USER, password))
    assert not broker_ready(sasl_bootstrap, sasl=SaslUser(USER, password + "x"))
    assert not broker_ready(sasl_bootstrap)  # no login, no metadata


def test_engine_end_to_end_over_sasl(sasl_bootstrap: str, password: str, tmp_path: Path) -> None:
    settings = login(unique_settings(sasl_bootstrap, tmp_path), password).model_copy(
        update={"lag_interval": 1.0}
    )
    created = cli(settings, "topics", "create")
    assert created.returncode == 0, created.stderr
    every = [*settings.inbound_topics, *settings.outbound_topics, *settings.internal_topics]
    assert created.stdout.count("created ") == len(every) == 12
    events = list(simulate(40, seed=3))
    _, outputs = backtest(settings, events)
    assert publish(settings, events) == len(events)
    # Bound to every address without an API token: the worker warns about it at start.
    exposed = {"LIFECYCLE_WEB_HOST": "0.0.0.0"}  # noqa: S104 - the point of this check
    worker = Worker(settings, tmp_path / "worker.log", env=exposed).start()
    try:
        got = collect(settings, OUTPUTS, expected=len(outputs))
        expected = [
            {"topic": settings.topic(o.topic), "key": o.key, "value": to_jsonable(o.value)}
            for o in outputs
        ]
        assert ordered(got) == ordered(expected)
        # The worker's own lag probe logs in too: its /metrics report the group's lag, 0.
        lag_sum = ("kafka_consumergroup_lag_sum", (("consumergroup", settings.app_id),))
        assert wait_for(lambda: scrape(settings).get(lag_sum) == 0)
        lag = wait_for(
            lambda: (
                (done := cli(settings, "lag", "--json", "--interval", "0")).returncode == 0
                and json.loads(done.stdout)["total"] == 0
                and json.loads(done.stdout)
            )
        )
        assert lag, "lifecycle lag did not reach 0 over SASL"
        assert {p["topic"] for p in lag["partitions"]} >= set(settings.inbound_topics)
        assert all(p["committed"] is not None for p in lag["partitions"] if p["end"] > 0)
        worker.assert_alive()
    finally:
        worker.stop()
    log = worker.log_text()
    assert "LIFECYCLE_API_TOKEN is not set and the web server binds 0.0.0.0" in log
    assert password not in log
    assert "SaslAuthenticationFailed" not in log


@pytest.mark.parametrize(
    ("command", "credentials"),
    [
        (("topics", "create"), "wrong password"),
        (("lag", "--interval", "0"), "wrong password"),
        (("worker",), "wrong password"),
        (("topics", "create"), "no login"),
    ],
)
def test_wrong_credentials_fail_with_a_clear_error(
    sasl_bootstrap: str, password: str, tmp_path: Path, command: tuple[str, ...], credentials: str
) -> None:
    settings = unique_settings(sasl_bootstrap, tmp_path)
    wrong = secrets.token_urlsafe(18)
    if credentials == "wrong password":
        settings = login(settings, wrong)
    done = cli(settings, *command)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert wrong not in done.stdout + done.stderr
    assert password not in done.stdout + done.stderr
    error = next(line for line in done.stderr.splitlines() if line.startswith("Error: "))
    if credentials == "wrong password":
        assert (
            f"cannot connect to Kafka at {sasl_bootstrap} with SASL_PLAINTEXT as 'engine'" in error
        )
        assert "Authentication failed: Invalid username or password" in error
    else:
        assert f"cannot connect to Kafka at {sasl_bootstrap} with PLAINTEXT:" in error

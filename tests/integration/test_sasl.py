"""The engine end to end through SASL/PLAIN, on a second local broker that demands a login.

One broker for the module, started the way a developer would
(``lifecycle kafka start --sasl-user``), with a password made for this run.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from harness.engine import run_cli, unique_settings
from streams.broker import SaslUser, broker_ready
from streams.settings import Settings
from tests.integration.secured import error_line, local_broker, run_journey

USER = "engine"


@pytest.fixture(scope="module")
def password() -> str:
    return secrets.token_urlsafe(18)


@pytest.fixture(scope="module")
def sasl_bootstrap(tmp_path_factory: pytest.TempPathFactory, password: str) -> Iterator[str]:
    with local_broker(tmp_path_factory, "--sasl-user", USER, typed=password) as started:
        port = started.bootstrap.rpartition(":")[2]
        assert f"127.0.0.1:{port} with SASL_PLAINTEXT (PLAIN, user {USER})" in started.output
        assert "LIFECYCLE_BROKER_SECURITY_PROTOCOL=SASL_PLAINTEXT" in started.output
        assert password not in started.output
        assert started.status["security_protocol"] == "SASL_PLAINTEXT"
        assert started.status["ssl_cafile"] is None
        yield started.bootstrap


def login(settings: Settings, password: str) -> Settings:
    return settings.model_copy(
        update={
            "broker_security_protocol": "SASL_PLAINTEXT",
            "broker_sasl_mechanism": "PLAIN",
            "broker_sasl_username": USER,
            "broker_sasl_password": SecretStr(password),
        }
    )


def test_the_broker_takes_only_its_user(sasl_bootstrap: str, password: str) -> None:
    assert broker_ready(sasl_bootstrap, sasl=SaslUser(USER, password))
    assert not broker_ready(sasl_bootstrap, sasl=SaslUser(USER, password + "x"))
    assert not broker_ready(sasl_bootstrap)  # no login, no metadata


def test_engine_end_to_end_over_sasl(sasl_bootstrap: str, password: str, tmp_path: Path) -> None:
    settings = login(unique_settings(sasl_bootstrap, tmp_path), password).model_copy(
        update={"lag_interval": 1.0}
    )
    # Bound to every address without an API token: the worker warns about it at start.
    exposed = {"LIFECYCLE_WEB_HOST": "0.0.0.0"}  # noqa: S104 - the point of this check
    log = run_journey(settings, tmp_path, env=exposed).log_text()
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
    done = run_cli(settings, *command, timeout=120)
    assert done.returncode == 1, done.stdout + done.stderr
    assert wrong not in done.stdout + done.stderr
    assert password not in done.stdout + done.stderr
    error = error_line(done.stderr)
    if credentials == "wrong password":
        assert (
            f"cannot connect to Kafka at {sasl_bootstrap} with SASL_PLAINTEXT as 'engine'" in error
        )
        assert "Authentication failed: Invalid username or password" in error
    else:
        assert f"cannot connect to Kafka at {sasl_bootstrap} with PLAINTEXT:" in error

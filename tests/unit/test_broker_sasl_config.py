"""The SASL listener's config, without starting Java: what the broker will read."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from pydantic import SecretStr

from streams.broker import BrokerError, LocalBroker, SaslUser
from streams.settings import Settings


def properties(broker: LocalBroker) -> dict[str, str]:
    broker.write_config()
    lines = broker.properties_path.read_text(encoding="utf-8").splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def test_plaintext_by_default(tmp_path: Path) -> None:
    config = properties(LocalBroker(port=19092, home=tmp_path))
    assert config["listeners"] == "PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093"
    assert "sasl.enabled.mechanisms" not in config


def test_sasl_listener_accepts_one_user_and_hides_the_file(tmp_path: Path) -> None:
    broker = LocalBroker(port=19092, home=tmp_path, sasl=SaslUser("engine", "pw-1x"))
    config = properties(broker)
    assert config["listeners"] == "SASL_PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093"
    assert config["advertised.listeners"] == "SASL_PLAINTEXT://127.0.0.1:19092"
    assert config["listener.security.protocol.map"] == (
        "SASL_PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT"
    )
    assert config["sasl.enabled.mechanisms"] == "PLAIN"
    assert config["listener.name.sasl_plaintext.plain.sasl.jaas.config"] == (
        "org.apache.kafka.common.security.plain.PlainLoginModule required "
        'username="engine" password="pw-1x" user_engine="pw-1x";'
    )
    assert stat.S_IMODE(broker.properties_path.stat().st_mode) == 0o600
    assert "pw-1x" not in repr(broker.sasl)
    assert "pw-1x" not in repr(broker)


def test_an_older_readable_config_is_made_private(tmp_path: Path) -> None:
    broker = LocalBroker(port=19092, home=tmp_path, sasl=SaslUser("engine", "pw"))
    tmp_path.joinpath("server.properties").write_text("old")
    tmp_path.joinpath("server.properties").chmod(0o644)
    properties(broker)
    assert stat.S_IMODE(broker.properties_path.stat().st_mode) == 0o600


@pytest.mark.parametrize(
    ("user", "password"),
    [
        ("", "pw"),
        ("a b", "pw"),
        ('x"', "pw"),
        ("u", ""),
        ("u", 'p"w'),
        ("u", "p\\w"),
        ("u", "p;w"),
        ("u", "p\nw"),
        ("u", "pä"),
    ],
)
def test_values_that_would_break_the_jaas_line_are_refused(user: str, password: str) -> None:
    with pytest.raises(BrokerError):
        SaslUser(user, password)


def test_from_settings_uses_the_engine_login_for_sasl_plaintext_plain() -> None:
    login = {
        "broker_security_protocol": "SASL_PLAINTEXT",
        "broker_sasl_username": "engine",
        "broker_sasl_password": SecretStr("pw"),
    }
    broker = LocalBroker.from_settings(Settings.model_validate(login))
    assert broker.sasl == SaslUser("engine", "pw")
    assert broker.security_protocol == "SASL_PLAINTEXT"
    scram = Settings.model_validate({**login, "broker_sasl_mechanism": "SCRAM-SHA-256"})
    assert LocalBroker.from_settings(scram).sasl is None  # the local broker speaks PLAIN only
    assert LocalBroker.from_settings(Settings()).sasl is None

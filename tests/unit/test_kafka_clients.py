"""Kafka security settings reach every client: ours through one factory, Faust's through
``broker_credentials``, and no code builds a client around the factory."""

from __future__ import annotations

import ast
import logging
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from faust.auth import SASLCredentials, SSLCredentials
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth
from pydantic import SecretStr, ValidationError

from streams.app import create_app
from streams.faust_compat import client_connection
from streams.kafka import (
    Connection,
    TrackingProducer,
    admin_client,
    broker_credentials,
    client_options,
    cluster_ready,
    cluster_ready_blocking,
    consumer,
    producer,
)
from streams.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
CLIENT_CLASSES = {
    "AIOKafkaProducer",
    "AIOKafkaConsumer",
    "AIOKafkaAdminClient",
    "AIOKafkaClient",
    "TrackingProducer",
}
BUILT_BY_THE_FACTORY = {
    "TrackingProducer",
    "AIOKafkaConsumer",
    "AIOKafkaAdminClient",
    "AIOKafkaClient",
}
"""The factory's producer is aiokafka's, telling its client of each topic it writes."""
FACTORY = ROOT / "streams" / "kafka.py"
PASSWORD = "pw-" + "x" * 12  # not a real secret: only compared with what the clients hold


def sasl(protocol: str = "SASL_PLAINTEXT", **extra: Any) -> Settings:
    return Settings(
        broker="kafka-1:9093,kafka-2:9093",
        broker_security_protocol=protocol,
        broker_sasl_mechanism="SCRAM-SHA-512",
        broker_sasl_username="engine",
        broker_sasl_password=SecretStr(PASSWORD),
        **extra,
    )


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate and its key: a CA file and a client identity at once."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    request = ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
    subprocess.run(
        ["openssl", *request, "-subj", "/CN=kafka-1", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    return cert, key


def _python_files() -> list[Path]:
    folders = (
        "schemas",
        "lifecycle",
        "streams",
        "agents",
        "cli",
        "mailer",
        "analytics",
        "harness",
        "tests",
        "bench",
    )
    return sorted(p for folder in folders for p in (ROOT / folder).rglob("*.py"))


def _calls(path: Path) -> list[tuple[str, ast.Call]]:
    calls = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            calls.append((name, node))
    return calls


def test_no_kafka_client_is_built_outside_the_factory() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{call.lineno} {name}(...)"
        for path in _python_files()
        if path != FACTORY
        for name, call in _calls(path)
        if name in CLIENT_CLASSES
    ]
    assert offenders == [], "build Kafka clients with streams.kafka: " + ", ".join(offenders)
    assert {name for name, _ in _calls(FACTORY)} >= BUILT_BY_THE_FACTORY
    assert issubclass(TrackingProducer, AIOKafkaProducer)


def test_every_faust_app_gets_the_broker_credentials() -> None:
    apps = [
        (path, call)
        for path in _python_files()
        for name, call in _calls(path)
        if name == "App" and isinstance(call.func, ast.Attribute)
    ]
    assert Path("streams/app.py") in [path.relative_to(ROOT) for path, _ in apps]
    for path, call in apps:  # the engine's, and the benchmark's Faust contenders
        assert "broker_credentials" in {kw.arg for kw in call.keywords}, path


def test_plaintext_by_default() -> None:
    settings = Settings(broker="127.0.0.1:9092")
    assert client_options(settings) == {
        "bootstrap_servers": "127.0.0.1:9092",
        "security_protocol": "PLAINTEXT",
    }
    assert broker_credentials(settings) is None


def test_sasl_plaintext_options() -> None:
    options = client_options(sasl())
    assert options == {
        "bootstrap_servers": "kafka-1:9093,kafka-2:9093",
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "engine",
        "sasl_plain_password": PASSWORD,
    }


def test_sasl_ssl_options_carry_a_verifying_context(certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    settings = sasl(
        "SASL_SSL", broker_ssl_cafile=cert, broker_ssl_certfile=cert, broker_ssl_keyfile=key
    )
    options = client_options(settings)
    assert options["security_protocol"] == "SASL_SSL"
    context = options["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    assert [c["subject"] for c in context.get_ca_certs()] == [((("commonName", "kafka-1"),),)]


def test_hostname_check_can_be_skipped_but_not_verification(
    certificate: tuple[Path, Path],
) -> None:
    settings = Settings(
        broker_security_protocol="SSL",
        broker_ssl_cafile=certificate[0],
        broker_ssl_check_hostname=False,
    )
    context = client_options(settings)["ssl_context"]
    assert not context.check_hostname
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert "sasl_mechanism" not in client_options(settings)


@pytest.mark.parametrize("protocol", ["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"])
async def test_factory_clients_hold_the_settings(
    protocol: str, certificate: tuple[Path, Path]
) -> None:
    tls = {"broker_ssl_cafile": certificate[0]} if "SSL" in protocol else {}
    settings = (
        sasl(protocol, **tls)
        if protocol.startswith("SASL")
        else Settings(broker_security_protocol=protocol, **tls)
    )
    clients = [producer(settings), consumer(settings, "topic"), admin_client(settings)]
    for client in clients:
        connection = client_connection(client)
        assert connection["bootstrap_servers"] == settings.broker
        assert connection["security_protocol"] == protocol
        assert (connection["ssl_context"] is not None) == ("SSL" in protocol)
        if protocol.startswith("SASL"):
            assert connection["sasl_mechanism"] == "SCRAM-SHA-512"
            assert connection["sasl_plain_username"] == "engine"
            assert connection["sasl_plain_password"] == PASSWORD
    for client in clients[:2]:
        await client.stop()  # never started: releases what the constructors opened


@pytest.mark.parametrize("protocol", ["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"])
async def test_an_explicit_connection_builds_the_same_clients(
    protocol: str, certificate: tuple[Path, Path]
) -> None:
    """What the launcher's probe does: the broker's own login and CA, not the settings'."""
    tls = ssl.create_default_context(cafile=str(certificate[0])) if "SSL" in protocol else None
    login = {"sasl_username": "engine", "sasl_password": PASSWORD} if "SASL" in protocol else {}
    connection = Connection("kafka-1:9093", tls=tls, **login)
    assert connection.security_protocol == protocol
    assert PASSWORD not in repr(connection)
    clients = [producer(connection), consumer(connection, "topic"), admin_client(connection)]
    for client in clients:
        held = client_connection(client)
        assert held["bootstrap_servers"] == "kafka-1:9093"
        assert held["security_protocol"] == protocol
        assert held["ssl_context"] is tls
        if login:
            assert held["sasl_mechanism"] == "PLAIN"
            assert held["sasl_plain_username"] == "engine"
            assert held["sasl_plain_password"] == PASSWORD
    for client in clients[:2]:
        await client.stop()


@pytest.fixture
def silent_listener() -> Iterator[str]:
    """A port that accepts connections and never answers: a broker that cannot serve yet."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield f"127.0.0.1:{listener.getsockname()[1]}"


async def test_the_probe_fails_within_its_timeout(
    silent_listener: str, caplog: pytest.LogCaptureFixture
) -> None:
    """One attempt, no client retries, and aiokafka's complaints kept to the probe's debug log."""
    caplog.set_level(logging.DEBUG)
    started = time.monotonic()
    assert not await cluster_ready(Connection(silent_listener), timeout=0.3)
    assert not await cluster_ready(Settings(broker="127.0.0.1:1"), timeout=0.3)  # refused
    assert time.monotonic() - started < 2.0
    aiokafka_records = [r for r in caplog.records if r.name.startswith("aiokafka")]
    assert aiokafka_records == []
    probe_lines = [r.getMessage() for r in caplog.records if r.name == "streams.kafka"]
    assert any("no broker ready at 127.0.0.1:1 (PLAINTEXT)" in line for line in probe_lines)


async def test_the_blocking_probe_runs_from_a_running_loop(silent_listener: str) -> None:
    """An async caller gets the probe in a loop (and thread) of its own."""
    started = time.monotonic()
    assert not cluster_ready_blocking(Connection(silent_listener), timeout=0.3)
    assert time.monotonic() - started < 2.0


def test_the_blocking_probe_runs_without_a_loop(silent_listener: str) -> None:
    started = time.monotonic()
    assert not cluster_ready_blocking(Connection(silent_listener), timeout=0.3)
    assert time.monotonic() - started < 2.0


@pytest.mark.parametrize("protocol", ["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"])
def test_faust_clients_get_what_ours_get(protocol: str, tmp_path: Path) -> None:
    """Faust turns ``broker_credentials`` into aiokafka options itself: the same ones."""
    settings = sasl(protocol) if protocol.startswith("SASL") else Settings()
    if protocol == "SSL":
        settings = Settings(broker_security_protocol="SSL")
    settings = settings.model_copy(update={"data_dir": tmp_path, "store": "memory"})
    credentials = broker_credentials(settings)
    expected_type = {"SSL": SSLCredentials, "SASL_PLAINTEXT": SASLCredentials}.get(protocol)
    if expected_type is not None:
        assert isinstance(credentials, expected_type)
    conf = create_app(settings).app.conf
    faust_options = credentials_to_aiokafka_auth(conf.broker_credentials, conf.ssl_context)
    ours = {k: v for k, v in client_options(settings).items() if k != "bootstrap_servers"}
    assert {k: v for k, v in faust_options.items() if k != "ssl_context"} == {
        k: v for k, v in ours.items() if k != "ssl_context"
    }
    assert (faust_options.get("ssl_context") is not None) == ("SSL" in protocol)
    assert PASSWORD not in repr(credentials)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"broker_security_protocol": "SASL_SSL"}, "needs LIFECYCLE_BROKER_SASL_USERNAME"),
        (
            {"broker_sasl_username": "u", "broker_sasl_password": "p"},
            "LIFECYCLE_BROKER_SASL_USERNAME is set but LIFECYCLE_BROKER_SECURITY_PROTOCOL "
            "is PLAINTEXT",
        ),
        ({"broker_ssl_cafile": "/ca.pem"}, "set it to SSL or SASL_SSL"),
        (
            {"broker_security_protocol": "SSL", "broker_ssl_certfile": "/c.pem"},
            "go together",
        ),
        ({"broker_sasl_mechanism": "GSSAPI"}, "broker_sasl_mechanism"),
        ({"api_token": "  "}, "LIFECYCLE_API_TOKEN is empty"),
    ],
)
def test_incoherent_security_settings_are_refused(env: dict[str, str], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Settings.model_validate(env)


def test_secrets_are_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIFECYCLE_BROKER_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("LIFECYCLE_BROKER_SASL_USERNAME", "engine")
    monkeypatch.setenv("LIFECYCLE_BROKER_SASL_PASSWORD", PASSWORD)
    monkeypatch.setenv("LIFECYCLE_API_TOKEN", PASSWORD + "-token")
    settings = Settings()
    assert settings.broker_sasl_password is not None
    assert settings.broker_sasl_password.get_secret_value() == PASSWORD
    for shown in (repr(settings), str(settings), settings.model_dump_json()):
        assert PASSWORD not in shown


def test_a_tls_file_that_does_not_load_is_named_in_one_line(
    tmp_path: Path, certificate: tuple[Path, Path]
) -> None:
    """Read when the settings are made: every command then prints it as one line
    (``invalid settings: ...``), not a traceback from the first client."""
    not_pem = tmp_path / "ca.txt"
    not_pem.write_text("not a certificate\n")
    ssl_only = {"broker_security_protocol": "SSL"}
    cases = [
        ({"broker_ssl_cafile": str(tmp_path / "missing.pem")}, "No such file or directory"),
        ({"broker_ssl_cafile": str(not_pem)}, "NO_CERTIFICATE_OR_CRL_FOUND"),
    ]
    for env, why in cases:
        with pytest.raises(ValidationError) as caught:
            Settings.model_validate({**ssl_only, **env})
        [error] = caught.value.errors()
        assert error["msg"].startswith("Value error, LIFECYCLE_BROKER_SSL_CAFILE: cannot load ")
        assert why in error["msg"]
    cert, _ = certificate
    with pytest.raises(ValidationError, match="LIFECYCLE_BROKER_SSL_KEYFILE: cannot load"):
        Settings.model_validate(
            {**ssl_only, "broker_ssl_certfile": str(cert), "broker_ssl_keyfile": str(not_pem)}
        )

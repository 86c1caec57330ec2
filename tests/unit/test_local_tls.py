"""The local broker's throwaway CA: certificates a TLS client accepts, and only its own."""

from __future__ import annotations

import contextlib
import socket
import ssl
import stat
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from streams.broker import LocalBroker, SaslUser
from streams.kafka import advice
from streams.local_tls import (
    VALIDITY,
    TlsFiles,
    ensure_certificates,
    issue,
    new_ca,
    write_keystore,
)
from streams.settings import Settings
from tests.unit.test_broker_sasl_config import properties


def handshake(files: TlsFiles, cafile: Path, server_hostname: str) -> None:
    """One TLS handshake with Python's ssl on loopback: the server serves ``files``' chain,
    the client trusts ``cafile`` and checks ``server_hostname``; raises what the client raises."""
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(files.chain, files.key)
    client = ssl.create_default_context(cafile=str(cafile))
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]

        def serve() -> None:
            conn, _ = listener.accept()
            with (
                conn,
                contextlib.suppress(ssl.SSLError),  # the client's refusal, if any
                server.wrap_socket(conn, server_side=True) as tls,
            ):
                tls.recv(1)

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        try:
            with (
                socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
                client.wrap_socket(raw, server_hostname=server_hostname) as tls,
            ):
                tls.sendall(b"x")
        finally:
            thread.join(timeout=10)


@pytest.fixture
def files(tmp_path: Path) -> TlsFiles:
    made = TlsFiles(tmp_path / "tls")
    assert ensure_certificates(made)
    return made


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_a_client_trusting_the_ca_accepts_the_broker(files: TlsFiles, host: str) -> None:
    handshake(files, files.ca, host)


def test_another_throwaway_ca_is_refused(files: TlsFiles, tmp_path: Path) -> None:
    other = TlsFiles(tmp_path / "other")
    ensure_certificates(other)
    with pytest.raises(ssl.SSLCertVerificationError, match="certificate verify failed"):
        handshake(files, other.ca, "127.0.0.1")


def test_a_name_the_certificate_does_not_hold_is_refused(files: TlsFiles) -> None:
    with pytest.raises(ssl.SSLCertVerificationError, match="mismatch"):
        handshake(files, files.ca, "kafka.example")


def test_the_certificate_names_the_loopback_host_and_cannot_sign(files: TlsFiles) -> None:
    leaf, ca = x509.load_pem_x509_certificates(files.chain.read_bytes())
    names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]
    assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert ca == x509.load_pem_x509_certificate(files.ca.read_bytes())
    assert stat.S_IMODE(files.key.stat().st_mode) == 0o600
    assert not list(files.directory.glob("*ca*key*")), "the CA key is never written"


def test_kept_across_starts_and_renewed_near_expiry(files: TlsFiles) -> None:
    first = files.ca.read_bytes()
    assert not ensure_certificates(files)
    assert files.ca.read_bytes() == first
    late = datetime.now(UTC) + VALIDITY - timedelta(hours=1)
    assert ensure_certificates(files, now=late)
    assert files.ca.read_bytes() != first


def test_a_broken_set_is_made_anew(files: TlsFiles) -> None:
    files.key.write_text("not a key")
    assert ensure_certificates(files)
    serialization.load_pem_private_key(files.key.read_bytes(), password=None)


def test_the_keystore_opens_with_the_password_it_came_with(files: TlsFiles) -> None:
    password = write_keystore(files)
    store = pkcs12.load_pkcs12(files.keystore.read_bytes(), password.encode())
    assert store.cert is not None
    assert store.cert.certificate == x509.load_pem_x509_certificates(files.chain.read_bytes())[0]
    assert [c.certificate for c in store.additional_certs] == [
        x509.load_pem_x509_certificate(files.ca.read_bytes())
    ]
    assert stat.S_IMODE(files.keystore.stat().st_mode) == 0o600
    assert write_keystore(files) != password  # a fresh one per start


def test_issue_puts_dns_names_and_addresses_apart() -> None:
    _key, leaf = issue(new_ca(), ("kafka.internal", "10.0.0.7", "::1"))
    names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["kafka.internal"]
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["10.0.0.7", "::1"]


@pytest.mark.parametrize(
    ("sasl", "protocol"), [(None, "SSL"), (SaslUser("engine", "pw"), "SASL_SSL")]
)
def test_tls_listener_config(tmp_path: Path, sasl: SaslUser | None, protocol: str) -> None:
    broker = LocalBroker(port=19092, home=tmp_path, sasl=sasl, tls=True)
    config = properties(broker)
    assert config["listeners"] == f"{protocol}://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093"
    assert config["advertised.listeners"] == f"{protocol}://127.0.0.1:19092"
    assert config["inter.broker.listener.name"] == protocol
    assert config["ssl.keystore.location"] == str(broker.tls_files.keystore)
    assert config["ssl.truststore.location"] == str(broker.tls_files.ca)
    assert config["ssl.truststore.type"] == "PEM"
    pkcs12.load_pkcs12(
        broker.tls_files.keystore.read_bytes(), config["ssl.keystore.password"].encode()
    )
    if sasl is not None:
        assert "listener.name.sasl_ssl.plain.sasl.jaas.config" in config
    status = broker.status()
    assert (status.security_protocol, status.ssl_cafile) == (protocol, broker.tls_files.ca)
    assert broker.client_tls() is not None


def test_from_settings_listens_with_tls_when_the_engine_encrypts() -> None:
    login = {
        "broker_security_protocol": "SASL_SSL",
        "broker_sasl_username": "engine",
        "broker_sasl_password": "pw",
    }
    broker = LocalBroker.from_settings(Settings.model_validate(login))
    assert (broker.tls, broker.sasl, broker.security_protocol) == (
        True,
        SaslUser("engine", "pw"),
        "SASL_SSL",
    )
    ssl_only = LocalBroker.from_settings(Settings(broker_security_protocol="SSL"))
    assert (ssl_only.security_protocol, ssl_only.client_tls()) == ("SSL", None)  # no CA yet
    assert LocalBroker.from_settings(Settings()).tls is False


def refusal(files: TlsFiles, cafile: Path, host: str) -> str:
    """What aiokafka logs when its TLS handshake is refused, with the real ssl message."""
    with pytest.raises(ssl.SSLCertVerificationError) as refused:
        handshake(files, cafile, host)
    return f'Unable connect to "{host}:9093": {refused.value}'


def test_a_refused_ca_is_explained_by_the_ca_setting(files: TlsFiles, tmp_path: Path) -> None:
    other = TlsFiles(tmp_path / "other")
    ensure_certificates(other)
    why = refusal(files, other.ca, "127.0.0.1")
    given = Settings(broker_security_protocol="SSL", broker_ssl_cafile=other.ca)
    assert f"LIFECYCLE_BROKER_SSL_CAFILE ({other.ca}) holds the CA" in advice(given, why)
    unset = advice(Settings(broker_security_protocol="SSL"), why)
    assert "LIFECYCLE_BROKER_SSL_CAFILE (unset: the system's CAs)" in unset


def test_a_refused_name_is_explained_by_the_hostname_check(files: TlsFiles) -> None:
    why = refusal(files, files.ca, "kafka.example")
    said = advice(Settings(broker_security_protocol="SSL", broker_ssl_cafile=files.ca), why)
    assert "does not name the host in LIFECYCLE_BROKER" in said
    assert "LIFECYCLE_BROKER_SSL_CHECK_HOSTNAME=false" in said
    assert "LIFECYCLE_BROKER_SSL_CAFILE" not in said


def test_other_failures_point_at_the_connection_settings() -> None:
    said = advice(Settings(), 'Unable connect to "127.0.0.1:9092": Connection refused')
    assert said.startswith("Check LIFECYCLE_BROKER, LIFECYCLE_BROKER_SECURITY_PROTOCOL")

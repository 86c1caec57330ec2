"""The engine end to end through TLS, over SSL and SASL_SSL, on a second local broker.

One broker at a time for the module, started the way a developer would
(``lifecycle kafka start --tls``, with ``--sasl-user`` for SASL_SSL): its
throwaway CA is the only one the clients trust. A CA of another throwaway
broker is refused with one line that says so.
"""

from __future__ import annotations

import secrets
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydantic import SecretStr

from harness.engine import run_cli, unique_settings
from streams.broker import SaslUser, broker_ready
from streams.local_tls import TlsFiles, ensure_certificates
from streams.settings import Settings
from tests.integration.secured import error_line, local_broker, run_journey

USER = "engine"


@dataclass(frozen=True)
class TlsBroker:
    bootstrap: str
    protocol: str
    cafile: Path
    sasl: SaslUser | None

    def client(self, settings: Settings, cafile: Path | None = None) -> Settings:
        """``settings`` that connect to this broker, trusting ``cafile`` (default: its CA)."""
        update: dict[str, object] = {
            "broker_security_protocol": self.protocol,
            "broker_ssl_cafile": cafile or self.cafile,
        }
        if self.sasl is not None:
            update["broker_sasl_username"] = self.sasl.username
            update["broker_sasl_password"] = SecretStr(self.sasl.password)
        return settings.model_copy(update=update)


@pytest.fixture(scope="module", params=["SSL", "SASL_SSL"])
def tls_broker(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TlsBroker]:
    protocol: str = request.param
    password = secrets.token_urlsafe(18)
    sasl = SaslUser(USER, password) if protocol == "SASL_SSL" else None
    flags = ("--tls", "--sasl-user", USER) if sasl else ("--tls",)
    with local_broker(tmp_path_factory, *flags, typed=password if sasl else None) as started:
        cafile = Path(started.status["ssl_cafile"])
        login = f" (PLAIN, user {USER})" if sasl else ""
        assert f"{started.bootstrap} with {protocol}{login}" in started.output
        assert f"CA cert:   {cafile} (LIFECYCLE_BROKER_SSL_CAFILE)" in started.output
        assert f"LIFECYCLE_BROKER_SECURITY_PROTOCOL={protocol}" in started.output
        assert f"LIFECYCLE_BROKER_SSL_CAFILE={cafile.resolve()}" in started.output
        assert password not in started.output
        assert started.status["security_protocol"] == protocol
        assert cafile.is_file()
        yield TlsBroker(started.bootstrap, protocol, cafile, sasl)


@pytest.fixture(scope="module")
def other_ca(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The CA of another throwaway broker: valid, but not the one that signed ours."""
    files = TlsFiles(tmp_path_factory.mktemp("other-ca"))
    ensure_certificates(files)
    return files.ca


def test_the_broker_answers_only_over_tls_it_can_verify(
    tls_broker: TlsBroker, other_ca: Path
) -> None:
    ours = ssl.create_default_context(cafile=str(tls_broker.cafile))
    theirs = ssl.create_default_context(cafile=str(other_ca))
    assert broker_ready(tls_broker.bootstrap, sasl=tls_broker.sasl, tls=ours)
    assert not broker_ready(tls_broker.bootstrap, sasl=tls_broker.sasl)  # no TLS
    assert not broker_ready(tls_broker.bootstrap, sasl=tls_broker.sasl, tls=theirs)


def test_engine_end_to_end_over_tls(tls_broker: TlsBroker, tmp_path: Path) -> None:
    settings = tls_broker.client(unique_settings(tls_broker.bootstrap, tmp_path)).model_copy(
        update={"lag_interval": 1.0}
    )
    log = run_journey(settings, tmp_path).log_text()
    assert "CERTIFICATE_VERIFY_FAILED" not in log
    if tls_broker.sasl is not None:
        assert tls_broker.sasl.password not in log


@pytest.mark.parametrize("command", [("topics", "create"), ("worker",)])
def test_a_wrong_ca_fails_with_one_clear_line(
    tls_broker: TlsBroker, other_ca: Path, tmp_path: Path, command: tuple[str, ...]
) -> None:
    settings = tls_broker.client(unique_settings(tls_broker.bootstrap, tmp_path), other_ca)
    done = run_cli(settings, *command, timeout=120)
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stderr.strip().splitlines() == [error_line(done.stderr)]
    error = error_line(done.stderr)
    assert f"cannot connect to Kafka at {tls_broker.bootstrap} with {tls_broker.protocol}" in error
    assert "certificate verify failed" in error
    assert f"LIFECYCLE_BROKER_SSL_CAFILE ({other_ca})" in error
    if tls_broker.sasl is not None:
        assert tls_broker.sasl.password not in done.stdout + done.stderr

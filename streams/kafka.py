"""Every Kafka client of the engine is built here, so none can miss the security settings.

A producer, consumer or admin client made anywhere else would connect in
plaintext and without credentials, and fail only against a secured cluster,
far from the cause; ``tests/unit/test_kafka_clients.py`` fails when code
outside this module constructs an aiokafka client directly. The same
settings become Faust's ``broker_credentials`` for the worker's own clients.
"""

from __future__ import annotations

import contextlib
import logging
import ssl
from collections import deque
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaConnectionError
from aiokafka.helpers import create_ssl_context

from streams.settings import Settings

if TYPE_CHECKING:
    from faust.types.auth import CredentialsT

__all__ = [
    "BrokerUnreachableError",
    "admin_client",
    "advice",
    "broker_credentials",
    "client_options",
    "consumer",
    "explained",
    "producer",
    "ssl_context",
]


class BrokerUnreachableError(Exception):
    """No broker could be reached or logged in to; the message says where, how and why."""


def ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """The TLS context of ``SSL``/``SASL_SSL``; None when the connection is not encrypted."""
    if not settings.broker_tls:
        return None
    key_password = settings.broker_ssl_key_password
    context: ssl.SSLContext = create_ssl_context(
        cafile=settings.broker_ssl_cafile,
        certfile=settings.broker_ssl_certfile,
        keyfile=settings.broker_ssl_keyfile,
        password=key_password.get_secret_value() if key_password else None,
    )
    if not settings.broker_ssl_check_hostname:
        context.check_hostname = False  # the chain is still verified (CERT_REQUIRED)
    return context


def client_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments every aiokafka client takes: where the brokers are and how to log in."""
    options: dict[str, Any] = {
        "bootstrap_servers": settings.broker,
        "security_protocol": settings.broker_security_protocol,
    }
    context = ssl_context(settings)
    if context is not None:
        options["ssl_context"] = context
    if settings.broker_security_protocol.startswith("SASL_"):
        assert settings.broker_sasl_password is not None  # checked by Settings
        options["sasl_mechanism"] = settings.broker_sasl_mechanism
        options["sasl_plain_username"] = settings.broker_sasl_username
        options["sasl_plain_password"] = settings.broker_sasl_password.get_secret_value()
    return options


def broker_credentials(settings: Settings) -> CredentialsT | None:
    """The same settings as Faust's ``broker_credentials`` (None: plaintext)."""
    import faust

    context = ssl_context(settings)
    if settings.broker_security_protocol.startswith("SASL_"):
        assert settings.broker_sasl_password is not None  # checked by Settings
        return faust.SASLCredentials(
            username=settings.broker_sasl_username,
            password=settings.broker_sasl_password.get_secret_value(),
            ssl_context=context,  # given, Faust speaks SASL_SSL; None, SASL_PLAINTEXT
            mechanism=settings.broker_sasl_mechanism,
        )
    if context is not None:
        return faust.SSLCredentials(context)
    return None


def producer(settings: Settings, **options: Any) -> AIOKafkaProducer:
    return AIOKafkaProducer(**client_options(settings), **options)


def consumer(settings: Settings, *topics: str, **options: Any) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(*topics, **client_options(settings), **options)


def admin_client(settings: Settings, **options: Any) -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(**client_options(settings), **options)


class _Recent(logging.Handler):
    """The last few aiokafka errors: the only place it says why a connection failed."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.lines: deque[str] = deque(maxlen=3)

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@contextlib.contextmanager
def explained(settings: Settings) -> Iterator[None]:
    """Turn aiokafka's bare "Unable to bootstrap" into a ``BrokerUnreachableError`` naming the
    brokers, the protocol, the user (never the password) and the broker's own reason,
    e.g. a refused SASL login, which aiokafka only logs."""
    recent = _Recent()
    log = logging.getLogger("aiokafka")
    log.addHandler(recent)
    try:
        yield
    except KafkaConnectionError as exc:
        user = settings.broker_sasl_username
        login = f" as {user!r} ({settings.broker_sasl_mechanism})" if user else ""
        why = "; ".join(recent.lines) or str(exc)
        msg = (
            f"cannot connect to Kafka at {settings.broker} with "
            f"{settings.broker_security_protocol}{login}: {why}. {advice(settings, why)}"
        )
        raise BrokerUnreachableError(msg) from None
    finally:
        log.removeHandler(recent)


def advice(settings: Settings, why: str) -> str:
    """Which setting to look at for the reason aiokafka gave: a TLS verification failure
    names the CA file (or the host name check), anything else the connection settings."""
    if "CERTIFICATE_VERIFY_FAILED" in why:
        if "mismatch" in why:  # "Hostname mismatch" / "IP address mismatch"
            return (
                "TLS verification failed: the broker's certificate does not name the host in "
                "LIFECYCLE_BROKER. Connect by a name it holds, or (last resort) set "
                "LIFECYCLE_BROKER_SSL_CHECK_HOSTNAME=false."
            )
        cafile = settings.broker_ssl_cafile
        where = f"({cafile})" if cafile else "(unset: the system's CAs)"
        return (
            "TLS verification failed: check that LIFECYCLE_BROKER_SSL_CAFILE "
            f"{where} holds the CA that signed the broker's certificate."
        )
    return (
        "Check LIFECYCLE_BROKER, LIFECYCLE_BROKER_SECURITY_PROTOCOL and "
        "LIFECYCLE_BROKER_SASL_* / _SSL_*."
    )

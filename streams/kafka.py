"""Every Kafka client of the engine is built here, so none can miss the security settings.

A producer, consumer or admin client made anywhere else would connect in
plaintext and without credentials, and fail only against a secured cluster,
far from the cause; ``tests/unit/test_kafka_clients.py`` fails when code
outside this module constructs an aiokafka client directly. The same
settings become Faust's ``broker_credentials`` for the worker's own clients.
"""

from __future__ import annotations

import ssl
from typing import TYPE_CHECKING, Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.helpers import create_ssl_context

from streams.settings import Settings

if TYPE_CHECKING:
    from faust.types.auth import CredentialsT

__all__ = [
    "admin_client",
    "broker_credentials",
    "client_options",
    "consumer",
    "producer",
    "ssl_context",
]


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

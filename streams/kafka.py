"""Every Kafka client of the engine is built here, so none can miss the security settings.

A producer, consumer or admin client made anywhere else would connect in
plaintext and without credentials, and fail only against a secured cluster,
far from the cause; ``tests/unit/test_kafka_clients.py`` fails when code
outside this module constructs an aiokafka client directly. The same
settings become Faust's ``broker_credentials`` for the worker's own clients.

A client is built from a ``Connection``: where the brokers are and how to log
in. The factories take ``Settings`` (the ``LIFECYCLE_BROKER_*`` variables, what
the engine uses) or a ``Connection`` given explicitly, for code whose security
is not the engine's: the local broker's launcher probes it with the broker's
own user and CA (``cluster_ready``), and its tests with wrong ones on purpose.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import weakref
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.client import AIOKafkaClient
from aiokafka.errors import KafkaConnectionError, KafkaError
from aiokafka.helpers import create_ssl_context

from streams.settings import Settings

if TYPE_CHECKING:
    from faust.types.auth import CredentialsT

__all__ = [
    "BrokerUnreachableError",
    "Connection",
    "TrackingProducer",
    "admin_client",
    "advice",
    "broker_credentials",
    "client_options",
    "cluster_client",
    "cluster_ready",
    "cluster_ready_blocking",
    "consumer",
    "explained",
    "producer",
    "ssl_context",
    "track_topic",
]

logger = logging.getLogger(__name__)


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


@dataclass(frozen=True)
class Connection:
    """Where the brokers are and how to log in: what every client is built from.

    The security protocol follows from what is given (a TLS context: ``SSL``; a
    SASL user: ``SASL_PLAINTEXT``; both: ``SASL_SSL``), so no connection can
    name a protocol its other fields contradict.
    """

    bootstrap: str
    """``host:port[,host:port]``."""
    tls: ssl.SSLContext | None = None
    """Encrypt, verifying the brokers with this context; None: no TLS."""
    sasl_username: str | None = None
    """Log in as this user (with ``sasl_password``); None: no login."""
    sasl_password: str | None = field(default=None, repr=False)
    sasl_mechanism: str = "PLAIN"

    @classmethod
    def of(cls, settings: Settings) -> Connection:
        """The connection the ``LIFECYCLE_BROKER_*`` settings describe."""
        if not settings.broker_security_protocol.startswith("SASL_"):
            return cls(settings.broker, tls=ssl_context(settings))
        username, password = settings.broker_sasl_username, settings.broker_sasl_password
        assert username is not None  # checked by Settings, as the password
        assert password is not None
        return cls(
            settings.broker,
            tls=ssl_context(settings),
            sasl_username=username,
            sasl_password=password.get_secret_value(),
            sasl_mechanism=settings.broker_sasl_mechanism,
        )

    @property
    def security_protocol(self) -> str:
        transport = "PLAINTEXT" if self.tls is None else "SSL"
        return transport if self.sasl_username is None else f"SASL_{transport}"

    def options(self) -> dict[str, Any]:
        """Keyword arguments every aiokafka client takes."""
        options: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap,
            "security_protocol": self.security_protocol,
        }
        if self.tls is not None:
            options["ssl_context"] = self.tls
        if self.sasl_username is not None:
            options["sasl_mechanism"] = self.sasl_mechanism
            options["sasl_plain_username"] = self.sasl_username
            options["sasl_plain_password"] = self.sasl_password
        return options


def _connection(source: Settings | Connection) -> Connection:
    return source if isinstance(source, Connection) else Connection.of(source)


def client_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments every aiokafka client takes: where the brokers are and how to log in."""
    return Connection.of(settings).options()


def broker_credentials(settings: Settings) -> CredentialsT | None:
    """The same settings as Faust's ``broker_credentials`` (None: plaintext)."""
    import faust

    connection = Connection.of(settings)
    if connection.sasl_username is not None:
        return faust.SASLCredentials(
            username=connection.sasl_username,
            password=connection.sasl_password,
            ssl_context=connection.tls,  # given, Faust speaks SASL_SSL; None, SASL_PLAINTEXT
            mechanism=connection.sasl_mechanism,
        )
    if connection.tls is not None:
        return faust.SSLCredentials(connection.tls)
    return None


_TRACKED: weakref.WeakKeyDictionary[AIOKafkaClient, set[str]] = weakref.WeakKeyDictionary()


async def track_topic(client: AIOKafkaClient, topic: str) -> None:
    """Make ``client`` keep ``topic`` in every metadata refresh, before it writes there.

    aiokafka refreshes the metadata of the topics it was told of with
    ``add_topic``, or of every topic while it was told of none, and a producer
    tells it only of topics that refresh did not already show. A topic known
    from that first refresh is then dropped by the next one, once a topic
    created later has been added; a batch queued for it at that moment waits for
    a leader the client never asks for again, while it refreshes without pause,
    until the request timeout (Faust's producer: 20 minutes), and a worker's agent
    queuing its next batch for that partition waits as long. Told of every topic
    it writes, the client keeps them all.
    """
    tracked = _TRACKED.get(client)
    if tracked is None:
        tracked = _TRACKED[client] = set()
    if topic not in tracked:
        tracked.add(topic)
        await client.add_topic(topic)


class TrackingProducer(AIOKafkaProducer):  # type: ignore[misc]  # aiokafka ships no types
    """aiokafka's producer, telling its client of each topic it writes (``track_topic``)."""

    async def send(self, topic: str, *args: Any, **kwargs: Any) -> Any:
        await track_topic(self.client, topic)
        return await super().send(topic, *args, **kwargs)

    async def send_batch(self, batch: Any, topic: str, *, partition: int) -> Any:
        await track_topic(self.client, topic)
        return await super().send_batch(batch, topic, partition=partition)

    async def partitions_for(self, topic: str) -> Any:
        await track_topic(self.client, topic)
        return await super().partitions_for(topic)


def producer(source: Settings | Connection, **options: Any) -> AIOKafkaProducer:
    return TrackingProducer(**_connection(source).options(), **options)


def consumer(source: Settings | Connection, *topics: str, **options: Any) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(*topics, **_connection(source).options(), **options)


def admin_client(source: Settings | Connection, **options: Any) -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(**_connection(source).options(), **options)


def cluster_client(source: Settings | Connection, **options: Any) -> AIOKafkaClient:
    """aiokafka's bare client: connections and metadata, no producing or consuming.
    Built inside a running event loop (it binds to it)."""
    return AIOKafkaClient(**_connection(source).options(), **options)


_PROBE_CLIENT_ID: Final = "lifecycle-probe"
_PROBE_CLOSE_GRACE: Final = 0.5
"""At most this (or the probe's timeout, if shorter) is spent closing a probe's connections."""
# aiokafka's client logs as "aiokafka", its connections and metadata as these two.
_PROBE_LOGGERS: Final = ("aiokafka", "aiokafka.conn", "aiokafka.cluster")
_probe_log: ContextVar[deque[str] | None] = ContextVar("_probe_log", default=None)


class _ProbeLog(logging.Filter):
    """Keeps aiokafka's complaints about a probe's connection out of the logs, for the probe.

    A probe that finds no broker yet is expected (the launcher polls a starting
    one), but aiokafka logs every refused connection or login as an error,
    which the CLI would print on every poll. Only records logged in a probe's
    own context (its task, and the tasks its client starts) are held back; the
    warnings and errors among them become the probe's debug line.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        held = _probe_log.get()
        if held is None:
            return True
        if record.levelno >= logging.WARNING:
            held.append(record.getMessage())
        return False


_PROBE_FILTER: Final = _ProbeLog()


async def cluster_ready(
    source: Settings | Connection,
    timeout: float,  # noqa: ASYNC109 -- also each request's timeout inside the client
) -> bool:
    """Whether the brokers answer, accept this connection's TLS and login, and list a live one.

    One bootstrap of aiokafka's client, tried once, each address in turn: connect (with
    TLS, the broker's certificate verified by the context), ApiVersions, with SASL
    the login, then Metadata, which names only unfenced brokers; an open port
    alone is not enough (it opens before the broker can serve). ``timeout`` bounds
    the whole of it and each request, and nothing is retried: the caller polls, and
    a wrong certificate or password fails at once, as the broker refuses it. Why
    not goes to this module's debug log. The client is closed either way.
    """
    connection = _connection(source)
    for name in _PROBE_LOGGERS:
        logging.getLogger(name).addFilter(_PROBE_FILTER)  # a filter is added only once
    held: deque[str] = deque(maxlen=3)
    token = _probe_log.set(held)
    try:
        client = cluster_client(
            connection,
            client_id=_PROBE_CLIENT_ID,
            request_timeout_ms=max(1, round(timeout * 1000)),
            retry_backoff_ms=0,  # the probe never retries: its caller does
            metadata_max_age_ms=3_600_000,  # no background refresh in a probe's lifetime
            connections_max_idle_ms=3_600_000,  # the probe closes its connections itself
        )
        try:
            async with asyncio.timeout(timeout):
                await client.bootstrap()
            return bool(client.cluster.brokers())
        except (KafkaError, OSError, TimeoutError) as exc:
            why = "; ".join(held) or repr(exc)
            logger.debug(
                "no broker ready at %s (%s): %s",
                connection.bootstrap,
                connection.security_protocol,
                why,
            )
            return False
        finally:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(timeout, _PROBE_CLOSE_GRACE)):
                    await client.close()  # only a broker that hangs up slowly makes it wait
    finally:
        _probe_log.reset(token)


def cluster_ready_blocking(source: Settings | Connection, timeout: float) -> bool:
    """``cluster_ready`` for synchronous code (the launcher's polls), in an event loop of its own.

    From a running loop (an async test or command) the probe runs in a thread of
    its own, as it cannot run in the caller's loop without returning to it; that
    loop is blocked meanwhile, as by any synchronous call. The loop is a
    ``_ProbeLoop``, closed only once the probe's connections are.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return _in_probe_loop(source, timeout)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="cluster-probe") as thread:
        return thread.submit(_in_probe_loop, source, timeout).result()


def _in_probe_loop(source: Settings | Connection, timeout: float) -> bool:
    loop = _ProbeLoop()
    with asyncio.Runner(loop_factory=lambda: loop) as runner:
        try:
            return runner.run(cluster_ready(source, timeout))
        finally:
            runner.run(loop.close_connections(min(timeout, _PROBE_CLOSE_GRACE)))


class _ProbeLoop(asyncio.SelectorEventLoop):
    """The event loop of one probe, which sees its connections closed before it closes.

    aiokafka closes a connection without waiting for it: a TLS one then still
    owes the broker its goodbye, a round trip, and a loop closed before that
    leaves the socket to the garbage collector (a ResourceWarning). A connection
    whose Metadata request the timeout cut short is not closed by aiokafka at
    all: it is aborted here, and the finalizer's report of it ("Unclosed
    AIOKafkaConnection", to the loop's exception handler) logged at debug level,
    as the probe already said why it failed.
    """

    def __init__(self) -> None:
        super().__init__()
        self.opened: list[tuple[asyncio.Transport, Any]] = []
        self.set_exception_handler(_probe_loop_exception)

    async def create_connection(  # type: ignore[override]  # passes every argument on
        self, *args: Any, **kwargs: Any
    ) -> tuple[asyncio.Transport, asyncio.BaseProtocol]:
        transport, protocol = await super().create_connection(*args, **kwargs)
        self.opened.append((transport, transport.get_extra_info("socket")))
        return transport, protocol

    async def close_connections(self, grace: float) -> None:
        """Abort the connections nobody closed, give the others up to ``grace`` seconds to
        finish closing, then abort those still open."""
        for transport, sock in self.opened:
            if _is_open(sock) and not transport.is_closing():
                transport.abort()  # the probe is over: nothing of it may stay connected
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(grace):
                while any(_is_open(sock) for _, sock in self.opened):  # noqa: ASYNC110
                    await asyncio.sleep(0.001)  # polled: nothing tells when asyncio closes one
        for transport, sock in self.opened:
            if _is_open(sock):
                transport.abort()


def _is_open(sock: Any) -> bool:
    """Whether a transport's socket (``get_extra_info("socket")``) is still open."""
    return sock is not None and sock.fileno() != -1


def _probe_loop_exception(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    if context.get("message") == "Unclosed AIOKafkaConnection":
        logger.debug("a probe's connection cut short was closed by its finalizer")
    else:
        loop.default_exception_handler(context)


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

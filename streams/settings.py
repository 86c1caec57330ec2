"""One settings object for every process of the engine.

Every field is read from an environment variable named ``LIFECYCLE_<FIELD>``
(nested topic names as ``LIFECYCLE_TOPICS__<NAME>``), so a worker, the CLI
and the tests are configured the same way, and docker-compose only sets env.
"""

from __future__ import annotations

import ssl
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from lifecycle.clock import ClockMode
from schemas.events import INBOUND_TOPICS, MAX_ID_LENGTH, MAX_ITEMS, MAX_TEXT_LENGTH
from schemas.inbound import InputLimits
from schemas.records import Campaign

DEFAULT_HOME = Path.home() / ".cache" / "lifecycle"
_OUTBOUND = ("transitions", "triggers", "deadletter", "attribution")
TABLES = ("customers", "copurchase")
"""The app's changelogged tables: customer records, and co-purchase counts."""


MAX_LATENESS = 366 * 86400.0
"""The most ``LIFECYCLE_ALLOWED_LATENESS`` may be (seconds): a year. A clock held further
back than that fires no timer in time; beyond a ``timedelta`` it cannot be held at all."""


def _reason(exc: OSError) -> str:
    """Why a file did not load, in a few words: the OS's error, or OpenSSL's reason."""
    if isinstance(exc, ssl.SSLError):
        return str(exc.reason or exc)
    return exc.strerror or str(exc)


def _servers_of(broker: str) -> list[str]:
    """The servers ``LIFECYCLE_BROKER`` names, comma-separated, blanks left out."""
    return [entry.strip() for entry in broker.split(",") if entry.strip()]


class TopicNames(BaseModel):
    """Topic names before the prefix; each one settable for shops with naming rules
    (``LIFECYCLE_TOPICS__<NAME>``). A name that is none of these is refused, not
    ignored: a misspelt rename would leave the engine on the default topic."""

    model_config = ConfigDict(extra="forbid")

    signup: str = "events.signup"
    browse: str = "events.browse"
    cart: str = "events.cart"
    purchase: str = "events.purchase"
    engagement: str = "events.engagement"
    privacy: str = "events.privacy"
    custom: str = "events.custom"
    transitions: str = "lifecycle.transitions"
    triggers: str = "lifecycle.triggers"
    deadletter: str = "lifecycle.deadletter"
    attribution: str = "lifecycle.attribution"
    ticks: str = "lifecycle.ticks"
    merge: str = "lifecycle.merge"
    repartition: str = "lifecycle.repartition"
    """Stem of the re-keyed copies of the inbound topics (``repartition`` mode):
    ``<stem>.<inbound topic name>``."""


InputPartitioner = Literal["murmur2", "crc32", "repartition"]

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]


class Settings(BaseSettings):
    """Engine settings (env ``LIFECYCLE_*``).

    - ``LIFECYCLE_BROKER``: Kafka bootstrap servers, ``host:port[,host:port]``.
    - ``LIFECYCLE_TOPIC_PREFIX``: prepended to every topic name.
    - ``LIFECYCLE_PARTITIONS``: partitions of every topic the engine creates.
    - ``LIFECYCLE_REPLICATION``: replication factor of those topics.
    - ``LIFECYCLE_APP_ID``: Faust application id (consumer group, changelog names).
    - ``LIFECYCLE_STORE``: ``rocksdb`` (default, via rocksdict) or ``memory``.
    - ``LIFECYCLE_DATA_DIR``: where the worker keeps its local table store.
    - ``LIFECYCLE_WEB_HOST`` / ``LIFECYCLE_WEB_PORT``: the worker's HTTP server.
    - ``LIFECYCLE_PLAYBOOK``: playbook YAML; the built-in default when unset.
    - ``LIFECYCLE_KAFKA_PORT`` / ``LIFECYCLE_KAFKA_DIR``: the local broker launcher.
    - ``LIFECYCLE_LOG_LEVEL``: worker log level.
    - ``LIFECYCLE_TICK_INTERVAL``: seconds between ticks to each partition.
    - ``LIFECYCLE_MAX_IDLE``: seconds a partition waits for a topic that says it has
      more data before it gives up waiting (the cross-topic merge's safety valve).
    - ``LIFECYCLE_MAX_MESSAGE_BYTES``: larger inbound messages are dead-lettered.
    - ``LIFECYCLE_MAX_ID_LENGTH`` (256), ``LIFECYCLE_MAX_TEXT_LENGTH`` (1024),
      ``LIFECYCLE_MAX_ITEMS`` (1000): longer ids, free-text fields (category, source,
      first_name, string values of properties and traits) or order item lists are
      dead-lettered as ``too_long``; these can only lower the schema's own caps.
    - ``LIFECYCLE_EARLIEST_EVENT_TIME`` (1970-01-01T00:00:00Z) and
      ``LIFECYCLE_MAX_FUTURE`` (seconds, default 366 days): an event that happened
      before the first, or more than the second after its Kafka record's timestamp,
      is dead-lettered as ``time_out_of_range`` (it would drag the event-time clock).
    - ``LIFECYCLE_BROKER_SECURITY_PROTOCOL``: ``PLAINTEXT`` (default), ``SSL``,
      ``SASL_PLAINTEXT`` or ``SASL_SSL``: how every Kafka client of the engine connects.
    - ``LIFECYCLE_BROKER_SASL_MECHANISM``: ``PLAIN`` (default), ``SCRAM-SHA-256`` or
      ``SCRAM-SHA-512``; ``LIFECYCLE_BROKER_SASL_USERNAME`` and
      ``LIFECYCLE_BROKER_SASL_PASSWORD`` (a secret: never logged or printed).
    - ``LIFECYCLE_BROKER_SSL_CAFILE``: CA bundle that signed the brokers' certificates
      (the system's CAs when unset); ``LIFECYCLE_BROKER_SSL_CERTFILE`` /
      ``LIFECYCLE_BROKER_SSL_KEYFILE`` / ``LIFECYCLE_BROKER_SSL_KEY_PASSWORD``: a client
      certificate for mutual TLS; ``LIFECYCLE_BROKER_SSL_CHECK_HOSTNAME`` (default true):
      false still verifies the chain but not the name, like the Java client's empty
      ``ssl.endpoint.identification.algorithm``.
    - ``LIFECYCLE_API_TOKEN``: when set, every HTTP endpoint but ``/health`` and
      ``/ready`` needs ``Authorization: Bearer <token>``.
    - ``LIFECYCLE_SMTP_HOST`` / ``LIFECYCLE_SMTP_PORT``: where ``lifecycle mailer`` sends.
    - ``LIFECYCLE_MAILER_FROM``, ``LIFECYCLE_MAILER_GROUP``, ``LIFECYCLE_MAILER_OUTBOX``
      (SQLite file), ``LIFECYCLE_MAILER_TEMPLATES`` (a directory overriding the built-in
      templates), ``LIFECYCLE_MAILER_BOUNCES`` (publish refused recipients as bounces).
    - ``LIFECYCLE_MAILER_MAX_AGE__<CAMPAIGN>``: seconds after its ``send_after`` that a
      trigger of that campaign is still worth sending; older ones are stored as
      ``expired``. Defaults: cart and browse abandonment 24 h, others 7 days.
    - ``LIFECYCLE_LAG_INTERVAL``: seconds between the worker's lag measurements.
    - ``LIFECYCLE_COMMIT_INTERVAL``: seconds between the worker's offset commits (what
      a crash makes it read again, idempotently).
    - ``LIFECYCLE_SESSION_TIMEOUT``: seconds the group waits for a silent worker before
      its partitions move to the others (the broker bounds it: 6 to 300 by default).
    - ``LIFECYCLE_CLOCK``: ``wall`` (live: timers follow the wall clock) or ``event``
      (replay: timers follow each partition's event-time watermark).
    - ``LIFECYCLE_ALLOWED_LATENESS``: seconds the clock stays behind, so an event
      that arrives this late is still applied before the timers it could cancel.
    - ``LIFECYCLE_BATCH_MAX``: most messages a worker handles between two commits
      (outputs acknowledged, records written, changelog flushed, offsets acked).
    - ``LIFECYCLE_BATCH_LINGER``: seconds a worker waits for more messages before it
      commits a batch (only records and offsets wait for the commit).
    - ``LIFECYCLE_OUTPUT_HOLD``: seconds a batch's outputs wait for more to go out with
      them (or for the commit, if it comes first): fewer, larger record batches
      against at most this much added event-to-trigger latency. When the worker
      runs out of messages they go once held a quarter of it.
    - ``LIFECYCLE_INPUT_PARTITIONER``: how the shops' producers partition the inbound
      topics: ``murmur2`` (default: the Java client, aiokafka, librdkafka's
      ``murmur2_random``), ``crc32`` (librdkafka's default ``consistent_random``: kcat,
      confluent-kafka, node-rdkafka) or ``repartition`` (any, keyless too: the engine
      re-keys its input through internal topics first, at a cost).
    - ``LIFECYCLE_READ_AHEAD``: messages of one inbound topic-partition the worker may
      hold unapplied (waiting for another topic) before it stops fetching that
      topic-partition, until half of them are applied: bounds a replay's memory.
    """

    model_config = SettingsConfigDict(
        env_prefix="LIFECYCLE_", env_nested_delimiter="__", extra="ignore"
    )

    broker: str = "127.0.0.1:9092"
    broker_security_protocol: SecurityProtocol = "PLAINTEXT"
    broker_sasl_mechanism: SaslMechanism = "PLAIN"
    broker_sasl_username: str | None = None
    broker_sasl_password: SecretStr | None = None
    broker_ssl_cafile: Path | None = None
    broker_ssl_certfile: Path | None = None
    broker_ssl_keyfile: Path | None = None
    broker_ssl_key_password: SecretStr | None = None
    broker_ssl_check_hostname: bool = True
    topic_prefix: str = ""
    topics: TopicNames = Field(default_factory=TopicNames)
    partitions: int = Field(default=4, ge=1)
    replication: int = Field(default=1, ge=1)
    app_id: str = "lifecycle"
    store: Literal["rocksdb", "memory"] = "rocksdb"
    data_dir: Path = DEFAULT_HOME / "worker"
    web_host: str = "127.0.0.1"
    web_port: int = Field(default=6066, ge=0, le=65535)
    playbook: Path | None = None
    kafka_port: int = Field(default=9092, ge=1, le=65535)
    kafka_dir: Path = DEFAULT_HOME / "kafka"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    tick_interval: float = Field(default=1.0, gt=0, allow_inf_nan=False)
    max_idle: float = Field(default=30.0, gt=0)
    max_message_bytes: int = Field(default=64 * 1024, ge=1024)
    max_id_length: int = Field(default=MAX_ID_LENGTH, ge=1, le=MAX_ID_LENGTH)
    max_text_length: int = Field(default=MAX_TEXT_LENGTH, ge=1, le=MAX_TEXT_LENGTH)
    max_items: int = Field(default=MAX_ITEMS, ge=1, le=MAX_ITEMS)
    earliest_event_time: AwareDatetime = datetime(1970, 1, 1, tzinfo=UTC)
    max_future: timedelta = Field(default=timedelta(days=366), gt=timedelta(0))
    lag_interval: float = Field(default=10.0, gt=0)
    commit_interval: float = Field(default=1.0, gt=0)
    session_timeout: float = Field(default=60.0, ge=6, le=300)
    stop_timeout: float = Field(default=30.0, gt=0)
    api_token: SecretStr | None = None
    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(default=1025, ge=1, le=65535)
    mailer_from: str = "lifecycle@shop.example"
    mailer_group: str = "lifecycle-mailer"
    mailer_outbox: Path = DEFAULT_HOME / "mailer" / "outbox.sqlite3"
    mailer_templates: Path | None = None
    mailer_bounces: bool = False
    mailer_max_age: dict[Campaign, Annotated[float, Field(gt=0)]] = Field(default_factory=dict)
    clock: ClockMode = ClockMode.WALL
    allowed_lateness: float = Field(default=0.0, ge=0, le=MAX_LATENESS)
    batch_max: int = Field(default=1000, ge=1)
    batch_linger: float = Field(default=0.005, ge=0)
    output_hold: float = Field(default=0.02, ge=0)
    read_ahead: int = Field(default=1000, ge=2)
    input_partitioner: InputPartitioner = "murmur2"

    @field_validator("playbook", mode="before")
    @classmethod
    def _unset_when_empty(cls, value: object) -> object:
        """``LIFECYCLE_PLAYBOOK=`` is no playbook (the built-in one), not the directory
        ``.`` that ``Path("")`` names."""
        return None if value == "" else value

    @field_validator("broker")
    @classmethod
    def _servers(cls, value: str) -> str:
        """``host[:port]`` entries, comma-separated: a typo in a port is said here, not as
        a client library's error at the first connection."""
        servers = _servers_of(value)
        if not servers:
            msg = "names no server (host:port[,host:port])"
            raise ValueError(msg)
        for server in servers:
            # host:port or [IPv6]:port; a bare IPv6 address or a host alone has no port.
            if server.startswith("["):
                _address, bracket, rest = server.partition("]")
                colon, port = rest[:1], rest[1:]
                if not bracket or rest not in ("", f":{port}"):
                    msg = f"{server!r}: not [address]:port"
                    raise ValueError(msg)
            elif server.count(":") == 1:
                colon, port = ":", server.partition(":")[2]
            else:
                colon = port = ""
            if colon and not (port.isdigit() and 0 < int(port) < 65536):
                msg = f"{server!r}: the port must be a number from 1 to 65535"
                raise ValueError(msg)
        return value

    @model_validator(mode="after")
    def _security_is_coherent(self) -> Self:
        """Refuse settings a client would silently ignore: credentials or certificates that
        the chosen protocol never sends would fail later, far from the cause."""
        protocol = self.broker_security_protocol
        sasl = protocol.startswith("SASL_")
        given = [
            name
            for name in ("broker_sasl_username", "broker_sasl_password")
            if getattr(self, name) is not None
        ]
        if sasl and len(given) < 2:
            msg = (
                f"LIFECYCLE_BROKER_SECURITY_PROTOCOL={protocol} needs "
                "LIFECYCLE_BROKER_SASL_USERNAME and LIFECYCLE_BROKER_SASL_PASSWORD"
            )
            raise ValueError(msg)
        if not sasl and given:
            msg = (
                f"LIFECYCLE_{given[0].upper()} is set but LIFECYCLE_BROKER_SECURITY_PROTOCOL is "
                f"{protocol}: set it to SASL_PLAINTEXT or SASL_SSL"
            )
            raise ValueError(msg)
        tls_files = [
            name
            for name in ("broker_ssl_cafile", "broker_ssl_certfile", "broker_ssl_keyfile")
            if getattr(self, name) is not None
        ]
        if tls_files and not self.broker_tls:
            msg = (
                f"LIFECYCLE_{tls_files[0].upper()} is set but LIFECYCLE_BROKER_SECURITY_PROTOCOL "
                f"is {protocol}: set it to SSL or SASL_SSL"
            )
            raise ValueError(msg)
        if (self.broker_ssl_certfile is None) != (self.broker_ssl_keyfile is None):
            msg = "LIFECYCLE_BROKER_SSL_CERTFILE and LIFECYCLE_BROKER_SSL_KEYFILE go together"
            raise ValueError(msg)
        if tls_files:
            self._load_tls_files()
        if self.api_token is not None and not self.api_token.get_secret_value().strip():
            # An empty token must not quietly mean "no token": that would open the API.
            msg = "LIFECYCLE_API_TOKEN is empty: unset it to run without a token"
            raise ValueError(msg)
        return self

    def _load_tls_files(self) -> None:
        """A CA, certificate or key that cannot be read or is not PEM is named now, in one
        line, rather than in a traceback from the first client that loads it."""
        context = ssl.create_default_context()
        cafile, certfile, keyfile = (
            self.broker_ssl_cafile,
            self.broker_ssl_certfile,
            self.broker_ssl_keyfile,
        )
        password = self.broker_ssl_key_password
        try:
            if cafile is not None:
                context.load_verify_locations(cafile=cafile)
        except (OSError, ssl.SSLError) as exc:
            msg = f"LIFECYCLE_BROKER_SSL_CAFILE: cannot load {cafile}: {_reason(exc)}"
            raise ValueError(msg) from None
        try:
            if certfile is not None and keyfile is not None:
                secret = password.get_secret_value() if password else None
                context.load_cert_chain(certfile, keyfile, secret)
        except (OSError, ssl.SSLError) as exc:
            msg = (
                "LIFECYCLE_BROKER_SSL_CERTFILE and LIFECYCLE_BROKER_SSL_KEYFILE: "
                f"cannot load {certfile} and {keyfile}: {_reason(exc)}"
            )
            raise ValueError(msg) from None

    @property
    def broker_tls(self) -> bool:
        """Whether connections to the brokers are encrypted."""
        return self.broker_security_protocol in ("SSL", "SASL_SSL")

    @property
    def lateness(self) -> timedelta:
        return timedelta(seconds=self.allowed_lateness)

    @property
    def input_limits(self) -> InputLimits:
        """What ``parse_event`` accepts, for the worker and the backtest alike."""
        return InputLimits(
            max_bytes=self.max_message_bytes,
            max_id_length=self.max_id_length,
            max_text_length=self.max_text_length,
            max_items=self.max_items,
            earliest=self.earliest_event_time,
            max_future=self.max_future,
        )

    def topic(self, name: str) -> str:
        """Full topic name for a logical name of ``TopicNames`` (prefix applied)."""
        return self.topic_prefix + str(getattr(self.topics, name))

    @property
    def inbound_topics(self) -> list[str]:
        """Every inbound topic, in a fixed order."""
        return [self.topic(n) for n in INBOUND_TOPICS]

    @property
    def repartitioned(self) -> bool:
        """Whether the engine re-keys its input itself (``repartition`` mode)."""
        return self.input_partitioner == "repartition"

    def repartition_topic(self, name: str) -> str:
        """The re-keyed copy of the inbound topic of logical ``name`` (e.g. ``signup``):
        ``<prefix><stem>.<its name>``."""
        return f"{self.topic('repartition')}.{getattr(self.topics, name)}"

    @property
    def repartition_of(self) -> dict[str, str]:
        """Each inbound topic's re-keyed copy."""
        return {self.topic(n): self.repartition_topic(n) for n in INBOUND_TOPICS}

    @property
    def event_topics(self) -> list[str]:
        """What the lifecycle agent reads events from, in ``inbound_topics``' order: the
        inbound topics, or their re-keyed copies in ``repartition`` mode."""
        if self.repartitioned:
            return [self.repartition_topic(n) for n in INBOUND_TOPICS]
        return self.inbound_topics

    @property
    def ordered_topics(self) -> frozenset[str]:
        """The topics whose records the agent applies strictly in offset order
        (``streams.delivery``): its events and the identity merge (ticks are not: any
        one wakes)."""
        return frozenset((*self.event_topics, self.topic("merge")))

    @property
    def outbound_topics(self) -> list[str]:
        return [self.topic(n) for n in _OUTBOUND]

    @property
    def internal_topics(self) -> list[str]:
        """Co-partitioned with the inbound topics; written and read by the engine only
        (the re-keyed copies of the inbound topics too, in ``repartition`` mode)."""
        copies = self.event_topics if self.repartitioned else []
        return [self.topic("ticks"), self.topic("merge"), *copies]

    @property
    def changelog_topics(self) -> list[str]:
        """The changelog of each of the app's tables, named as Faust names them."""
        return [f"{self.app_id}-{table}-changelog" for table in TABLES]

    @property
    def leader_topic(self) -> str:
        """Faust's partition assignor's leader topic, named as Faust names it."""
        return f"{self.app_id}-__assignor-__leader"

    def for_replay(self, app_id: str, output_prefix: str) -> Settings:
        """A fresh app that reads the same inbound topics from the beginning in event
        time, writing its outputs under ``output_prefix`` so live consumers are untouched."""
        outputs = {n: output_prefix + getattr(self.topics, n) for n in _OUTBOUND}
        # The internal topics are the app's own: a replay writing the live app's merge
        # topic would have the live app retire its visitors again (and read the live
        # app's merges itself), and filling its re-keyed copies would feed it every
        # event again.
        own = output_prefix or f"{app_id}."  # never the live app's, whatever the prefix
        for internal in ("merge", "ticks", "repartition"):
            outputs[internal] = own + getattr(self.topics, internal)
        return self.model_copy(
            update={
                "app_id": app_id,
                "clock": ClockMode.EVENT,
                "data_dir": self.data_dir / app_id,
                "topics": self.topics.model_copy(update=outputs),
            }
        )

    @property
    def broker_url(self) -> str:
        """Faust's broker URL form (``kafka://a;kafka://b``)."""
        return ";".join(f"kafka://{server}" for server in _servers_of(self.broker))

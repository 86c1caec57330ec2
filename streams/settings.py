"""One settings object for every process of the engine.

Every field is read from an environment variable named ``LIFECYCLE_<FIELD>``
(nested topic names as ``LIFECYCLE_TOPICS__<NAME>``), so a worker, the CLI
and the tests are configured the same way, and docker-compose only sets env.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from lifecycle.clock import ClockMode
from schemas.events import INBOUND_TOPICS

DEFAULT_HOME = Path.home() / ".cache" / "lifecycle"
_OUTBOUND = ("transitions", "triggers", "deadletter")


class TopicNames(BaseModel):
    """Topic names before the prefix; each one settable for shops with naming rules."""

    signup: str = "events.signup"
    browse: str = "events.browse"
    cart: str = "events.cart"
    purchase: str = "events.purchase"
    engagement: str = "events.engagement"
    privacy: str = "events.privacy"
    transitions: str = "lifecycle.transitions"
    triggers: str = "lifecycle.triggers"
    deadletter: str = "lifecycle.deadletter"
    ticks: str = "lifecycle.ticks"
    merge: str = "lifecycle.merge"


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
    - ``LIFECYCLE_API_TOKEN``: when set, ``/customers/{id}`` needs
      ``Authorization: Bearer <token>``.
    - ``LIFECYCLE_SMTP_HOST`` / ``LIFECYCLE_SMTP_PORT``: where ``lifecycle mailer`` sends.
    - ``LIFECYCLE_MAILER_FROM``, ``LIFECYCLE_MAILER_GROUP``, ``LIFECYCLE_MAILER_OUTBOX``
      (SQLite file), ``LIFECYCLE_MAILER_TEMPLATES`` (a directory overriding the built-in
      templates), ``LIFECYCLE_MAILER_BOUNCES`` (publish refused recipients as bounces).
    - ``LIFECYCLE_LAG_INTERVAL``: seconds between the worker's lag measurements.
    - ``LIFECYCLE_CLOCK``: ``wall`` (live: timers follow the wall clock) or ``event``
      (replay: timers follow each partition's event-time watermark).
    - ``LIFECYCLE_ALLOWED_LATENESS``: seconds the clock stays behind, so an event
      that arrives this late is still applied before the timers it could cancel.
    - ``LIFECYCLE_BATCH_MAX``: most messages a worker handles between two commits
      (outputs acknowledged, records written, changelog flushed, offsets acked).
    """

    model_config = SettingsConfigDict(
        env_prefix="LIFECYCLE_", env_nested_delimiter="__", extra="ignore"
    )

    broker: str = "127.0.0.1:9092"
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
    tick_interval: float = Field(default=1.0, gt=0)
    max_idle: float = Field(default=30.0, gt=0)
    max_message_bytes: int = Field(default=64 * 1024, ge=1024)
    lag_interval: float = Field(default=10.0, gt=0)
    api_token: SecretStr | None = None
    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(default=1025, ge=1, le=65535)
    mailer_from: str = "lifecycle@shop.example"
    mailer_group: str = "lifecycle-mailer"
    mailer_outbox: Path = DEFAULT_HOME / "mailer" / "outbox.sqlite3"
    mailer_templates: Path | None = None
    mailer_bounces: bool = False
    clock: ClockMode = ClockMode.WALL
    allowed_lateness: float = Field(default=0.0, ge=0)
    batch_max: int = Field(default=1000, ge=1)

    @property
    def lateness(self) -> timedelta:
        return timedelta(seconds=self.allowed_lateness)

    def topic(self, name: str) -> str:
        """Full topic name for a logical name of ``TopicNames`` (prefix applied)."""
        return self.topic_prefix + str(getattr(self.topics, name))

    @property
    def inbound_topics(self) -> list[str]:
        """Every inbound topic, in a fixed order."""
        return [self.topic(n) for n in INBOUND_TOPICS]

    @property
    def outbound_topics(self) -> list[str]:
        return [self.topic(n) for n in _OUTBOUND]

    @property
    def internal_topics(self) -> list[str]:
        """Co-partitioned with the inbound topics; written and read by the engine only."""
        return [self.topic("ticks"), self.topic("merge")]

    def for_replay(self, app_id: str, output_prefix: str) -> Settings:
        """A fresh app that reads the same inbound topics from the beginning in event
        time, writing its outputs under ``output_prefix`` so live consumers are untouched."""
        outputs = {n: output_prefix + getattr(self.topics, n) for n in _OUTBOUND}
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
        return ";".join(f"kafka://{b.strip()}" for b in self.broker.split(",") if b.strip())

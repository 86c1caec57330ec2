"""The Faust application factory and the engine's topology (topics and tables).

Everything Faust is configured here, once: agents get a ready ``Topology``
and never name a topic or serializer themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import faust

from streams.admin import CHANGELOG_TOPIC_CONFIG
from streams.faust_compat import (
    BulkTableManager,
    RawSchema,
    budget_store_url,
    fast_lz4,
    lean_hand_off,
    lean_recovery,
)
from streams.kafka import broker_credentials, consumer
from streams.producer import kafka_partitioner, scheme_of
from streams.settings import TABLES, Settings

__all__ = ["FAUST_DEFAULTS", "Topology", "create_app", "drop_monitor"]

FAUST_DEFAULTS: dict[str, Any] = {
    "processing_guarantee": "at_least_once",
    "consumer_auto_offset_reset": "earliest",
    "key_serializer": "raw",
    "value_serializer": "raw",
    "producer_acks": -1,
    "autodiscover": False,
    "table_standby_replicas": 0,
    "producer_compression_type": "lz4",
}
"""The engine's Faust settings that do not depend on ``Settings``: the benchmark's
Faust contenders run with them too, so they differ from the engine only in their agent.
lz4 (cramjam, in Rust) shrinks the JSON records and outputs on the wire and on disk
several times, in its fast mode (``streams.faust_compat.fast_lz4``, which whoever builds
an app with these calls) for a few microseconds per batch."""

ROCKSDB_OPTIONS: dict[str, Any] = {
    "write_buffer_size": 1024**2,
    "max_write_buffer_number": 2,
    "target_file_size_base": 16 * 1024**2,
    "block_cache_size": 16 * 1024**2,
    "budget_write_buffers": 4 * 1024**2,
}
"""The engine's RocksDB stores (``streams.faust_compat.BudgetStore``): Faust's defaults
(64 MiB x 3 memtables, a 2 GiB block cache, each per partition) let a worker hold every
version it recovered in memory. Here one 16 MiB block cache serves every partition's
database, 1 MiB memtables hold each one's latest writes, and all memtables together stay
near 4 MiB (``budget_write_buffers``), however many partitions a worker holds: twelve
databases of their own memtables (two tables, six partitions) kept about 24 MiB resident."""

CHANGELOG_READER: dict[str, Any] = {
    "enable_auto_commit": False,
    "auto_offset_reset": "earliest",
}
"""The consumer a recovery reads changelogs with in bulk (``streams.faust_compat.BulkRecovery``):
no group, nothing committed, and from the log's start when the store's offset is gone from
it. aiokafka's fetch sizes are kept: four times as much per partition read 193,874 records
no faster."""


def drop_monitor(app: faust.App) -> None:
    """Take Faust's Monitor sensor out: it is called several times per event (in, out,
    acked) to keep latency and rate statistics nothing reads (``/metrics`` has the
    engine's own). The benchmark measured the counting agent 1.11x faster without it."""
    original = app.on_init_dependencies

    def on_init_dependencies() -> Any:
        services = original()
        app.sensors.remove(app.monitor)
        return services

    app.on_init_dependencies = on_init_dependencies  # type: ignore[method-assign]


@dataclass(frozen=True)
class Topology:
    """Declared channels and tables of one app.

    ``inbound`` subscribes to all six event topics (their re-keyed copies in
    ``repartition`` mode), the ticks and the merge topic at once: they are
    co-partitioned by customer key, so one agent per partition
    sees every event of its customers, and is the only writer of ``customers``.
    """

    app: faust.App
    settings: Settings
    inbound: Any
    transitions: Any
    triggers: Any
    deadletter: Any
    attribution: Any
    ticks: Any
    merge: Any
    customers: Any
    copurchase: Any

    @property
    def outbound(self) -> dict[str, Any]:
        """The output channels by logical topic name, as ``schemas.records.topic_of`` names them."""
        return {
            "transitions": self.transitions,
            "triggers": self.triggers,
            "attribution": self.attribution,
        }


def create_app(settings: Settings) -> Topology:
    """A Faust app wired for at-least-once processing with raw bytes end to end.

    Values stay bytes (``raw``) so decoding happens once, in pydantic-core,
    and a message that fails to decode is dead-lettered, not crashed on. The
    inbound topics take no Faust acks (``acks=False``): the lifecycle agent
    commits their offsets itself, and Faust would commit the offset of any
    message it acked on its own, even one it skipped (``streams.faust_compat``).
    """
    app = faust.App(
        settings.app_id,
        broker=settings.broker_url,
        broker_credentials=broker_credentials(settings),
        store=budget_store_url() if settings.store == "rocksdb" else "memory://",
        datadir=str(settings.data_dir),
        web_enabled=True,
        web_host=settings.web_host,
        web_port=settings.web_port,
        web_bind=settings.web_host,
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication,
        **FAUST_DEFAULTS,
        broker_session_timeout=settings.session_timeout,
        broker_heartbeat_interval=min(3.0, settings.session_timeout / 3),
        # The merge holds read messages until every topic can say what comes
        # first; Faust would wait for them at each rebalance, forever. The agent
        # drops them instead (they are read again) and lets its in-flight
        # message finish before the partitions go (agents/lifecycle.py).
        stream_wait_empty=False,
        # Keyed sends without a partition (identity-merge messages) and the routing of
        # /customers/{id} go where the producers put the customer's events.
        producer_partitioner=kafka_partitioner(scheme_of(settings.input_partitioner)),
        TableManager=BulkTableManager,
    )
    fast_lz4()
    drop_monitor(app)
    lean_hand_off(app, settings.ordered_topics)
    lean_recovery(app, lambda: consumer(settings, **CHANGELOG_READER))

    def out(name: str) -> Any:
        return app.topic(
            settings.topic(name),
            partitions=settings.partitions,
            key_serializer="raw",
            value_serializer="raw",
        )

    inbound = app.topic(
        *settings.event_topics,
        settings.topic("ticks"),
        settings.topic("merge"),
        partitions=settings.partitions,
        schema=RawSchema(),  # raw bytes, without Faust's decode per message
        acks=False,  # the engine commits these offsets itself: see streams.faust_compat
    )

    def table(name: str) -> Any:
        """A changelogged table of raw bytes, in RocksDB or in memory as the settings say."""
        return app.Table(
            name,
            default=None,
            partitions=settings.partitions,
            options=ROCKSDB_OPTIONS if settings.store == "rocksdb" else None,
            extra_topic_configs=CHANGELOG_TOPIC_CONFIG,
            key_type=bytes,  # bytes types make Faust store both raw: we encode once, ourselves
            value_type=bytes,
        )

    customers, copurchase = (table(name) for name in TABLES)
    return Topology(
        app=app,
        settings=settings,
        inbound=inbound,
        transitions=out("transitions"),
        triggers=out("triggers"),
        deadletter=out("deadletter"),
        attribution=out("attribution"),
        ticks=out("ticks"),
        merge=out("merge"),
        customers=customers,
        copurchase=copurchase,
    )

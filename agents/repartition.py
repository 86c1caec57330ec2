"""``repartition`` mode's first stage: re-key the inbound topics by customer, with murmur2.

Kafka Streams' answer to producers that partition otherwise (or not at all):
each inbound record is copied to its topic's re-keyed copy
(``Settings.repartition_of``) on the partition murmur2 gives its customer key
(``streams.rekey``), and the lifecycle agent reads the copies instead.

A plain aiokafka consumer and producer, not a Faust agent: the stage needs no
table, and a batch from ``getmany`` costs one hand-off instead of Faust's
per-message path. It is at-least-once and exact:

- a batch's offsets are committed only once the broker has acknowledged every
  copy of it, and the next batch is fetched only after that commit, so a
  rebalance or a crash re-reads at most the uncommitted batch; its copies are
  then sent twice, which the core ignores (it deduplicates by ``event_id``);
- copies of one inbound partition are sent in offset order, and the idempotent
  producer keeps them so on each target partition, so a customer whose events
  share an inbound partition keeps their order;
- on any failure the clients are closed and opened again, which resumes from the
  committed offsets.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka import TopicPartition
from aiokafka.errors import CommitFailedError

from streams import kafka
from streams.lag import repartition_group
from streams.rekey import rekeyed, source_header
from streams.settings import Settings

__all__ = ["Repartitioner", "attach_repartitioner"]

log = logging.getLogger(__name__)


class Repartitioner:
    """Copies the inbound topics to their re-keyed copies until cancelled."""

    def __init__(self, settings: Settings, retry_after: float = 2.0) -> None:
        self.settings = settings
        self.group = repartition_group(settings)
        self.targets = settings.repartition_of
        self.retry_after = retry_after
        self.copied = 0
        """Records copied (and acknowledged) since start."""

    async def run(self) -> None:
        """Copy forever; a failure is logged and the stage resumes from the committed offsets."""
        while True:
            try:
                await self._copy()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the broker may be away: start again
                log.warning(
                    "repartition: %s; resuming from the committed offsets", type(exc).__name__
                )
                await asyncio.sleep(self.retry_after)

    async def _copy(self) -> None:
        settings = self.settings
        consumer = kafka.consumer(
            settings,
            *self.targets,
            group_id=self.group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=int(settings.session_timeout * 1000),
            heartbeat_interval_ms=int(min(3.0, settings.session_timeout / 3) * 1000),
        )
        producer = kafka.producer(
            settings, acks="all", enable_idempotence=True, linger_ms=5, compression_type="lz4"
        )
        try:
            await consumer.start()
            await producer.start()
            while True:
                batches = await consumer.getmany(timeout_ms=1000)
                if not batches:
                    continue
                offsets = await self._forward(producer, batches)
                try:
                    await consumer.commit(offsets)
                except CommitFailedError:
                    # A rebalance took partitions away: their new owner reads this
                    # batch again, and the core drops the duplicates.
                    log.info("repartition: a rebalance came before the commit")
        finally:
            await consumer.stop()
            await producer.stop()

    async def _forward(
        self, producer: Any, batches: dict[TopicPartition, list[Any]]
    ) -> dict[TopicPartition, int]:
        """Send every record's copy; once all are acknowledged, the offsets to commit."""
        partitions = self.settings.partitions
        sends = []
        offsets = {}
        for tp, records in batches.items():
            target = self.targets[tp.topic]
            for record in records:
                key, partition = rekeyed(record.key, record.value, tp.partition, partitions)
                headers = [
                    *(record.headers or ()),
                    source_header(tp.topic, tp.partition, record.offset, key == record.key),
                ]
                sends.append(
                    await producer.send(
                        target,
                        record.value,
                        key=key,
                        partition=partition,
                        timestamp_ms=record.timestamp,
                        headers=headers,
                    )
                )
            offsets[tp] = records[-1].offset + 1
        await asyncio.gather(*sends)
        self.copied += len(sends)
        return offsets


WATCH_INTERVAL = 0.25
"""Seconds between two checks of the re-keying group's progress (``watch``)."""


def attach_repartitioner(
    app: Any, settings: Settings, watch: Callable[[], Awaitable[None]]
) -> None:
    """Run the stage in the worker of ``app`` in ``repartition`` mode (else do nothing),
    and ``watch`` (the lifecycle agent's ``watch_copies``) every ``WATCH_INTERVAL``."""
    if settings.repartitioned:
        app.task(Repartitioner(settings).run)
        app.timer(interval=WATCH_INTERVAL, on_leader=False)(watch)

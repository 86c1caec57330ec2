"""Build and run a worker: the app, its topics, its agents."""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import functools
import logging
import shutil
from pathlib import Path
from typing import Any

from agents.lifecycle import LifecycleProcessor, register
from agents.repartition import attach_repartitioner
from lifecycle.playbook import load_playbook
from streams.admin import ensure_topics, wait_for_leaders
from streams.app import Topology, create_app
from streams.collector import collect_garbage_rarely
from streams.settings import Settings

__all__ = ["build", "quiet", "run_worker"]


def build(settings: Settings) -> tuple[Topology, LifecycleProcessor]:
    """The fully wired app for ``settings``; the playbook is validated here, before Kafka."""
    playbook = load_playbook(settings.playbook)
    topology = create_app(settings)
    processor = register(topology, playbook)
    attach_repartitioner(topology.app, settings, processor.watch_copies)
    return topology, processor


def draining_worker(app: Any, processor: LifecycleProcessor, **options: Any) -> Any:
    """A Faust worker whose stop first makes the agent's pending batch durable.

    mode stops a service by running its ``on_stop`` and then stopping its
    children, the app among them; the app's own stop revokes and closes the
    tables at once. So the batch is written here, while the consumer, the
    producer and the stores are still open (``LifecycleProcessor.drain``).
    """
    import faust

    class DrainingWorker(faust.Worker):
        drained = False

        def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
            super().on_setup_root_logger(logger, level)
            keep_payloads_out_of_logs()

        async def on_stop(self) -> None:
            DrainingWorker.drained = await processor.drain()
            await super().on_stop()

    return DrainingWorker(app, **options)


PAYLOAD_LOGGERS = ("aiokafka",)
"""Libraries whose debug lines print the bytes of the records they fetch and produce
(aiokafka's requests and responses: emails, names, customer ids)."""


def keep_payloads_out_of_logs() -> None:
    """At ``LIFECYCLE_LOG_LEVEL=debug`` the engine's own loggers say more, and these stay
    at info: no personal data in logs, at any level."""
    for name in PAYLOAD_LOGGERS:
        library = logging.getLogger(name)
        if library.getEffectiveLevel() < logging.INFO:
            library.setLevel(logging.INFO)


def release_freed_memory() -> None:
    """Give the C heap's free pages back to the system (glibc's ``malloc_trim``).

    Recovery reads the whole changelog through Python objects and aiokafka's
    buffers, and the timer rebuild after it parses every stored record; freed,
    their pages stayed resident (40 MiB of 157 after recovering 30,000
    customers). So it runs once both are done (``after_recovery``). Elsewhere
    than glibc there is nothing to call.
    """
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim() -> Any:
    name = ctypes.util.find_library("c")  # runs ldconfig: once
    return getattr(ctypes.CDLL(name), "malloc_trim", None) if name else None


def run_worker(settings: Settings) -> None:
    """Run one worker until interrupted (blocking); topics are created first if missing.

    The local stores are marked clean only when the stop made everything it
    handled durable (``start_clean``)."""
    topology, processor = build(settings)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    reports = asyncio.run(ensure_topics(settings))
    for report in reports:
        if report.status == "mismatch":
            logging.getLogger(__name__).warning(
                "topic %s has %d partitions, settings say %d",
                report.topic,
                report.partitions,
                1 if report.topic == settings.leader_topic else settings.partitions,
            )
    # A topic just created is listed before its leaders serve it: a consumer that joins
    # its group in that moment leaves it out of the assignment for good (no partitions,
    # or a table whose keys no worker is known to hold).
    asyncio.run(wait_for_leaders(settings, [r for r in reports if r.status == "created"]))
    tables = Path(topology.app.conf.tabledir)
    start_clean(tables)
    collect_garbage_rarely()
    processor.after_recovery = release_freed_memory  # after each recovery and timer rebuild
    worker = draining_worker(topology.app, processor, loglevel=settings.log_level.upper())
    quiet(worker)
    try:
        worker.execute_from_commandline()
    finally:
        if tables.is_dir() and worker.drained:
            (tables / CLEAN_MARK).touch()


CLEAN_MARK = ".clean-shutdown"


def start_clean(tables: Path) -> None:
    """Drop the local table stores unless the last worker here stopped cleanly.

    Faust writes a record to the local store at once and to its changelog
    later; a worker killed in between leaves the store ahead of the changelog,
    and the events it then replays are duplicates of what the store holds, so
    the changelog would never catch up (a batch widens that window to every
    record of the batch). Recovering from the changelog alone is always right;
    the mark, written on a clean stop, says the local copy may be trusted.
    """
    mark = tables / CLEAN_MARK
    if tables.is_dir() and not mark.exists():
        logging.getLogger(__name__).warning(
            "last worker did not stop cleanly: rebuilding the tables from their changelogs"
        )
        shutil.rmtree(tables)
    mark.unlink(missing_ok=True)


def quiet(worker: Any) -> None:
    """No terminal spinner: at log level WARN or above Faust's spinner sets the root
    logger to DEBUG so that it spins on every record, and then every aiokafka debug
    call (several per message) builds and handles a LogRecord nobody sees."""
    worker.spinner = None

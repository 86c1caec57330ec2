"""What the harness reads from outside a contender: the broker's view, and /proc.

Every contender is measured the same way, from its consumer group's
committed offsets on the broker, so a Faust agent, a raw aiokafka loop and
the engine are compared on the one thing they all do: commit what they have
finished. Nothing here trusts what a process says about itself.
"""

from __future__ import annotations

import asyncio
import hashlib
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from aiokafka import TopicPartition
from aiokafka.admin import NewTopic
from aiokafka.errors import KafkaError

from harness.engine import ROOT, Worker
from streams import kafka
from streams.settings import Settings

__all__ = [
    "Process",
    "Record",
    "Throughput",
    "create_topic",
    "digest",
    "end_offsets",
    "read_topics",
    "rss_bytes",
    "wait_committed",
    "wait_ready",
    "wait_settled",
]

SAMPLE_S = 0.25


@dataclass(frozen=True, slots=True)
class Record:
    topic: str
    partition: int
    key: bytes | None
    value: bytes | None
    timestamp_ms: int


@dataclass(frozen=True, slots=True)
class Throughput:
    """Committed offsets over time: from the first commit seen to the last one needed.

    Both ends are commit instants, so a commit interval delays both alike and
    start-up (before the first commit) is left out. When the first commit
    already covers most of the input (a tiny smoke run), the rate is taken
    from the process start instead and ``from_start`` says so.
    """

    events: int
    seconds: float
    from_start: bool
    peak_rss: int

    @property
    def per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else float("nan")


class Process(Worker):
    """A contender as a child process (``python -m <module> <args>``), logged to a file.

    ``python`` is this interpreter unless the contender needs libraries of its own
    (the quix-streams ones run in ``.venv-quix``); the work tree is its working
    directory either way, so ``-m`` finds the project's packages.
    """

    def __init__(
        self, module: str, args: list[str], log_path: Path, python: str = sys.executable
    ) -> None:
        super().__init__(settings=None, log_path=log_path)  # type: ignore[arg-type]
        self.module = module
        self.args = args
        self.python = python

    def start(self) -> Process:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [self.python, "-m", self.module, *self.args],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        return self


async def create_topic(bootstrap: str, name: str, partitions: int) -> None:
    """An output topic co-partitioned with the input, as the engine's own are."""
    admin = kafka.admin_client(Settings(broker=bootstrap))
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, partitions, 1)])
    finally:
        await admin.close()


def rss_bytes(pid: int) -> int:
    """Resident memory of ``pid`` (VmRSS), 0 once it has gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


async def end_offsets(
    bootstrap: str, topics: Iterable[str], partitions: int
) -> dict[TopicPartition, int]:
    consumer = kafka.consumer(Settings(broker=bootstrap), group_id=None)
    await consumer.start()
    try:
        tps = [TopicPartition(t, p) for t in topics for p in range(partitions)]
        return dict(await consumer.end_offsets(tps))
    finally:
        await consumer.stop()


async def wait_committed(
    bootstrap: str,
    group: str,
    ends: dict[TopicPartition, int],
    workers: list[Worker],
    *,
    timeout: float,  # noqa: ASYNC109 -- a deadline between samples, not one await
) -> Throughput:
    """Poll ``group``'s committed offsets until they reach ``ends``; fail if a worker dies."""
    admin = kafka.admin_client(Settings(broker=bootstrap))
    await admin.start()
    total = sum(ends.values())
    started = time.monotonic()
    first: tuple[float, int] | None = None
    peak = 0
    try:
        while True:
            for worker in workers:
                worker.assert_alive()
                assert worker.process is not None
                peak = max(peak, rss_bytes(worker.process.pid))
            try:
                marks = await admin.list_consumer_group_offsets(group, partitions=list(ends))
            except KafkaError:  # the group's coordinator is not up yet: the group is new
                marks = {}
            done = sum(
                min(max(0, mark.offset), ends[tp]) for tp, mark in marks.items() if mark is not None
            )
            now = time.monotonic()
            if first is None and done > 0:
                first = (now, done)
            if done >= total:
                break
            if now - started > timeout:
                msg = f"{group}: {done} of {total} committed after {timeout:.0f}s"
                raise TimeoutError(msg)
            await asyncio.sleep(SAMPLE_S)
    finally:
        await admin.close()
    assert first is not None
    if total - first[1] >= total // 2:
        return Throughput(total - first[1], now - first[0], False, peak)
    return Throughput(total, now - started, True, peak)


async def wait_settled(
    bootstrap: str,
    topics: Iterable[str],
    partitions: int,
    at_least: int,
    *,
    quiet: float = 3.0,
    timeout: float = 120.0,  # noqa: ASYNC109 -- a deadline between samples, not one await
) -> int:
    """Wait until ``topics`` hold ``at_least`` records and gained none for ``quiet`` s;
    the records they hold then (or at the timeout: the comparison after says what is off).

    Committed input is not the end of the outputs: in event time, a partition's
    timers due after its own last event, up to the input's last event time, fire
    on a tick once it has consumed everything (``lifecycle.clock``). Stopping the
    workers at the last commit cut those outputs off whenever that tick had not
    come yet (3 of 8 two-worker runs on the smoke test's input).
    """
    started = last_change = time.monotonic()
    held = -1
    while True:
        now_held = sum((await end_offsets(bootstrap, topics, partitions)).values())
        now = time.monotonic()
        if now_held != held:
            held, last_change = now_held, now
        if (held >= at_least and now - last_change >= quiet) or now - started > timeout:
            return held
        await asyncio.sleep(SAMPLE_S * 2)


async def read_topics(
    bootstrap: str,
    topics: list[str],
    partitions: int,
    *,
    timeout: float = 900.0,  # noqa: ASYNC109 -- a deadline between fetches
) -> AsyncIterator[Record]:
    """Every record of ``topics`` from the beginning to their current end, streamed."""
    consumer = kafka.consumer(
        Settings(broker=bootstrap),
        group_id=None,
        enable_auto_commit=False,
        max_partition_fetch_bytes=8 * 1024 * 1024,
        fetch_max_bytes=64 * 1024 * 1024,
    )
    await consumer.start()
    try:
        tps = [TopicPartition(t, p) for t in topics for p in range(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        deadline = time.monotonic() + timeout
        pending = {tp for tp in tps if ends[tp] > 0}
        while pending:
            assert time.monotonic() < deadline, f"{topics} not read to their end in time"
            batches = await consumer.getmany(*pending, timeout_ms=500, max_records=50_000)
            for tp, batch in batches.items():
                for r in batch:
                    yield Record(tp.topic, tp.partition, r.key, r.value, r.timestamp)
                if batch and batch[-1].offset + 1 >= ends[tp]:
                    pending.discard(tp)
    finally:
        await consumer.stop()


def digest(rows: Iterable[tuple[str, str, bytes]]) -> dict[tuple[str, str], str]:
    """(kind, key) -> a hash of that key's values in order: what "identical outputs" means
    on Kafka, where order is defined per key (within a partition) and nowhere else."""
    hashes: dict[tuple[str, str], hashlib.blake2b] = {}
    for kind, key, value in rows:
        hashes.setdefault((kind, key), hashlib.blake2b(digest_size=16)).update(value + b"\n")
    return {k: h.hexdigest() for k, h in hashes.items()}


def wait_ready(port: int, alive: Callable[[], None], *, timeout: float = 300.0) -> float:
    """Seconds until the worker on ``port`` answers ``/ready`` with 200."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        alive()
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=2) as response:
                if response.status == 200:
                    return time.monotonic() - started
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.1)
    msg = f"worker on port {port} not ready after {timeout:.0f}s"
    raise TimeoutError(msg)

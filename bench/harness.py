"""The engine against quix-streams, Faust's floor, the naive Faust peer and the Python limit.

    make quix  # the quix-streams peers' interpreter, .venv-quix
    .venv/bin/python -m bench.harness [--customers 122000] [--partitions 6]

One local broker, one published input (simulated shop events, keyed by
customer), then each contender in sequence, each under its own consumer
group on the same inbound topics, measured from its committed offsets:

- raw: aiokafka consume -> orjson decode -> produce (``bench.contenders.raw``);
- Faust floor: a counting agent, with each Faust variant measured
  (``bench.contenders.count``, ``bench.contenders.common.FAUST_VARIANTS``);
- naive Faust: pydantic model, table write and sends per event
  (``bench.contenders.naive``);
- quix-streams 3.28.1, run by ``.venv-quix/bin/python`` (``--quix-python``;
  quix pins pydantic and confluent-kafka below the engine's, so it has a venv
  of its own, ``bench/requirements-quix.txt``): its stateless floor, a
  dataframe that only counts (``bench.contenders.quix_count``); its stateful
  floor, a count per customer in its RocksDB state with changelog and
  checkpoints at quix's defaults (``bench.contenders.quix_state``); and the
  naive quix app, the naive Faust agent's per-event work in a stateful
  dataframe (``bench.contenders.quix_naive``);
- the engine, one worker, then two workers (same partitions, a fresh group),
  then one worker in ``repartition`` mode (LIFECYCLE_INPUT_PARTITIONER: every
  event re-keyed through internal topics first, measured to the lifecycle
  agent's commits on those); all runs' outputs must equal the backtest's, key by key, byte for byte,
  read once they have settled (``bench.measure.wait_settled``: the last
  timers fire on a tick after the input is committed).

Then, for the engine: changelog bytes per event and customers in state (its
changelog read back), recovery (a fresh worker rebuilding that state until
``/ready``, beside an empty worker's time to ``/ready``, the part that does not grow
with the state), resident memory per customer (that worker's RSS minus an empty
worker's) and event-to-trigger latency percentiles at half the one-worker
throughput (a fresh topic set, events published at that rate; each trigger's
broker timestamp minus its causing event's). Prints one table and appends
its row to bench/RESULTS.md (``--results``) under SECTION, whose table has the
quix-streams columns; the rows measured without them stay in the issue 6
section's table, with the columns they were measured with.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from aiokafka import TopicPartition

from analytics.simulation import simulate
from bench import results
from bench.contenders.common import FAUST_VARIANTS, Contender
from bench.measure import (
    Process,
    Throughput,
    create_topic,
    digest,
    end_offsets,
    read_topics,
    rss_bytes,
    wait_committed,
    wait_ready,
    wait_settled,
)
from harness.engine import ROOT, Worker, create_topics, publish, settings_env, unique_settings
from lifecycle.backtest import Backtest, Output
from lifecycle.playbook import default_playbook
from schemas.codec import dumps, encode_model
from schemas.events import INBOUND_TOPICS
from schemas.records import OUTPUT_TOPICS
from streams.broker import LocalBroker, find_free_port
from streams.collector import collect_garbage_rarely
from streams.producer import partitioner_of
from streams.settings import Settings, TopicNames

RESULTS = Path(__file__).with_name("RESULTS.md")
SECTION = "## Engine vs quix-streams, Faust's floor, naive Faust and raw aiokafka (issue 24)"
QUIX_PYTHON = ROOT / ".venv-quix" / "bin" / "python"
"""The quix-streams contenders' interpreter, made by ``make quix``."""
COLUMNS = [
    "date",
    "commit",
    "machine",
    "load 1m before/after",
    "input",
    "raw aiokafka ev/s",
    "Faust floor ev/s (default)",
    "Faust floor variants ev/s",
    "naive Faust ev/s",
    "quix stateless ev/s",
    "quix stateful floor ev/s",
    "naive quix ev/s",
    "engine 1 worker ev/s",
    "engine / floor",
    "engine / naive",
    "engine / raw",
    "engine / quix stateful",
    "engine / naive quix",
    "engine 2 workers ev/s (x 1 worker)",
    "outputs = backtest (1 and 2 workers)",
    "latency p50/p95/p99 ms (at ev/s)",
    "RSS per customer",
    "changelog B/event (payload/on disk)",
    "recovery s (customers)",
    "pure core ev/s",
    "engine repartition ev/s (x 1 worker; outputs = backtest)",
]
HEADER = "| " + " | ".join(COLUMNS) + " |\n|" + "---|" * len(COLUMNS) + "\n"
"""SECTION's table header, as bench.results writes it."""
REBALANCE_DELAY_MS = 3000
"""A new group waits this long for members before assigning partitions, so the two
workers (started together) share them from the start: a rebalance in the middle
of the run would measure the rebalance, not the scale-out. Not part of any rate:
rates start at the first commit."""


@dataclass
class Results:
    events: int = 0
    customers: int = 0
    backtest: float = 0.0
    outputs: int = 0
    """Records the backtest emits: the engine's runs wait for as many before stopping."""
    raw: Throughput | None = None
    floor: dict[str, Throughput] = field(default_factory=dict)
    naive: Throughput | None = None
    quix_count: Throughput | None = None
    quix_state: Throughput | None = None
    quix_naive: Throughput | None = None
    engine: Throughput | None = None
    engine2: Throughput | None = None
    repartition: str = "n/a"
    identical: str = "n/a"
    latency: str = "n/a"
    rss_per_customer: float | None = None
    changelog_per_event: float | None = None
    changelog_disk_per_event: float | None = None
    state_customers: int = 0
    recovery: float | None = None
    empty_ready: float | None = None
    """Seconds an empty worker takes to ``/ready``: what a recovery costs before any record."""
    load_before: float = 0.0
    load_after: float = 0.0


def engine_settings(base: Settings, run: str, tmp: Path) -> Settings:
    """The engine on ``base``'s inbound topics, with outputs, internal topics, group
    and store of its own, so runs on the same input never see each other's work."""
    names = {n: base.topic(n) for n in INBOUND_TOPICS}
    for name in TopicNames.model_fields:
        names.setdefault(name, f"{base.topic_prefix}{run}.{getattr(base.topics, name)}")
    return base.model_copy(
        update={
            "topic_prefix": "",
            "topics": TopicNames(**names),
            "app_id": f"{base.app_id}-{run}",
            "data_dir": tmp / run,
            "web_port": find_free_port(1),
        }
    )


def worker(settings: Settings, tmp: Path, name: str, root: Path = ROOT) -> Worker:
    """``lifecycle worker`` for ``settings``, its own store and web port (Faust binds one);
    the code of the checkout ``root``."""
    own = settings.model_copy(update={"data_dir": tmp / name, "web_port": find_free_port(1)})
    topics = {
        f"LIFECYCLE_TOPICS__{n.upper()}": getattr(own.topics, n) for n in TopicNames.model_fields
    }
    env = {**settings_env(own), **topics, "LIFECYCLE_LOG_LEVEL": "info"}
    return Worker(own, tmp / f"{name}.log", env=env, root=root)


def measure(
    bootstrap: str,
    group: str,
    ends: dict[TopicPartition, int],
    workers: list[Worker],
    settle: Callable[[], Coroutine[Any, Any, object]] | None = None,
) -> Throughput:
    """The workers' rate over ``ends``; then, before they stop, ``settle`` (the rate
    does not wait for it)."""
    for w in workers:
        w.start()
    try:
        rate = asyncio.run(wait_committed(bootstrap, group, ends, workers, timeout=3600))
        if settle is not None:
            asyncio.run(settle())
        return rate
    finally:
        for w in workers:
            w.stop()


def contender(
    module: str,
    base: Settings,
    tmp: Path,
    name: str,
    variant: str = "default",
    python: str = sys.executable,
) -> tuple[Process, str]:
    group = f"{base.app_id}-{name}"
    config = Contender(
        broker=base.broker,
        topics=base.inbound_topics,
        group=group,
        partitions=base.partitions,
        out_topic=f"{base.topic_prefix}{name}.out",
        web_port=find_free_port(1),
        data_dir=str(tmp / name),
        variant=variant,
    )
    asyncio.run(create_topic(base.broker, config.out_topic, base.partitions))
    return Process(module, [config.argv()], tmp / f"{name}.log", python), group


def backtest_digest(settings: Settings, lines: list[bytes]) -> tuple[float, dict[Any, str], int]:
    """The pure core's events/s over the input, its outputs' digest and their number,
    with the cycle collector run as a worker runs it."""
    collect_garbage_rarely()
    runner = Backtest(default_playbook(), partitioner_of(settings))
    started = time.monotonic()
    rows = [
        (item.topic, item.key, encode_model(item.value))
        for item in runner.run(lines)
        if isinstance(item, Output)
    ]
    return len(lines) / (time.monotonic() - started), digest(rows), len(rows)


def settled(settings: Settings, outputs: int) -> Callable[[], Coroutine[Any, Any, int]]:
    """Wait for the engine's outputs (``bench.measure.wait_settled``)."""
    topics = [settings.topic(n) for n in OUTPUT_TOPICS]
    return functools.partial(wait_settled, settings.broker, topics, settings.partitions, outputs)


async def outputs_digest(settings: Settings) -> dict[Any, str]:
    kinds = {settings.topic(n): n for n in OUTPUT_TOPICS}
    rows = [
        (kinds[r.topic], (r.key or b"").decode(), r.value or b"")
        async for r in read_topics(settings.broker, list(kinds), settings.partitions)
    ]
    return digest(rows)


async def changelog(settings: Settings) -> tuple[int, int]:
    """Bytes (keys + values) in the engine's table changelogs, and live customer keys."""
    size = 0
    live: dict[bytes, bool] = {}
    topics = changelog_topics(settings)
    async for r in read_topics(settings.broker, topics, settings.partitions):
        size += len(r.key or b"") + len(r.value or b"")
        if r.topic == topics[0]:
            live[r.key or b""] = r.value is not None
    return size, sum(live.values())


def changelog_topics(settings: Settings) -> list[str]:
    return [f"{settings.app_id}-{t}-changelog" for t in ("customers", "copurchase")]


def on_disk(log_dir: Path | None, topics: list[str]) -> int | None:
    """Bytes of those topics' log segments on the broker (compressed, with batch headers)."""
    if log_dir is None:
        return None
    return sum(f.stat().st_size for t in topics for f in log_dir.glob(f"{t}-*/*.log"))


async def latencies(settings: Settings) -> list[float]:
    """Milliseconds from each event on the broker to the triggers it caused on the broker."""
    return [ms for _, ms in await timed_latencies(settings)]


async def timed_latencies(settings: Settings) -> list[tuple[float, float]]:
    """(when the event reached the broker, in ms since the epoch; milliseconds from it to
    a trigger it caused on the broker), for each such trigger.

    A trigger decided on an event carries that event's time as ``created_at``
    and its customer as key, which names the event (timer triggers carry a
    deadline, which no event of that customer has).
    """
    arrived: dict[tuple[bytes, datetime], int] = {}
    async for r in read_topics(settings.broker, settings.inbound_topics, settings.partitions):
        body = orjson.loads(r.value or b"{}")
        at = datetime.fromisoformat(body["occurred_at"])
        arrived.setdefault((r.key or b"", at), r.timestamp_ms)
    found = []
    async for r in read_topics(settings.broker, [settings.topic("triggers")], settings.partitions):
        created = datetime.fromisoformat(orjson.loads(r.value or b"{}")["created_at"])
        sent = arrived.get((r.key or b"", created))
        if sent is not None:
            found.append((float(sent), float(r.timestamp_ms - sent)))
    return found


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


@dataclass(frozen=True)
class PacedRun:
    """A fresh worker fed at a set rate (``paced_run``), ready to read its latencies from."""

    settings: Settings
    held: float
    """Events per second the publish held (events over its seconds), not the rate asked."""
    baseline: int
    """The ready, empty worker's resident bytes."""
    started: float
    """Seconds from the worker's start to ``/ready``."""


def paced_run(
    bootstrap: str,
    tmp: Path,
    partitions: int,
    rate: float,
    count: int,
    seed: int,
    run: str = "latency",
    root: Path = ROOT,
) -> PacedRun:
    """``count`` simulated events published at ``rate`` on fresh topics to a fresh worker
    of the checkout ``root``, once it answers ``/ready``; returns once it committed them."""
    base = unique_settings(bootstrap, tmp, partitions=partitions)
    create_topics(base)
    settings = engine_settings(base, run, tmp)
    events = list(simulate(max(20, int(count / 8)), seed=seed))[:count]
    w = worker(settings, tmp, run, root=root)
    w.start()
    try:
        started = wait_ready(w.settings.web_port, w.assert_alive)
        assert w.process is not None
        baseline = rss_bytes(w.process.pid)
        began = time.monotonic()
        publish(base, events, rate=rate)
        held = len(events) / (time.monotonic() - began)
        ends = asyncio.run(end_offsets(bootstrap, base.inbound_topics, base.partitions))
        asyncio.run(wait_committed(bootstrap, settings.app_id, ends, [w], timeout=600))
    finally:
        w.stop()
    return PacedRun(settings, held, baseline, started)


def run_latency(
    bootstrap: str, args: argparse.Namespace, tmp: Path, rate: float
) -> tuple[str, int, float]:
    """p50/p95/p99 at ``rate`` on fresh topics, and an empty worker's RSS and seconds
    to ``/ready`` (the baselines of memory and recovery). The rate reported is the one
    the publish held (events over its seconds), not the one asked."""
    count = max(100, int(rate * args.latency_seconds))
    done = paced_run(bootstrap, tmp, args.partitions, rate, count, args.seed + 1)
    found = asyncio.run(latencies(done.settings))
    if not found:
        return f"no triggers (at {done.held:,.0f})", done.baseline, done.started
    cells = "/".join(f"{percentile(found, q):,.0f}" for q in (0.5, 0.95, 0.99))
    return f"{cells} (at {done.held:,.0f}, {len(found)} triggers)", done.baseline, done.started


def fmt(t: Throughput | None) -> str:
    if t is None:
        return "n/a"
    return f"{t.per_second:,.0f}{' (incl. start-up)' if t.from_start else ''}"


def ratio(a: Throughput | None, b: Throughput | None) -> str:
    if a is None or b is None:
        return "n/a"
    return f"{a.per_second / b.per_second:.2f}x"


def machine() -> str:
    model = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    mem = Path("/proc/meminfo").read_text().split()[1]
    return (
        f"{platform.machine()} {model}, {os.cpu_count()} cores, "
        f"{int(mem) / 1024**2:.0f} GiB, Python {platform.python_version()}, Kafka 3.9.1"
    )


def row(args: argparse.Namespace, r: Results) -> list[str]:
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    floor = r.floor.get("default")
    variants = "; ".join(
        f"{name} {fmt(t)} ({ratio(t, floor)})" for name, t in r.floor.items() if name != "default"
    )
    two = f"{fmt(r.engine2)} ({ratio(r.engine2, r.engine)})"
    recovered = "n/a"
    if r.recovery is not None:
        empty = "" if r.empty_ready is None else f"; an empty worker {r.empty_ready:.1f}"
        recovered = f"{r.recovery:.1f} ({r.state_customers:,}{empty})"
    rss = f"{r.rss_per_customer:,.0f} B" if r.rss_per_customer is not None else "n/a"
    volume = "/".join(
        "n/a" if v is None else f"{v:,.0f}"
        for v in (r.changelog_per_event, r.changelog_disk_per_event)
    )
    return [
        f"{datetime.now(UTC):%Y-%m-%d %H:%M}",
        commit + ("+" if dirty else ""),
        machine(),
        f"{r.load_before:.2f}/{r.load_after:.2f}",
        f"{r.events:,} events, {r.customers:,} customers, {args.partitions} partitions",
        fmt(r.raw),
        fmt(floor),
        variants or "-",
        fmt(r.naive),
        fmt(r.quix_count),
        fmt(r.quix_state),
        fmt(r.quix_naive),
        fmt(r.engine),
        ratio(r.engine, floor),
        ratio(r.engine, r.naive),
        ratio(r.engine, r.raw),
        ratio(r.engine, r.quix_state),
        ratio(r.engine, r.quix_naive),
        two,
        r.identical,
        r.latency,
        rss,
        volume,
        recovered,
        f"{r.backtest:,.0f}",
        r.repartition,
    ]


def record(args: argparse.Namespace, cells: list[str], path: Path) -> str:
    """Print the table; add the row to SECTION's table in ``path``, creating the section."""
    line = "| " + " | ".join(cells) + " |\n"
    command = "`.venv/bin/python -m bench.harness` (defaults: the full run)"
    results.add_row(path, line, SECTION, HEADER, command)
    table = HEADER + line
    print(table, end="")
    print(f"command: {shlex.join([sys.executable, '-m', 'bench.harness', *sys.argv[1:]])}")
    return table


def with_row(text: str, line: str) -> str:
    """``text`` with ``line`` after the last row of SECTION's results table."""
    return results.with_row(text, line, SECTION, HEADER)


def run_engine(
    bootstrap: str,
    base: Settings,
    tmp: Path,
    ends: dict[TopicPartition, int],
    r: Results,
    log_dir: Path | None,
) -> tuple[Settings, int]:
    """One worker's rate, its changelog, then a fresh worker recovering it (time, RSS)."""
    step("engine", "one worker")
    one = engine_settings(base, "engine1", tmp)
    r.engine = measure(
        bootstrap, one.app_id, ends, [worker(one, tmp, "engine1")], settled(one, r.outputs)
    )
    size, r.state_customers = asyncio.run(changelog(one))
    r.changelog_per_event = size / r.events
    disk = on_disk(log_dir, changelog_topics(one))
    r.changelog_disk_per_event = None if disk is None else disk / r.events
    step("recovery", f"{r.state_customers:,} customers from the changelog")
    fresh = worker(one, tmp, "recovery")
    fresh.start()
    try:
        r.recovery = wait_ready(fresh.settings.web_port, fresh.assert_alive)
        assert fresh.process is not None
        recovered_rss = rss_bytes(fresh.process.pid)
    finally:
        fresh.stop()
    return one, recovered_rss


def run_repartition(
    bootstrap: str,
    base: Settings,
    tmp: Path,
    ends: dict[TopicPartition, int],
    r: Results,
    expected: dict[Any, str],
) -> str:
    """One worker re-keying its input itself: its rate to the last commit on the re-keyed
    copies (the input, published by murmur2, lands on the same partition numbers there),
    against the one-worker run, and whether its outputs equal the backtest's."""
    step("engine", "one worker, repartition mode")
    settings = engine_settings(base, "engine-rp", tmp).model_copy(
        update={"input_partitioner": "repartition"}
    )
    copies = {
        TopicPartition(settings.repartition_of[tp.topic], tp.partition): n for tp, n in ends.items()
    }
    rate = measure(
        bootstrap,
        settings.app_id,
        copies,
        [worker(settings, tmp, "engine-rp")],
        settled(settings, r.outputs),
    )
    same = "yes" if asyncio.run(outputs_digest(settings)) == expected else "NO"
    return f"{fmt(rate)} ({ratio(rate, r.engine)}; {same})"


QUIX_CONTENDERS = {
    "quix-count": ("bench.contenders.quix_count", "stateless dataframe that counts"),
    "quix-state": ("bench.contenders.quix_state", "count per customer in RocksDB state"),
    "quix-naive": ("bench.contenders.quix_naive", "per-event stateful dataframe"),
}


def run_quix(
    bootstrap: str,
    base: Settings,
    tmp: Path,
    ends: dict[TopicPartition, int],
    args: argparse.Namespace,
) -> tuple[Throughput, ...]:
    """The quix-streams contenders' rates, in QUIX_CONTENDERS' order, each run by
    ``args.quix_python``."""
    rates = []
    for name, (module, what) in QUIX_CONTENDERS.items():
        step(name, what)
        proc, group = contender(module, base, tmp, name, python=str(args.quix_python))
        rates.append(measure(bootstrap, group, ends, [proc]))
    return tuple(rates)


def run(args: argparse.Namespace, bootstrap: str, tmp: Path, log_dir: Path | None) -> Results:
    if not args.quix_python.exists():
        msg = f"no quix-streams interpreter at {args.quix_python}: `make quix` makes it"
        raise SystemExit(msg)
    r = Results(load_before=os.getloadavg()[0], customers=args.customers)
    base = unique_settings(bootstrap, tmp, partitions=args.partitions)
    create_topics(base)
    events = list(simulate(args.customers, seed=args.seed))
    r.events = len(events)
    step("publish", f"{r.events:,} events")
    publish(base, events)
    lines = [dumps(e) for e in events]
    del events
    ends = asyncio.run(end_offsets(bootstrap, base.inbound_topics, base.partitions))
    assert sum(ends.values()) == r.events
    step("backtest", "the pure core, for the reference outputs")
    r.backtest, expected, r.outputs = backtest_digest(base, lines)
    del lines

    step("raw", "aiokafka consume -> orjson -> produce")
    proc, group = contender("bench.contenders.raw", base, tmp, "raw")
    r.raw = measure(bootstrap, group, ends, [proc])
    for variant in args.floor_variants:
        step("floor", variant)
        proc, group = contender("bench.contenders.count", base, tmp, f"count-{variant}", variant)
        r.floor[variant] = measure(bootstrap, group, ends, [proc])
    step("naive", "per-event Faust agent")
    proc, group = contender("bench.contenders.naive", base, tmp, "naive")
    r.naive = measure(bootstrap, group, ends, [proc])
    r.quix_count, r.quix_state, r.quix_naive = run_quix(bootstrap, base, tmp, ends, args)

    one, recovered_rss = run_engine(bootstrap, base, tmp, ends, r, log_dir)

    step("engine", "two workers")
    two = engine_settings(base, "engine2", tmp)
    pair = [worker(two, tmp, "engine2-a"), worker(two, tmp, "engine2-b")]
    r.engine2 = measure(bootstrap, two.app_id, ends, pair, settled(two, r.outputs))
    one_digest = asyncio.run(outputs_digest(one))
    two_digest = asyncio.run(outputs_digest(two))
    r.identical = (
        f"{'yes' if one_digest == expected else 'NO'}/{'yes' if two_digest == expected else 'NO'}"
        f" ({len(expected):,} keys)"
    )

    r.repartition = run_repartition(bootstrap, base, tmp, ends, r, expected)

    rate = args.latency_rate or (r.engine.per_second / 2 if r.engine else 100.0)
    step("latency", f"at {rate:,.0f} events/s for {args.latency_seconds}s")
    r.latency, baseline, r.empty_ready = run_latency(bootstrap, args, tmp, rate)
    if r.state_customers:
        r.rss_per_customer = (recovered_rss - baseline) / r.state_customers
    r.load_after = os.getloadavg()[0]
    return r


def step(name: str, what: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {name}: {what}", file=sys.stderr, flush=True)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--customers", type=int, default=125_000, help="~8.1 events each")
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument(
        "--floor-variants",
        type=lambda s: s.split(","),
        default=list(FAUST_VARIANTS),
        help=f"comma-separated, of {', '.join(FAUST_VARIANTS)}",
    )
    parser.add_argument("--latency-seconds", type=float, default=30.0)
    parser.add_argument("--latency-rate", type=float, default=0.0, help="default: half of 1 worker")
    parser.add_argument(
        "--broker", default="", help="host:port; default: a local broker of its own"
    )
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument(
        "--quix-python",
        type=Path,
        default=QUIX_PYTHON,
        help="the quix-streams contenders' interpreter (default: `make quix`'s)",
    )
    return parser.parse_args(argv)


@contextmanager
def bench_broker(given: str, tmp: Path) -> Iterator[tuple[str, Path | None]]:
    """``given`` (a bootstrap address), or a local broker under ``tmp`` with the
    harness's initial rebalance delay until the block ends: its bootstrap address,
    and its log directory (None for a given broker)."""
    if given:
        yield given, None
        return
    broker = LocalBroker(
        port=find_free_port(), home=tmp / "kafka", initial_rebalance_delay_ms=REBALANCE_DELAY_MS
    )
    try:
        yield broker.start().bootstrap, broker.data_dir
    finally:
        broker.stop()


def main(argv: list[str] | None = None) -> str:
    args = parse(argv)
    tmp = Path(tempfile.mkdtemp(prefix="bench-harness-"))
    with bench_broker(args.broker, tmp) as (bootstrap, log_dir):
        results = run(args, bootstrap, tmp, log_dir)
    return record(args, row(args, results), args.results)


if __name__ == "__main__":
    main()

"""``lifecycle dev``: the whole engine on one machine, started and stopped by one command.

Starts the local broker (unless it is already running), creates the topics,
says whether the run starts fresh or resumes earlier data, runs a worker as a
child process under the demo playbook (the README's flow recipes and a
wishlist reminder, unless ``LIFECYCLE_PLAYBOOK`` names another), publishes a
synthetic shop's events at a steady rate, with the birthdays, properties and
``wishlist_add`` events those flows read, and prints the stage and campaign
counts as they change. Whatever ends the run
(Ctrl-C, SIGTERM, SIGHUP, --duration, the reader of its output going away, an
error), it stops everything this command started, and only that.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from importlib import resources
from pathlib import Path
from typing import IO, Any

from analytics.simulation import simulate
from cli.stop_requests import Console, StopRequests
from lifecycle.playbook import PlaybookError, load_playbook
from schemas.codec import loads
from schemas.records import Stage
from streams.admin import TopicReport, ensure_topics, wait_for_leaders
from streams.broker import BrokerError, LocalBroker
from streams.kafka import BrokerUnreachableError, explained
from streams.kafka import consumer as kafka_consumer
from streams.producer import publish_events
from streams.settings import Settings

__all__ = ["demo_playbook", "playbook_of", "run_dev", "shop_events", "worker_env"]

_STAGE_ORDER = [stage.value for stage in Stage]


def demo_playbook() -> Path:
    """The packaged demo playbook: the README's recipes and a wishlist reminder."""
    return Path(str(resources.files("lifecycle").joinpath("playbook_demo.yaml")))


def worker_env(environ: Mapping[str, str], bootstrap: str, data_dir: Path) -> dict[str, str]:
    """The worker's environment: the user's own, with the demo's choices where it has none.

    The shop replays a simulated year in minutes, so the clock is event time;
    the playbook is the demo's, so the flows the shop's extras feed run.
    """
    env = {**environ, "LIFECYCLE_BROKER": bootstrap, "LIFECYCLE_DATA_DIR": str(data_dir)}
    env.setdefault("LIFECYCLE_CLOCK", "event")
    env["LIFECYCLE_PLAYBOOK"] = str(playbook_of(environ))
    return env


def playbook_of(environ: Mapping[str, str]) -> Path:
    """The playbook the demo's worker runs: ``LIFECYCLE_PLAYBOOK``, else the demo's."""
    given = environ.get("LIFECYCLE_PLAYBOOK")
    return Path(given) if given else demo_playbook()


def shop_events(customers: int, seed: int) -> Iterator[dict[str, Any]]:
    """The synthetic shop, with the traits, properties and custom events flows read,
    and sessions left without an order, which the abandonment flows react to."""
    return simulate(customers, seed=seed, extras=True, abandoned=True)


class _Tally:
    """Counts of this run, from the engine's own output topics."""

    def __init__(self) -> None:
        self.stage_of: dict[str, str] = {}
        self.campaigns: Counter[str] = Counter()
        self.held_out = 0
        self.dead_letters = 0
        self.transitions = 0
        self.published = 0

    def line(self, elapsed: float) -> str:
        stages = Counter(self.stage_of.values())
        stage_text = "  ".join(f"{s} {stages[s]}" for s in _STAGE_ORDER if stages[s])
        campaign_text = "  ".join(f"{c} {n}" for c, n in sorted(self.campaigns.items()))
        return (
            f"[{elapsed:5.0f}s] events {self.published}  transitions {self.transitions}  "
            f"dead letters {self.dead_letters}\n"
            f"        stages:    {stage_text or '-'}\n"
            f"        campaigns: {campaign_text or '-'} (held out {self.held_out})"
        )


async def _watch(settings: Settings, tally: _Tally, stop: asyncio.Event) -> None:
    consumer = kafka_consumer(
        settings,
        settings.topic("transitions"),
        settings.topic("triggers"),
        settings.topic("deadletter"),
        group_id=None,
        auto_offset_reset="latest",
    )
    try:
        await consumer.start()
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=500)
            for tp, records in batches.items():
                for record in records:
                    value = loads(record.value or b"{}")
                    if tp.topic == settings.topic("transitions"):
                        tally.transitions += 1
                        tally.stage_of[value["customer_id"]] = value["to_stage"]
                    elif tp.topic == settings.topic("triggers"):
                        tally.campaigns[value["campaign"]] += 1
                        tally.held_out += int(value["holdout"])
                    else:
                        tally.dead_letters += 1
    finally:
        await consumer.stop()


async def _report(tally: _Tally, console: Console, stop: asyncio.Event, started: float) -> None:
    last = ""
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=3.0)
        line = tally.line(time.monotonic() - started)
        counts = line.split("\n", 1)[1]  # print only when the counts changed
        if counts != last:
            console.echo(line)
            last = counts
        else:
            console.check()


async def _demo(
    settings: Settings,
    console: Console,
    stops: StopRequests,
    *,
    customers: int,
    rate: float,
    seed: int,
    duration: float | None,
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    tally = _Tally()
    started = time.monotonic()

    def published(n: int) -> None:
        tally.published = n

    async def shop() -> None:
        events = shop_events(customers, seed)
        tally.published = await publish_events(settings, events, rate=rate, progress=published)
        console.echo(f"synthetic shop finished: {tally.published} events published")

    with stops.waking(lambda: loop.call_soon_threadsafe(stop.set)):
        tasks = [
            asyncio.create_task(_watch(settings, tally, stop)),
            asyncio.create_task(_report(tally, console, stop, started)),
            asyncio.create_task(shop()),
        ]
        try:
            if duration is None:
                await stop.wait()
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=duration)
        finally:
            stop.set()
            tasks[2].cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            console.echo(tally.line(time.monotonic() - started))


async def _prepare_topics(settings: Settings) -> list[TopicReport]:
    """Create the topics and wait for their leaders, so no client starts on a leaderless one."""
    reports = await ensure_topics(settings)
    await wait_for_leaders(settings, reports)
    return reports


def freshness(
    reports: list[TopicReport], worker_state: bool, dev_dir: Path, broker_home: Path
) -> str:
    """Whether this run starts fresh or resumes, in one line, from what it found.

    Fresh means every topic was just created: no earlier events, offsets or
    changelogs. Worker state found then belongs to a broker that is gone and
    is removed by the caller (``stale_worker_state``).
    """
    if all(r.status == "created" for r in reports):
        if worker_state:
            return (
                "fresh start: new topics; the worker state in "
                f"{dev_dir / 'worker'} belonged to an earlier broker and is removed"
            )
        return "fresh start: new topics, no worker state"
    kept = sum(r.status != "created" for r in reports)
    state = (
        f"worker state in {dev_dir / 'worker'}"
        if worker_state
        else "no worker state (rebuilt from the changelogs)"
    )
    return (
        f"resuming: {kept} of {len(reports)} topics exist with their events and offsets, "
        f"{state}; to start fresh, stop the broker (lifecycle kafka stop) and remove "
        f"{broker_home} and {dev_dir}"
    )


def stale_worker_state(reports: list[TopicReport], worker_state: bool) -> bool:
    """Local tables built from topics that no longer exist: they would resurrect old customers."""
    return worker_state and all(r.status == "created" for r in reports)


def _stop_worker(process: subprocess.Popen[bytes], grace: float) -> None:
    """SIGTERM, so the worker writes its last batch; SIGKILL only past ``grace``."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class _Started:
    """What this run started, so that it stops exactly that, and all of it."""

    def __init__(self, broker: LocalBroker, stop_timeout: float) -> None:
        self.broker = broker
        self.stop_timeout = stop_timeout
        self.broker_was_running: bool | None = None  # None: start() was never called
        self.worker: subprocess.Popen[bytes] | None = None
        self.log: IO[bytes] | None = None

    def stop(self, console: Console) -> None:
        if self.worker is not None:
            console.echo("stopping the worker")
            _stop_worker(self.worker, self.stop_timeout + 15)
            console.echo("worker stopped")
        if self.log is not None:
            self.log.close()
        if self.broker_was_running is False:
            if self.broker.stop():
                console.echo("broker stopped")
        elif self.broker_was_running:
            console.echo("broker left running: it was running before this command")


def run_dev(
    settings: Settings,
    *,
    customers: int,
    rate: float,
    seed: int | None,
    duration: float | None,
) -> int:
    """Run the demo until interrupted; returns the process exit code.

    A stop request (see ``cli.stop_requests``) at any point, before the
    demo runs or during it, ends the run with exit code 0 after the clean-up.
    """
    # Fresh topics elect leaders for a moment; aiokafka's retries are not news here.
    logging.getLogger("aiokafka").setLevel(logging.ERROR)
    with StopRequests() as stops:
        console = Console(stops)
        started = _Started(LocalBroker.from_settings(settings), settings.stop_timeout)
        try:
            return _run(
                settings,
                started,
                console,
                stops,
                customers=customers,
                rate=rate,
                seed=seed,
                duration=duration,
            )
        except KeyboardInterrupt:
            return 0
        finally:
            stops.shield()
            if stops.requested:
                console.echo(f"stopping ({stops.reason})")
            started.stop(console)


def _run(
    settings: Settings,
    started: _Started,
    console: Console,
    stops: StopRequests,
    *,
    customers: int,
    rate: float,
    seed: int | None,
    duration: float | None,
) -> int:
    playbook = playbook_of(os.environ)
    try:
        load_playbook(playbook)
    except PlaybookError as exc:
        console.echo(f"error: {exc}", err=True)
        return 1
    console.echo(f"playbook {playbook}")
    broker = started.broker
    started.broker_was_running = broker.status().running
    try:
        status = broker.start()
    except BrokerError as exc:
        console.echo(f"error: {exc}", err=True)
        return 1
    if status.start_seconds is not None:
        console.echo(
            f"broker started at {status.bootstrap} (pid {status.pid}, {status.home}) "
            f"in {status.start_seconds:.1f}s"
        )
    else:
        console.echo(f"broker already running at {status.bootstrap} (pid {status.pid})")
    dev_dir = settings.kafka_dir.parent / "dev"
    dev_dir.mkdir(parents=True, exist_ok=True)
    settings = settings.model_copy(
        update={"broker": status.bootstrap, "data_dir": dev_dir / "worker"}
    )
    try:
        with explained(settings):
            reports = asyncio.run(_prepare_topics(settings))
    except BrokerUnreachableError as exc:
        console.echo(f"error: {exc}", err=True)
        return 1
    worker_state = settings.data_dir.is_dir() and any(settings.data_dir.iterdir())
    console.echo(freshness(reports, worker_state, dev_dir, status.home))
    if stale_worker_state(reports, worker_state):
        shutil.rmtree(settings.data_dir)
    env = worker_env(os.environ, status.bootstrap, settings.data_dir)
    started.log = (dev_dir / "worker.log").open("ab")
    with stops.deferred():  # never a worker running that ``started`` does not know
        started.worker = subprocess.Popen(
            [sys.executable, "-m", "cli", "worker"],
            env=env,
            stdout=started.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches us; we stop the worker in order
        )
    console.echo(
        f"worker pid {started.worker.pid} (log {dev_dir / 'worker.log'}), "
        f"web http://{settings.web_host}:{settings.web_port}/"
    )
    run_seed = seed if seed is not None else int(time.time())
    console.echo(
        f"synthetic shop: {customers} customers, seed {run_seed}, {rate:g} events/s; Ctrl-C to stop"
    )
    asyncio.run(
        _demo(
            settings,
            console,
            stops,
            customers=customers,
            rate=rate,
            seed=run_seed,
            duration=duration,
        )
    )
    return 0

"""``lifecycle dev``: the whole engine on one machine, started and stopped by one command.

Starts the local broker (unless it is already running), creates the topics,
runs a worker as a child process, publishes a synthetic shop's events at a
steady rate, and prints the stage and campaign counts as they change. Ctrl-C
(or SIGTERM, or --duration) stops everything this command started, and only that.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from typing import IO

import click

from lifecycle.simulation import simulate
from schemas.codec import loads
from schemas.records import Stage
from streams.admin import ensure_topics
from streams.broker import BrokerError, LocalBroker
from streams.kafka import BrokerUnreachableError, explained
from streams.kafka import consumer as kafka_consumer
from streams.producer import publish_events
from streams.settings import Settings

__all__ = ["run_dev"]

_STAGE_ORDER = [stage.value for stage in Stage]


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
    await consumer.start()
    try:
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


async def _report(tally: _Tally, stop: asyncio.Event, started: float) -> None:
    last = ""
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=3.0)
        line = tally.line(time.monotonic() - started)
        counts = line.split("\n", 1)[1]  # print only when the counts changed
        if counts != last:
            click.echo(line)
            last = counts


async def _demo(
    settings: Settings, customers: int, rate: float, seed: int, duration: float | None
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    tally = _Tally()
    started = time.monotonic()

    def published(n: int) -> None:
        tally.published = n

    async def shop() -> None:
        events = simulate(customers, seed=seed)
        tally.published = await publish_events(settings, events, rate=rate, progress=published)
        click.echo(f"synthetic shop finished: {tally.published} events published")

    tasks = [
        asyncio.create_task(_watch(settings, tally, stop)),
        asyncio.create_task(_report(tally, stop, started)),
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
        click.echo(tally.line(time.monotonic() - started))


def _stop_worker(process: subprocess.Popen[bytes], log: IO[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    log.close()


def run_dev(
    settings: Settings,
    *,
    customers: int,
    rate: float,
    seed: int | None,
    duration: float | None,
) -> int:
    """Run the demo until interrupted; returns the process exit code."""
    # Fresh topics elect leaders for a moment; aiokafka's retries are not news here.
    logging.getLogger("aiokafka").setLevel(logging.ERROR)
    broker = LocalBroker.from_settings(settings)
    already_running = broker.status().running
    try:
        status = broker.start()
    except BrokerError as exc:
        click.echo(f"error: {exc}", err=True)
        return 1
    if status.start_seconds is not None:
        click.echo(f"broker started at {status.bootstrap} in {status.start_seconds:.1f}s")
    else:
        click.echo(f"broker already running at {status.bootstrap}")
    dev_dir = settings.kafka_dir.parent / "dev"
    dev_dir.mkdir(parents=True, exist_ok=True)
    settings = settings.model_copy(
        update={"broker": status.bootstrap, "data_dir": dev_dir / "worker"}
    )
    worker: subprocess.Popen[bytes] | None = None
    log = (dev_dir / "worker.log").open("ab")
    try:
        try:
            with explained(settings):
                asyncio.run(ensure_topics(settings))
        except BrokerUnreachableError as exc:
            click.echo(f"error: {exc}", err=True)
            return 1
        env = {**os.environ, "LIFECYCLE_BROKER": status.bootstrap}
        env["LIFECYCLE_DATA_DIR"] = str(settings.data_dir)
        # The shop replays a simulated year in minutes: its clock is event time.
        env.setdefault("LIFECYCLE_CLOCK", "event")
        worker = subprocess.Popen(
            [sys.executable, "-m", "agents.cli", "worker"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches us; we stop the worker in order
        )
        click.echo(
            f"worker pid {worker.pid} (log {dev_dir / 'worker.log'}), "
            f"web http://{settings.web_host}:{settings.web_port}/"
        )
        run_seed = seed if seed is not None else int(time.time())
        click.echo(
            f"synthetic shop: {customers} customers, seed {run_seed}, {rate:g} events/s; "
            "Ctrl-C to stop"
        )
        asyncio.run(_demo(settings, customers, rate, run_seed, duration))
    finally:
        if worker is not None:
            _stop_worker(worker, log)
            click.echo("worker stopped")
        else:
            log.close()
        if not already_running:
            broker.stop()
            click.echo("broker stopped")
    return 0

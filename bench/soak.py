"""The long reliability run: a shop, garbage among its events, workers killed again and again.

    .venv/bin/python -m bench.soak --customers 2000 --kills 30 --bad 3000
    .venv/bin/python -m bench.soak --workers 2 --customers 20000 --kills 20 --broker-restarts 2 \\
        --session-timeout 10 --rate 250

Starts its own Apache Kafka broker (the product's launcher, in a temporary
home) and ``--workers`` workers in one consumer group, each with its own web
port, data dir and log, as the README's scaling note runs them on one
machine. It publishes a simulated shop at a steady rate with hostile messages
scattered through it and meanwhile works through a fault schedule
(``schedule``) spread over the publishing, so that every fault hits a group
under load:

- SIGKILLs alternating between the workers, each once its target answers
  ``/ready`` (so it holds partitions and works), each followed by a restart;
  the middle one hits the worker the kill before it restarted, while that
  worker joins the group again;
- ``--broker-restarts`` restarts of the broker between the kills, on the same
  data dir and ports, clean (SIGTERM) and hard (SIGKILL, so the broker recovers
  its logs) in turn, once every worker is ready (a worker that starts while
  the broker is down exits with a message, by design); the running workers
  ride them out on their own retries.

At the end it waits until the group has committed every input, and compares
every customer record in the table's changelog (what both workers wrote) with
the pure core's answer on the valid events, and the trigger ids emitted with
the expected ones. Prints the counts and appends them to bench/SOAK.md, with
the command as its last column (``--no-record`` leaves the file alone). A
failed run keeps its directory (broker data, worker stores and logs) and
says where; ``--keep DIR`` runs in DIR and keeps it whatever the outcome.

A killed worker's member keeps its partitions until its session ends, and the
whole group waits that long in the rebalance the restart starts: with the
engine's 60 s default and a fault every half minute the group would wait
through most of the run and the kills would hit it idle, so the large run
passes ``--session-timeout 10`` (as tests/integration/test_crash.py does).

Duration on a 2-core machine: the 20,000-customer command above publishes
170,182 messages (167,182 events and 3,000 bad) at 250 a second, 11.3 minutes,
after about 2 minutes of simulation, backtest and broker start, and before
1 to 2 minutes of catching up and reading back: about 15 minutes in all.
The publishing takes ``messages / --rate`` seconds; the rest grows with
``--customers``.

The CI versions of this are tests/integration/test_crash.py,
test_broker_faults.py and test_hostile.py, with smaller loads.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import platform
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from analytics.simulation import simulate
from harness.engine import (
    OUTPUTS,
    Worker,
    backtest,
    collect,
    create_topics,
    lag_report,
    personal_data_in,
    stored_states,
    unique_settings,
    wait_caught_up,
    wait_for,
    wait_ready,
)
from harness.hostile import VALID, corpus, mutations
from schemas.codec import dumps, to_jsonable
from schemas.records import Trigger
from streams import kafka
from streams.broker import LocalBroker, find_free_port, port_free
from streams.producer import route
from streams.settings import Settings

RESULTS = Path(__file__).with_name("SOAK.md")
COLUMNS = (
    "date",
    "commit",
    "machine",
    "workers",
    "customers",
    "events",
    "kills survived",
    "crashes",
    "broker restarts",
    "purchases lost",
    "purchases double counted",
    "records differing",
    "trigger ids missing",
    "trigger ids unexpected",
    "bad inputs tried",
    "dead-lettered",
    "personal data in log",
    "caught up",
    "minutes",
)
"""SOAK.md's columns before the command, in order: a run checks the file has them
before it starts, so a changed result never lands under the wrong heading."""

RESTART_BOUND = 300.0
"""Seconds a broker start may take before the run gives up (a hard restart recovers logs)."""

JOINING = "(Re-)joining group"
"""What a worker logs (aiokafka) when it asks the group for partitions."""

Record = tuple[str, bytes | None, bytes]


def records(
    settings: Settings, customers: int, bad: int, seed: int
) -> tuple[list[Any], list[Record], int]:
    """The valid events, and every message to publish (valid and hostile, shuffled in)."""
    events = list(simulate(customers, seed=seed, duplicate_rate=0.02))
    stream: list[Record] = [(*route(e, settings), dumps(e)) for e in events]
    purchase = settings.topic("purchase")
    hostile = [raw for raw, _ in corpus()] + mutations(max(0, bad - len(corpus()) - 2), seed=seed)
    garbage: list[Record] = [(purchase, b"c1", raw) for raw in hostile]
    garbage.append((purchase, b"someone-else", dumps(VALID)))
    garbage.append((settings.topic("browse"), b"c1", dumps(VALID)))
    rng = random.Random(seed)
    for record in garbage:
        stream.insert(rng.randrange(len(stream) + 1), record)
    return events, stream, len(garbage)


@dataclass(frozen=True)
class Step:
    """One fault of the run."""

    at: float
    """The share of the messages published when it comes, 0 to 1 (a recovering kill
    has the share of the kill before it: it comes as soon as that worker rejoins)."""
    worker: int | None
    """The worker a kill hits, by index; None for a broker restart."""
    recovering: bool = False
    """A kill of the worker the kill before it restarted, while it joins the group again."""
    hard: bool = False
    """A broker restart by SIGKILL rather than a clean stop."""


def schedule(kills: int, restarts: int, workers: int, seed: int) -> list[Step]:
    """The faults in order, spread over the publishing.

    The kills take the workers in turn; the middle one (``kills // 2``, the
    only one when there is one) instead hits the worker the kill before it
    restarted (worker 0 after its first start), so each worker still takes
    its share. The broker restarts split the kills into equal runs, never
    between that recovering kill and the kill it follows, and alternate clean
    and hard. Every other step gets a slot of equal share of the publishing
    and comes at a seeded random point of its middle 60 %, so no two of them
    coincide and the last comes while messages still arrive.
    """
    recovering = kills // 2
    breaks = []
    for n in range(restarts):
        after = (kills * (n + 1) + (restarts + 1) // 2) // (restarts + 1)
        breaks.append(after + 1 if kills and after == recovering else after)
    plan: list[tuple[int | None, bool]] = []  # (worker or None for the broker, recovering)
    turn = previous = 0
    for n in range(kills + 1):
        plan += [(None, False)] * breaks.count(n)
        if n == kills:
            break
        if n != recovering:
            previous, turn = turn % workers, turn + 1
        plan.append((previous, n == recovering))
    rng = random.Random(seed)
    slots = sum(1 for _, again in plan if not again)
    steps: list[Step] = []
    slot = restarted = 0
    at = 0.0
    for worker, again in plan:
        if not again:
            at = (slot + rng.uniform(0.2, 0.8)) / slots
            slot += 1
        steps.append(Step(at, worker, again, hard=worker is None and restarted % 2 == 1))
        restarted += worker is None
    return steps


class Publisher(threading.Thread):
    """The shop's messages at ``rate`` a second from a thread of its own, each acknowledged
    before the next, so the broker holds them in order across topics (as
    ``publish_events`` paces a live shop); ``sent`` counts the acknowledged ones."""

    def __init__(self, settings: Settings, stream: list[Record], rate: float) -> None:
        super().__init__(name="publisher", daemon=True)
        self.settings = settings
        self.stream = stream
        self.rate = rate
        self.sent = 0
        self.error: Exception | None = None

    def run(self) -> None:
        try:
            asyncio.run(self.send())
        except Exception as exc:  # the main thread raises it and stops the run
            self.error = exc

    async def send(self) -> None:
        """Idempotent, so a send retried across a broker restart is written once, and with
        a request timeout longer than a restart may take (``broker.start``'s bound):
        until then aiokafka retries a send the broker refused, or one whose partition
        has no known leader, so a message held while the broker is down goes out when
        it is back. No linger: each message is awaited alone, so lingering would only
        cap the rate (5 ms of it held this loop to about 130 a second)."""
        producer = kafka.producer(
            self.settings,
            acks="all",
            linger_ms=0,
            enable_idempotence=True,
            request_timeout_ms=int(RESTART_BOUND * 1000) + 60_000,
        )
        await producer.start()
        started = time.monotonic()
        try:
            for topic, key, value in self.stream:
                await (await producer.send(topic, value, key=key))
                self.sent += 1
                ahead = self.sent / self.rate - (time.monotonic() - started)
                if ahead > 0:
                    await asyncio.sleep(ahead)
        finally:
            await producer.stop()


class Fleet:
    """The workers of one consumer group: the same app id, topics and changelogs, each
    with its own web port, data dir and log."""

    def __init__(self, settings: Settings, count: int, home: Path) -> None:
        ports = {settings.web_port}
        self.workers = [Worker(settings, home / "worker-0.log")]
        for n in range(1, count):
            port = find_free_port(1)
            while port in ports:  # none of them listens yet: the OS may offer one twice
                port = find_free_port(1)
            ports.add(port)
            own = settings.model_copy(update={"web_port": port, "data_dir": home / f"worker-{n}"})
            self.workers.append(Worker(own, home / f"worker-{n}.log"))
        self.patience = 2 * settings.session_timeout + 120
        """Seconds a kill waits for its moment: a rebalance waits for a dead member's
        session, and a broker restart adds its own."""
        self.started_at = [0] * count
        """Each worker's log length at its latest start: where to look for its rejoining."""
        self.kills = 0
        self.crashes = 0

    def start(self) -> None:
        for worker in self.workers:
            worker.start()

    def stop(self) -> None:
        for worker in self.workers:
            worker.stop()

    def exited(self, *, restart: bool) -> list[tuple[int, str]]:
        """The workers that exited on their own, each counted as a crash (what this run
        exists to find) and, with ``restart``, started again so the run goes on; each
        with its exit code and its log, which says why (a failed run keeps the logs)."""
        gone = [
            (n, f"exit code {w.process.returncode}, log {w.log_path}")
            for n, w in enumerate(self.workers)
            if w.process is not None and w.process.poll() is not None
        ]
        self.crashes += len(gone)
        if restart:
            for n, _ in gone:
                self.started_at[n] = len(self.workers[n].log_text())
                self.workers[n].start()
        return gone

    def unready(self) -> list[int]:
        """Wait until every worker answers ``/ready``; the ones that never did."""
        return [
            n
            for n, w in enumerate(self.workers)
            if wait_ready(w.settings, timeout=self.patience)["status"] != 200
        ]

    def kill(self, n: int, *, recovering: bool) -> str:
        """SIGKILL worker ``n`` and start it again; returns when it was hit."""
        worker = self.workers[n]
        if recovering:  # its restart is under way: hit it once it asks to join
            since = self.started_at[n]
            joined = wait_for(lambda: JOINING in worker.log_text()[since:], timeout=self.patience)
            time.sleep(0.5)
            moment = "while it rejoins" if joined else "never saw it rejoin"
        else:
            ready = wait_ready(worker.settings, timeout=self.patience)["status"] == 200
            moment = "when ready" if ready else "never ready"
        assert worker.process is not None
        worker.process.send_signal(signal.SIGKILL)
        worker.process.wait()
        self.kills += 1
        self.started_at[n] = len(worker.log_text())
        worker.start()
        return moment

    def log_text(self) -> str:
        return "\n".join(worker.log_text() for worker in self.workers)


def restart(broker: LocalBroker, *, hard: bool) -> float:
    """Stop the broker, cleanly or with SIGKILL, and start it again on the same home, ports
    and data; returns the seconds it took until it answers again."""
    began = time.monotonic()
    if hard:
        pid = broker.status().pid
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
            if not wait_for(lambda: not broker.status().running, timeout=60):
                msg = f"the broker (pid {pid}) survived SIGKILL"
                raise RuntimeError(msg)
        # The killed JVM's sockets close a moment after its pid is gone; until they
        # have, the launcher takes the port for another program's and refuses.
        ports = (broker.port, broker.controller_port)
        if not wait_for(lambda: all(map(port_free, ports)), timeout=60):
            msg = f"the killed broker's ports {ports} stayed in use"
            raise RuntimeError(msg)
    else:
        broker.stop()
    broker.start(timeout=RESTART_BOUND)
    return time.monotonic() - began


def run_faults(
    steps: list[Step], fleet: Fleet, broker: LocalBroker, publisher: Publisher, began: float
) -> int:
    """Each step once its share of the messages is out; returns the broker restarts done."""
    total = len(publisher.stream)
    restarts = 0
    for step in steps:
        while publisher.sent < step.at * total and publisher.is_alive():
            time.sleep(0.2)
        if publisher.error is not None:
            break
        for n, status in fleet.exited(restart=True):
            note(began, publisher, f"worker {n} had exited on its own: restarted it; {status}")
        if step.worker is None:
            # A worker that starts while the broker is down exits with a message (the CLI
            # makes no broker a message, not a wait), which would read as a crash: the
            # restart comes once every worker runs, and the outage tests running ones.
            for n in fleet.unready():
                note(began, publisher, f"worker {n} not ready after {fleet.patience:.0f} s")
            seconds = restart(broker, hard=step.hard)
            restarts += 1
            kind = "hard (SIGKILL)" if step.hard else "clean"
            note(began, publisher, f"broker restart {restarts}, {kind}: up in {seconds:.1f} s")
        else:
            moment = fleet.kill(step.worker, recovering=step.recovering)
            note(began, publisher, f"kill {fleet.kills}: worker {step.worker}, {moment}")
    return restarts


def note(began: float, publisher: Publisher, text: str) -> None:
    """A progress line: the run takes minutes. Counts, indexes and paths, no customer data."""
    share = publisher.sent / max(1, len(publisher.stream))
    print(f"{time.monotonic() - began:7.1f} s {share:5.0%} published  {text}", flush=True)


def soak(args: argparse.Namespace, home: Path) -> dict[str, Any]:
    broker = LocalBroker(port=find_free_port(), home=home / "kafka")
    broker.start(timeout=300)
    try:
        settings = unique_settings(broker.bootstrap, home, partitions=args.partitions)
        if args.session_timeout is not None:
            settings = settings.model_copy(update={"session_timeout": args.session_timeout})
        create_topics(settings)
        events, stream, bad = records(settings, args.customers, args.bad, args.seed)
        runner, expected = backtest(settings, events)
        steps = schedule(args.kills, args.broker_restarts, args.workers, args.seed)
        print(
            f"{len(stream)} messages at {args.rate:g}/s: {len(stream) / args.rate / 60:.1f} "
            f"minutes of publishing; {len(steps)} faults, {args.workers} worker(s)",
            flush=True,
        )
        fleet = Fleet(settings, args.workers, home)
        publisher = Publisher(settings, stream, args.rate)
        fleet.start()
        started = time.monotonic()
        publisher.start()
        try:
            restarts = run_faults(steps, fleet, broker, publisher, started)
            publisher.join()
            if publisher.error is not None:
                raise publisher.error
            note(started, publisher, "all published")
            caught_up = wait_caught_up(settings, timeout=900)
            lagging = "" if caught_up else f", never caught up; lagging: {lag_report(settings)}"
            note(started, publisher, f"caught up: {caught_up}{lagging}")
            outputs = collect(settings, OUTPUTS, expected=len(expected), timeout=600, quiet=5)
            letters = collect(settings, ["deadletter"], expected=bad, timeout=600, quiet=5)
            for n, status in fleet.exited(restart=False):
                note(started, publisher, f"worker {n} had exited on its own; {status}")
            states = stored_states(settings, timeout=600)
            log = fleet.log_text()
            note(started, publisher, "outputs, dead letters and records read back")
        finally:
            fleet.stop()
        elapsed = time.monotonic() - started
    finally:
        broker.stop()
    want = {k: to_jsonable(s) for k, s in runner.states.items()}
    lost = double = 0
    for key, record in want.items():
        have = states.get(key, {}).get("orders", 0)
        lost += max(0, record["orders"] - have)
        double += max(0, have - record["orders"])
    expected_ids = {o.value.trigger_id for o in expected if isinstance(o.value, Trigger)}
    triggers = settings.topic("triggers")  # attribution records carry trigger_ids too
    emitted = {r["value"]["trigger_id"] for r in outputs if r["topic"] == triggers}
    result = {
        "date": datetime.now(UTC).date().isoformat(),
        "commit": subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
        ).stdout.strip(),
        "machine": f"{platform.machine()} {platform.python_implementation()} "
        f"{platform.python_version()}",
        "workers": args.workers,
        "customers": args.customers,
        "events": len(events),
        "kills survived": max(0, fleet.kills - fleet.crashes),
        "crashes": fleet.crashes,
        "broker restarts": restarts,
        "purchases lost": lost,
        "purchases double counted": double,
        "records differing": sum(1 for k in want if states.get(k) != want[k])
        + len(set(states) - set(want)),
        "trigger ids missing": len(expected_ids - emitted),
        "trigger ids unexpected": len(emitted - expected_ids),
        "bad inputs tried": bad,
        # Bad inputs with a dead letter: a kill can make one be dead-lettered again
        # (at-least-once, like every output), so source positions are counted.
        "dead-lettered": len(
            {(d["value"]["topic"], d["value"]["partition"], d["value"]["offset"]) for d in letters}
        ),
        "personal data in log": len(personal_data_in(log, events)),
        "caught up": caught_up,
        "minutes": round(elapsed / 60, 1),
    }
    assert tuple(result) == COLUMNS
    return result


def header() -> str:
    """SOAK.md's table header: the result's columns, then the command."""
    return "| " + " | ".join([*COLUMNS, "command"]) + " |"


def check_table(path: Path = RESULTS) -> None:
    """Refuse to run when the table's columns are not this run's: checked before the run,
    so a long run's row is never lost to a mismatch found after it."""
    if path.exists() and header() not in path.read_text(encoding="utf-8").splitlines():
        msg = (
            f"{path}'s table has other columns than this run's ({', '.join(COLUMNS)}, command): "
            "update its header and rows first, or run with --no-record"
        )
        raise SystemExit(msg)


def record(result: dict[str, Any], command: str, path: Path = RESULTS) -> None:
    row = "| " + " | ".join(str(v) for v in result.values()) + f" | `{command}` |"
    if not path.exists():
        path.write_text(
            "# Reliability soak runs\n\n"
            "Each run of bench/soak.py appends a row; its command is in the last column.\n\n"
            f"{header()}\n|{'---|' * (len(COLUMNS) + 1)}\n",
            encoding="utf-8",
        )
    with path.open("a", encoding="utf-8") as out:
        out.write(row + "\n")


def positive(text: str) -> int:
    number = int(text)
    if number < 1:
        msg = f"{number} is not 1 or more"
        raise argparse.ArgumentTypeError(msg)
    return number


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=positive, default=1, help="in one consumer group")
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--kills", type=int, default=30, help="SIGKILLs, workers in turn")
    parser.add_argument("--broker-restarts", type=int, default=0, help="between the kills")
    parser.add_argument("--bad", type=int, default=3000)
    parser.add_argument("--rate", type=float, default=400.0, help="messages per second")
    parser.add_argument(
        "--session-timeout",
        type=float,
        default=None,
        help="LIFECYCLE_SESSION_TIMEOUT for the workers (default: the engine's)",
    )
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-record", action="store_true", help="do not append to SOAK.md")
    parser.add_argument(
        "--keep",
        type=Path,
        default=None,
        metavar="DIR",
        help="run in DIR and keep the broker's and workers' data and logs there "
        "(a failed run keeps its temporary directory anyway)",
    )
    args = parser.parse_args()
    if not args.no_record:
        check_table()
    # While the broker restarts, the publisher's client logs each failed connect, thousands
    # a second; its retries are expected, and a failure that is not reaches the run as an
    # exception. The workers log to their own files.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    home = Path(tempfile.mkdtemp(prefix="lifecycle-soak-")) if args.keep is None else args.keep
    home.mkdir(parents=True, exist_ok=True)
    try:
        result = soak(args, home.absolute())
    except BaseException:
        print(f"kept {home}: the broker's and workers' data and logs", file=sys.stderr)
        raise
    for name, value in result.items():
        print(f"{name:>26}: {value}")
    if not args.no_record:
        record(result, " ".join([".venv/bin/python -m bench.soak", *sys.argv[1:]]))
    if passed(result) and args.keep is None:
        shutil.rmtree(home, ignore_errors=True)
    else:
        print(f"kept {home}: the broker's and workers' data and logs")
    if not passed(result):
        raise SystemExit(1)


def passed(result: dict[str, Any]) -> bool:
    """Nothing lost, counted twice, crashed or leaked, every bad input dead-lettered."""
    failures = (
        result["crashes"]
        + result["purchases lost"]
        + result["purchases double counted"]
        + result["records differing"]
        + result["trigger ids missing"]
        + result["trigger ids unexpected"]
        + result["personal data in log"]
    )
    return (
        failures == 0
        and bool(result["caught up"])
        and result["dead-lettered"] == result["bad inputs tried"]
    )


if __name__ == "__main__":
    main()

"""The long reliability run: a shop, garbage among its events, and a worker killed again and again.

    .venv/bin/python -m bench.soak --customers 2000 --kills 30 --bad 3000

Starts its own Apache Kafka broker (the product's launcher, in a temporary
home), publishes a simulated shop at a steady rate with hostile messages
scattered through it, kills the worker with SIGKILL at random moments (once
right after a restart, while it recovers), restarts it, and at the end
compares every customer record with the pure core's answer on the valid
events. Prints the counts and appends them to bench/SOAK.md.

The CI version of this is tests/integration/test_crash.py and test_hostile.py,
with smaller loads.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
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
    personal_data_in,
    stored_states,
    unique_settings,
    wait_caught_up,
)
from harness.hostile import VALID, corpus, mutations
from schemas.codec import dumps, to_jsonable
from schemas.records import Trigger
from streams import kafka
from streams.broker import LocalBroker, find_free_port
from streams.producer import route
from streams.settings import Settings

RESULTS = Path(__file__).with_name("SOAK.md")
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


async def send(settings: Settings, stream: list[Record], rate: float) -> None:
    producer = kafka.producer(settings, acks="all", linger_ms=5)
    await producer.start()
    started = time.monotonic()
    try:
        for n, (topic, key, value) in enumerate(stream, start=1):
            await (await producer.send(topic, value, key=key))  # in order across topics
            ahead = n / rate - (time.monotonic() - started)
            if ahead > 0:
                await asyncio.sleep(ahead)
    finally:
        await producer.stop()


def soak(args: argparse.Namespace, home: Path) -> dict[str, Any]:
    broker = LocalBroker(port=find_free_port(), home=home / "kafka")
    broker.start()
    try:
        settings = unique_settings(broker.bootstrap, home, partitions=args.partitions)
        create_topics(settings)
        events, stream, bad = records(settings, args.customers, args.bad, args.seed)
        runner, expected = backtest(settings, events)
        publisher = threading.Thread(target=asyncio.run, args=(send(settings, stream, args.rate),))
        worker = Worker(settings, home / "worker.log").start()
        started = time.monotonic()
        publisher.start()
        rng = random.Random(args.seed)
        crashes = kills = 0
        assert worker.process is not None
        for n in range(args.kills):
            time.sleep(rng.uniform(0.5, args.every) if n != args.kills // 2 else 0.3)
            if worker.process.poll() is not None:
                crashes += 1  # it died on its own: a failure this run exists to find
            worker.process.send_signal(signal.SIGKILL)
            worker.process.wait()
            kills += 1
            worker.start()
        publisher.join()
        caught_up = wait_caught_up(settings, timeout=900)
        outputs = collect(settings, OUTPUTS, expected=len(expected), timeout=120, quiet=5)
        letters = collect(settings, ["deadletter"], expected=bad, timeout=120, quiet=5)
        crashes += int(worker.process.poll() is not None)
        states = stored_states(settings, timeout=120)
        log = worker.log_text()
        worker.stop()
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
    return {
        "date": datetime.now(UTC).date().isoformat(),
        "commit": subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
        ).stdout.strip(),
        "machine": f"{platform.machine()} {platform.python_implementation()} "
        f"{platform.python_version()}",
        "customers": args.customers,
        "events": len(events),
        "kills survived": kills - crashes,
        "crashes": crashes,
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


def record(result: dict[str, Any], command: str) -> None:
    header = "| " + " | ".join(result) + " |"
    rule = "|" + "---|" * len(result)
    row = "| " + " | ".join(str(v) for v in result.values()) + f" | `{command}` |"
    if not RESULTS.exists():
        RESULTS.write_text(
            "# Reliability soak runs\n\n"
            "Each run of bench/soak.py appends a row; its command is in the last column.\n\n"
            f"{header} command |\n{rule}---|\n",
            encoding="utf-8",
        )
    with RESULTS.open("a", encoding="utf-8") as out:
        out.write(row + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--kills", type=int, default=30)
    parser.add_argument("--bad", type=int, default=3000)
    parser.add_argument("--rate", type=float, default=400.0, help="messages per second")
    parser.add_argument("--every", type=float, default=8.0, help="most seconds between kills")
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-record", action="store_true", help="do not append to SOAK.md")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lifecycle-soak-") as tmp:
        result = soak(args, Path(tmp))
    for name, value in result.items():
        print(f"{name:>26}: {value}")
    if not args.no_record:
        record(result, " ".join([".venv/bin/python -m bench.soak", *sys.argv[1:]]))
    failed = (
        result["crashes"]
        + result["purchases lost"]
        + result["purchases double counted"]
        + result["records differing"]
        + result["trigger ids missing"]
        + result["trigger ids unexpected"]
        + result["personal data in log"]
    )
    if failed or not result["caught up"] or result["dead-lettered"] != result["bad inputs tried"]:
        raise SystemExit(1)


if __name__ == "__main__":
    main()

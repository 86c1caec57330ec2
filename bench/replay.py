"""Replay benchmark: the pure core (backtest) vs a fresh worker on a real broker, same events.

    .venv/bin/python -m bench.replay [--customers N] [--partitions P]

Publishes N simulated customers' events, then measures (1) the backtest over
the same lines and (2) a fresh worker consuming them from the beginning until
every expected output is on the broker (worker start-up included, and shown
separately). Checks both paths produced the same number of outputs, prints a
table row and adds it to its table in bench/RESULTS.md. The full harness (Faust floor,
naive peer, raw aiokafka, latency, memory, recovery) is issue 6.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from analytics.simulation import simulate
from bench.results import add_row
from harness.engine import (
    OUTPUTS,
    Worker,
    collect,
    create_topics,
    publish,
    unique_settings,
)
from lifecycle.backtest import Backtest
from lifecycle.playbook import default_playbook
from schemas.codec import dumps
from streams.broker import LocalBroker, find_free_port
from streams.collector import collect_garbage_rarely
from streams.producer import partitioner

RESULTS = Path(__file__).with_name("RESULTS.md")
SECTION = "## Replay: backtest vs worker"
HEADER = (
    "| date | commit | machine | events | partitions | backtest events/s "
    "| worker events/s (excl. start-up) | worker start-up s | outputs equal |\n"
    "|---|---|---|---|---|---|---|---|---|\n"
)


def _seconds_until_ready(log: Path, started: float) -> float:
    """Start-up as seen from outside: until the worker logs that it is ready."""
    deadline = started + 120
    while time.monotonic() < deadline:
        if "Ready" in log.read_text(errors="replace"):
            return time.monotonic() - started
        time.sleep(0.1)
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--partitions", type=int, default=4)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-replay-"))
    broker = LocalBroker(port=find_free_port(), home=tmp / "kafka")
    status = broker.start()
    try:
        settings = unique_settings(status.bootstrap, tmp, partitions=args.partitions)
        create_topics(settings)
        events = list(simulate(args.customers, seed=5))
        publish(settings, events)
        lines = [dumps(e) for e in events]

        collect_garbage_rarely()  # as the worker and `lifecycle backtest` run the collector
        started = time.monotonic()
        runner = Backtest(default_playbook(), partitioner(settings.partitions))
        expected = sum(1 for _ in runner.run(lines))
        backtest_s = time.monotonic() - started

        log = tmp / "worker.log"
        started = time.monotonic()
        worker = Worker(settings, log).start()
        startup_s = _seconds_until_ready(log, started)
        quiet = 2.0
        records = collect(settings, OUTPUTS, expected=expected, timeout=1800, quiet=quiet)
        total_s = time.monotonic() - started - quiet
        worker.stop()
    finally:
        broker.stop()
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    machine = f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}"
    row = (
        f"| {datetime.now(UTC):%Y-%m-%d} | {commit} | {machine} | {len(events)} "
        f"| {args.partitions} | {len(events) / backtest_s:,.0f} "
        f"| {len(events) / (total_s - startup_s):,.0f} | {startup_s:.1f} "
        f"| {'yes' if len(records) == expected else f'NO ({len(records)} vs {expected})'} |\n"
    )
    print(HEADER + row, end="")
    add_row(RESULTS, row, SECTION, HEADER, "`.venv/bin/python -m bench.replay --customers 2000`")


if __name__ == "__main__":
    main()

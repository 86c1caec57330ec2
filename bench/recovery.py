"""A fresh worker's recovery at a size of its own, without the rest of the harness.

    .venv/bin/python -m bench.recovery [--customers 100000] [--repeat 2]

``bench.harness`` measures recovery once, after every contender, at the size of
its whole run. This runs only what a recovery needs, on a local broker of its
own with the harness's initial rebalance delay: the simulated shop published,
one worker applying all of it (which writes the changelogs), an empty worker on
topics of its own (the baseline of time and memory), then ``--repeat`` fresh
workers, each on an empty disk, from process start to ``/ready``. Each row gives
the changelog records its bulk read applied (from its log) and its resident
memory per customer over the empty worker's. Prints one table; the results go
to bench/RESULTS.md by hand.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from analytics.simulation import simulate
from bench.harness import bench_broker, changelog, engine_settings, measure, worker
from bench.measure import end_offsets, rss_bytes, wait_ready
from harness.engine import create_topics, publish, unique_settings
from streams.settings import Settings

BULK = re.compile(r"recovery: (\d+) changelog records read in bulk in ([\d.]+)s")


@dataclass(frozen=True)
class Ready:
    """One worker's start: seconds to ``/ready``, its RSS then, what it read in bulk."""

    seconds: float
    rss: int
    records: int = 0
    bulk_seconds: float = 0.0


def ready(settings: Settings, tmp: Path, name: str) -> Ready:
    """Start a worker of ``settings`` named ``name`` and stop it once it is ready."""
    w = worker(settings, tmp, name)
    w.start()
    try:
        seconds = wait_ready(w.settings.web_port, w.assert_alive)
        assert w.process is not None
        rss = rss_bytes(w.process.pid)
    finally:
        w.stop()
    found = BULK.findall(w.log_text())
    records = sum(int(n) for n, _ in found)
    return Ready(seconds, rss, records, sum(float(s) for _, s in found))


def run(bootstrap: str, customers: int, repeat: int, partitions: int, tmp: Path) -> str:
    base = unique_settings(bootstrap, tmp, partitions=partitions)
    create_topics(base)
    events = list(simulate(customers, seed=11))
    publish(base, events)
    ends = asyncio.run(end_offsets(bootstrap, base.inbound_topics, base.partitions))
    one = engine_settings(base, "engine", tmp)
    measure(bootstrap, one.app_id, ends, [worker(one, tmp, "engine")])
    _, stored = asyncio.run(changelog(one))
    empty_base = unique_settings(bootstrap, tmp, partitions=partitions)
    create_topics(empty_base)
    empty = ready(engine_settings(empty_base, "empty", tmp), tmp, "empty")
    lines = [
        f"{len(events):,} events, {stored:,} customers stored, {partitions} partitions; "
        f"an empty worker ready in {empty.seconds:.2f} s at {empty.rss / 2**20:.1f} MiB",
        "",
        "| run | s to /ready | changelog records read in bulk (s) | RSS MiB "
        "| RSS per customer over the empty worker's |",
        "|---|---|---|---|---|",
    ]
    for n in range(1, repeat + 1):
        r = ready(one, tmp, f"fresh{n}")  # a disk of its own: tmp / name
        per = (r.rss - empty.rss) / max(stored, 1)
        lines.append(
            f"| fresh worker {n} | {r.seconds:.2f} | {r.records:,} ({r.bulk_seconds:.2f}) "
            f"| {r.rss / 2**20:.1f} | {per:,.0f} B |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--broker", default="", help="an existing broker (default: start one)")
    args = parser.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="bench-recovery-"))
    try:
        with bench_broker(args.broker, tmp) as (bootstrap, _):
            table = run(bootstrap, args.customers, args.repeat, args.partitions, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # the broker's log and the stores: hundreds of MB
    print(table)
    return table


if __name__ == "__main__":
    main()

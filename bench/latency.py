"""Event-to-trigger latency of one worker at set rates, on a broker of its own.

    .venv/bin/python -m bench.latency [--rates 100,300,500] [--seconds 30] [--before REV]

``bench.harness`` measures latency once, at half of the rate one worker saturates at
in its own run (72 minutes at its default size). This measures it alone, at the rates
asked, in minutes. For each rate: fresh topics, a fresh worker answering ``/ready``,
``--seconds`` of simulated events published at that rate (the harness's paced
publish), then the milliseconds from each event on the broker to the triggers it
caused on the broker (``bench.harness.timed_latencies``). The row gives p50/p95/p99 and the
maximum over every trigger, then over those of events published after the first
``--settle`` seconds: what a worker's start costs shows as the difference.

``--before REV`` also measures revision REV's worker (its tree exported with ``git
archive``; this checkout's publisher and measurement), the two taking turns at each
rate on the same broker. Rows go to bench/RESULTS.md, section "Latency at set rates".
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from bench.core import commit_of, export
from bench.harness import REBALANCE_DELAY_MS, machine, paced_run, percentile, timed_latencies
from bench.results import add_row
from harness.engine import ROOT
from streams.broker import LocalBroker, find_free_port

__all__ = ["Measured", "measure", "row"]

RESULTS = Path(__file__).with_name("RESULTS.md")
SECTION = "## Latency at set rates"
HEADER = (
    "| date | commit | machine | events | rate asked | rate held | triggers "
    "| p50/p95/p99/max ms | after the first seconds: p50/p95/p99/max ms |\n"
    "|---|---|---|---|---|---|---|---|---|\n"
)


class Measured:
    """One worker's latencies at one rate: every trigger's, and those after ``settle`` s."""

    def __init__(self, rate: float, held: float, found: list[tuple[float, float]], settle: float):
        self.rate = rate
        self.held = held
        self.all = [ms for _, ms in found]
        first = min((at for at, _ in found), default=0.0)
        self.settled = [ms for at, ms in found if at - first >= settle * 1000]

    @staticmethod
    def cells(values: list[float]) -> str:
        if not values:
            return "none"
        quantiles = [percentile(values, q) for q in (0.5, 0.95, 0.99)]
        return "/".join(f"{v:,.0f}" for v in [*quantiles, max(values)])


def measure(
    bootstrap: str, tmp: Path, rate: float, seconds: float, settle: float, root: Path, run: str
) -> Measured:
    """A fresh worker of the checkout ``root`` on fresh topics, ``seconds`` at ``rate``."""
    done = paced_run(bootstrap, tmp, 6, rate, max(50, int(rate * seconds)), 12, run, root)
    return Measured(rate, done.held, asyncio.run(timed_latencies(done.settings)), settle)


def row(commit: str, events: int, measured: Measured, settle: float) -> str:
    return (
        f"| {datetime.now(UTC):%Y-%m-%d %H:%M} | {commit} | {machine()} | {events:,} "
        f"| {measured.rate:,.0f} | {measured.held:,.0f} | {len(measured.all):,} "
        f"| {Measured.cells(measured.all)} "
        f"| {Measured.cells(measured.settled)} (after {settle:g} s) |\n"
    )


def _rates(text: str) -> list[float]:
    return [float(rate) for rate in text.split(",")]


COMMAND = "`.venv/bin/python -m bench.latency`"


def main(argv: list[str] | None = None) -> list[str]:
    """Measure, add each row to ``--results``; the rows, in the order measured."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", type=_rates, default=[100.0, 300.0, 500.0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument(
        "--settle", type=float, default=2.0, help="seconds left out of the second figure"
    )
    parser.add_argument("--before", default=None, help="a revision to measure too, taking turns")
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-latency-") as d:
        tmp = Path(d)
        checkouts = [(commit_of(ROOT), ROOT)]
        if args.before:
            (tmp / "before").mkdir()
            checkouts.insert(0, (export(args.before, tmp / "before"), tmp / "before"))
        broker = LocalBroker(
            port=find_free_port(), home=tmp / "kafka", initial_rebalance_delay_ms=REBALANCE_DELAY_MS
        )
        bootstrap = broker.start().bootstrap
        try:
            for n, rate in enumerate(args.rates):
                for turn, (commit, root) in enumerate(checkouts):
                    run = f"latency-{n}-{turn}"
                    measured = measure(bootstrap, tmp, rate, args.seconds, args.settle, root, run)
                    line = row(commit, int(rate * args.seconds), measured, args.settle)
                    print(line, end="", flush=True)
                    add_row(args.results, line, SECTION, HEADER, COMMAND)
                    rows.append(line)
        finally:
            broker.stop()
    return rows


if __name__ == "__main__":
    main()

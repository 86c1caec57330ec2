"""The pure core alone: events/s of the backtest, and a digest that proves a change kept it exact.

    .venv/bin/python -m bench.core [--customers 5000] [--seeds 11,12,13] [--repeat 3]
    .venv/bin/python -m bench.core --customers 3000 --profile 30
    .venv/bin/python -m bench.core --customers 15000 --codec

Builds the input as ``bench.harness`` does (simulated customers, one JSON
line per event, the Kafka partitioner of ``--partitions``) and times
what ``bench.harness.backtest_digest`` times: ``Backtest.run`` plus encoding
every output. No broker. The harness's input has no duplicates and no bad
lines, so ``--duplicates`` and ``--bad-every`` add some for the digest to
cover the dedup and dead-letter paths too (they change the input, so
compare rates only between runs with the same flags).

``--codec`` also times what a worker pays on top of the core for each record
it reads from its table and writes back, which the backtest never does: one
decode and one encode of each final customer record (its last, about the largest).
The decode is ``decode_record``'s, the engine's read of its own records; the
full validation it skips (``model_validate_json``) is timed beside it.

Per seed it prints events/s (best of ``--repeat``) and one digest over every
output in emitted order (transitions, triggers, attribution records, dead
letters), the summary, and every final customer record: a speed-up must
leave all of them byte for byte as they were.
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import pstats
import time

from analytics.simulation import simulate
from lifecycle.backtest import Backtest, LineRejected, Output
from lifecycle.playbook import default_playbook
from lifecycle.state import CustomerState, decode_record
from schemas.codec import dumps, encode_model
from streams.producer import partitioner

__all__ = ["build_lines", "main", "record_round_trip", "run_once"]


def build_lines(customers: int, seed: int, duplicates: float, bad_every: int) -> list[bytes]:
    """The harness's input (``dumps`` of each simulated event), plus optional noise."""
    lines = [dumps(e) for e in simulate(customers, seed=seed, duplicate_rate=duplicates)]
    if bad_every:
        bad = [b"{", b"[]", b'{"type": "nope"}', b'{"type": "purchase", "event_id": "x"}']
        for n, i in enumerate(range(bad_every, len(lines), bad_every)):
            lines.insert(i, bad[n % len(bad)])
    return lines


def run_once(lines: list[bytes], partitions: int) -> tuple[float, str, list[CustomerState]]:
    """Seconds for one backtest over ``lines`` (outputs encoded, as the harness does),
    the digest of its outputs, summary and final states, and those states."""
    runner = Backtest(default_playbook(), partitioner(partitions))
    started = time.perf_counter()
    rows: list[bytes] = []
    for item in runner.run(lines):
        if isinstance(item, Output):
            rows.append(f"{item.topic}\t{item.key}\t".encode() + encode_model(item.value))
        else:
            rows.append(_rejected(item))
    seconds = time.perf_counter() - started
    h = hashlib.blake2b(digest_size=16)
    for row in rows:
        h.update(row + b"\n")
    h.update(dumps(runner.summary.as_dict()) + b"\n")
    for key in sorted(runner.states):
        h.update(key.encode() + b"\t" + encode_model(runner.states[key]) + b"\n")
    return seconds, h.hexdigest(), list(runner.states.values())


def record_round_trip(states: list[CustomerState]) -> tuple[int, float, float, float, float]:
    """(records, mean bytes, decode us, validating decode us, encode us) of ``states``:
    a worker's table read and write of one record, and the read it no longer does."""
    started = time.perf_counter()
    encoded = [encode_model(state) for state in states]
    encode = time.perf_counter() - started
    started = time.perf_counter()
    for raw in encoded:
        decode_record(raw)
    decode = time.perf_counter() - started
    started = time.perf_counter()
    for raw in encoded:
        CustomerState.model_validate_json(raw)
    validate = time.perf_counter() - started
    n = len(states)
    us = 1e6 / n
    return n, sum(map(len, encoded)) / n, decode * us, validate * us, encode * us


def _rejected(item: LineRejected) -> bytes:
    rejection = item.rejection
    return f"rejected\t{item.line}\t{rejection.reason.value}\t{rejection.message}".encode()


def _best(runs: int, lines: list[bytes], partitions: int) -> tuple[float, str, list[CustomerState]]:
    """The fastest of ``runs`` runs, and the final states of the last; all of them
    must agree on the digest."""
    times: list[float] = []
    digests: set[str] = set()
    states: list[CustomerState] = []
    for _ in range(runs):
        states = []  # the last run's only: a run timed beside an older one's would pay its GC
        seconds, digest, states = run_once(lines, partitions)
        times.append(seconds)
        digests.add(digest)
    assert len(digests) == 1, f"the core is not deterministic: {digests}"
    return min(times), digests.pop(), states


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--customers", type=int, default=5000)
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--seeds", type=lambda s: [int(x) for x in s.split(",")], default=[11])
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per seed; best counts")
    parser.add_argument("--duplicates", type=float, default=0.0, help="redelivery rate")
    parser.add_argument("--bad-every", type=int, default=0, help="a bad line every N lines")
    parser.add_argument("--profile", type=int, default=0, help="cProfile: print the top N")
    parser.add_argument(
        "--codec", action="store_true", help="also time a record's decode and encode"
    )
    args = parser.parse_args(argv)
    for seed in args.seeds:
        lines = build_lines(args.customers, seed, args.duplicates, args.bad_every)
        if args.profile:
            profiler = cProfile.Profile()
            profiler.enable()
            run_once(lines, args.partitions)
            profiler.disable()
            stats = pstats.Stats(profiler).strip_dirs().sort_stats("tottime")
            stats.print_stats(args.profile)
            stats.sort_stats("cumulative").print_stats(args.profile)
            continue
        seconds, digest, states = _best(args.repeat, lines, args.partitions)
        print(
            f"seed {seed}: {len(lines):,} lines, {len(lines) / seconds:,.0f} events/s "
            f"({seconds * 1e6 / len(lines):.1f} us/event), digest {digest}",
            flush=True,
        )
        if args.codec:
            n, size, decode, validate, encode = record_round_trip(states)
            print(
                f"seed {seed}: {n:,} final records, {size:,.0f} B each on average: "
                f"decode {decode:.1f} us (validating: {validate:.1f} us), encode {encode:.1f} us",
                flush=True,
            )


if __name__ == "__main__":
    main()

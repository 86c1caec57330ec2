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

``--playbook FILE`` runs the core under a shop's playbook instead of the
default one, and ``--extras`` adds the simulator's extras to the input
(traits on signup, properties on carts and purchases, ``wishlist_add`` custom
events), which a shop's own flows read. ``--compare default,FILE,...`` is the
per-event cost of flows:

    .venv/bin/python -m bench.core --customers 15000 \
        --compare default,bench/playbooks/flows50.yaml,bench/playbooks/untriggered50.yaml \
        --before 0150951

It runs the first playbook over the plain input (the figure earlier rows of
bench/RESULTS.md and ``--before`` give), then every playbook over the input
with extras, each run a process of its own (``--run-one``) and the playbooks
taking turns so that a busy machine slows them alike, and prints a table:
µs per event (wall clock, and the process's CPU time, which
other processes on a busy machine move less), the ratio to the first playbook
on the same input, the triggers and timers, µs per cause (an event or a timer
fired: flows with waits fire more timers, and each is a step of the core),
and how many of the playbook's own flows entered a run and sent (flows that
never run measure nothing). ``--before REV`` also runs ``bench.core`` of revision REV of this
repository (the code before flows; exported with ``git archive``, or a
checkout's directory) on the plain input, once before and once after the
comparison, noting its CPU time as well.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import hashlib
import io
import os
import pstats
import re
import subprocess
import sys
import tarfile
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from analytics.simulation import simulate
from lifecycle.backtest import Backtest, LineRejected, Output
from lifecycle.clv import forget_repeats
from lifecycle.playbook import Playbook, default_playbook, load_playbook
from lifecycle.state import CustomerState, decode_record
from schemas.codec import dumps, encode_model, loads
from streams.collector import collect_garbage_rarely
from streams.producer import partitioner

__all__ = [
    "Row",
    "Run",
    "before_figure",
    "build_lines",
    "commit_of",
    "compare",
    "export",
    "load",
    "main",
    "record_round_trip",
    "run_measured",
    "run_once",
    "table",
]

DEFAULT = "default"
"""How ``--playbook`` and ``--compare`` name the built-in default playbook."""


def load(spec: str) -> Playbook:
    """The playbook ``spec`` names: ``default``, or a YAML file."""
    return default_playbook() if spec == DEFAULT else load_playbook(Path(spec))


def build_lines(
    customers: int, seed: int, duplicates: float, bad_every: int, extras: bool = False
) -> list[bytes]:
    """The harness's input (``dumps`` of each simulated event), plus optional noise;
    with ``extras``, the traits, properties and custom events a shop's flows read."""
    events = simulate(customers, seed=seed, duplicate_rate=duplicates, extras=extras)
    lines = [dumps(e) for e in events]
    if bad_every:
        bad = [b"{", b"[]", b'{"type": "nope"}', b'{"type": "purchase", "event_id": "x"}']
        for n, i in enumerate(range(bad_every, len(lines), bad_every)):
            lines.insert(i, bad[n % len(bad)])
    return lines


@dataclass
class Run:
    """One timed backtest: its seconds, its digest, the final records, triggers per flow."""

    seconds: float
    digest: str
    states: list[CustomerState]
    triggers: Counter[str]
    """Trigger records per flow, held-out ones included (counted after the clock stops)."""
    cpu: float = 0.0
    """The process's CPU seconds over the same stretch: less moved by other processes."""
    timers_fired: int = 0
    entered: Counter[str] | None = None
    """Runs entered per flow, from the summary's flow counts (None: it has none)."""


def run_measured(lines: list[bytes], partitions: int, playbook: Playbook | None = None) -> Run:
    """One backtest over ``lines`` under ``playbook`` (the default when None), timed as
    the harness times it: ``Backtest.run`` plus encoding every output, with the cycle
    collector run as a worker and ``lifecycle backtest`` run it."""
    collect_garbage_rarely()
    runner = Backtest(default_playbook() if playbook is None else playbook, partitioner(partitions))
    cpu = time.process_time()
    started = time.perf_counter()
    rows: list[bytes] = []
    for item in runner.run(lines):
        if isinstance(item, Output):
            rows.append(f"{item.topic}\t{item.key}\t".encode() + encode_model(item.value))
        else:
            rows.append(_rejected(item))
    seconds = time.perf_counter() - started
    cpu = time.process_time() - cpu
    h = hashlib.blake2b(digest_size=16)
    triggers: Counter[str] = Counter()
    for row in rows:
        h.update(row + b"\n")
        if row.startswith(b"triggers\t"):
            triggers[loads(row.split(b"\t", 2)[2])["flow"]] += 1
    summary = runner.summary.as_dict()
    h.update(dumps(summary) + b"\n")
    for key in sorted(runner.states):
        h.update(key.encode() + b"\t" + encode_model(runner.states[key]) + b"\n")
    states = list(runner.states.values())
    flows = summary.get("flows")
    entered = (
        Counter({name: int(figures.get("entered", 0)) for name, figures in flows.items()})
        if isinstance(flows, dict)
        else None
    )
    return Run(seconds, h.hexdigest(), states, triggers, cpu, runner.summary.timers_fired, entered)


def run_once(
    lines: list[bytes], partitions: int, playbook: Playbook | None = None
) -> tuple[float, str, list[CustomerState]]:
    """Seconds for one backtest over ``lines`` (outputs encoded, as the harness does),
    the digest of its outputs, summary and final states, and those states."""
    run = run_measured(lines, partitions, playbook)
    return run.seconds, run.digest, run.states


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


def _best(
    runs: int, lines: list[bytes], partitions: int, playbook: Playbook | None = None
) -> tuple[float, str, list[CustomerState]]:
    """The fastest of ``runs`` runs, and the final states of the last; all of them
    must agree on the digest."""
    times: list[float] = []
    digests: set[str] = set()
    states: list[CustomerState] = []
    for _ in range(runs):
        states = []  # the last run's only: a run timed beside an older one's would pay its GC
        forget_repeats()
        seconds, digest, states = run_once(lines, partitions, playbook)
        times.append(seconds)
        digests.add(digest)
    assert len(digests) == 1, f"the core is not deterministic: {digests}"
    return min(times), digests.pop(), states


@dataclass
class Row:
    """One line of the comparison: a playbook over one input, best of its runs."""

    playbook: str
    extras: bool
    lines: int
    seconds: float
    digest: str
    triggers: Counter[str]
    own_flows: tuple[str, ...]
    """The flows this playbook adds to or changes in the default playbook."""
    cpu: float = 0.0
    """The least CPU seconds of its runs (not necessarily the fastest run's)."""
    timers_fired: int = 0
    entered: Counter[str] | None = None

    @property
    def us_per_event(self) -> float:
        return self.seconds * 1e6 / self.lines

    @property
    def us_per_cause(self) -> float:
        """Per event or timer fired: the cost of one step, apart from how many there are."""
        return self.seconds * 1e6 / (self.lines + self.timers_fired)

    @property
    def cpu_us_per_event(self) -> float:
        return self.cpu * 1e6 / self.lines

    def own_sending(self) -> int:
        return sum(1 for flow in self.own_flows if self.triggers[flow])

    def own_entered(self) -> int | None:
        if self.entered is None:
            return None
        return sum(1 for flow in self.own_flows if self.entered[flow])


def _own_flows(book: Playbook, default: Playbook) -> tuple[str, ...]:
    return tuple(name for name, flow in book.flows.items() if default.flows.get(name) != flow)


WARM_UP = 2000
"""Lines each playbook runs untimed before its timed run (caches, lazy imports)."""


def run_alone(spec: str, lines_file: Path, partitions: int) -> Run:
    """One timed run of ``spec`` over the lines of ``lines_file`` in a new process
    (``python -m bench.core --run-one``), after its untimed warm-up there."""
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": str(root), "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run(  # our own interpreter and module, arguments built here
        [
            *(sys.executable, "-m", "bench.core", "--run-one", spec),
            *("--lines", str(lines_file), "--partitions", str(partitions)),
        ],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    found = loads(done.stdout.strip().splitlines()[-1])
    entered = found["entered"]
    return Run(
        seconds=found["seconds"],
        digest=found["digest"],
        states=[],
        triggers=Counter(found["triggers"]),
        cpu=found["cpu"],
        timers_fired=found["timers_fired"],
        entered=None if entered is None else Counter(entered),
    )


def _run_one(spec: str, lines_file: Path, partitions: int) -> None:
    """``--run-one``: the child of ``run_alone``; prints its run as one JSON line."""
    lines = lines_file.read_bytes().splitlines()
    book = load(spec)
    run_measured(lines[:WARM_UP], partitions, book)
    gc.collect()
    forget_repeats()  # the warm-up's answers are not the timed run's to find
    run = run_measured(lines, partitions, book)
    figures = {
        "seconds": run.seconds,
        "cpu": run.cpu,
        "digest": run.digest,
        "triggers": dict(run.triggers),
        "timers_fired": run.timers_fired,
        "entered": None if run.entered is None else dict(run.entered),
    }
    print(dumps(figures).decode(), flush=True)


def compare(
    specs: list[str],
    inputs: dict[bool, list[bytes]],
    partitions: int,
    repeat: int,
    progress: bool = True,
) -> list[Row]:
    """The first playbook over the plain input, then each over the input with extras.

    Runs take turns (every row's first run, then every row's second...), so a
    machine that gets busier halfway slows every row alike, and each row keeps
    its fastest run. A row's runs must agree on the digest. Each run is a process
    of its own (``run_alone``): in one process a run pays for the heap and the
    caches the runs before it left (15,000 customers: flows50 3.45x the default
    there, 2.8x each alone), so the order of the playbooks would decide part of
    their ratio."""
    default = default_playbook()
    books = {spec: load(spec) for spec in specs}
    plan = [(specs[0], False)] + [(spec, True) for spec in specs]
    times: dict[tuple[str, bool], list[float]] = {key: [] for key in plan}
    cpus: dict[tuple[str, bool], list[float]] = {key: [] for key in plan}
    fired: dict[tuple[str, bool], int] = {}
    entered: dict[tuple[str, bool], Counter[str] | None] = {}
    digests: dict[tuple[str, bool], set[str]] = {key: set() for key in plan}
    triggers: dict[tuple[str, bool], Counter[str]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-compare-") as scratch:
        files = {}
        for extras, lines in inputs.items():
            files[extras] = Path(scratch) / f"{'extras' if extras else 'plain'}.jsonl"
            files[extras].write_bytes(b"".join(line + b"\n" for line in lines))
        for turn in range(repeat):
            for spec, extras in plan:
                run = run_alone(spec, files[extras], partitions)
                times[(spec, extras)].append(run.seconds)
                cpus[(spec, extras)].append(run.cpu)
                fired[(spec, extras)] = run.timers_fired
                entered[(spec, extras)] = run.entered
                digests[(spec, extras)].add(run.digest)
                triggers[(spec, extras)] = run.triggers
                if progress:
                    label = "extras" if extras else "plain"
                    print(
                        f"  run {turn + 1}/{repeat}: {spec} ({label})", file=sys.stderr, flush=True
                    )
    rows = []
    for spec, extras in plan:
        found = digests[(spec, extras)]
        assert len(found) == 1, f"the core is not deterministic under {spec}: {found}"
        rows.append(
            Row(
                playbook=spec,
                extras=extras,
                lines=len(inputs[extras]),
                seconds=min(times[(spec, extras)]),
                digest=found.pop(),
                triggers=triggers[(spec, extras)],
                own_flows=_own_flows(books[spec], default),
                cpu=min(cpus[(spec, extras)]),
                timers_fired=fired[(spec, extras)],
                entered=entered[(spec, extras)],
            )
        )
    return rows


_FIGURE = re.compile(
    r"^seed (?P<seed>\d+): (?P<lines>[\d,]+) lines, [\d,]+ events/s "
    r"\((?P<us>[\d.]+) us/event\), digest (?P<digest>[0-9a-f]+)$",
    re.MULTILINE,
)


@dataclass(frozen=True)
class Before:
    """``bench.core`` of another checkout, on the plain input: what the code before did."""

    commit: str
    lines: int
    us_per_event: float
    digest: str
    cpu_us_per_event: float | None = None
    """From the CPU time of its fastest run by that clock; None when it could not be read."""


def commit_of(checkout: Path) -> str:
    """The short commit of a checkout, ``+`` when it has changes; ``?`` outside git."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(checkout), *args], capture_output=True, text=True, check=False
        ).stdout.strip()

    commit = git("rev-parse", "--short", "HEAD")
    if not commit:
        return "?"
    return commit + ("+" if git("status", "--porcelain", "--untracked-files=no") else "")


def export(revision: str, into: Path) -> str:
    """Write the tree of ``revision`` of this repository into ``into`` (``git archive``, so
    no checkout or worktree changes); its short commit."""
    repo = Path(__file__).resolve().parent.parent
    commit = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "--short", "--verify", f"{revision}^{{commit}}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    archive = subprocess.run(
        ["git", "-C", str(repo), "archive", "--format=tar", commit],
        capture_output=True,
        check=True,
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return commit


_CHILD = """
import atexit, runpy, sys, time

marks = []
wall = time.perf_counter


def clock():
    marks.append(time.process_time())
    return wall()


def report():
    spans = [end - start for start, end in zip(marks[::2], marks[1::2], strict=False)]
    print("cpu seconds of each timed run: " + " ".join(f"{s:.6f}" for s in spans), flush=True)


time.perf_counter = clock
atexit.register(report)
sys.argv[0] = "bench.core"
runpy.run_module("bench.core", run_name="__main__", alter_sys=True)
"""
"""Runs another checkout's ``bench.core`` unchanged, and notes the process's CPU time at
each reading of its clock: a timed run reads it twice (start, end), so its CPU time is the
difference between the two notes of a pair."""

_CPU = re.compile(r"^cpu seconds of each timed run: (?P<spans>[\d. ]*)$", re.MULTILINE)


def before_figure(checkout: Path, argv: list[str], commit: str | None = None) -> Before:
    """Run ``python -m bench.core ARGV`` in ``checkout`` (its code, this interpreter)."""
    env = {**os.environ, "PYTHONPATH": str(checkout), "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run(  # our own interpreter and module, arguments built here
        [sys.executable, "-c", _CHILD, *argv],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    match = _FIGURE.search(done.stdout)
    if match is None:
        msg = f"no figure in the output of bench.core in {checkout}: {done.stdout!r}"
        raise ValueError(msg)
    lines = int(match["lines"].replace(",", ""))
    cpu = _CPU.search(done.stdout)
    spans = [float(x) for x in cpu["spans"].split()] if cpu is not None else []
    return Before(
        commit=commit or commit_of(checkout),
        lines=lines,
        us_per_event=float(match["us"]),
        digest=match["digest"],
        cpu_us_per_event=min(spans) * 1e6 / lines if spans else None,
    )


def table(rows: list[Row], before: list[Before], commit: str = "this") -> list[str]:
    """The comparison as a Markdown table, ready for bench/RESULTS.md."""
    out = [
        "| code | playbook | input | events | µs/event | events/s | x first playbook, same input"
        " | CPU µs/event (x first) | triggers | timers fired | µs per cause (x first)"
        " | its own flows that entered / sent | digest |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for n, figure in enumerate(before):
        when = "before" if n == 0 else "after"
        cpu = "" if figure.cpu_us_per_event is None else f"{figure.cpu_us_per_event:.1f}"
        out.append(
            f"| {figure.commit} (run {when} the others) | {DEFAULT} | plain | {figure.lines:,} "
            f"| {figure.us_per_event:.1f} | {1e6 / figure.us_per_event:,.0f} | | {cpu} "
            f"| | | | | {figure.digest} |"
        )
    reference = {row.extras: row for row in rows if row.playbook == rows[0].playbook}
    for row in rows:
        base = reference[row.extras]
        n_entered = row.own_entered()
        own = (
            f"{'?' if n_entered is None else n_entered} / {row.own_sending()} "
            f"of {len(row.own_flows)}"
            if row.own_flows
            else "-"
        )
        out.append(
            f"| {commit} | {Path(row.playbook).stem} | {'extras' if row.extras else 'plain'} "
            f"| {row.lines:,} | {row.us_per_event:.1f} | {row.lines / row.seconds:,.0f} "
            f"| {row.us_per_event / base.us_per_event:.2f}x "
            f"| {row.cpu_us_per_event:.1f} ({row.cpu / base.cpu:.2f}x) "
            f"| {sum(row.triggers.values()):,} | {row.timers_fired:,} "
            f"| {row.us_per_cause:.1f} ({row.us_per_cause / base.us_per_cause:.2f}x) "
            f"| {own} | {row.digest} |"
        )
    if before:
        plain = reference[False]
        best = min(figure.us_per_event for figure in before)
        out.append("")
        text = (
            f"{rows[0].playbook} on the plain input: {plain.us_per_event:.1f} µs/event against "
            f"{best:.1f} before ({plain.us_per_event / best:.2f}x; the faster of the runs "
            f"of {before[0].commit})"
        )
        cpus = [f.cpu_us_per_event for f in before if f.cpu_us_per_event is not None]
        if cpus:
            text += (
                f"; by CPU time {plain.cpu_us_per_event:.1f} against {min(cpus):.1f} "
                f"({plain.cpu_us_per_event / min(cpus):.2f}x)"
            )
        out.append(text + ".")
        if any(figure.lines != plain.lines for figure in before):
            out.append("WARNING: the code before read a different number of lines.")
    return out


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
    parser.add_argument(
        "--playbook", default=DEFAULT, help="a playbook YAML file (default: the built-in one)"
    )
    parser.add_argument(
        "--extras",
        action="store_true",
        help="input with the simulator's traits, properties and custom events",
    )
    parser.add_argument(
        "--compare",
        type=lambda s: s.split(","),
        default=None,
        help="playbooks (default or files, comma-separated) to time over the same input",
    )
    parser.add_argument(
        "--before",
        default=None,
        help="with --compare: a checkout, or a revision of this repository, whose "
        "bench.core to run before and after",
    )
    parser.add_argument(
        "--run-one",
        default=None,
        metavar="PLAYBOOK",
        help="with --lines: one timed run in this process, printed as JSON (--compare's child)",
    )
    parser.add_argument("--lines", type=Path, default=None, help="with --run-one: its input")
    args = parser.parse_args(argv)
    if args.run_one:
        if args.lines is None:
            parser.error("--run-one needs --lines")
        _run_one(args.run_one, args.lines, args.partitions)
        return
    if args.compare:
        _compare(args)
        return
    book = load(args.playbook)
    if args.playbook != DEFAULT and not args.extras:
        print(
            "note: without --extras the input has no traits, properties or custom events,"
            " so flows that read them never start",
            file=sys.stderr,
        )
    label = "" if args.playbook == DEFAULT else f" ({args.playbook})"
    label += " (extras)" if args.extras else ""
    for seed in args.seeds:
        lines = build_lines(args.customers, seed, args.duplicates, args.bad_every, args.extras)
        if args.profile:
            profiler = cProfile.Profile()
            profiler.enable()
            run_once(lines, args.partitions, book)
            profiler.disable()
            stats = pstats.Stats(profiler).strip_dirs().sort_stats("tottime")
            stats.print_stats(args.profile)
            stats.sort_stats("cumulative").print_stats(args.profile)
            continue
        seconds, digest, states = _best(args.repeat, lines, args.partitions, book)
        print(
            f"seed {seed}{label}: {len(lines):,} lines, {len(lines) / seconds:,.0f} events/s "
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


def _before_checkout(given: str | None, scratch: Path) -> tuple[Path | None, str | None]:
    """``--before``'s code: a directory as it is, or a revision exported into ``scratch``."""
    if given is None:
        return None, None
    if Path(given).is_dir():
        return Path(given), None
    return scratch, export(given, scratch)


def _compare(args: argparse.Namespace) -> None:
    for seed in args.seeds:
        inputs = {
            extras: build_lines(args.customers, seed, args.duplicates, args.bad_every, extras)
            for extras in (False, True)
        }
        before_argv = [
            *("--customers", str(args.customers), "--partitions", str(args.partitions)),
            *("--seeds", str(seed), "--repeat", str(args.repeat)),
        ]
        if args.duplicates:
            before_argv += ["--duplicates", str(args.duplicates)]
        if args.bad_every:
            before_argv += ["--bad-every", str(args.bad_every)]
        with tempfile.TemporaryDirectory(prefix="bench-before-") as scratch:
            checkout, commit = _before_checkout(args.before, Path(scratch))
            before = [before_figure(checkout, before_argv, commit)] if checkout else []
            rows = compare(args.compare, inputs, args.partitions, args.repeat)
            if checkout:
                before.append(before_figure(checkout, before_argv, commit))
        print(
            f"seed {seed}, {args.customers:,} customers, {args.partitions} partitions, best of "
            f"{args.repeat} runs each, taken in turns. plain: the simulator's events as "
            f"bench.core has always read them; extras: the same customers with traits on "
            f"signup, properties on carts and purchases and wishlist_add custom events "
            f"(what the flows read). Ratios are to {args.compare[0]} on the same input.",
            flush=True,
        )
        for line in table(rows, before, commit_of(Path(__file__).resolve().parent.parent)):
            print(line, flush=True)


if __name__ == "__main__":
    main()

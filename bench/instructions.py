"""Instructions per event of the pure core, counted by valgrind: a figure that the
machine's load does not move.

    .venv/bin/python -m bench.instructions [--customers 300] \
        [--compare default,bench/playbooks/flows50.yaml] [--before REV] [--record]

Timed on this kind of machine, the same code's CPU time per event moves by a
third from run to run (other tenants share the host), so a change worth a few
per cent cannot be told from noise by timing, however often the runs take turns.
Valgrind's cachegrind counts the instructions a process executes instead: the same
count for the same code, input and hash seed (``PYTHONHASHSEED=0``), to about one
in 10,000, whatever else the machine runs. An instruction is not a second (a cache
miss costs more than an add), so this is the figure to compare two versions of the
code by, and the timed benchmarks (``bench.core``, ``bench.harness``) stay the
figures of speed.

Each count runs, in a process of its own, what ``bench.core`` times
(``Backtest.run`` over the input's lines plus encoding every output), under each
playbook of ``--compare`` over the same input, with the simulator's extras
(traits, properties and custom events, which shops' flows read). A second run
over the input's first line alone is subtracted, so start-up, imports and the
playbook's compiling cancel out (every tree's modules are compiled to bytecode
first, so none is compiled in one run and not the other): what is left is the
instructions of every event but that first one, and their causes (timers,
merges). ``--before REV`` counts every playbook again under revision REV of this
repository (exported with ``git archive``, or a checkout's directory), for the
ratio of a change (a revision from before flows reads only ``--compare
default``). Two counts run at a time, one per core; each costs about fifty times
the run's time without valgrind.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bench.core import DEFAULT, build_lines, commit_of, export
from bench.results import add_row

__all__ = ["Count", "compiled", "count", "main", "per_event", "row"]

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "RESULTS.md"
SECTION = "## Instructions per event of the pure core (bench.instructions)"
HEADER = (
    "| date | code | playbook | customers | events | million instructions per event "
    "| x first playbook | x this code |\n"
    "|---|---|---|---|---|---|---|---|\n"
)

_CHILD = """
import sys
from pathlib import Path

from lifecycle.backtest import Backtest
from lifecycle.playbook import default_playbook, load_playbook
from schemas.codec import encode_model
from streams.producer import partitioner

spec, path, partitions = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
lines = path.read_bytes().splitlines()
book = default_playbook() if spec == "default" else load_playbook(Path(spec))
for item in Backtest(book, partitioner(partitions)).run(lines):
    value = getattr(item, "value", None)
    if value is not None:
        encode_model(value)
"""
"""What ``bench.core`` times, with only the interfaces every revision since the backtest
has: so ``--before`` can count an older checkout with its own code."""

_REFS = re.compile(r"I\s+refs:\s+(?P<n>[\d,]+)")


def count(code: Path, spec: str, lines: Path, partitions: int) -> int:
    """Instructions of one process running ``_CHILD`` on ``code``'s modules."""
    env = {**os.environ, "PYTHONPATH": str(code), "PYTHONHASHSEED": "0"}
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        msg = "bench.instructions needs valgrind (Debian: apt install valgrind)"
        raise SystemExit(msg)
    done = subprocess.run(  # our own interpreter and program, arguments built here
        [
            *(valgrind, "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null"),
            *(sys.executable, "-c", _CHILD, spec, str(lines), str(partitions)),
        ],
        cwd=code,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    found = _REFS.search(done.stderr)
    if done.returncode != 0 or found is None:
        tail = done.stderr.strip().splitlines()[-5:]
        msg = f"counting {spec} on {code} failed ({done.returncode}): " + " | ".join(tail)
        raise RuntimeError(msg)
    return int(found["n"].replace(",", ""))


@dataclass(frozen=True)
class Count:
    """One playbook's count under one version of the code."""

    code: str
    playbook: str
    events: int
    """The lines counted: all but the first."""
    instructions: int

    @property
    def per_event(self) -> float:
        return self.instructions / self.events


def per_event(full: int, first: int, lines: int) -> tuple[int, int]:
    """(instructions, events) of every line but the first: the run over all ``lines``
    less the run over the first line alone."""
    if lines < 2:
        msg = "an input of at least two lines is needed"
        raise ValueError(msg)
    return full - first, lines - 1


def compiled(code: Path) -> None:
    """Compile ``code``'s modules to bytecode first. A module the core imports only when an
    event needs it would otherwise be compiled inside the run over the whole input and not
    in the run over its first line, and count as the events' own instructions (a tree
    exported without its ``__pycache__`` read more per event than its checkout)."""
    packages = [str(code / name) for name in _PACKAGES if (code / name).is_dir()]
    subprocess.run(  # our own interpreter, paths of the tree being counted
        [sys.executable, "-m", "compileall", "-q", *packages], cwd=code, check=True
    )


_PACKAGES = ("analytics", "bench", "lifecycle", "schemas", "streams")


def _measure(
    jobs: list[tuple[str, Path, str]], files: tuple[Path, Path], lines: int, partitions: int
) -> list[Count]:
    """Each (label, code, playbook) counted over both inputs, two processes at a time."""
    for code in dict.fromkeys(code for _, code, _ in jobs):
        compiled(code)
    full_file, first_file = files
    tasks = [(code, spec, file) for _, code, spec in jobs for file in (full_file, first_file)]
    with ThreadPoolExecutor(max_workers=2) as pool:
        counted = list(pool.map(lambda t: count(t[0], t[1], t[2], partitions), tasks))
    out = []
    for n, (label, _, spec) in enumerate(jobs):
        instructions, events = per_event(counted[2 * n], counted[2 * n + 1], lines)
        out.append(Count(label, spec, events, instructions))
    return out


def row(found: Count, first: Count | None, this: Count | None, customers: int) -> str:
    """A line of the results table: ``found`` against the first playbook's count, or
    (for another version of the code) against this code's count of the same playbook."""
    of_first = "" if first is None else f"{found.per_event / first.per_event:.3f}x"
    of_this = "" if this is None else f"{found.per_event / this.per_event:.3f}x"
    return (
        f"| {datetime.now(UTC):%Y-%m-%d %H:%M} | {found.code} | {Path(found.playbook).stem} "
        f"| {customers:,} | {found.events:,} | {found.per_event / 1e6:.4f} "
        f"| {of_first} | {of_this} |\n"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--customers", type=int, default=300)
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument(
        "--compare",
        default=DEFAULT,
        help="playbooks (default or files, comma-separated); ratios are to the first",
    )
    parser.add_argument(
        "--before",
        help="a revision of this repository, or a checkout, to count the playbooks under too",
    )
    parser.add_argument("--record", action="store_true", help="add the rows to bench/RESULTS.md")
    args = parser.parse_args(argv)
    specs = [s.strip() for s in args.compare.split(",") if s.strip()]
    specs = [s if s == DEFAULT else str(Path(s).resolve()) for s in specs]
    lines = build_lines(args.customers, args.seed, 0.0, 0, extras=True)
    with tempfile.TemporaryDirectory(prefix="bench-instructions-") as scratch:
        full_file = Path(scratch) / "lines.jsonl"
        first_file = Path(scratch) / "first.jsonl"
        full_file.write_bytes(b"".join(line + b"\n" for line in lines))
        first_file.write_bytes(lines[0] + b"\n")
        here = commit_of(ROOT)
        jobs = [(here, ROOT, spec) for spec in specs]
        if args.before:
            given = Path(args.before)
            if given.is_dir():
                label, tree = commit_of(given), given.resolve()
            else:
                tree = Path(scratch) / "before"
                tree.mkdir()
                label = export(args.before, tree)
            jobs += [(label, tree, spec) for spec in specs]
        counts = _measure(jobs, (full_file, first_file), len(lines), args.partitions)
    ours = counts[: len(specs)]
    rows = [row(found, ours[0], None, args.customers) for found in ours]
    rows += [
        row(found, None, mine, args.customers)
        for found, mine in zip(counts[len(specs) :], ours, strict=False)
    ]
    sys.stdout.write(HEADER + "".join(rows))
    if args.record:
        for line in rows:
            add_row(RESULTS, line, SECTION, HEADER, _COMMAND)


_COMMAND = (
    "`.venv/bin/python -m bench.instructions --customers 300 "
    "--compare default,bench/playbooks/flows50.yaml --before REV --record`"
)


if __name__ == "__main__":
    main()

"""bench.soak's fault schedule and its results table: the pure parts of the long run.

The run itself takes minutes and a broker (``python -m bench.soak``); what it
promises about its faults (how many, which worker, when) and about its row in
bench/SOAK.md is checked here, in milliseconds.
"""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import pytest

from bench.soak import COLUMNS, Step, check_table, header, passed, record, schedule


def kills(steps: list[Step]) -> list[Step]:
    return [s for s in steps if s.worker is not None]


def restarts(steps: list[Step]) -> list[Step]:
    return [s for s in steps if s.worker is None]


@pytest.mark.parametrize(
    ("count", "broker", "workers"),
    [(20, 2, 2), (4, 1, 2), (30, 0, 1), (1, 0, 1), (1, 1, 2), (0, 2, 2), (3, 2, 3), (7, 5, 2)],
)
def test_as_many_faults_as_asked_and_one_kill_while_recovering(
    count: int, broker: int, workers: int
) -> None:
    steps = schedule(count, broker, workers, seed=7)
    assert len(kills(steps)) == count
    assert len(restarts(steps)) == broker
    assert sum(s.recovering for s in steps) == min(count, 1)
    assert all(0 <= s.worker < workers for s in kills(steps))  # type: ignore[operator]


def test_the_large_run_alternates_its_twenty_kills_between_two_workers() -> None:
    steps = schedule(20, 2, 2, seed=7)
    hit = [s.worker for s in kills(steps)]
    assert hit.count(0) == hit.count(1) == 10
    recovering = next(n for n, s in enumerate(kills(steps)) if s.recovering)
    assert recovering == 10  # the middle kill, as with one worker
    others = [w for n, w in enumerate(hit) if n != recovering]
    assert all(a != b for a, b in pairwise(others))  # in turn
    assert hit[recovering] == hit[recovering - 1]  # the worker just restarted


def test_the_recovering_kill_directly_follows_the_kill_it_recovers_from() -> None:
    for count, broker in [(20, 2), (4, 1), (2, 1), (3, 2), (10, 9)]:
        steps = schedule(count, broker, 2, seed=1)
        n = next(n for n, s in enumerate(steps) if s.recovering)
        assert steps[n - 1].worker == steps[n].worker
        assert steps[n].at == steps[n - 1].at


def test_the_first_kill_of_a_single_kill_run_hits_the_first_start() -> None:
    assert schedule(1, 0, 2, seed=7) == [Step(0.0, 0, recovering=True)]


def test_broker_restarts_split_the_kills_evenly_and_alternate_clean_and_hard() -> None:
    steps = schedule(20, 2, 2, seed=7)
    kills_before = [sum(1 for s in steps[:n] if s.worker is not None) for n in range(len(steps))]
    assert [kills_before[n] for n, s in enumerate(steps) if s.worker is None] == [7, 13]
    assert [s.hard for s in restarts(steps)] == [False, True]
    assert [s.hard for s in restarts(schedule(6, 4, 2, seed=3))] == [False, True, False, True]


def test_the_faults_are_spread_over_the_publishing_one_per_slot() -> None:
    steps = [s for s in schedule(20, 2, 2, seed=11) if not s.recovering]
    slots = len(steps)
    for n, step in enumerate(steps):
        assert (n + 0.2) / slots <= step.at <= (n + 0.8) / slots
    assert steps[-1].at < 1  # the last one still under load


def test_a_seed_gives_one_schedule() -> None:
    assert schedule(20, 2, 2, seed=7) == schedule(20, 2, 2, seed=7)
    assert schedule(20, 2, 2, seed=7) != schedule(20, 2, 2, seed=8)


def test_one_worker_takes_every_kill() -> None:
    assert {s.worker for s in kills(schedule(30, 0, 1, seed=7))} == {0}


RESULT = dict.fromkeys(COLUMNS, 0)


def test_the_row_has_a_cell_per_column_and_the_command_last(tmp_path: Path) -> None:
    table = tmp_path / "SOAK.md"
    record(RESULT, ".venv/bin/python -m bench.soak --workers 2", table)
    record(RESULT, ".venv/bin/python -m bench.soak", table)
    lines = table.read_text(encoding="utf-8").splitlines()
    assert header() in lines
    rows = [line for line in lines if line.startswith("| 0 |")]
    assert len(rows) == 2
    assert rows[0].endswith("| `.venv/bin/python -m bench.soak --workers 2` |")
    assert all(row.count(" | ") == header().count(" | ") for row in rows)
    check_table(table)


def test_a_table_with_other_columns_stops_the_run_before_it_starts(tmp_path: Path) -> None:
    table = tmp_path / "SOAK.md"
    table.write_text("| date | commit | customers | command |\n|---|---|---|---|\n")
    with pytest.raises(SystemExit, match="other columns"):
        check_table(table)
    check_table(tmp_path / "absent.md")  # a first run writes the table itself


def test_the_committed_table_has_this_runs_columns() -> None:
    check_table()


def test_a_run_passes_only_with_nothing_wrong() -> None:
    good = {**RESULT, "caught up": True, "bad inputs tried": 3, "dead-lettered": 3}
    assert passed(good)
    for column in ("crashes", "purchases lost", "records differing", "personal data in log"):
        assert not passed({**good, column: 1})
    assert not passed({**good, "caught up": False})
    assert not passed({**good, "dead-lettered": 2})

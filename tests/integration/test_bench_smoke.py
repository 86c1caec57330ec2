"""The benchmark harness, end to end on a tiny input: it must keep working, whatever the speed.

Every contender runs and commits (the quix-streams ones in ``.venv-quix``,
which ``make test`` makes first), every measurement gets a value, both
engine runs' outputs equal the backtest's, and the row lands in the results
file under its section. No figure is checked against a target here: on a
shared machine a speed assertion would only measure the neighbours.
"""

from __future__ import annotations

import re
from pathlib import Path

from bench import harness, latency, recovery


def test_harness_measures_every_contender(tmp_path: Path) -> None:
    results = tmp_path / "RESULTS.md"
    table = harness.main(
        [
            "--customers",
            "120",
            "--latency-seconds",
            "2",
            "--floor-variants",
            "default,tuned",
            "--results",
            str(results),
        ]
    )
    header, _rule, line = table.splitlines()
    cells = dict(zip(header.strip("|").split(" | "), line.strip("|").split(" | "), strict=True))
    cells = {k.strip(): v.strip() for k, v in cells.items()}
    for column in harness.COLUMNS:
        assert cells[column] not in ("", "n/a"), column
    assert cells["outputs = backtest (1 and 2 workers)"].startswith("yes/yes")
    assert cells["Faust floor variants ev/s"].startswith("tuned ")
    assert re.fullmatch(
        r"[\d.]+ \([\d,]+; an empty worker [\d.]+\)", cells["recovery s (customers)"]
    )
    text = results.read_text()
    assert harness.SECTION in text
    assert text.rstrip().endswith(line)


def test_the_recovery_bench_times_fresh_workers_reading_in_bulk(kafka_bootstrap: str) -> None:
    table = recovery.main(["--customers", "60", "--repeat", "1", "--broker", kafka_bootstrap])
    row = table.splitlines()[-1]
    found = re.fullmatch(
        r"\| fresh worker 1 \| [\d.]+ \| ([\d,]+) \([\d.]+\) \| [\d.]+ \| -?[\d,]+ B \|", row
    )
    assert found, row
    assert int(found.group(1).replace(",", "")) > 0  # its tables came from the bulk read


def test_the_latency_bench_measures_two_revisions_taking_turns(tmp_path: Path) -> None:
    results = tmp_path / "RESULTS.md"
    asked = ["--rates", "40", "--seconds", "3", "--settle", "1", "--before", "HEAD"]
    rows = latency.main([*asked, "--results", str(results)])
    assert len(rows) == 2  # HEAD's export first, then this checkout
    cells = r"[\d,]+/[\d,]+/[\d,]+/[\d,]+"
    for line in rows:
        found = re.fullmatch(
            rf"\| [\d: -]+ \| \w+\+? \| .* \| 120 \| 40 \| [\d,]+ \| ([\d,]+) "
            rf"\| {cells} \| {cells} \(after 1 s\) \|\n",
            line,
        )
        assert found, line
        assert int(found.group(1).replace(",", "")) > 0  # triggers were matched to events
    assert results.read_text().count("\n| 20") == 2

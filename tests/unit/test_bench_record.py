"""bench.harness and bench.replay add their rows to their own results tables, wherever
later sections follow them."""

from __future__ import annotations

from pathlib import Path

from bench import replay
from bench.harness import COLUMNS, SECTION, with_row
from bench.results import add_row

HEADER = "| " + " | ".join(COLUMNS) + " |\n|" + "---|" * len(COLUMNS) + "\n"


def test_the_row_goes_under_the_last_row_of_the_harness_table() -> None:
    text = (
        f"# Benchmark results\n\n{SECTION}\n\nCommand: x\n\n{HEADER}| old |\n\n"
        "A paragraph.\n\n## Another section\n\n| a | b |\n|---|---|\n| 1 | 2 |\n"
    )
    done = with_row(text, "| new |\n")
    assert done.index("| old |\n| new |\n") < done.index("A paragraph.")
    assert done.endswith("| 1 | 2 |\n")
    assert done.replace("| new |\n", "") == text


def test_the_row_ends_a_harness_table_that_ends_the_file() -> None:
    text = f"# Benchmark results\n\n{SECTION}\n\nCommand: x\n\n{HEADER}| old |\n"
    assert with_row(text, "| new |\n") == text + "| new |\n"


def test_the_first_row_goes_under_the_rule_of_a_table_without_rows() -> None:
    text = f"# Benchmark results\n\n{SECTION}\n\nCommand: x\n\n{HEADER}\n## Another section\n"
    done = with_row(text, "| new |\n")
    assert done == text.replace(HEADER, HEADER + "| new |\n")


def test_the_row_goes_into_this_section_not_an_earlier_harness_table() -> None:
    earlier = "## Engine vs Faust's floor, naive Faust and raw aiokafka (issue 6)"
    old_header = "| " + " | ".join(COLUMNS[:5]) + " |\n|---|---|---|---|---|\n| old |\n"
    text = f"# Benchmark results\n\n{earlier}\n\n{old_header}\n{SECTION}\n\n{HEADER}"
    assert with_row(text, "| new |\n") == text + "| new |\n"


def test_bench_replay_adds_its_row_to_its_own_table(tmp_path: Path) -> None:
    results = tmp_path / "RESULTS.md"
    row = "| 2026-12-05 | abc | x | 10 | 6 | 1 | 1 | 1.0 | yes |\n"
    add_row(results, row, replay.SECTION, replay.HEADER, "`replay`")
    begun = results.read_text()
    assert begun == (
        f"# Benchmark results\n\n{replay.SECTION}\n\nCommand: `replay`\n\n{replay.HEADER}{row}"
    )
    results.write_text(begun + "\nA reading.\n\n## Timers\n\n| a | b |\n|---|---|\n| 1 | 2 |\n")
    later = row.replace("abc", "def")
    add_row(results, later, replay.SECTION, replay.HEADER, "`replay`")
    text = results.read_text()
    assert row + later + "\nA reading." in text
    assert text.endswith("| 1 | 2 |\n")

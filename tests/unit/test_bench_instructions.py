"""bench.instructions: counts that repeat, less the first line's, recorded in their table."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import instructions
from bench.instructions import Count, per_event, row


def test_the_first_line_is_subtracted_and_an_input_needs_two() -> None:
    assert per_event(1_000_500, 400, 11) == (1_000_100, 10)
    with pytest.raises(ValueError, match="at least two lines"):
        per_event(1_000, 900, 1)


def test_a_row_gives_the_ratio_to_the_first_playbook_or_to_this_code() -> None:
    first = Count("abc1234", "default", 100, 50_000_000)
    flows = Count("abc1234", "/x/flows50.yaml", 100, 120_000_000)
    older = Count("0150951", "default", 100, 55_000_000)
    assert "| abc1234 | flows50 | 40 | 100 | 1.2000 | 2.400x |  |" in row(flows, first, None, 40)
    assert "| 0150951 | default | 40 | 100 | 0.5500 |  | 1.100x |" in row(older, None, first, 40)


def test_the_same_code_counts_the_same_and_the_rows_go_to_their_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two counts of the same code and input agree within 1% (here they differ in the
    fourth digit, where timings of the same runs differ by a third), and each row lands
    under the previous one. A count of a whole process varies by up to about 400,000
    instructions, so the input has some 270 events: a few per cent of one event's."""
    results = tmp_path / "RESULTS.md"
    monkeypatch.setattr(instructions, "RESULTS", results)
    figures = []
    for _ in range(2):
        instructions.main(["--customers", "30", "--record"])
        printed = capsys.readouterr().out.strip().splitlines()[-1]
        figures.append(float(printed.split("|")[6]))
    assert figures[0] > 0.01  # million instructions: an event is tens of thousands at least
    assert abs(figures[0] - figures[1]) <= 0.01 * figures[0]
    lines = results.read_text().splitlines()
    rows = [n for n, line in enumerate(lines) if line.startswith("| 20")]
    header = lines.index(instructions.HEADER.splitlines()[0])
    assert lines.index(instructions.SECTION) < header
    assert rows == [header + 2, header + 3]  # the second under the first, below the rule

"""The benchmark's flows playbooks and ``bench.core``'s playbook comparison."""

from __future__ import annotations

import re
import subprocess
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

from analytics.simulation import simulate
from bench import core, flows50
from cli.main import main as lifecycle
from lifecycle.flows.conditions import event_holds
from lifecycle.flows.model import DateTrigger, EventMatch, SegmentEnter, StageEnter
from lifecycle.playbook import default_playbook, load_playbook
from schemas.events import EVENT_TYPES

ROOT = Path(__file__).resolve().parents[2]
FLOWS50 = ROOT / "bench" / "playbooks" / "flows50.yaml"
UNTRIGGERED50 = ROOT / "bench" / "playbooks" / "untriggered50.yaml"
NOFLOWS = ROOT / "bench" / "playbooks" / "noflows.yaml"


@pytest.mark.parametrize("name", sorted(flows50.PLAYBOOKS))
def test_checked_in_playbook_is_what_the_generator_writes(name: str) -> None:
    assert (flows50.DIRECTORY / name).read_text("utf-8") == flows50.render(name)


def test_generator_check_mode_passes_on_the_checked_in_files(
    capsys: pytest.CaptureFixture[str],
) -> None:
    flows50.main(["--check"])
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(
    ("path", "segments"),
    [(FLOWS50, "vip, high_value, mid_or_high"), (UNTRIGGERED50, "idle_vip, idle_high")],
)
def test_playbook_check_accepts_them(path: Path, segments: str) -> None:
    result = CliRunner().invoke(lifecycle, ["playbook", "check", str(path)])
    assert result.exit_code == 0, result.output
    builtin = len(default_playbook().flows)
    assert f"{path}: ok, {50 + builtin} flows, segments: " in result.output
    assert segments in result.output


def _own(path: Path) -> dict[str, object]:
    book, default = load_playbook(path), default_playbook()
    return {name: flow for name, flow in book.flows.items() if name not in default.flows}


def test_flows50_has_50_flows_20_segments_and_every_kind_of_trigger() -> None:
    book = load_playbook(FLOWS50)
    own = _own(FLOWS50)
    assert len(own) == 50
    assert len(set(book.segments) - set(default_playbook().segments)) == 20
    triggers = [flow.trigger for flow in own.values()]  # type: ignore[attr-defined]
    kinds = Counter(type(trigger).__name__ for trigger in triggers)
    assert kinds == {"EventMatch": 36, "StageEnter": 6, "SegmentEnter": 6, "DateTrigger": 2}
    events = Counter(t.event for t in triggers if isinstance(t, EventMatch))
    assert events == {"purchase": 18, "browse": 5, "custom": 5, "cart": 6, "signup": 2}
    assert {t.stage_enter for t in triggers if isinstance(t, StageEnter)} == {
        "lead",
        "first_time_buyer",
        "repeat_customer",
        "loyal",
        "at_risk",
        "churned",
    }
    assert len({t.segment_enter for t in triggers if isinstance(t, SegmentEnter)}) == 6
    assert {t.date for t in triggers if isinstance(t, DateTrigger)} == {"traits.birthday"}


def _events(extras: bool) -> list[object]:
    return [EVENT_TYPES[e["type"]].model_validate(e) for e in simulate(300, seed=11, extras=extras)]


def _matching(path: Path, events: list[object]) -> dict[str, int]:
    """Events of the input that each event-triggered flow's trigger matches."""
    counts: dict[str, int] = {}
    for name, flow in _own(path).items():
        trigger = flow.trigger  # type: ignore[attr-defined]
        if not isinstance(trigger, EventMatch):
            continue
        counts[name] = sum(
            1
            for event in events
            if getattr(event, "type", None) == trigger.event
            and (trigger.where is None or event_holds(trigger.where, event))
        )
    return counts


def test_the_input_with_extras_starts_every_event_flow_of_flows50_but_cart_removed() -> None:
    counts = _matching(FLOWS50, _events(extras=True))
    assert len(counts) == 36
    assert [name for name, n in counts.items() if n == 0] == ["cart_removed"]
    plain = _matching(FLOWS50, _events(extras=False))
    # Without the extras, the flows on properties, custom events and traits never start.
    assert sorted(name for name, n in plain.items() if n == 0) == sorted(
        [
            "cart_removed",
            "cart_app_push",
            "cart_coupon_reminder",
            "coupon_order_survey",
            "app_order_rating",
            "newsletter_welcome",
            *(f"wishlist_{cat}" for cat in flows50.CATEGORIES),
        ]
    )


def test_birthdays_come_with_the_extras() -> None:
    signups = [e for e in simulate(100, seed=11, extras=True) if e["type"] == "signup"]
    assert signups
    assert all(len(e["traits"]["birthday"]) == len("YYYY-MM-DD") for e in signups)


def test_no_event_of_the_input_starts_a_flow_of_untriggered50() -> None:
    counts = _matching(UNTRIGGERED50, _events(extras=True))
    assert len(counts) == 50
    assert set(counts.values()) == {0}


def test_noflows_runs_no_flow_and_keeps_the_stages() -> None:
    """The base of the flows' budget: every built-in flow off, the facts and stages kept."""
    book = load_playbook(NOFLOWS)
    assert set(book.flows) == set(default_playbook().flows)
    assert not any(flow.enabled for flow in book.flows.values())
    lines = core.build_lines(200, seed=3, duplicates=0.0, bad_every=0, extras=True)
    without = core.run_measured(lines, 2, book)
    default = core.run_measured(lines, 2)
    assert sum(without.triggers.values()) == 0 < sum(default.triggers.values())
    assert without.entered is not None
    assert sum(without.entered.values()) == 0
    assert [s.stage for s in without.states] == [s.stage for s in default.states]
    assert all(not s.runs for s in without.states)


def test_run_once_under_the_default_playbook_is_unchanged_by_the_option() -> None:
    lines = core.build_lines(40, seed=3, duplicates=0.0, bad_every=0)
    _, implicit, _ = core.run_once(lines, 2)
    _, explicit, _ = core.run_once(lines, 2, core.load("default"))
    assert implicit == explicit


def test_extras_add_lines_and_keep_the_others() -> None:
    plain = core.build_lines(60, seed=3, duplicates=0.0, bad_every=0)
    extras = core.build_lines(60, seed=3, duplicates=0.0, bad_every=0, extras=True)
    assert len(extras) > len(plain)
    assert sum(b'"type":"custom"' in line for line in extras) == len(extras) - len(plain)


def test_compare_rows_and_table() -> None:
    inputs = {
        extras: core.build_lines(40, seed=3, duplicates=0.0, bad_every=0, extras=extras)
        for extras in (False, True)
    }
    specs = ["default", str(FLOWS50), str(UNTRIGGERED50)]
    rows = core.compare(specs, inputs, 2, repeat=2, progress=False)

    assert [(r.playbook, r.extras) for r in rows] == [
        ("default", False),
        ("default", True),
        (str(FLOWS50), True),
        (str(UNTRIGGERED50), True),
    ]
    assert rows[0].digest == core.run_measured(inputs[False], 2).digest
    assert rows[0].lines == len(inputs[False])
    assert rows[1].lines == len(inputs[True])
    assert [len(r.own_flows) for r in rows] == [0, 0, 50, 50]
    assert rows[3].own_sending() == 0
    assert rows[3].own_entered() in (None, 0)
    assert all(r.cpu > 0 for r in rows)
    # untriggered50 starts nothing: the same triggers and timers as the default.
    assert rows[3].timers_fired == rows[1].timers_fired > 0
    assert rows[3].triggers == rows[1].triggers
    assert rows[1].us_per_cause == rows[1].seconds * 1e6 / (rows[1].lines + rows[1].timers_fired)
    lines = core.table(rows, [], commit="abc1234")
    assert lines[0].startswith("| code | playbook | input | events | µs/event |")
    assert len(lines) == 2 + 4
    assert lines[2].startswith(f"| abc1234 | default | plain | {len(inputs[False]):,} | ")
    for reference in lines[2:4]:
        assert reference.count("1.00x") == 3  # wall, CPU and per cause
    assert lines[5].count("|") == lines[0].count("|") == 14
    assert lines[4].startswith("| abc1234 | flows50 | extras |")
    # "?" until the backtest's summary counts runs per flow
    assert re.search(r"\| (\?|0) / 0 of 50 \|", lines[5])


def test_before_runs_bench_core_of_another_checkout() -> None:
    """Here the other checkout is this one: its figure must carry the same digest."""
    figure = core.before_figure(
        ROOT, ["--customers", "30", "--partitions", "2", "--seeds", "3", "--repeat", "1"]
    )
    lines = core.build_lines(30, seed=3, duplicates=0.0, bad_every=0)
    assert figure.lines == len(lines)
    assert figure.digest == core.run_measured(lines, 2).digest
    assert figure.us_per_event > 0
    assert figure.cpu_us_per_event is not None
    assert figure.cpu_us_per_event > 0
    assert figure.commit.rstrip("+") == core.commit_of(ROOT).rstrip("+") != "?"

    lines_out = core.table(
        core.compare(["default"], {False: lines, True: lines}, 2, 1, progress=False),
        [figure, figure],
    )
    assert lines_out[2].startswith(f"| {figure.commit} (run before the others) | default |")
    assert lines_out[3].startswith(f"| {figure.commit} (run after the others) | default |")
    assert lines_out[-1].startswith("default on the plain input: ")


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=True
    ).stdout.strip()


def test_export_writes_a_revision_without_touching_the_checkout(tmp_path: Path) -> None:
    status = _git("status", "--porcelain")

    assert core.export("HEAD", tmp_path) == _git("rev-parse", "--short", "HEAD")
    assert (tmp_path / "bench" / "core.py").is_file()
    assert (tmp_path / "lifecycle" / "core.py").is_file()
    assert not (tmp_path / ".git").exists()
    assert _git("status", "--porcelain") == status


def test_single_run_names_a_playbook_and_the_extras(capsys: pytest.CaptureFixture[str]) -> None:
    core.main(["--customers", "20", "--partitions", "2", "--seeds", "3", "--repeat", "1"])
    plain = capsys.readouterr()
    lines = core.build_lines(20, seed=3, duplicates=0.0, bad_every=0)
    digest = core.run_measured(lines, 2).digest
    assert re.fullmatch(
        rf"seed 3: {len(lines)} lines, [\d,]+ events/s \([\d.]+ us/event\), digest {digest}\n",
        plain.out,
    )
    assert plain.err == ""

    core.main(["--customers", "20", "--seeds", "3", "--repeat", "1", "--playbook", str(FLOWS50)])
    flows = capsys.readouterr()
    assert flows.out.startswith(f"seed 3 ({FLOWS50}): ")
    assert "without --extras" in flows.err

    argv = ["--customers", "20", "--seeds", "3", "--repeat", "1", "--extras"]
    core.main([*argv, "--playbook", str(FLOWS50)])
    assert capsys.readouterr().out.startswith(f"seed 3 ({FLOWS50}) (extras): ")

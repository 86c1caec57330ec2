"""The ``lifecycle`` command line, in-process through click's CliRunner (no broker)."""

from __future__ import annotations

import http.server
import json
import os
import re
import threading
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from cli.main import main
from cli.settings import cli_settings
from lifecycle.backtest import Backtest, Output
from lifecycle.playbook import default_playbook, load_playbook
from schemas.codec import dumps, to_jsonable
from schemas.records import Campaign
from streams.producer import partitioner
from streams.settings import Settings

EVENTS = [
    {
        "type": "browse",
        "event_id": "b1",
        "occurred_at": "2025-01-10T08:00:00Z",
        "anonymous_id": "a1",
    },
    {
        "type": "signup",
        "event_id": "s1",
        "occurred_at": "2025-01-10T09:00:00Z",
        "customer_id": "c1",
        "email": "c1@x.example",
        "marketing_consent": True,
    },
    {
        "type": "purchase",
        "event_id": "p1",
        "occurred_at": "2025-01-10T09:05:00Z",
        "customer_id": "c1",
        "order_id": "o1",
        "total": "25.00",
        "currency": "EUR",
    },
]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The developer's own LIFECYCLE_* settings must not leak into these tests."""
    for name in list(os.environ):
        if name.startswith("LIFECYCLE_"):
            monkeypatch.delenv(name)


@pytest.fixture
def events_file(tmp_path: Path) -> Path:
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"".join(dumps(e) + b"\n" for e in EVENTS))
    return path


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def summary_line(result: Result) -> str:
    [line] = [x for x in result.stderr.splitlines() if x.startswith("backtest: ")]
    return line


def read_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(raw) for raw in path.read_text(encoding="utf-8").splitlines()]


def expected_records(
    path: Path, prefix: str = "", until: datetime | None = None
) -> list[dict[str, Any]]:
    runner = Backtest(default_playbook(), partitioner(4))
    lines = path.read_bytes().splitlines()
    outputs = [o for o in runner.run(lines, until=until) if isinstance(o, Output)]
    return [
        {"topic": f"{prefix}lifecycle.{o.topic}", "key": o.key, "value": to_jsonable(o.value)}
        for o in outputs
    ]


def test_backtest_writes_json_lines_to_the_output_file(events_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    result = run("backtest", str(events_file), "-o", str(out))
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    records = read_lines(out)
    assert [(r["topic"], r["key"]) for r in records] == [
        ("lifecycle.transitions", "a1"),
        ("lifecycle.transitions", "c1"),
        ("lifecycle.triggers", "c1"),
        ("lifecycle.transitions", "c1"),
        ("lifecycle.triggers", "c1"),
    ]
    assert all(set(r) == {"topic", "key", "value"} for r in records)
    assert records == expected_records(events_file)
    assert records[1]["value"]["to_stage"] == "lead"
    assert records[2]["value"]["campaign"] == "welcome"
    assert records[4]["value"]["payload"]["total"] == "25.00"
    assert summary_line(result) == (
        "backtest: 3 lines, 3 events, 0 rejected, 0 duplicates, 0 timers fired, 3 transitions, "
        "2 triggers (0 held out), 0 suppressed; stages: first_time_buyer=1 prospect=1"
    )


def test_backtest_writes_to_stdout_without_output_option(events_file: Path) -> None:
    result = run("backtest", str(events_file))
    assert result.exit_code == 0, result.stderr
    records = [json.loads(raw) for raw in result.stdout.splitlines()]
    assert records == expected_records(events_file)
    assert "backtest:" not in result.stdout


def test_backtest_topic_names_take_the_prefix(events_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    result = run("backtest", str(events_file), "-o", str(out), env={"LIFECYCLE_TOPIC_PREFIX": "x."})
    assert result.exit_code == 0, result.stderr
    records = read_lines(out)
    assert {r["topic"] for r in records} == {"x.lifecycle.transitions", "x.lifecycle.triggers"}
    assert records == expected_records(events_file, prefix="x.")


def test_backtest_reports_malformed_lines_and_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_bytes(
        dumps(EVENTS[0]) + b"\n{not json\n\n" + b'{"type": "signup"}\n' + dumps(EVENTS[1]) + b"\n"
    )
    out = tmp_path / "out.jsonl"
    result = run("backtest", str(path), "-o", str(out))
    assert result.exit_code == 0
    errors = result.stderr.strip().splitlines()
    assert re.fullmatch(r"line 2: invalid_json: .+", errors[0])
    assert re.fullmatch(r"line 4: missing_field: .+", errors[1])
    assert errors[2].startswith("backtest: 4 lines, 2 events, 2 rejected, ")
    assert errors[3].startswith("campaign")  # then the per-campaign table: nothing else
    records = read_lines(out)
    letters = [r for r in records if r["topic"] == "lifecycle.deadletter"]
    assert [r["key"] for r in records if r not in letters] == ["a1", "c1", "c1"]
    assert letters == [
        {
            "topic": "lifecycle.deadletter",
            "key": None,
            "value": {
                "topic": "",  # no type: no topic it would have been published to
                "partition": 0,
                "offset": 2,  # the line number
                "key": None,
                "value": "{not json",
                "value_encoding": "utf-8",
                "reason": "invalid_json",
                "message": letters[0]["value"]["message"],
                "at": EVENTS[0]["occurred_at"].replace("+00:00", "Z"),  # the latest event read
            },
        },
        {
            "topic": "lifecycle.deadletter",
            "key": None,
            "value": {
                "topic": "events.signup",
                "partition": 0,
                "offset": 4,
                "key": None,
                "value": '{"type": "signup"}',
                "value_encoding": "utf-8",
                "reason": "missing_field",
                "message": letters[1]["value"]["message"],
                "at": EVENTS[0]["occurred_at"].replace("+00:00", "Z"),
            },
        },
    ]
    assert all(letter["value"]["message"] for letter in letters)


def test_backtest_with_a_custom_playbook(events_file: Path, tmp_path: Path) -> None:
    book = tmp_path / "book.yaml"
    book.write_text(
        "campaigns:\n  order_thank_you: {channel: sms}\n  welcome: {enabled: false}\n",
        encoding="utf-8",
    )
    out = tmp_path / "out.jsonl"
    result = run("backtest", str(events_file), "--playbook", str(book), "-o", str(out))
    assert result.exit_code == 0, result.stderr
    triggers = [r["value"] for r in read_lines(out) if r["topic"] == "lifecycle.triggers"]
    assert [(t["campaign"], t["channel"]) for t in triggers] == [("order_thank_you", "sms")]


def test_backtest_playbook_from_environment(events_file: Path, tmp_path: Path) -> None:
    book = tmp_path / "book.yaml"
    book.write_text(
        "campaigns:\n" + "".join(f"  {c}: {{enabled: false}}\n" for c in Campaign),
        encoding="utf-8",
    )
    result = run("backtest", str(events_file), env={"LIFECYCLE_PLAYBOOK": str(book)})
    assert result.exit_code == 0, result.stderr
    assert {json.loads(r)["topic"] for r in result.stdout.splitlines()} == {"lifecycle.transitions"}


def test_backtest_rejects_a_bad_playbook(events_file: Path, tmp_path: Path) -> None:
    book = tmp_path / "book.yaml"
    book.write_text("campaigns:\n  welcome:\n    holdout: 2\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    result = run("backtest", str(events_file), "--playbook", str(book), "-o", str(out))
    assert result.exit_code != 0
    assert "campaigns.welcome.holdout" in result.stderr
    assert str(book) in result.stderr
    assert not out.exists()


def test_backtest_until_needs_an_offset(events_file: Path) -> None:
    result = run("backtest", str(events_file), "--until", "2025-02-01T00:00:00")
    assert result.exit_code == 2
    assert "no UTC offset" in result.stderr
    assert result.stdout == ""
    bad = run("backtest", str(events_file), "--until", "next tuesday")
    assert bad.exit_code == 2
    assert "Invalid value for '--until': not an RFC 3339 time: next tuesday" in bad.stderr
    report = run("backtest", str(events_file), "--report", "--from", "monday")
    assert report.exit_code == 2
    assert "Invalid value for '--from': not an RFC 3339 time: monday" in report.stderr


@pytest.mark.parametrize("until", ["2025-03-12T00:00:00Z", "2025-03-12T01:00:00+01:00"])
def test_backtest_until_fires_the_timers_due_by_then(events_file: Path, until: str) -> None:
    result = run("backtest", str(events_file), "--until", until)
    assert result.exit_code == 0, result.stderr
    records = [json.loads(r) for r in result.stdout.splitlines()]
    assert records == expected_records(events_file, until=datetime(2025, 3, 12, tzinfo=UTC))
    decided = [r for r in records if r["topic"] != "lifecycle.attribution"]
    fired = [r["value"].get("campaign") or r["value"]["to_stage"] for r in decided[-3:]]
    # The first-time buyer of 10 January: nudged after 30 days, at risk after 60.
    assert fired == ["second_purchase_nudge", "at_risk", "churn_prevention"]
    # The welcome and the nudge windows closed (7 days each); churn_prevention's is open.
    closed = [r["value"] for r in records if r["topic"] == "lifecycle.attribution"]
    assert [(a["campaign"], a["converted"], a["revenue"]) for a in closed] == [
        ("welcome", True, "25.00"),
        ("second_purchase_nudge", False, "0"),
    ]
    assert "4 timers fired" in result.stderr


def test_backtest_until_before_the_last_event_says_so(events_file: Path) -> None:
    result = run("backtest", str(events_file), "--until", "2025-01-10T09:01:00Z")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == run("backtest", str(events_file)).stdout
    assert (
        "backtest: --until 2025-01-10T09:01:00+00:00 is before the last event"
        " (2025-01-10T09:05:00+00:00): every event was applied, and timers fired up to it"
    ) in result.stderr.splitlines()


def test_backtest_without_until_stops_at_the_last_event(events_file: Path) -> None:
    result = run("backtest", str(events_file))
    assert "0 timers fired" in result.stderr


def test_backtest_output_depends_on_the_file_not_on_the_day_it_runs(tmp_path: Path) -> None:
    """Events years ahead of today are a file's history like any other; only
    ``--received-at`` applies the bound a worker applies to its records' timestamps."""
    later = tmp_path / "later.jsonl"
    later.write_bytes(
        b"".join(
            dumps({**e, "occurred_at": e["occurred_at"].replace("2025-", "2125-")}) + b"\n"
            for e in EVENTS
        )
    )
    result = run("backtest", str(later))
    assert result.exit_code == 0, result.stderr
    assert " 0 rejected" in summary_line(result)
    records = [json.loads(r) for r in result.stdout.splitlines()]
    assert records
    assert all(r["topic"] != "lifecycle.deadletter" for r in records)
    bounded = run("backtest", str(later), "--received-at", "2123-12-01T00:00:00Z")
    assert f" {len(EVENTS)} rejected" in summary_line(bounded)
    letters = [json.loads(r)["value"] for r in bounded.stdout.splitlines()]
    assert {letter["reason"] for letter in letters} == {"time_out_of_range"}
    assert {letter["message"] for letter in letters} == {
        "occurred_at: more than 366 days after the message was received"
    }
    near = run("backtest", str(later), "--received-at", "2125-01-01T00:00:00+01:00")
    assert near.stdout == result.stdout
    bad = run("backtest", str(later), "--received-at", "2125-01-01")
    assert bad.exit_code == 2
    assert "Invalid value for '--received-at'" in bad.stderr


def test_backtest_lateness_must_not_be_negative(events_file: Path) -> None:
    assert run("backtest", str(events_file), "--lateness", "-1").exit_code == 2
    assert run("backtest", str(events_file), "--lateness", "3600").exit_code == 0


def test_replay_needs_an_app_id_of_its_own() -> None:
    result = run("replay", "--app-id", "lifecycle")
    assert result.exit_code == 2
    assert "must differ from the live app id" in result.stderr


def test_simulate_then_backtest(tmp_path: Path) -> None:
    events = tmp_path / "sim.jsonl"
    result = run("simulate", "--customers", "20", "-o", str(events))
    assert result.exit_code == 0, result.stderr
    lines = events.read_bytes().splitlines()
    assert result.stderr.strip() == f"wrote {len(lines)} events to {events}"
    assert len(lines) >= 20
    again = tmp_path / "again.jsonl"
    run("simulate", "--customers", "20", "-o", str(again))
    assert again.read_bytes() == events.read_bytes()

    out = tmp_path / "out.jsonl"
    result = run("backtest", str(events), "-o", str(out))
    assert result.exit_code == 0, result.stderr
    assert summary_line(result).startswith(
        f"backtest: {len(lines)} lines, {len(lines)} events, 0 rejected"
    )
    assert len(read_lines(out)) >= 20


def test_simulate_with_extras(tmp_path: Path) -> None:
    plain, extras = tmp_path / "plain.jsonl", tmp_path / "extras.jsonl"
    assert run("simulate", "--customers", "30", "-o", str(plain)).exit_code == 0
    result = run("simulate", "--customers", "30", "--extras", "-o", str(extras))
    assert result.exit_code == 0, result.stderr
    bodies = [json.loads(line) for line in extras.read_bytes().splitlines()]
    assert {"custom", "signup"} <= {b["type"] for b in bodies}
    assert all("traits" in b for b in bodies if b["type"] == "signup")
    result = run("backtest", str(extras), "-o", str(tmp_path / "out.jsonl"))
    assert result.exit_code == 0, result.stderr
    assert summary_line(result).startswith(f"backtest: {len(bodies)} lines, {len(bodies)} events")


SCHEMA_NAMES = [
    "attribution",
    "browse",
    "cart",
    "custom",
    "deadletter",
    "engagement",
    "event",
    "identify",
    "privacy",
    "purchase",
    "refund",
    "signup",
    "transition",
    "trigger",
]


def test_schemas_export(tmp_path: Path) -> None:
    target = tmp_path / "schemas"
    result = run("schemas", "export", str(target))
    assert result.exit_code == 0, result.stderr
    files = sorted(p.name for p in target.iterdir())
    assert files == [f"{name}.schema.json" for name in SCHEMA_NAMES]
    assert result.stdout.splitlines() == [str(target / name) for name in files]
    documents = {
        name: json.loads((target / f"{name}.schema.json").read_text(encoding="utf-8"))
        for name in SCHEMA_NAMES
    }
    for name, document in documents.items():
        assert document["$schema"].startswith("https://json-schema.org/"), name
    purchase = documents["purchase"]
    assert {"order_id", "total", "currency", "event_id", "occurred_at"} <= set(purchase["required"])
    assert "items" not in purchase["required"]
    assert set(purchase["properties"]) >= {"order_id", "total", "currency", "items"}
    assert set(documents["signup"]["required"]) >= {"customer_id", "email"}
    assert set(documents["trigger"]["required"]) >= {
        "trigger_id",
        "customer_id",
        "campaign",
        "channel",
        "stage",
        "created_at",
        "send_after",
        "variant",
        "holdout",
        "payload",
        "flow",
        "step",
    }
    # A campaign is any name (a shop's own, from a flow), no longer the built-in enum:
    # a widening, so a consumer that validated the old schema accepts every old record.
    for record in ("trigger", "attribution"):
        campaign = documents[record]["properties"]["campaign"]
        assert campaign["type"] == "string", record
        assert "enum" not in campaign
        assert "$ref" not in campaign
        assert re.fullmatch(campaign["pattern"], "cart_abandonment"), record
        assert not re.fullmatch(campaign["pattern"], "Cart Abandonment"), record
        assert "flow" in documents[record]["required"], record
    assert documents["trigger"]["properties"]["channel"]["enum"] == [
        "email",
        "sms",
        "push",
        "webhook",
    ]
    assert set(documents["custom"]["required"]) >= {"name", "event_id", "occurred_at"}
    assert "properties" in documents["custom"]["properties"]
    for kind in ("signup", "identify"):
        traits = documents[kind]["properties"]["traits"]
        assert (traits["type"], traits["maxProperties"]) == ("object", 50)
    properties = documents["browse"]["properties"]["properties"]
    assert properties["additionalProperties"] is False  # only names that match the pattern
    [values] = properties["patternProperties"].values()
    assert {"boolean", "integer", "number", "string", "null"} == {
        branch["type"] for branch in values["anyOf"]
    }


def test_clv_fit_writes_the_fitted_model_into_a_playbook(tmp_path: Path) -> None:
    from harness.datasets import cdnow_events

    events = tmp_path / "cdnow.jsonl"
    events.write_bytes(b"".join(dumps(e) + b"\n" for e in cdnow_events()))
    printed = run("clv", "fit", str(events), "--until", "1997-09-30T00:00:00Z")
    assert printed.exit_code == 0, printed.stderr
    assert "2357 customers (946 with repeat purchases)" in printed.stderr
    assert "clv_model:" in printed.stdout
    book = tmp_path / "book.yaml"
    book.write_text("policies:\n  default_holdout: 0.2\n", encoding="utf-8")
    written = run(
        "clv", "fit", str(events), "--until", "1997-09-30T00:00:00Z", "--write", str(book)
    )
    assert written.exit_code == 0, written.stderr
    loaded = load_playbook(book)
    assert loaded.policies.default_holdout == 0.2  # the rest of the playbook is kept
    assert loaded.scores.clv_model.bgnbd.r == pytest.approx(0.243, rel=0.01)
    assert loaded.scores.clv_model.gamma_gamma.q == pytest.approx(3.74, rel=0.01)


def test_clv_fit_without_purchases_is_an_error(events_file: Path, tmp_path: Path) -> None:
    empty = tmp_path / "none.jsonl"
    empty.write_bytes(dumps(EVENTS[0]) + b"\n")
    result = run("clv", "fit", str(empty))
    assert result.exit_code == 1
    assert "no purchase events" in result.stderr


def test_clv_fit_without_a_repeat_purchase_is_an_error(tmp_path: Path) -> None:
    """One order per customer leaves BG/NBD's likelihood without a maximum: no model, and
    nothing written, rather than parameters at the optimiser's bounds."""
    once = tmp_path / "once.jsonl"
    orders = [
        {
            "event_id": f"e{n}",
            "type": "purchase",
            "occurred_at": f"2025-03-0{n}T10:00:00Z",
            "customer_id": f"c{n}",
            "order_id": f"o{n}",
            "total": "10.00",
            "currency": "EUR",
        }
        for n in (1, 2)
    ]
    once.write_bytes(b"".join(dumps(o) + b"\n" for o in orders))
    book = tmp_path / "book.yaml"
    result = run("clv", "fit", str(once), "--write", str(book))
    assert result.exit_code == 1
    assert "no customer bought again" in result.stderr
    assert not book.exists()


def test_rfm_calibrate_writes_breakpoints_the_playbook_accepts(tmp_path: Path) -> None:
    events = tmp_path / "sim.jsonl"
    assert run("simulate", "--customers", "300", "-o", str(events)).exit_code == 0
    book = tmp_path / "book.yaml"
    result = run("rfm", "calibrate", str(events), "--write", str(book))
    assert result.exit_code == 0, result.stderr
    assert "customers with orders" in result.stderr
    points = load_playbook(book).scores.rfm
    assert points != default_playbook().scores.rfm
    assert points.frequency == sorted(points.frequency)


def test_rfm_calibrate_on_buyers_who_all_ordered_today(events_file: Path, tmp_path: Path) -> None:
    """Ties at the last order's day give breakpoints a day apart, not a refusal."""
    result = run("rfm", "calibrate", str(events_file), "--json", "--no-progress")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["scores"]["rfm"]["recency_days"] == [3.0, 2.0, 1.0, 0.0]


def test_a_fit_refused_by_validation_is_one_line(events_file: Path) -> None:
    result = run("clv", "fit", str(events_file), "--time-unit", "P0D")
    assert result.exit_code == 1
    assert result.stderr == "Error: time_unit: must be longer than 0\n"


@pytest.mark.parametrize("command", [("backtest",), ("clv", "fit"), ("rfm", "calibrate")])
def test_a_byte_order_mark_before_the_first_line_is_not_part_of_it(
    command: tuple[str, ...], events_file: Path, tmp_path: Path
) -> None:
    again = {**EVENTS[2], "event_id": "p2", "order_id": "o2", "occurred_at": "2025-01-20T09:05:00Z"}
    body = events_file.read_bytes() + dumps(again) + b"\n"  # a repeat purchase, for clv fit
    unmarked, marked = tmp_path / "plain.jsonl", tmp_path / "marked.jsonl"
    unmarked.write_bytes(body)
    marked.write_bytes(b"\xef\xbb\xbf" + body)
    plain, with_mark = run(*command, str(unmarked)), run(*command, str(marked))
    assert with_mark.exit_code == plain.exit_code == 0, with_mark.stderr
    assert (with_mark.stdout, with_mark.stderr) == (plain.stdout, plain.stderr)
    assert "rejected" not in with_mark.stderr or "0 rejected" in with_mark.stderr


def test_backtest_prints_per_campaign_per_stage_and_per_flow_counts(events_file: Path) -> None:
    result = run("backtest", str(events_file))
    campaigns, flows = result.stderr.split("\n\n")
    lines = campaigns.splitlines()
    assert lines[1].split() == ["campaign", "sent", "held", "out", "suppressed"]
    rows = {line.split()[0]: line.split()[1:] for line in lines[2:]}
    assert rows["order_thank_you"] == ["1", "0", "-"]
    assert rows["welcome"] == ["1", "0", "-"]
    assert rows["first_time_buyer"] == ["1"]
    assert rows["prospect"] == ["1"]
    # Every built-in flow, a row of zeros if it never ran; second_purchase_nudge waits.
    assert flows.splitlines() == [
        "flow                   entered  exited       sent  held out  suppressed  skipped",
        "advocate_referral            0  -               0         0  -           -",
        "browse_abandonment           0  -               0         0  -           -",
        "cart_abandonment             0  -               0         0  -           -",
        "churn_prevention             0  -               0         0  -           -",
        "loyalty_reward               0  -               0         0  -           -",
        "order_thank_you              1  completed 1     1         0  -           -",
        "review_request               0  -               0         0  -           -",
        "second_purchase_nudge        1  -               0         0  -           -",
        "welcome                      1  completed 1     1         0  -           -",
        "welcome_back                 0  -               0         0  -           -",
        "win_back                     0  -               0         0  -           -",
    ]


def test_long_commands_show_progress_and_speak_json(tmp_path: Path) -> None:
    events = tmp_path / "sim.jsonl"
    made = run("simulate", "--customers", "200", "-o", str(events), "--progress", "--json")
    assert made.exit_code == 0, made.stderr
    lines = made.stderr.strip().splitlines()
    assert lines[0].startswith("simulate: ")  # a progress line, then the JSON result
    report = json.loads(lines[-1])
    assert report == {"events": len(events.read_bytes().splitlines()), "output": str(events)}

    out = tmp_path / "out.jsonl"
    ran = run("backtest", str(events), "-o", str(out), "--progress", "--json")
    assert ran.exit_code == 0, ran.stderr
    *progress, last = ran.stderr.strip().splitlines()
    assert progress
    assert progress[-1].startswith(f"backtest: {report['events']}/{report['events']} (100%)")
    summary = json.loads(last)
    assert summary["events"] == report["events"]
    assert summary["transitions"] == sum(
        1 for line in read_lines(out) if line["topic"] == "lifecycle.transitions"
    )

    calibrated = run("rfm", "calibrate", str(events), "--json", "--no-progress")
    assert calibrated.exit_code == 0, calibrated.stderr
    assert set(json.loads(calibrated.stdout)["scores"]["rfm"]) == {
        "recency_days",
        "frequency",
        "monetary",
    }


def test_backtest_json_on_stderr_is_one_object_with_bad_lines_and_warnings(
    tmp_path: Path,
) -> None:
    """``2> summary.json`` gives JSON however bad the file: the bad lines and an early
    ``--until`` are in the object, not printed before it."""
    events = tmp_path / "bad.jsonl"
    good = (
        '{"event_id": "e1", "type": "signup", "occurred_at": "2025-03-01T10:00:00Z",'
        ' "customer_id": "c1", "email": "c1@mail.example"}'
    )
    events.write_text(f"{good}\nnot json\n{{}}\n", encoding="utf-8")
    ran = run(
        "backtest",
        str(events),
        "-o",
        str(tmp_path / "out.jsonl"),
        "--json",
        "--until",
        "2025-02-01T00:00:00Z",
    )
    assert ran.exit_code == 0, ran.stderr
    summary = json.loads(ran.stderr)
    assert [(r["line"], r["reason"]) for r in summary["rejected_lines"]] == [
        (2, "invalid_json"),
        (3, "missing_type"),
    ]
    assert summary["rejected"] == 2
    [warning] = summary["warnings"]
    assert "--until 2025-02-01T00:00:00+00:00 is before the last event" in warning
    text = run("backtest", str(events), "-o", str(tmp_path / "out2.jsonl"))
    assert "line 2: invalid_json" in text.stderr


def test_no_progress_unless_asked_when_not_on_a_terminal(events_file: Path) -> None:
    result = run("backtest", str(events_file))
    assert not any(line.startswith("backtest: 3/") for line in result.stderr.splitlines())


def test_backtest_report_prints_lift_and_kpis(tmp_path: Path) -> None:
    events = tmp_path / "sim.jsonl"
    made = run("simulate", "--customers", "300", "--welcome-effect", "0.5", "-o", str(events))
    assert made.exit_code == 0, made.stderr
    ran = run("backtest", str(events), "-o", str(tmp_path / "out.jsonl"), "--report", "--json")
    assert ran.exit_code == 0, ran.stderr
    summary = json.loads(ran.stderr.strip().splitlines()[-1])
    # Every trigger is some flow's send: sent or held out.
    flows = summary["flows"]
    assert sum(f["sent"] + f["held_out"] for f in flows.values()) == summary["triggers"]
    assert sum(f["held_out"] for f in flows.values()) == summary["held_out"] > 0
    assert flows["welcome"]["suppressed"]["no_consent"] > 0
    report = summary["report"]
    assert report["period"] == {"from": None, "to": None}
    # Without a period the stages are the records' stages at the end of the run.
    by_stage = {s: n for s, n in report["kpis"]["customers_by_stage"].items() if n}
    assert by_stage == summary["stages"]
    welcome = next(c for c in report["campaigns"] if c["campaign"] == "welcome")
    assert welcome["treated"]["customers"] > 0
    assert welcome["treated"]["conversion_rate"] > welcome["holdout"]["conversion_rate"]
    # The welcome flow sends only the welcome campaign: the same customers, the same lift.
    flow = next(f for f in report["flows"] if f["flow"] == "welcome")
    assert {k: v for k, v in flow.items() if k != "flow"} == {
        k: v for k, v in welcome.items() if k != "campaign"
    }

    text = run("backtest", str(events), "-o", str(tmp_path / "out.jsonl"), "--report")
    assert text.exit_code == 0, text.stderr
    assert "campaign lift against the holdout" in text.stderr
    assert "flow lift against its holdout" in text.stderr
    assert "lifecycle KPIs" in text.stderr
    assert "first-time -> repeat" in text.stderr


def test_backtest_report_period_is_checked(events_file: Path) -> None:
    bad = run(
        "backtest",
        str(events_file),
        "--report",
        "--from",
        "2025-02-01T00:00:00Z",
        "--to",
        "2025-01-01T00:00:00Z",
    )
    assert bad.exit_code == 2
    assert "--from must be before --to" in bad.stderr
    naive = run("backtest", str(events_file), "--report", "--from", "2025-02-01T00:00:00")
    assert naive.exit_code == 2
    assert "no UTC offset" in naive.stderr
    alone = run("backtest", str(events_file), "--to", "2025-02-01T00:00:00Z")
    assert alone.exit_code == 2
    assert "--from and --to are the report's period: give them with --report" in alone.stderr


def test_report_without_a_broker_is_an_error_not_a_traceback() -> None:
    result = run("report", "--timeout", "5", env={"LIFECYCLE_BROKER": "127.0.0.1:1"})
    assert result.exit_code == 1
    assert "cannot read the topics from 127.0.0.1:1" in result.stderr


def test_playbook_check_prints_each_flow_of_the_design_example(tmp_path: Path) -> None:
    from tests.unit.test_flow_validation import DESIGN_EXAMPLE

    book = tmp_path / "design.yaml"
    book.write_text(DESIGN_EXAMPLE, encoding="utf-8")
    result = run("playbook", "check", str(book))
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    start = lines.index(
        "replenish_coffee (added)  trigger: event purchase where items.category = coffee"
    )
    assert "welcome (built-in)  trigger: event signup" in lines[:start]  # the defaults first
    assert lines[start : start + 5] == [
        "replenish_coffee (added)  trigger: event purchase where items.category = coffee",
        "  exit_on: event purchase where items.category = coffee   filters: p_alive >= 0.2",
        "  re_entry: always  on_retrigger: restart  holdout: 10%",
        "  steps: 0 wait 25d | 1 send replenish_coffee (email, priority 50)",
        "  segments: -",
    ]
    assert "cart_series (added)  trigger: event cart where action = add" in lines
    assert (
        "  steps: 0 wait 1h | 1 send cart_1 (email, priority 50) | 2 wait 23h"
        " | 3 branch if segment vip"
        " | 3.then.0 send cart_2_vip (email, priority 50, data discount_percent=10)"
        " | 3.else.0 send cart_2 (email, priority 50)"
    ) in lines
    assert "vip_welcome (added)  trigger: segment_enter vip" in lines
    # The example's win_back is the built-in one, word for word: the same numbers, as numbers
    assert "win_back (built-in)  trigger: stage_enter churned" in lines
    assert (
        "  steps: 0 send win_back (email, priority 60,"
        " data discount_percent by clv_tier {high: 20, mid: 15, low: 10})"
    ) in lines
    assert "birthday (added)  trigger: date traits.birthday at 09:00" in lines
    assert lines.count("  segments: vip") == 2
    assert "15 flows, segments: vip, coffee, nordics, flows digest " in result.stderr
    again = run("playbook", "check", str(book))
    assert again.stderr == result.stderr  # the digest is stable


def test_playbook_check_counts_the_flows_turned_off(tmp_path: Path) -> None:
    book = tmp_path / "off.yaml"
    book.write_text("flows:\n  welcome: {enabled: false}\n  win_back: {enabled: false}\n")
    result = run("playbook", "check", str(book))
    assert result.exit_code == 0, result.stderr
    assert "welcome (built-in, off)" in result.stdout.splitlines()
    assert f"{book}: ok, 11 flows (2 off), segments: -, flows digest " in result.stderr


def test_playbook_check_refuses_a_bad_file_in_one_line(tmp_path: Path) -> None:
    book = tmp_path / "bad.yaml"
    book.write_text(
        "flows:\n  cart_series:\n    trigger: {event: cart}\n"
        "    steps: [{wait: 1h}, {wait: 23h}, {send: {channel: sms}}]\n",
        encoding="utf-8",
    )
    result = run("playbook", "check", str(book))
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == (
        f"Error: invalid playbook {book}: flows.cart_series.steps[2].send.campaign: required\n"
    )


def test_playbook_check_of_a_missing_file(tmp_path: Path) -> None:
    result = run("playbook", "check", str(tmp_path / "absent.yaml"))
    assert result.exit_code == 1
    assert "cannot read playbook" in result.stderr


def test_a_worker_refuses_a_bad_flow_in_one_line(tmp_path: Path) -> None:
    book = tmp_path / "bad.yaml"
    book.write_text("flows:\n  x: {trigger: {event: purchse}, steps: [{wait: 1h}]}\n")
    result = run("worker", env={"LIFECYCLE_PLAYBOOK": str(book)})
    assert result.exit_code == 1
    [line] = result.stderr.splitlines()
    assert line.startswith(f"Error: invalid playbook {book}: flows.x.trigger.event: unknown event")


def test_scores_write_keeps_yaml_1_2_strings(tmp_path: Path) -> None:
    from harness.datasets import cdnow_events

    events = tmp_path / "cdnow.jsonl"
    events.write_bytes(b"".join(dumps(e) + b"\n" for e in cdnow_events()[:2000]))
    book = tmp_path / "book.yaml"
    book.write_text(
        "segments:\n  nordics: {field: country, in: [NO, SE, DK]}\n"
        "flows:\n  birthday:\n    trigger: {date: traits.birthday, at: 09:30}\n"
        "    steps: [{send: {campaign: birthday}}]\n",
        encoding="utf-8",
    )
    before = load_playbook(book)
    written = run("clv", "fit", str(events), "--write", str(book))
    assert written.exit_code == 0, written.stderr
    after = load_playbook(book)
    assert (after.segments, after.flows) == (before.segments, before.flows)


def test_schemas_export_without_a_directory_writes_json_schema_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = run("schemas", "export")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == [
        str(Path("json-schema") / f"{name}.schema.json") for name in SCHEMA_NAMES
    ]
    assert sorted(p.stem for p in (tmp_path / "json-schema").iterdir()) == [
        f"{name}.schema" for name in SCHEMA_NAMES
    ]


def test_a_dash_writes_to_stdout(
    events_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    backtest = run("backtest", str(events_file), "-o", "-")
    assert backtest.exit_code == 0, backtest.stderr
    assert [json.loads(raw) for raw in backtest.stdout.splitlines()] == expected_records(
        events_file
    )
    simulated = run("simulate", "--customers", "2", "-o", "-")
    assert simulated.exit_code == 0, simulated.stderr
    lines = simulated.stdout.splitlines()
    assert lines
    assert all(json.loads(raw)["event_id"] for raw in lines)
    assert simulated.stderr == f"wrote {len(lines)} events to -\n"
    assert not (tmp_path / "-").exists()


@pytest.mark.parametrize(
    ("command", "where"),
    [
        ("backtest {events} -o {tmp}/missing/out.jsonl", "{tmp}/missing/out.jsonl"),
        ("simulate --customers 2 -o {tmp}/missing/events.jsonl", "{tmp}/missing/events.jsonl"),
        ("schemas export {tmp}/a-file/schemas", "{tmp}/a-file/schemas"),
    ],
)
def test_a_path_the_system_refuses_is_one_line_not_a_traceback(
    command: str, where: str, events_file: Path, tmp_path: Path
) -> None:
    (tmp_path / "a-file").write_text("a file, not a directory\n", encoding="utf-8")
    argv = command.format(events=events_file, tmp=tmp_path).split()
    result = CliRunner().invoke(main, argv)
    assert result.exit_code == 1
    [line] = result.stderr.splitlines()
    assert line.startswith(f"Error: {where.format(tmp=tmp_path)}"), line
    assert result.exception is not None
    assert isinstance(result.exception, SystemExit)


def test_the_mailer_without_a_broker_says_so_in_one_line(tmp_path: Path) -> None:
    """Its own process, as a user runs it: an unstarted Kafka client left unclosed would
    add aiokafka's report to stderr when the interpreter exits."""
    import subprocess
    import sys

    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("LIFECYCLE_")},
        "LIFECYCLE_BROKER": "127.0.0.1:1",
        "LIFECYCLE_MAILER_OUTBOX": str(tmp_path / "outbox.sqlite3"),
        "LIFECYCLE_MAILER_BOUNCES": "true",
    }
    done = subprocess.run(
        [sys.executable, "-X", "dev", "-m", "cli", "mailer"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "Error: cannot connect to Kafka at 127.0.0.1:1 with PLAINTEXT: Unable connect to "
        "\"127.0.0.1:1\": [Errno 111] Connect call failed ('127.0.0.1', 1). Check "
        "LIFECYCLE_BROKER, LIFECYCLE_BROKER_SECURITY_PROTOCOL and LIFECYCLE_BROKER_SASL_* / "
        "_SSL_*."
    ]


@pytest.mark.parametrize(
    ("env", "line"),
    [
        (
            {"LIFECYCLE_WEB_PORT": "abc"},
            "invalid settings: LIFECYCLE_WEB_PORT: Input should be a valid integer, "
            "unable to parse string as an integer",
        ),
        (
            {"LIFECYCLE_PARTITIONS": "0", "LIFECYCLE_CLOCK": "later"},
            "invalid settings: LIFECYCLE_PARTITIONS: Input should be greater than or equal "
            "to 1; LIFECYCLE_CLOCK: Input should be 'wall' or 'event'",
        ),
        ({"LIFECYCLE_TOPICS": "{bad"}, "invalid settings: LIFECYCLE_TOPICS: not valid JSON"),
        (
            {"LIFECYCLE_TOPICS__PURCHASES": "orders"},
            "invalid settings: LIFECYCLE_TOPICS__PURCHASES: no such topic name (one of SIGNUP, "
            "BROWSE, CART, PURCHASE, ENGAGEMENT, PRIVACY, CUSTOM, TRANSITIONS, TRIGGERS, "
            "DEADLETTER, ATTRIBUTION, TICKS, MERGE, REPARTITION)",
        ),
        (
            {"LIFECYCLE_BROKER": "127.0.0.1:abc"},
            "invalid settings: LIFECYCLE_BROKER: '127.0.0.1:abc': the port must be a number "
            "from 1 to 65535",
        ),
        (
            {"LIFECYCLE_BROKER": "a:9092,[::1]:abc"},
            "invalid settings: LIFECYCLE_BROKER: '[::1]:abc': the port must be a number "
            "from 1 to 65535",
        ),
        (
            {"LIFECYCLE_EARLIEST_EVENT_TIME": "2025-01-01T00:00:00"},
            "invalid settings: LIFECYCLE_EARLIEST_EVENT_TIME: Input should have timezone info",
        ),
        (
            {"LIFECYCLE_ALLOWED_LATENESS": "inf", "LIFECYCLE_TICK_INTERVAL": "inf"},
            "invalid settings: LIFECYCLE_TICK_INTERVAL: Input should be a finite number; "
            "LIFECYCLE_ALLOWED_LATENESS: Input should be less than or equal to 31622400",
        ),
        (
            {"LIFECYCLE_BROKER_SASL_USERNAME": "shop"},
            "invalid settings: LIFECYCLE_BROKER_SASL_USERNAME is set but "
            "LIFECYCLE_BROKER_SECURITY_PROTOCOL is PLAINTEXT: set it to SASL_PLAINTEXT or SASL_SSL",
        ),
    ],
)
def test_a_bad_setting_is_one_line_naming_its_variable(env: dict[str, str], line: str) -> None:
    result = CliRunner().invoke(main, ["kafka", "status"], env=env)
    assert result.exit_code == 1
    assert result.stderr == f"Error: {line}\n"


@pytest.mark.parametrize(
    ("given", "problem"),
    [("nan", "nan is not a number"), ("1e300", "is not in the range")],
)
def test_backtest_refuses_a_lateness_that_is_no_number_of_seconds(
    events_file: Path, given: str, problem: str
) -> None:
    result = CliRunner().invoke(main, ["backtest", str(events_file), "--lateness", given])
    assert result.exit_code == 2
    assert "Invalid value for '--lateness'" in result.stderr
    assert problem in result.stderr


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"- a\n- b\n", "its top level is not a mapping"),
        (b"hello\n", "its top level is not a mapping"),
        (b"scores: 7\n", "its scores is not a mapping"),
        (b"\xff\xfescores: {}\n", "'utf-8' codec can't decode byte 0xff in position 0"),
        (b"flows: [\n  bad", "while parsing a flow sequence"),
    ],
)
def test_scores_are_not_written_over_a_file_that_is_no_playbook(
    events_file: Path, tmp_path: Path, content: bytes, problem: str
) -> None:
    book = tmp_path / "book.yaml"
    book.write_bytes(content)
    result = run("rfm", "calibrate", str(events_file), "--write", str(book), "--no-progress")
    assert result.exit_code == 1
    error = result.stderr.splitlines()[-1]  # after the calibration's own line
    assert error.startswith(f"Error: cannot set scores in {book}: ")
    assert problem in error
    assert book.read_bytes() == content


class _NotAWorker(http.server.BaseHTTPRequestHandler):
    """A web server that is no worker: an HTML 404, or a 200 that is not JSON."""

    def do_GET(self) -> None:
        found = self.path.endswith("/plain")
        self.send_response(200 if found else 404)
        self.send_header("Content-Type", "text/plain" if found else "text/html")
        self.end_headers()
        self.wfile.write(b"hello" if found else b"<html>Not Found</html>")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def not_a_worker() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NotAWorker)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


def test_customer_against_something_else_than_a_worker_says_so_in_one_line(
    not_a_worker: str,
) -> None:
    answers = {
        "http://[::1": "Error: no worker answers at http://[::1: ValueError: Invalid IPv6 URL",
        "http://127.0.0.1:abc": "Error: no worker answers at http://127.0.0.1:abc: "
        "InvalidURL: nonnumeric port: 'abc'",
        not_a_worker: f"Error: {not_a_worker} answered HTTP 404 (Not Found), not as a worker does",
    }
    for url, line in answers.items():
        result = CliRunner().invoke(main, ["customer", "X", "--url", url])
        assert (result.exit_code, result.stderr) == (1, line + "\n")
    result = CliRunner().invoke(main, ["customer", "plain", "--url", not_a_worker])
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: no worker answers at {not_a_worker}: JSONDecodeError")


def test_the_mailer_refuses_an_outbox_it_cannot_open(tmp_path: Path) -> None:
    not_a_database = tmp_path / "outbox.txt"
    not_a_database.write_bytes(b"a shop's notes, not the mailer's outbox" * 30)
    for outbox, problem in ((tmp_path, "unable to open database file"),
                            (not_a_database, "file is not a database")):  # fmt: skip
        env = {"LIFECYCLE_BROKER": "127.0.0.1:1", "LIFECYCLE_MAILER_OUTBOX": str(outbox)}
        result = CliRunner().invoke(main, ["mailer"], env=env)
        assert result.exit_code == 1
        assert result.stderr.splitlines()[-1] == (
            f"Error: cannot open the outbox {outbox} (LIFECYCLE_MAILER_OUTBOX): {problem}"
        )
    assert not_a_database.read_bytes().startswith(b"a shop's notes")


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (("--customers", "-5"), "Invalid value for '--customers': -5 is not in the range"),
        (("--days", "nan"), "Invalid value for '--days': nan is not a number"),
        (("--days", "1e300"), "Invalid value for '--days': 1e+300 is not in the range"),
        (("--duplicates", "5"), "Invalid value for '--duplicates': 5.0 is not in the range"),
        (("--rate", "-3"), "Invalid value for '--rate': -3.0 is not in the range"),
    ],
)
def test_simulate_refuses_numbers_out_of_range(
    tmp_path: Path, args: tuple[str, ...], problem: str
) -> None:
    result = CliRunner().invoke(main, ["simulate", *args, "-o", str(tmp_path / "s.jsonl")])
    assert result.exit_code == 2
    assert problem in result.stderr
    assert not (tmp_path / "s.jsonl").exists()


def test_simulate_refuses_a_bad_playbook_in_one_line(tmp_path: Path) -> None:
    book = tmp_path / "book.yaml"
    book.write_text("stages: [1]\n", encoding="utf-8")
    env = {"LIFECYCLE_PLAYBOOK": str(book)}
    args = ["simulate", "--customers", "3", "--welcome-effect", "0.5", "-o", str(tmp_path / "s")]
    result = CliRunner().invoke(main, args, env=env)
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: invalid playbook {book}: stages")
    assert len(result.stderr.splitlines()) == 1


def test_an_empty_playbook_setting_is_the_built_in_playbook(
    monkeypatch: pytest.MonkeyPatch, events_file: Path
) -> None:
    monkeypatch.setenv("LIFECYCLE_PLAYBOOK", "")
    assert cli_settings().playbook is None
    assert run("backtest", str(events_file)).exit_code == 0


def test_report_waits_at_least_a_second() -> None:
    result = CliRunner().invoke(main, ["report", "--timeout", "-5"])
    assert result.exit_code == 2
    assert "Invalid value for '--timeout'" in result.stderr


@pytest.mark.parametrize(
    "servers", ["kafka-1:9092,kafka-2:9092", "[::1]:9092", "2001:db8::a", "[2001:db8::a]", "k"]
)
def test_broker_forms_kafka_clients_take_are_accepted(servers: str) -> None:
    assert Settings(broker=servers).broker == servers


def test_customer_says_when_the_worker_does_not_answer_in_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def silent(*args: object, **kwargs: object) -> None:
        msg = "timed out"
        raise TimeoutError(msg)

    monkeypatch.setattr(urllib.request, "urlopen", silent)
    result = CliRunner().invoke(main, ["customer", "X", "--url", "http://127.0.0.1:9"])
    assert (result.exit_code, result.stderr) == (
        1,
        "Error: no worker answers at http://127.0.0.1:9: TimeoutError: timed out\n",
    )


@pytest.mark.parametrize("empty", ["", "  "])
def test_customer_without_an_id_is_a_usage_error(empty: str) -> None:
    result = run("customer", empty, "--url", "http://127.0.0.1:9")
    assert result.exit_code == 2
    assert "Invalid value for CUSTOMER_ID: a customer id is not empty" in result.stderr

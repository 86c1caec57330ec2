"""Events in, stages and triggers out, through a real worker on the real broker."""

from __future__ import annotations

import base64
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from analytics.period import Period
from analytics.report import Records, build_report
from analytics.simulation import simulate
from harness.engine import (
    OUTPUTS,
    Worker,
    backtest,
    collect,
    create_topics,
    publish,
    publish_raw,
    run_cli,
    scrape,
    stored_states,
    unique_settings,
    value,
)
from lifecycle.backtest import Output
from lifecycle.playbook import default_playbook
from schemas.codec import dumps, loads, to_jsonable
from streams.producer import route
from streams.settings import Settings


@pytest.fixture(scope="module")
def engine(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Settings, Worker]]:
    tmp = tmp_path_factory.mktemp("pipeline")
    settings = unique_settings(kafka_bootstrap, tmp)
    create_topics(settings)
    worker = Worker(settings, tmp / "worker.log").start()
    try:
        yield settings, worker
    finally:
        worker.stop()


def send_events(settings: Settings, events: list[dict[str, Any]]) -> None:
    """One at a time, each acknowledged before the next: a shop backend's order."""
    records: list[tuple[str, bytes | None, bytes]] = []
    for event in events:
        topic, key = route(event, settings)
        records.append((topic, key, dumps(event)))
    publish_raw(settings, records)


def as_records(settings: Settings, outputs: list[Output]) -> list[dict[str, Any]]:
    """The backtest's outputs as ``collect`` returns records (topic, key, value)."""
    return [
        {"topic": settings.topic(o.topic), "key": o.key, "value": to_jsonable(o.value)}
        for o in outputs
    ]


def expected_outputs(settings: Settings, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return as_records(settings, backtest(settings, events)[1])


def of_keys(records: list[dict[str, Any]], keys: set[str] | None = None) -> list[dict[str, Any]]:
    """Topic, key and value of the records (of ``keys`` only, if given)."""
    return [
        {"topic": r["topic"], "key": r["key"], "value": r["value"]}
        for r in records
        if keys is None or r["key"] in keys
    ]


def per_key(rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """Records grouped by (topic, key): the order Kafka defines, within one partition."""
    grouped: dict[str, list[Any]] = {}
    for row in rows:
        grouped.setdefault(f"{row['topic']}|{row['key']}", []).append(row["value"])
    return grouped


def trigger_metrics(settings: Settings) -> dict[tuple[str, str, str], float]:
    """``lifecycle_triggers_total`` from the worker's /metrics, by its three labels."""
    url = f"http://{settings.web_host}:{settings.web_port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.headers["Content-Type"].startswith("text/plain")
        text = response.read().decode()
    values: dict[tuple[str, str, str], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "lifecycle_triggers_total" and sample.value:
                labels = sample.labels
                values[(labels["campaign"], labels["outcome"], labels["reason"])] = sample.value
    return values


def journey(customer: str, anonymous: str) -> list[dict[str, Any]]:
    item = {"product_id": "p-7", "category": "tea", "quantity": 2, "unit_price": "12.50"}
    return [
        {
            "event_id": f"{anonymous}-b1",
            "type": "browse",
            "occurred_at": "2025-03-01T10:00:00Z",
            "anonymous_id": anonymous,
            "product_id": "p-7",
        },
        {
            "event_id": f"{customer}-s1",
            "type": "signup",
            "occurred_at": "2025-03-01T10:05:00+01:00",
            "customer_id": customer,
            "email": f"{customer}@mail.example",
            "first_name": "Ada",
            "locale": "de-DE",
            "timezone": "Europe/Berlin",
            "marketing_consent": True,
        },
        {
            "event_id": f"{customer}-p1",
            "type": "purchase",
            "occurred_at": "2025-03-02T12:00:00Z",
            "customer_id": customer,
            "order_id": f"{customer}-o1",
            "total": "25.00",
            "currency": "EUR",
            "items": [item],
        },
        {
            "event_id": f"{customer}-p2",
            "type": "purchase",
            "occurred_at": "2025-03-20T12:00:00Z",
            "customer_id": customer,
            "order_id": f"{customer}-o2",
            "total": "40.00",
            "currency": "EUR",
            "items": [item],
        },
    ]


def test_journey_gives_exact_transitions_and_triggers(engine: tuple[Settings, Worker]) -> None:
    settings, worker = engine
    events = journey("cust-j1", "anon-j1")
    send_events(settings, events)
    expected = expected_outputs(settings, events)
    records = collect(settings, OUTPUTS, expected=len(expected))
    got = of_keys(records, {"cust-j1", "anon-j1"})
    worker.assert_alive()

    transitions = [r["value"] for r in got if r["topic"] == settings.topic("transitions")]
    # Order is defined per key (partition), so the prospect's record sorts first here.
    transitions.sort(key=lambda t: t["customer_id"] != "anon-j1")
    assert [
        (t["customer_id"], t["from_stage"], t["to_stage"], t["reason"], t["caused_by"], t["at"])
        for t in transitions
    ] == [
        (
            "anon-j1",
            None,
            "prospect",
            "browse_without_signup",
            "anon-j1-b1",
            "2025-03-01T10:00:00Z",
        ),
        ("cust-j1", None, "lead", "signup", "cust-j1-s1", "2025-03-01T09:05:00Z"),
        (
            "cust-j1",
            "lead",
            "first_time_buyer",
            "first_purchase",
            "cust-j1-p1",
            "2025-03-02T12:00:00Z",
        ),
        (
            "cust-j1",
            "first_time_buyer",
            "repeat_customer",
            "repeat_purchase",
            "cust-j1-p2",
            "2025-03-20T12:00:00Z",
        ),
    ]
    assert transitions[3]["snapshot"]["orders"] == 2
    assert transitions[3]["snapshot"]["revenue"] == "65.00"  # the causing order included
    assert transitions[3]["snapshot"]["aov"] == "32.50"
    triggers = [r["value"] for r in got if r["topic"] == settings.topic("triggers")]
    assert [(t["campaign"], t["stage"], t["created_at"]) for t in triggers] == [
        ("welcome", "lead", "2025-03-01T09:05:00Z"),
        ("order_thank_you", "first_time_buyer", "2025-03-02T12:00:00Z"),
        ("review_request", "first_time_buyer", "2025-03-09T12:00:00Z"),  # a timer, 7 days on
        ("order_thank_you", "repeat_customer", "2025-03-20T12:00:00Z"),
    ]
    assert triggers[0]["payload"] == {
        "email": "cust-j1@mail.example",
        "first_name": "Ada",
        "locale": "de-DE",
        "segment": None,
        "clv": "0.00",
        "clv_tier": "low",
        "p_alive": None,
        "predicted_clv": None,
    }
    assert triggers[3]["payload"]["order_id"] == "cust-j1-o2"
    assert triggers[2]["payload"]["order_id"] == "cust-j1-o1"  # the review request names its order
    assert all(r["key"] == r["value"]["customer_id"] for r in got)
    # Field by field, every record equals the pure core's answer, in the same per-key order.
    assert per_key(got) == per_key(expected)


def test_duplicate_event_changes_nothing(engine: tuple[Settings, Worker]) -> None:
    settings, worker = engine
    events = journey("cust-d1", "anon-d1")
    send_events(settings, [*events, events[2], events[1]])  # purchase and signup redelivered
    expected = expected_outputs(settings, events)
    records = collect(settings, OUTPUTS, expected=len(expected) + 1)
    got = of_keys(records, {"cust-d1", "anon-d1"})
    worker.assert_alive()
    assert per_key(got) == per_key(expected)
    trigger_ids = [
        r["value"]["trigger_id"] for r in got if r["topic"] == settings.topic("triggers")
    ]
    assert len(trigger_ids) == len(set(trigger_ids)) == 4  # welcome, 2 thank-yous, a review request


BAD: list[tuple[str, str, bytes]] = [
    ("purchase", "invalid_json", b'{"event_id": "x1", "type": "purchase", '),
    ("purchase", "invalid_utf8", b'{"event_id": "x2\xff"}'),
    (
        "purchase",
        "missing_field",
        b'{"event_id":"x3","type":"purchase","occurred_at":"2025-03-01T10:00:00Z",'
        b'"customer_id":"cust-x","currency":"EUR","items":[]}',
    ),
    (
        "purchase",
        "invalid_field",
        b'{"event_id":"x4","type":"purchase","occurred_at":"2025-03-01T10:00:00Z",'
        b'"customer_id":"cust-x","order_id":"o","total":"lots","currency":"EUR","items":[]}',
    ),
    (
        "browse",
        "unknown_type",
        b'{"event_id":"x5","type":"teleport","occurred_at":"2025-03-01T10:00:00Z",'
        b'"customer_id":"cust-x"}',
    ),
    (
        "browse",
        "wrong_topic",
        b'{"event_id":"x6","type":"signup","occurred_at":"2025-03-01T10:00:00Z",'
        b'"customer_id":"cust-x","email":"x@mail.example"}',
    ),
    ("browse", "not_an_object", b"[1, 2, 3]"),
]


def test_bad_messages_go_to_the_dead_letter_topic(engine: tuple[Settings, Worker]) -> None:
    settings, worker = engine
    records: list[tuple[str, bytes | None, bytes]] = [
        (settings.topic(topic), b"cust-x", value) for topic, _, value in BAD
    ]
    mismatched = (
        b'{"event_id":"x7","type":"browse","occurred_at":"2025-03-01T10:00:00Z",'
        b'"customer_id":"cust-x"}'
    )
    records.append((settings.topic("browse"), b"someone-else", mismatched))
    valid = journey("cust-x", "anon-x")[1]  # a good signup after all the bad ones
    records.append((settings.topic("signup"), b"cust-x", dumps(valid)))
    publish_raw(settings, records)

    letters = [
        r
        for r in collect(settings, ["deadletter"], expected=len(BAD) + 1)
        if r["value"]["key"] in ("cust-x", "someone-else")
    ]
    outputs = of_keys(
        collect(settings, ["transitions", "triggers"], expected=1, quiet=1), {"cust-x"}
    )
    worker.assert_alive()

    # Invalid messages are dead-lettered on arrival, so across source topics the
    # order is the broker's; match each letter to the message it holds.
    assert len(letters) == len(BAD) + 1
    by_raw = {
        (d["value"]["value"] if d["value"]["value_encoding"] == "utf-8" else "b64"): d["value"]
        for d in letters
    }
    for topic, reason, raw in BAD:
        value = by_raw["b64" if reason == "invalid_utf8" else raw.decode()]
        assert (value["reason"], value["topic"], value["key"]) == (
            reason,
            settings.topic(topic),
            "cust-x",
        )
        assert isinstance(value["partition"], int)
        assert isinstance(value["offset"], int)
        assert value["message"]
        assert value["at"].endswith("Z")
    assert by_raw[mismatched.decode()]["reason"] == "key_mismatch"
    assert by_raw[mismatched.decode()]["key"] == "someone-else"
    assert base64.b64decode(by_raw["b64"]["value"]) == BAD[1][2]
    assert sorted(o["value"].get("to_stage") or o["value"]["campaign"] for o in outputs) == [
        "lead",
        "welcome",
    ]


def test_worker_log_has_no_personal_data(engine: tuple[Settings, Worker]) -> None:
    """Runs after the journeys above in this module: their emails and names never logged."""
    _, worker = engine
    log = worker.log_text()
    assert "dead-lettered" in log  # the log is real and covers the bad-input test
    for personal in ("cust-j1@mail.example", "cust-x@mail.example", "Ada", "x@mail.example"):
        assert personal not in log


def test_a_debug_log_has_no_personal_data_either(kafka_bootstrap: str, tmp_path: Path) -> None:
    """At LIFECYCLE_LOG_LEVEL=debug the engine says more, but the Kafka client's dumps of
    the records it fetches and produces (emails, names) stay out of the log."""
    settings = unique_settings(kafka_bootstrap, tmp_path)
    create_topics(settings)
    signup = {  # the personal fields first: a client's dump shows a record's first bytes
        "email": "debug-marker@mail.example",
        "first_name": "Debugmarker",
        "event_id": "dbg-1",
        "type": "signup",
        "occurred_at": "2025-03-01T10:00:00Z",
        "customer_id": "cust-dbg",
        "marketing_consent": True,
    }
    worker = Worker(settings, tmp_path / "worker.log", env={"LIFECYCLE_LOG_LEVEL": "debug"})
    worker.start()
    try:
        assert publish(settings, [signup]) == 1
        outputs = collect(settings, ["transitions", "triggers"], expected=2, quiet=1)
        assert {o["key"] for o in outputs} == {"cust-dbg"}
        worker.assert_alive()
    finally:
        worker.stop()
    log = worker.log_text()
    assert "[DEBUG]" in log  # a debug log indeed
    for personal in ("debug-marker", "Debugmarker", "cust-dbg"):  # dumps cut values short
        assert personal not in log


def test_kafka_path_equals_backtest_on_simulated_shop(kafka_bootstrap: str, tmp_path: Path) -> None:
    """A few hundred simulated customers, published, then consumed by a fresh worker."""
    settings = unique_settings(kafka_bootstrap, tmp_path)
    create_topics(settings)
    events = list(simulate(150, seed=11, duplicate_rate=0.02))
    assert publish(settings, events) == len(events)
    runner, outputs = backtest(settings, events)
    expected = as_records(settings, outputs)
    worker = Worker(settings, tmp_path / "worker.log").start()
    try:
        records = collect(settings, OUTPUTS, expected=len(expected))
        worker.assert_alive()
        metrics = trigger_metrics(settings)
    finally:
        worker.stop()
    got = of_keys(records)
    assert len(expected) > 300
    # Every decision is on /metrics, suppressed ones by reason, as the backtest counts them.
    summary = runner.summary
    counted: dict[tuple[str, str, str], float] = {}
    for campaign, total in summary.triggers_by_campaign.items():
        held = summary.held_out_by_campaign[campaign]
        counted[(campaign, "emitted", "")] = total - held
        if held:
            counted[(campaign, "held_out", "")] = held
    for key, n in summary.suppressed.items():
        campaign, reason = key.split(":")
        counted[(campaign, "suppressed", reason)] = n
    assert metrics == {k: float(v) for k, v in counted.items() if v}
    assert any(outcome == "suppressed" for _, outcome, _ in metrics)
    # The records too: prospects merged into customers across partitions, timers, all.
    assert runner.summary.merges > 20
    assert stored_states(settings) == {k: to_jsonable(s) for k, s in runner.states.items()}

    # Same records, and per customer and topic in the same order.
    assert per_key(got) == per_key(expected)
    assert any(r["topic"] == settings.topic("attribution") for r in got)

    # The same events give the same report through the broker as through the backtest.
    records = Records.of_backtest(
        [dumps(e) for e in events], outputs, runner.limits, runner.received_at
    )
    for period in (
        Period(),
        Period(datetime(2025, 4, 1, tzinfo=UTC), datetime(2025, 10, 1, tzinfo=UTC)),
    ):
        args = [f"--{k}={v}" for k, v in period.as_dict().items() if v is not None]
        ran = run_cli(settings, "report", "--json", *args)
        assert ran.returncode == 0, ran.stderr
        want = loads(dumps(build_report(records, period, default_playbook()).as_dict()))
        assert loads(ran.stdout) == want
        assert want["kpis"]["orders"] > 0
        assert any(c["treated"]["customers"] for c in want["campaigns"])


def test_read_ahead_bound_keeps_a_replay_exact(kafka_bootstrap: str, tmp_path: Path) -> None:
    """A backlog read with ``LIFECYCLE_READ_AHEAD`` at its least: topic-partitions are
    paused and resumed all the way through, and the outputs and records are still
    the backtest's, with nothing left held."""
    settings = unique_settings(kafka_bootstrap, tmp_path)
    create_topics(settings)
    events = list(simulate(60, seed=5))
    assert publish(settings, events) == len(events)
    runner, outputs = backtest(settings, events)
    expected = as_records(settings, outputs)
    worker = Worker(settings, tmp_path / "worker.log", env={"LIFECYCLE_READ_AHEAD": "2"})
    worker.start()
    try:
        records = collect(settings, OUTPUTS, expected=len(expected))
        worker.assert_alive()
        samples = scrape(settings)
    finally:
        worker.stop()
    got = of_keys(records)
    assert per_key(got) == per_key(expected)
    assert stored_states(settings) == {k: to_jsonable(s) for k, s in runner.states.items()}
    assert value(samples, "lifecycle_fetch_pauses_total") > 10
    assert value(samples, "lifecycle_merge_held") == 0

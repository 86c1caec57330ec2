"""The flow counters: one outcome's increments, the per-flow tally, the backtest's table
and JSON, and /metrics, all from the same increments so they give the same numbers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from agents.cluster_summary import Answer, merge
from agents.metrics import EngineMetrics
from lifecycle.backtest import Backtest, Output
from lifecycle.core import Outcome
from lifecycle.flows.counts import FlowEvent
from lifecycle.flows.tally import FlowCount, FlowCounts, flow_counts
from lifecycle.playbook import Playbook, parse_playbook
from lifecycle.policy import Suppression
from schemas.codec import dumps
from schemas.records import Attribution, Trigger

AT = datetime(2026, 3, 1, 10, tzinfo=UTC)


def trigger(flow: str, campaign: str, *, holdout: bool = False, step: str = "1") -> Trigger:
    return Trigger(
        trigger_id=f"t-{flow}-{campaign}-{holdout}",
        customer_id="c1",
        campaign=campaign,
        flow=flow,
        step=step,
        channel="email",
        stage=None,
        created_at=AT,
        send_after=AT,
        variant="A",
        holdout=holdout,
        payload={},
    )


def suppression(flow: str, campaign: str, reason: str) -> Suppression:
    return Suppression("c1", campaign, reason, "e1", f"s-{flow}", "A", flow, "1")


def cart_outcomes() -> list[Outcome]:
    """A cart series and a replenishment flow over three causes: every kind of count."""
    return [
        Outcome(
            state=None,
            flow_events=[
                FlowEvent("cart_series", "entered"),
                FlowEvent("replenish", "skipped", "re_entry"),
            ],
        ),
        Outcome(
            state=None,
            emitted=[
                trigger("cart_series", "cart_1"),
                trigger("replenish", "replenish", holdout=True),
            ],
            suppressed=[
                suppression("cart_series", "cart_2", "frequency_cap"),
                suppression("", "legacy", "no_consent"),  # no flow: not a flow's
            ],
        ),
        Outcome(
            state=None,
            emitted=[trigger("cart_series", "cart_2_vip", step="3.then.0")],
            suppressed=[suppression("replenish", "replenish", "no_consent")],
            flow_events=[
                FlowEvent("cart_series", "exited", "exit_on"),
                FlowEvent("cart_series", "entered"),
                FlowEvent("replenish", "exited", "completed"),
                FlowEvent("cart_series", "skipped", "running"),
            ],
        ),
    ]


EXPECTED = {
    "cart_series": {
        "entered": 2,
        "exited": {"exit_on": 1},
        "sent": 2,
        "held_out": 0,
        "suppressed": {"frequency_cap": 1},
        "skipped": {"running": 1},
    },
    "replenish": {
        "entered": 0,
        "exited": {"completed": 1},
        "sent": 0,
        "held_out": 1,
        "suppressed": {"no_consent": 1},
        "skipped": {"re_entry": 1},
    },
}


def test_an_outcome_counts_its_flow_events_triggers_and_suppressions_once() -> None:
    assert list(flow_counts(cart_outcomes()[2])) == [
        FlowCount("exited", "cart_series", "exit_on"),
        FlowCount("entered", "cart_series"),
        FlowCount("exited", "replenish", "completed"),
        FlowCount("skipped", "cart_series", "running"),
        FlowCount("sent", "cart_series"),
        FlowCount("suppressed", "replenish", "no_consent"),
    ]
    assert list(flow_counts(cart_outcomes()[1])) == [
        FlowCount("sent", "cart_series"),
        FlowCount("held_out", "replenish"),
        FlowCount("suppressed", "cart_series", "frequency_cap"),
    ]


def test_the_tally_per_flow() -> None:
    counts = FlowCounts(["birthday"])  # named at the start: a row of zeros
    for outcome in cart_outcomes():
        counts.count(outcome)
    assert counts.as_dict() == {
        "birthday": {
            "entered": 0,
            "exited": {},
            "sent": 0,
            "held_out": 0,
            "suppressed": {},
            "skipped": {},
        },
        **EXPECTED,
    }


def test_counting_an_outcome_adds_exactly_the_increments_of_flow_counts() -> None:
    counted, added = FlowCounts(), FlowCounts()
    for outcome in cart_outcomes():
        counted.count(outcome)
        for count in flow_counts(outcome):
            added.add(count)
    assert counted.as_dict() == added.as_dict() == EXPECTED


def test_the_table_shows_each_reason_and_a_dash_for_none() -> None:
    counts = FlowCounts(["birthday"])
    for outcome in cart_outcomes():
        counts.count(outcome)
    counts["cart_series"].add("exited", "completed", 3)
    assert counts.table().splitlines() == [
        "flow         entered  exited                  sent  held out  suppressed       skipped",
        "birthday           0  -                          0         0  -                -",
        "cart_series        2  completed 3, exit_on 1     2         0  frequency_cap 1  running 1",
        "replenish          0  completed 1                0         1  no_consent 1     re_entry 1",
    ]


def test_summaries_add_up() -> None:
    one, two = FlowCounts(), FlowCounts(["birthday"])
    outcomes = cart_outcomes()
    one.count(outcomes[0])
    for outcome in outcomes[1:]:
        two.count(outcome)
    whole = FlowCounts(["birthday"])
    for outcome in outcomes:
        whole.count(outcome)
    assert FlowCounts.of([one.as_dict(), two.as_dict()]).as_dict() == whole.as_dict()


FLOWS_YAML = """
flows:
  cart_series:
    trigger: {event: cart, where: {action: add}}
    exit_on: [{event: purchase}]
    steps: [{wait: 1h}, {send: {campaign: cart_1}}]
  replenish:
    trigger: {event: purchase}
    steps: [{wait: 25d}, {send: {campaign: replenish}}]
  birthday: {trigger: {date: traits.birthday, at: "09:00"}, steps: [{send: {campaign: birthday}}]}
  dormant: {enabled: false, trigger: {event: browse}, steps: [{send: {campaign: dormant}}]}
"""


class FedBacktest(Backtest):
    """A backtest whose outcomes are fed by hand (the interpreter is not asked: the
    counters are what is tested), recorded as the backtest records the core's."""

    def feed(self, key: str, outcome: Outcome) -> None:
        self._record(key, outcome)


@pytest.fixture
def runner() -> Backtest:
    runner = FedBacktest(parse_playbook(FLOWS_YAML))
    for outcome in cart_outcomes():
        runner.feed("c1", outcome)
    return runner


ZERO = {"entered": 0, "exited": {}, "sent": 0, "held_out": 0, "suppressed": {}, "skipped": {}}


def test_the_backtest_json_has_flows_and_every_enabled_flow_shows(runner: Backtest) -> None:
    builtin = {name: ZERO for name, flow in runner.playbook.flows.items() if flow.builtin}
    assert len(builtin) == 11
    assert runner.summary.as_dict()["flows"] == {**builtin, "birthday": ZERO, **EXPECTED}
    assert "dormant" not in runner.summary.flows.flows  # turned off: not a row


def samples(
    metrics: EngineMetrics, prefix: str
) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(metrics.exposition().decode())
        for s in family.samples
        if s.name.startswith(prefix) and s.name.endswith("_total")
    }


def test_the_metrics_names_and_labels() -> None:
    metrics = EngineMetrics()
    for outcome in cart_outcomes():
        metrics.count(outcome)
    cart, refill = (("flow", "cart_series"),), (("flow", "replenish"),)
    assert samples(metrics, "lifecycle_flow_") == {
        ("lifecycle_flow_entered_total", cart): 2.0,
        ("lifecycle_flow_exited_total", (*cart, ("reason", "exit_on"))): 1.0,
        ("lifecycle_flow_exited_total", (*refill, ("reason", "completed"))): 1.0,
        ("lifecycle_flow_sent_total", cart): 2.0,
        ("lifecycle_flow_held_out_total", refill): 1.0,
        ("lifecycle_flow_suppressed_total", (*cart, ("reason", "frequency_cap"))): 1.0,
        ("lifecycle_flow_suppressed_total", (*refill, ("reason", "no_consent"))): 1.0,
        ("lifecycle_flow_skipped_total", (*cart, ("reason", "running"))): 1.0,
        ("lifecycle_flow_skipped_total", (*refill, ("reason", "re_entry"))): 1.0,
    }


def test_the_backtest_and_the_metrics_give_the_same_numbers(runner: Backtest) -> None:
    metrics = EngineMetrics()
    enabled = [name for name, flow in runner.playbook.flows.items() if flow.enabled]
    metrics.flows_known(enabled)  # as the worker does
    for outcome in cart_outcomes():
        metrics.count(outcome)
    assert metrics.summary()["flows"] == runner.summary.as_dict()["flows"]
    # Two workers that each saw part of it, merged for the dashboard, say the same.
    first, second = EngineMetrics(), EngineMetrics()
    first.count(cart_outcomes()[0])
    for outcome in cart_outcomes()[1:]:
        second.count(outcome)
    second.flows_known(enabled)
    merged = merge(
        [
            Answer("http://a:1", dict(first.summary(), at=1.0)),
            Answer("http://b:2", dict(second.summary(), at=1.0)),
        ],
        "http://a:1",
        2.0,
    )
    assert merged["flows"] == runner.summary.as_dict()["flows"]


def test_a_worker_without_flow_figures_adds_none() -> None:
    metrics = EngineMetrics()
    for outcome in cart_outcomes():
        metrics.count(outcome)
    new = dict(metrics.summary(), at=1.0)
    old = {k: v for k, v in new.items() if k not in ("flows", "flow_lift")}
    merged = merge([Answer("http://a:1", new), Answer("http://b:2", old)], "http://a:1", 2.0)
    assert merged["flows"] == EXPECTED


def attribution(flow: str, campaign: str, group: str, converted: bool, n: int) -> Attribution:
    return Attribution(
        attribution_id=f"a{n}",
        trigger_id=f"t{n}",
        customer_id=f"c{n}",
        campaign=campaign,
        flow=flow,
        variant="A",
        group=group,  # type: ignore[arg-type]
        reason=None,
        goal="purchase",
        opened_at=AT,
        closes_at=AT,
        converted=converted,
        conversions=(),
        revenue=Decimal(0),
        at=AT,
    )


def test_flow_lift_on_the_dashboard_counts_a_flows_sends_together() -> None:
    """cart_series sends cart_1 and cart_2: its lift is over both campaigns' decisions."""
    metrics = EngineMetrics()
    n = 0
    for campaign, group, converted, count in (
        ("cart_1", "treated", True, 30),
        ("cart_1", "treated", False, 70),
        ("cart_2", "treated", True, 20),
        ("cart_2", "treated", False, 80),
        ("cart_1", "holdout", True, 4),
        ("cart_1", "holdout", False, 36),
    ):
        for _ in range(count):
            n += 1
            metrics.count(
                Outcome(
                    state=None, emitted=[attribution("cart_series", campaign, group, converted, n)]
                )
            )
    summary = metrics.summary()
    flow = summary["flow_lift"]["cart_series"]
    assert flow["treated"] == {"decisions": 200, "converted": 50, "rate": 0.25}
    assert flow["holdout"] == {"decisions": 40, "converted": 4, "rate": 0.1}
    assert flow["lift"]["conversion_rate"]["estimate"] == 0.15
    assert set(summary["lift"]) == {"cart_1", "cart_2"}
    assert summary["lift"]["cart_2"]["holdout"]["decisions"] == 0


class MeteredBacktest(Backtest):
    """The backtest, every outcome also counted by a worker's metrics."""

    def __init__(self, playbook: Playbook) -> None:
        super().__init__(playbook)
        self.metrics = EngineMetrics()
        self.metrics.flows_known(name for name, f in playbook.flows.items() if f.enabled)

    def _record(self, key: str, outcome: Outcome) -> list[Output]:
        self.metrics.count(outcome)
        return super()._record(key, outcome)


def event(type_: str, n: int, minute: int, **fields: Any) -> bytes:
    at = (AT + timedelta(minutes=minute)).isoformat()
    body = {"type": type_, "event_id": f"e{n}", "occurred_at": at, "customer_id": "c1"}
    return dumps({**body, **fields})


def test_the_interpreters_runs_counted_in_the_backtest_and_the_metrics_alike() -> None:
    playbook = parse_playbook(
        "policies: {default_holdout: 0}\n"
        "flows:\n"
        "  nudge:\n"
        "    trigger: {event: cart, where: {action: add}}\n"
        "    on_retrigger: ignore\n"
        "    exit_on: [{event: purchase}]\n"
        "    steps: [{wait: 3h}, {send: {campaign: nudge}}]\n"
    )
    item = {"product_id": "p1", "quantity": 1, "unit_price": "10.00", "currency": "EUR"}
    lines = [
        event("signup", 1, 0, email="c1@mail.example", marketing_consent=True),
        event("cart", 2, 60, action="add", cart_id="k1", **item),
        event("cart", 3, 70, action="add", cart_id="k1", **item),
        event("purchase", 4, 90, order_id="o1", total="20.00", currency="EUR",
              items=[{"product_id": "p1", "quantity": 2, "unit_price": "10.00"}]),
        event("privacy", 5, 120, action="erase"),
    ]  # fmt: skip
    runner = MeteredBacktest(playbook)
    list(runner.run(lines))

    def ran(entered: int, sent: int = 0, **by: dict[str, int]) -> dict[str, Any]:
        return {**ZERO, "entered": entered, "sent": sent, **by}

    got = runner.summary.as_dict()["flows"]
    assert {name: figures for name, figures in got.items() if figures != ZERO} == {
        "welcome": ran(1, 1, exited={"completed": 1}),
        "cart_abandonment": ran(2, exited={"exit_on": 1, "restarted": 1}),
        "nudge": ran(1, exited={"exit_on": 1}, skipped={"running": 1}),
        "order_thank_you": ran(1, 1, exited={"completed": 1}),
        "review_request": ran(1, exited={"erased": 1}),
        "second_purchase_nudge": ran(1, exited={"erased": 1}),
    }
    assert runner.metrics.summary()["flows"] == got

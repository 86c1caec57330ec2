"""Metrics: each decision counted once, by campaign, outcome and reason."""

from __future__ import annotations

from datetime import UTC, datetime

from prometheus_client.parser import text_string_to_metric_families

from agents.metrics import EngineMetrics, timer_label
from analytics.stats import compare_rates
from lifecycle.core import Due, apply
from lifecycle.playbook import default_playbook
from lifecycle.policy import in_holdout
from schemas.events import EventAdapter
from schemas.records import Campaign


def test_an_outcome_is_counted_by_campaign_outcome_and_reason() -> None:
    signup = {
        "event_id": "e1",
        "type": "signup",
        "occurred_at": "2026-03-01T10:00:00Z",
        "customer_id": "c1",
        "email": "c1@mail.example",
    }  # no consent: welcome is suppressed
    outcome = apply(None, EventAdapter.validate_python(signup), default_playbook())
    metrics = EngineMetrics()
    metrics.count(outcome)
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(metrics.exposition().decode())
        for s in family.samples
        if s.name.endswith("_total") and s.value  # counters without labels show 0
    }
    assert samples == {
        (
            "lifecycle_triggers_total",
            (("campaign", "welcome"), ("outcome", "suppressed"), ("reason", "no_consent")),
        ): 1.0,
        (
            "lifecycle_transitions_total",
            (("from_stage", "none"), ("to_stage", "lead")),
        ): 1.0,
        # The welcome flow ran (entered, its one step done) and its send was suppressed.
        ("lifecycle_flow_entered_total", (("flow", "welcome"),)): 1.0,
        (
            "lifecycle_flow_exited_total",
            (("flow", "welcome"), ("reason", "completed")),
        ): 1.0,
        (
            "lifecycle_flow_suppressed_total",
            (("flow", "welcome"), ("reason", "no_consent")),
        ): 1.0,
    }


def test_attribution_is_counted_live_and_when_the_window_closes() -> None:
    playbook = default_playbook()
    customer = next(f"c{n}" for n in range(100) if not in_holdout(Campaign.WELCOME, f"c{n}", 0.10))
    events = [
        {
            "event_id": "e1",
            "type": "signup",
            "occurred_at": "2026-03-01T10:00:00Z",
            "customer_id": customer,
            "email": "c@mail.example",
            "marketing_consent": True,
        },
        {
            "event_id": "e2",
            "type": "purchase",
            "occurred_at": "2026-03-02T10:00:00Z",
            "customer_id": customer,
            "order_id": "o1",
            "total": "19.90",
            "currency": "EUR",
        },
    ]
    metrics = EngineMetrics()
    state = None
    for body in events:
        outcome = apply(state, EventAdapter.validate_python(body), playbook)
        metrics.count(outcome)
        state = outcome.state
    assert state is not None
    metrics.count(apply(state, Due(datetime(2026, 3, 9, tzinfo=UTC)), playbook))
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(metrics.exposition().decode())
        for s in family.samples
        if s.name.startswith(("lifecycle_conversions", "lifecycle_attributed"))
        and s.name.endswith("_total")
    }
    labels = (("campaign", "welcome"), ("group", "treated"), ("variant", "A"))
    assert samples == {
        ("lifecycle_conversions_total", labels): 1.0,
        (
            "lifecycle_attributed_triggers_total",
            (*labels[:1], ("converted", "true"), *labels[1:]),
        ): 1.0,
        ("lifecycle_attributed_revenue_total", labels): 19.9,
    }
    welcome = metrics.summary()["lift"]["welcome"]
    assert welcome["treated"] == {"decisions": 1, "converted": 1, "rate": 1.0}
    assert welcome["lift"] == {"too_small": "fewer than 30 customers in a group"}


def test_a_batch_counted_at_once_counts_as_each_outcome_alone() -> None:
    """A commit counts its outcomes together, each counter incremented once per batch."""
    playbook = default_playbook()
    outcomes = []
    for n in range(40):
        signup = {
            "event_id": f"s{n}",
            "type": "signup",
            "occurred_at": "2026-03-01T10:00:00Z",
            "customer_id": f"c{n}",
            "email": f"c{n}@mail.example",
            "marketing_consent": n % 3 != 0,
        }
        outcome = apply(None, EventAdapter.validate_python(signup), playbook)
        buy = {
            "event_id": f"p{n}",
            "type": "purchase",
            "occurred_at": "2026-03-02T10:00:00Z",
            "customer_id": f"c{n}",
            "order_id": f"o{n}",
            "total": f"{10 + n}.25",
            "currency": "EUR",
        }
        state = outcome.state
        outcomes.append(outcome)
        outcome = apply(state, EventAdapter.validate_python(buy), playbook)
        outcomes.append(outcome)
        outcomes.append(apply(outcome.state, Due(datetime(2026, 3, 30, tzinfo=UTC)), playbook))
    together, alone = EngineMetrics(), EngineMetrics()
    together.count(*outcomes)
    for outcome in outcomes:
        alone.count(outcome)

    def totals(metrics: EngineMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        return {
            (s.name, tuple(sorted(s.labels.items()))): round(s.value, 6)
            for family in text_string_to_metric_families(metrics.exposition().decode())
            for s in family.samples
            if s.name.endswith("_total")
        }

    counted = totals(together)
    assert counted == totals(alone)
    leads = ("lifecycle_transitions_total", (("from_stage", "none"), ("to_stage", "lead")))
    assert counted[leads] == 40
    revenue = [v for (n, _), v in counted.items() if n == "lifecycle_attributed_revenue_total"]
    assert sum(revenue) > 0


def test_the_dashboard_lift_is_the_named_test_on_the_counters() -> None:
    metrics = EngineMetrics()
    for group, converted, total in (("treated", 300, 1000), ("holdout", 20, 100)):
        metrics.attributed.labels("win_back", "A", group, "true").inc(converted)
        metrics.attributed.labels("win_back", "A", group, "false").inc(total - converted)
    lift = metrics.summary()["lift"]["win_back"]["lift"]["conversion_rate"]
    expected = compare_rates(300, 1000, 20, 100)
    assert lift["estimate"] == round(expected.estimate, 6) == 0.1
    assert (lift["low"], lift["high"]) == (round(expected.low, 6), round(expected.high, 6))
    assert lift["p_value"] == round(expected.p_value, 6)


def test_a_fired_timer_is_labelled_by_its_kind_or_its_flow() -> None:
    assert [
        timer_label(name)
        for name in (
            "at_risk",
            "churned",
            "attribution:0123abcd",
            "flow:cart_abandonment",
            "flow:review_request:o-1:x",
            "date:birthday",
        )
    ] == ["at_risk", "churned", "attribution", "cart_abandonment", "review_request", "birthday"]

"""Metrics: each decision counted once, by campaign, outcome and reason."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from agents.metrics import EngineMetrics
from lifecycle.core import apply
from lifecycle.playbook import default_playbook
from schemas.events import EventAdapter


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
        if s.name.endswith("_total")
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
    }

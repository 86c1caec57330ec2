"""Prometheus metrics of one worker, at ``/metrics`` on its web server.

Counted where the agent hands a core Outcome to Kafka, so every decision is
visible, suppressed ones included, with the same reason codes the backtest
prints. Counters are per process (at-least-once: a redelivered event that
re-sends the same ids counts again); Prometheus sums the workers.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest

from lifecycle.core import Outcome

__all__ = ["EngineMetrics"]

# aiohttp takes the charset apart from the type; the exposition is ASCII anyway.
_CONTENT_TYPE = CONTENT_TYPE_LATEST.split("; charset")[0]


class EngineMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.triggers = Counter(
            "lifecycle_triggers",
            "Trigger decisions by campaign and outcome (emitted, held_out, suppressed) "
            "and, for suppressed ones, the policy's reason.",
            ["campaign", "outcome", "reason"],
            registry=self.registry,
        )
        self.transitions = Counter(
            "lifecycle_transitions",
            "Stage transitions by from and to stage.",
            ["from_stage", "to_stage"],
            registry=self.registry,
        )

    def count(self, outcome: Outcome) -> None:
        for transition in outcome.transitions:
            origin = transition.from_stage.value if transition.from_stage else "none"
            self.transitions.labels(origin, transition.to_stage.value).inc()
        for trigger in outcome.triggers:
            result = "held_out" if trigger.holdout else "emitted"
            self.triggers.labels(trigger.campaign.value, result, "").inc()
        for suppression in outcome.suppressed:
            self.triggers.labels(suppression.campaign.value, "suppressed", suppression.reason).inc()

    def exposition(self) -> bytes:
        return bytes(generate_latest(self.registry))

    def serve(self, app: Any) -> None:
        """Add ``GET /metrics`` to the Faust app's web server."""
        metrics = self

        async def get_metrics(view: Any, _request: Any) -> Any:
            return view.bytes(metrics.exposition(), content_type=_CONTENT_TYPE)

        app.page("/metrics", name="metrics")(get_metrics)

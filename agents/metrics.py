"""Prometheus metrics of one worker, at ``/metrics`` on its web server.

Counted where the agent hands a core Outcome to Kafka, so every decision is
visible, suppressed ones included, with the same reason codes the backtest
prints; the flow counters are the backtest's flow table, from the same
increments (``lifecycle.flows.tally``). Counters are per process
(at-least-once: a redelivered event that re-sends the same ids counts again);
Prometheus sums the workers.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from analytics.lift import rate_lift
from lifecycle.core import Outcome
from lifecycle.flows.tally import MEASURES, REASONED, FlowCounts, Measure, flow_counts
from schemas.records import Attribution, Transition, Trigger
from streams.lag import PartitionLag
from streams.turns import SLICE, Turns

__all__ = ["BatchCounts", "EngineMetrics", "lift_of", "timer_label"]

# aiohttp takes the charset apart from the type; the exposition is ASCII anyway.
_CONTENT_TYPE = CONTENT_TYPE_LATEST.split("; charset")[0]


def lift_of(groups: dict[str, list[float]]) -> dict[str, Any]:
    """A campaign's closed windows per group ([converted, decisions] each), and treated
    against holdout."""
    counts = {g: (int(groups.get(g, [0, 0])[0]), int(groups.get(g, [0, 0])[1])) for g in _GROUPS}
    rows: dict[str, Any] = {
        g: {"decisions": n, "converted": x, "rate": round(x / n, 6) if n else None}
        for g, (x, n) in counts.items()
    }
    return {**rows, "lift": rate_lift(counts["treated"], counts["holdout"])}


_GROUPS = ("treated", "holdout", "suppressed")

_FLOW_HELP: dict[Measure, str] = {
    "entered": "Runs of a flow started (a restart starts a new run).",
    "exited": "Runs of a flow ended, by reason: completed, exit_on, filters, restarted, "
    "flow_changed, erased, merged.",
    "sent": "Trigger records a flow emitted to be sent (not held out).",
    "held_out": "Trigger records a flow emitted with holdout=true (its run is in the holdout).",
    "suppressed": "Sends of a flow a policy stopped, by the policy's reason.",
    "skipped": "Starts of a flow that started no run, by reason: re_entry, running, per_missing.",
}
_FLOW_SAMPLES: dict[str, Measure] = {f"lifecycle_flow_{m}_total": m for m in MEASURES}


def timer_label(name: str) -> str:
    """A fired timer's label: its kind (``at_risk``, ``churned``, ``attribution``), or for a
    flow's wait or date the flow's name, so the label set stays as small as the playbook."""
    kind, _, rest = name.partition(":")
    if kind in ("flow", "date"):
        return rest.partition(":")[0]
    return kind


class EngineMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._children: dict[tuple[Any, tuple[str, ...]], Any] = {}
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
        self.events = Counter(
            "lifecycle_events",
            "Inbound messages by event type and outcome (accepted, duplicate, "
            "dead_lettered); dead letters carry their reason code.",
            ["type", "outcome", "reason"],
            registry=self.registry,
        )
        self.customers = Gauge(
            "lifecycle_customers",
            "Customers held by this worker, by stage.",
            ["stage"],
            registry=self.registry,
        )
        self.timers_pending = Gauge(
            "lifecycle_timers_pending",
            "Customers with a pending deadline in this worker's timer heaps.",
            registry=self.registry,
        )
        self.held = Gauge(
            "lifecycle_merge_held",
            "Messages read but not applied yet: the merge holds them until every topic "
            "of their partition can say what comes first.",
            registry=self.registry,
        )
        self.fetch_pauses = Counter(
            "lifecycle_fetch_pauses",
            "Times a topic-partition stopped being fetched because the merge held "
            "LIFECYCLE_READ_AHEAD of its messages.",
            registry=self.registry,
        )
        self.misrouted = Counter(
            "lifecycle_misrouted",
            "Inbound records found on a partition their key does not hash to under "
            "LIFECYCLE_INPUT_PARTITIONER: the producers partition otherwise, and identity "
            "merges of those customers fail (the worker's log says which scheme fits).",
            ["topic"],
            registry=self.registry,
        )
        self.timers_fired = Counter(
            "lifecycle_timers_fired",
            "Timers fired, by timer.",
            ["timer"],
            registry=self.registry,
        )
        self.traits_dropped = Counter(
            "lifecycle_traits_dropped",
            "Trait names a signup or identify added to a record that already kept "
            "the most it keeps (100): dropped.",
            registry=self.registry,
        )
        self.latency = Histogram(
            "lifecycle_event_to_trigger_seconds",
            "From an event reaching the broker (or a timer falling due) to its "
            "trigger being acknowledged by the broker.",
            ["cause"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=self.registry,
        )
        self.attributed = Counter(
            "lifecycle_attributed_triggers",
            "Marketing decisions whose attribution window closed, by campaign, variant, "
            "group (treated, holdout, suppressed) and whether the customer converted.",
            ["campaign", "variant", "group", "converted"],
            registry=self.registry,
        )
        self.attributed_revenue = Counter(
            "lifecycle_attributed_revenue",
            "Revenue credited to closed attribution windows, by campaign, variant and group.",
            ["campaign", "variant", "group"],
            registry=self.registry,
        )
        self.conversions = Counter(
            "lifecycle_conversions",
            "Goal events credited to an open attribution window as they happen, by "
            "campaign, variant and group.",
            ["campaign", "variant", "group"],
            registry=self.registry,
        )
        self.flow_counters: dict[Measure, Counter] = {
            measure: Counter(
                f"lifecycle_flow_{measure}",
                _FLOW_HELP[measure],
                ["flow", "reason"] if measure in REASONED else ["flow"],
                registry=self.registry,
            )
            for measure in MEASURES
        }
        """``lifecycle_flow_<measure>_total``: the counts the backtest's flow table shows."""
        self.flow_attributed = Counter(
            "lifecycle_flow_attributed",
            "Marketing decisions of a flow whose attribution window closed, by group "
            "(treated, holdout, suppressed) and whether the customer converted: lift per flow.",
            ["flow", "group", "converted"],
            registry=self.registry,
        )
        self.lag = Gauge(
            "kafka_consumergroup_lag",
            "Broker end offset minus the group's committed offset.",
            ["consumergroup", "topic", "partition"],
            registry=self.registry,
        )
        self.lag_sum = Gauge(
            "kafka_consumergroup_lag_sum",
            "Total lag of the group over its topics and partitions.",
            ["consumergroup"],
            registry=self.registry,
        )

    def child(self, metric: Any, *values: str) -> Any:
        """``metric.labels(*values)``, kept: prometheus_client validates the labels and
        takes a lock on every call, a few per event. A metric that is cleared drops its
        kept children too (``stages``)."""
        key = (metric, values)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*values)
        return child

    def flows_known(self, names: Iterable[str]) -> None:
        """Show ``names`` (the playbook's enabled flows) at zero before anything happens,
        so a flow that never ran is a row of zeros, not missing."""
        for name in names:
            for measure in MEASURES:
                if measure not in REASONED:
                    self.child(self.flow_counters[measure], name)

    def event(self, type_: str, outcome: str, reason: str = "") -> None:
        self.child(self.events, type_, outcome, reason).inc()

    def misroute(self, topic: str) -> None:
        self.child(self.misrouted, topic).inc()

    def stages(self, counts: Iterable[tuple[str, int]]) -> None:
        """Replace the per-stage gauge (after a rebuild from the table)."""
        self.customers.clear()
        self._children = {k: v for k, v in self._children.items() if k[0] is not self.customers}
        for stage, n in counts:
            self.customers.labels(stage).set(n)

    def moved(self, before: str | None, after: str | None, n: int = 1) -> None:
        if before == after:
            return
        if before is not None:
            self.child(self.customers, before).dec(n)
        if after is not None:
            self.child(self.customers, after).inc(n)

    def pending(self, count: Callable[[], float]) -> None:
        self.timers_pending.set_function(count)

    def holding(self, count: Callable[[], float]) -> None:
        self.held.set_function(count)

    def lags(self, measured: dict[str, list[PartitionLag]]) -> None:
        """Replace the lag gauges with ``measured``: rows by consumer group."""
        self.lag.clear()
        self.lag_sum.clear()
        for group, rows in measured.items():
            for row in rows:
                self.lag.labels(group, row.topic, str(row.partition)).set(row.lag)
            self.lag_sum.labels(group).set(sum(row.lag for row in rows))

    def count(self, *outcomes: Outcome) -> None:
        """Count what ``outcomes`` did (``BatchCounts``, without stage moves or latencies)."""
        counts = BatchCounts(self)
        for outcome in outcomes:
            counts.add(outcome)
        counts.count()

    def summary(self) -> dict[str, Any]:
        """The dashboard's numbers, read from the same counters /metrics exposes."""
        stages: dict[str, float] = {}
        campaigns: dict[str, dict[str, float]] = {}
        dead: dict[str, float] = {}
        lag: list[dict[str, Any]] = []
        closed: dict[str, dict[str, list[float]]] = {}
        flows = FlowCounts()
        flow_closed: dict[str, dict[str, list[float]]] = {}
        totals = {"transitions": 0.0, "accepted": 0.0, "lag": 0.0, "pending": 0.0}
        for family in self.registry.collect():
            for sample in family.samples:
                labels, value = sample.labels, sample.value
                if sample.name == "lifecycle_customers":
                    stages[labels["stage"]] = value
                elif sample.name == "lifecycle_transitions_total":
                    totals["transitions"] += value
                elif sample.name == "lifecycle_events_total":
                    if labels["outcome"] == "accepted":
                        totals["accepted"] += value
                    elif labels["outcome"] == "dead_lettered":
                        dead[labels["reason"]] = dead.get(labels["reason"], 0) + value
                elif sample.name == "lifecycle_triggers_total":
                    row = campaigns.setdefault(
                        labels["campaign"], {"sent": 0, "held_out": 0, "suppressed": 0}
                    )
                    key = "sent" if labels["outcome"] == "emitted" else labels["outcome"]
                    row[key] += value
                elif sample.name == "lifecycle_attributed_triggers_total":
                    groups = closed.setdefault(labels["campaign"], {})
                    counts = groups.setdefault(labels["group"], [0.0, 0.0])
                    counts[0] += value if labels["converted"] == "true" else 0
                    counts[1] += value
                elif sample.name in _FLOW_SAMPLES:
                    measure = _FLOW_SAMPLES[sample.name]
                    flows[labels["flow"]].add(measure, labels.get("reason", ""), int(value))
                elif sample.name == "lifecycle_flow_attributed_total":
                    groups = flow_closed.setdefault(labels["flow"], {})
                    counts = groups.setdefault(labels["group"], [0.0, 0.0])
                    counts[0] += value if labels["converted"] == "true" else 0
                    counts[1] += value
                elif sample.name == "kafka_consumergroup_lag":
                    lag.append(
                        {
                            "topic": labels["topic"],
                            "partition": int(labels["partition"]),
                            "lag": value,
                        }
                    )
                elif sample.name == "kafka_consumergroup_lag_sum":
                    totals["lag"] += value
                elif sample.name == "lifecycle_timers_pending":
                    totals["pending"] = value
        return {
            "stages": stages,
            "transitions": totals["transitions"],
            "events_accepted": totals["accepted"],
            "timers_pending": totals["pending"],
            "dead_letters": dead,
            "campaigns": dict(sorted(campaigns.items())),
            "lag": sorted(lag, key=lambda r: (r["topic"], r["partition"])),
            "lag_total": totals["lag"],
            "lift": {name: lift_of(groups) for name, groups in sorted(closed.items())},
            "flows": flows.as_dict(),
            "flow_lift": {name: lift_of(groups) for name, groups in sorted(flow_closed.items())},
        }

    def exposition(self) -> bytes:
        return bytes(generate_latest(self.registry))

    def serve(self, app: Any) -> None:
        """Add ``GET /metrics`` to the Faust app's web server."""
        metrics = self

        async def get_metrics(view: Any, _request: Any) -> Any:
            return view.bytes(metrics.exposition(), content_type=_CONTENT_TYPE)

        app.page("/metrics", name="metrics")(get_metrics)


class BatchCounts:
    """What one batch's outcomes add to the metrics (``streams.checkpoint.Tally``): the
    counters' increments by label, the stage moves, and the times the latencies run from,
    summed as each outcome is handed on and applied once the batch is durable.

    Each counter child is then incremented once for the whole batch: an increment takes
    prometheus_client's lock, and a batch's outcomes repeat the same few labels. An
    outcome that emitted, suppressed, fired and credited nothing is passed over after
    one test."""

    __slots__ = ("caused", "due", "metrics", "moves", "timed", "traits_dropped")

    def __init__(self, metrics: EngineMetrics) -> None:
        self.metrics = metrics
        self.due: defaultdict[tuple[Any, tuple[str, ...]], float] = defaultdict(float)
        self.moves: defaultdict[tuple[str | None, str | None], int] = defaultdict(int)
        self.caused: list[float] = []
        """When its event reached the broker, for each trigger an event caused."""
        self.timed: list[float] = []
        """When it was made, for each trigger no event caused (a timer's, a merge's)."""
        self.traits_dropped = 0

    def add(
        self,
        outcome: Outcome,
        before: str | None = None,
        after: str | None = None,
        arrived: float | None = None,
    ) -> None:
        """``Tally.add``: one outcome, its customer's stage before and after it, and when
        its event reached the broker."""
        if before != after:
            self.moves[before, after] += 1
        self.traits_dropped += outcome.traits_dropped
        if not (
            outcome.emitted
            or outcome.suppressed
            or outcome.fired
            or outcome.flow_events
            or outcome.conversions
        ):
            return
        metrics, due = self.metrics, self.due
        for record in outcome.emitted:
            if isinstance(record, Transition):
                origin = record.from_stage.value if record.from_stage else "none"
                due[metrics.transitions, (origin, record.to_stage.value)] += 1
            elif isinstance(record, Trigger):
                result = "held_out" if record.holdout else "emitted"
                due[metrics.triggers, (record.campaign, result, "")] += 1
                if arrived is not None:
                    self.caused.append(arrived)
                else:
                    self.timed.append(record.created_at.timestamp())
            elif isinstance(record, Attribution):
                labels = (record.campaign, record.variant, record.group)
                converted = "true" if record.converted else "false"
                due[metrics.attributed, (*labels, converted)] += 1
                due[metrics.attributed_revenue, labels] += float(record.revenue)
                due[metrics.flow_attributed, (record.flow, record.group, converted)] += 1
        for suppression in outcome.suppressed:
            due[metrics.triggers, (suppression.campaign, "suppressed", suppression.reason)] += 1
        for name in outcome.fired:
            due[metrics.timers_fired, (timer_label(name),)] += 1
        for count in flow_counts(outcome):
            counter = metrics.flow_counters[count.measure]
            if count.measure in REASONED:
                due[counter, (count.flow, count.reason)] += 1
            else:
                due[counter, (count.flow,)] += 1
        for conversion in outcome.conversions:
            labels = (conversion.campaign, conversion.variant, conversion.group)
            due[metrics.conversions, labels] += 1

    def count(self) -> None:
        """The counters' increments."""
        child = self.metrics.child
        for (metric, values), amount in self.due.items():
            child(metric, *values).inc(amount)
        if self.traits_dropped:
            self.metrics.traits_dropped.inc(self.traits_dropped)

    async def apply(self, now: float, wall: bool) -> None:
        """Everything, the batch being durable at ``now``: the counters, the stage gauges,
        and a latency per trigger (a timer's only on the wall clock, where its time is
        when it fell due), in turns of the event loop (``streams.turns``)."""
        self.count()
        metrics = self.metrics
        for (before, after), n in self.moves.items():
            metrics.moved(before, after, n)
        turns = Turns()
        for cause, times in (("event", self.caused), ("timer", self.timed if wall else [])):
            histogram = metrics.latency.labels(cause)
            for start in range(0, len(times), SLICE):
                for at in times[start : start + SLICE]:
                    histogram.observe(max(0.0, now - at))
                await turns.passed(SLICE)

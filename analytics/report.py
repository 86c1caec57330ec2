"""The marketer's report: campaign and flow lift against the holdout, and the lifecycle KPIs.

A pure function of the engine's records (inbound events, transitions,
triggers, attribution records, dead letters) and a period, so ``lifecycle
report`` on the broker's topics and ``lifecycle backtest --report`` on a file
give the same report for the same events. Records are taken as the JSON the
topics carry, through the same models, whichever path they came from.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from analytics.kpis import Kpis, lifecycle_kpis
from analytics.lift import Arm, CampaignLift, Comparison, FlowLift, campaign_lift, flow_lift
from analytics.period import Period
from analytics.stats import Difference
from lifecycle.backtest import LineRejected, Output
from lifecycle.flows.compile import step_table
from lifecycle.flows.model import Send
from lifecycle.playbook import Playbook
from schemas.events import Event
from schemas.inbound import DEFAULT_LIMITS, InputLimits, Rejection, check_routing, parse_event
from schemas.records import Attribution, DeadLetter, Transition, Trigger

__all__ = ["Records", "Report", "build_report"]

_MODELS: dict[str, type[BaseModel]] = {
    "transitions": Transition,
    "triggers": Trigger,
    "attribution": Attribution,
    "deadletter": DeadLetter,
}
"""The output topics a report reads, by logical name."""


@dataclass(slots=True)
class Records:
    """What a report is computed from, gathered from the broker or from a backtest."""

    events: list[Event] = field(default_factory=list)
    transitions: list[Transition] = field(default_factory=list)
    triggers: list[Trigger] = field(default_factory=list)
    attributions: list[Attribution] = field(default_factory=list)
    dead_letters: list[datetime | None] = field(default_factory=list)

    TOPICS = tuple(_MODELS)

    def add_inbound(
        self,
        raw: bytes,
        key: bytes | None = None,
        topic: str | None = None,
        limits: InputLimits = DEFAULT_LIMITS,
        received_at: datetime | None = None,
    ) -> None:
        """An inbound message, kept when the engine accepts it (its key checked against
        its ``topic`` when given, as the agent checks it); the others are dead letters."""
        parsed = parse_event(raw, limits=limits, received_at=received_at)
        if isinstance(parsed, Rejection):
            return
        if topic is not None and check_routing(parsed, key, topic) is not None:
            return
        self.events.append(parsed)

    def add_output(self, topic: str, value: BaseModel | dict[str, Any] | bytes) -> None:
        """An output record by logical topic name; other topics are not the report's."""
        model = _MODELS.get(topic)
        if model is None:
            return
        if isinstance(value, bytes):
            record = model.model_validate_json(value)
        elif isinstance(value, BaseModel):
            record = value
        else:
            record = model.model_validate(value)
        match record:
            case Transition():
                self.transitions.append(record)
            case Trigger():
                self.triggers.append(record)
            case Attribution():
                self.attributions.append(record)
            case DeadLetter():
                self.dead_letters.append(record.at)

    def add_rejected(self) -> None:
        """A line a backtest could not accept: a dead letter without a broker time."""
        self.dead_letters.append(None)

    @classmethod
    def of_backtest(
        cls,
        lines: Sequence[bytes],
        items: Iterable[Output | LineRejected],
        limits: InputLimits = DEFAULT_LIMITS,
        received_at: datetime | None = None,
    ) -> Records:
        """The records of a backtest run over ``lines`` (``items``: what it yielded;
        ``limits`` and ``received_at`` as the backtest had them)."""
        records = cls()
        for raw in lines:
            if raw.strip():
                records.add_inbound(raw, limits=limits, received_at=received_at)
        for item in items:
            records.add_item(item)
        return records

    def add_item(self, item: Output | LineRejected) -> None:
        """One thing a backtest yielded: an output, or a line it rejected."""
        if isinstance(item, LineRejected):
            self.add_rejected()
        else:
            self.add_output(item.topic, item.value)


@dataclass(slots=True)
class Report:
    period: Period
    campaigns: list[CampaignLift]
    open_windows: dict[str, int]
    """Decisions (sent or held out) in the period whose window had not closed by its end."""
    kpis: Kpis
    flows: list[FlowLift] = field(default_factory=list)
    """Each flow against its own holdout."""
    flow_open_windows: dict[str, int] = field(default_factory=dict)
    """As ``open_windows``, by the flow that decided."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "period": self.period.as_dict(),
            "campaigns": [
                {**c.as_dict(), "open_windows": self.open_windows.get(c.campaign, 0)}
                for c in self.campaigns
            ],
            "flows": [
                {**f.as_dict(), "open_windows": self.flow_open_windows.get(f.flow, 0)}
                for f in self.flows
            ],
            "kpis": self.kpis.as_dict(),
        }

    def text(self) -> str:
        return "\n".join(
            [*_campaign_lines(self), "", *_flow_lines(self), "", *_kpi_lines(self.kpis.as_dict())]
        )


def _transactional(playbook: Playbook) -> Callable[[Trigger], bool]:
    """Whether a trigger's send was transactional (it opened no attribution window): the
    flow's send says so, else its campaign's rule, else it is marketing (the default)."""
    steps = {name: step_table(flow.steps) for name, flow in playbook.flows.items()}
    rules = {campaign.value: rule for campaign, rule in playbook.campaigns.items()}

    def transactional(trigger: Trigger) -> bool:
        step = steps.get(trigger.flow, {}).get(trigger.step)
        if isinstance(step, Send) and step.send.transactional is not None:
            return step.send.transactional
        rule = rules.get(trigger.campaign)
        return rule is not None and rule.transactional

    return transactional


def build_report(records: Records, period: Period, playbook: Playbook) -> Report:
    closed = {a.trigger_id for a in records.attributions if period.closed_by(a.closes_at)}
    transactional = _transactional(playbook)
    still_open = [
        t
        for t in records.triggers
        if period.contains(t.created_at) and t.trigger_id not in closed and not transactional(t)
    ]
    open_windows = Counter(t.campaign for t in still_open)
    flow_open_windows = Counter(t.flow for t in still_open)
    return Report(
        period=period,
        campaigns=campaign_lift(records.attributions, period),
        open_windows=dict(sorted(open_windows.items())),
        flows=flow_lift(records.attributions, period),
        flow_open_windows=dict(sorted(flow_open_windows.items())),
        kpis=lifecycle_kpis(
            records.events,
            records.transitions,
            records.dead_letters,
            period,
            playbook.scores.clv_tiers,
        ),
    )


# --- text tables ------------------------------------------------------------------


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _pp(d: Difference) -> str:
    return f"{100 * d.estimate:+.1f} pp [{100 * d.low:+.1f}, {100 * d.high:+.1f}] p={d.p_value:.3f}"


def _money_diff(d: Difference | None) -> str:
    if d is None:
        return "no spread in revenue"
    return f"{d.estimate:+.2f} [{d.low:+.2f}, {d.high:+.2f}] p={d.p_value:.3f}"


def _arm_row(name: str, label: str, arm: Arm) -> str:
    return (
        f"{name:<22}{label:<12}{arm.customers:>9}{arm.converted:>10}{_pct(arm.rate):>9}"
        f"{arm.revenue_per_customer or '-':>10}"
    )


def _lift_line(comparison: Comparison) -> str:
    if comparison.too_small is not None:
        return f"holdout too small to say: {comparison.too_small}"
    assert comparison.conversion is not None
    return (
        f"conversion {_pp(comparison.conversion)}; "
        f"revenue/customer {_money_diff(comparison.revenue)}"
    )


def _campaign_lines(report: Report) -> list[str]:
    lines = [
        "campaign lift against the holdout (customers per campaign; windows closed in the "
        "period; 95% intervals)",
        f"{'campaign':<22}{'group':<12}{'customers':>9}{'converted':>10}{'rate':>9}"
        f"{'rev/cust':>10}",
    ]
    for c in report.campaigns:
        lines.append(_arm_row(c.campaign, "treated", c.treated))
        for label, arm in (("holdout", c.holdout), ("suppressed", c.suppressed)):
            lines.append(_arm_row("", label, arm))
        lines.append(f"{'':<22}lift: {_lift_line(c.lift)}")
        if len(c.variants) > 1:
            for name, arm in sorted(c.variants.items()):
                lines.append(_arm_row("", f"variant {name}", arm))
                lines.append(f"{'':<22}  lift: {_lift_line(c.variant_lift[name])}")
        still_open = report.open_windows.get(c.campaign, 0)
        if still_open:
            lines.append(f"{'':<22}{_still_open(still_open)}")
    if not report.campaigns:
        lines.append("(no attribution window closed in the period)")
    return lines


def _flow_lines(report: Report) -> list[str]:
    """Each flow against its own holdout: the flow's sends together, whichever campaign."""
    lines = [
        "flow lift against its holdout (customers per flow; windows closed in the period; "
        "95% intervals)",
        f"{'flow':<22}{'group':<12}{'customers':>9}{'converted':>10}{'rate':>9}{'rev/cust':>10}",
    ]
    for f in report.flows:
        lines.append(_arm_row(f.flow, "treated", f.treated))
        for label, arm in (("holdout", f.holdout), ("suppressed", f.suppressed)):
            lines.append(_arm_row("", label, arm))
        lines.append(f"{'':<22}lift: {_lift_line(f.lift)}")
        still_open = report.flow_open_windows.get(f.flow, 0)
        if still_open:
            lines.append(f"{'':<22}{_still_open(still_open)}")
    if not report.flows:
        lines.append("(no attribution window closed in the period)")
    return lines


def _kpi_lines(k: dict[str, Any]) -> list[str]:
    def rate(name: str) -> str:
        r = k[name]
        return f"{_pct(r['rate'])} ({r['count']} of {r['customers']})"

    lines = [
        "lifecycle KPIs",
        f"  sign-ups                  {k['signups']}",
        f"  new customers             {k['new_customers']}",
        f"  first-time -> repeat      {rate('first_to_repeat')}",
        f"  active at start           {k['active_at_start']}",
        f"  retention                 {rate('retention')}",
        f"  churn                     {rate('churn')}",
        f"  reactivation              {rate('reactivation')}",
        f"  orders                    {k['orders']} by {k['buyers']} customers",
        f"  revenue (gross)           {k['revenue']} (refunds {k['refunds']})",
        f"  average order value       {k['average_order_value'] or '-'}",
        f"  purchase frequency        {k['purchase_frequency'] or '-'}",
        f"  dead letters              {k['dead_letters']} of "
        f"{k['accepted_events'] + k['dead_letters']} messages ({_pct(k['dead_letter_rate'])})",
        f"  {'stage':<24}{'customers':>10}{'revenue':>12}",
    ]
    revenue = k["revenue_by_stage"]
    for stage, count in k["customers_by_stage"].items():
        lines.append(f"  {stage:<24}{count:>10}{revenue.get(stage, '0'):>12}")
    if "none" in revenue:
        lines.append(f"  {'(no stage yet)':<24}{'':>10}{revenue['none']:>12}")
    lines.append(f"  {'CLV tier':<24}{'customers':>10}{'revenue':>12}{'average':>10}")
    for tier, row in k["clv_by_tier"].items():
        lines.append(
            f"  {tier:<24}{row['customers']:>10}{row['revenue']:>12}{row['average_clv'] or '-':>10}"
        )
    return lines


def _still_open(n: int) -> str:
    return f"{n} decision{'' if n == 1 else 's'} still open at the period's end"

"""Campaign and flow lift: what each campaign, and each flow, changed, measured
against its own holdout.

The unit is the customer per campaign: a customer reached by a campaign
(in a group) converted if any of that campaign's closed windows for them saw
a conversion, and their revenue is the sum of the distinct orders credited
to those windows (an order inside two overlapping windows of one campaign
counts once). Holdout membership is a fixed hash of (campaign, customer), so
the two groups are random halves of the same population; suppressed
customers (no consent, unsubscribed, frequency cap) are a different
population and are shown, never compared. A flow's lift is the same with the
flow in place of the campaign: a flow draws its holdout per (flow, customer) at
entry, and a held-out run's sends are all held out, so a flow with several
sends is measured as a whole against the customers it held out.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, ClassVar, TypeVar

from analytics.period import Period
from analytics.stats import Difference, compare_means, compare_rates, too_small
from schemas.records import Attribution

__all__ = [
    "Arm",
    "CampaignLift",
    "Comparison",
    "FlowLift",
    "Lift",
    "campaign_lift",
    "flow_lift",
    "rate_lift",
]


@dataclass(slots=True)
class Arm:
    """One group of customers of one campaign (or one variant of its treated group)."""

    revenues: list[Decimal] = field(default_factory=list)
    converted: int = 0

    @property
    def customers(self) -> int:
        return len(self.revenues)

    @property
    def rate(self) -> float | None:
        return self.converted / self.customers if self.revenues else None

    @property
    def revenue(self) -> Decimal:
        return sum(self.revenues, Decimal(0))

    @property
    def revenue_per_customer(self) -> Decimal | None:
        if not self.revenues:
            return None
        return (self.revenue / self.customers).quantize(Decimal("0.01"))

    def as_dict(self) -> dict[str, Any]:
        return {
            "customers": self.customers,
            "converted": self.converted,
            "conversion_rate": _round(self.rate),
            "revenue": str(self.revenue),
            "revenue_per_customer": _money(self.revenue_per_customer),
        }


@dataclass(frozen=True, slots=True)
class Comparison:
    """Treated (or one variant) against the holdout, or why it cannot be said."""

    conversion: Difference | None
    revenue: Difference | None
    too_small: str | None

    @classmethod
    def of(cls, treated: Arm, holdout: Arm) -> Comparison:
        why = too_small(treated.converted, treated.customers, holdout.converted, holdout.customers)
        if why is not None:
            return cls(None, None, why)
        return cls(
            compare_rates(
                treated.converted, treated.customers, holdout.converted, holdout.customers
            ),
            compare_means(
                [float(r) for r in treated.revenues], [float(r) for r in holdout.revenues]
            ),
            None,
        )

    def as_dict(self) -> dict[str, Any]:
        if self.too_small is not None:
            return {"too_small": self.too_small}
        return {
            "conversion_rate": _difference(self.conversion),
            "revenue": _difference(self.revenue),
        }


@dataclass(slots=True)
class Lift:
    """One campaign's or one flow's groups of customers, and treated against holdout."""

    name: str
    treated: Arm
    holdout: Arm
    suppressed: Arm
    variants: dict[str, Arm]
    lift: Comparison
    variant_lift: dict[str, Comparison]

    KEY: ClassVar[str] = "name"
    """What ``name`` is called in ``as_dict``."""

    def as_dict(self) -> dict[str, Any]:
        return {
            self.KEY: self.name,
            "treated": self.treated.as_dict(),
            "holdout": self.holdout.as_dict(),
            "suppressed": self.suppressed.as_dict(),
            "lift": self.lift.as_dict(),
            "variants": {
                name: {**arm.as_dict(), "lift": self.variant_lift[name].as_dict()}
                for name, arm in sorted(self.variants.items())
            },
        }


class CampaignLift(Lift):
    """A campaign's lift: every decision of that campaign, from whichever flow."""

    __slots__ = ()
    KEY = "campaign"

    @property
    def campaign(self) -> str:
        return self.name


class FlowLift(Lift):
    """A flow's lift against its own holdout (drawn per flow at entry): every send of
    the flow, whichever campaign it names."""

    __slots__ = ()
    KEY = "flow"

    @property
    def flow(self) -> str:
        return self.name


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def _money(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _difference(value: Difference | None) -> dict[str, Any] | None:
    if value is None:
        return None
    return {
        "estimate": _round(value.estimate),
        "low": _round(value.low),
        "high": _round(value.high),
        "p_value": _round(value.p_value),
        "test": value.test,
    }


@dataclass(slots=True)
class _Unit:
    """One customer in one group of one campaign (or flow)."""

    variant: str
    converted: bool = False
    orders: dict[str, Decimal] = field(default_factory=dict)


_L = TypeVar("_L", bound=Lift)


def campaign_lift(attributions: Iterable[Attribution], period: Period) -> list[CampaignLift]:
    """Per campaign, the windows opened in ``period`` that closed before its end."""
    return _lifts(attributions, period, CampaignLift, lambda record: record.campaign)


def flow_lift(attributions: Iterable[Attribution], period: Period) -> list[FlowLift]:
    """Per flow, the windows opened in ``period`` that closed before its end."""
    return _lifts(attributions, period, FlowLift, lambda record: record.flow)


def _lifts(
    attributions: Iterable[Attribution],
    period: Period,
    kind: type[_L],
    name_of: Callable[[Attribution], str],
) -> list[_L]:
    """The lift per name (``name_of`` a record): the customer is the unit within each name."""
    units: dict[tuple[str, str, str], _Unit] = {}
    for record in attributions:
        if not period.contains(record.opened_at) or not period.closed_by(record.closes_at):
            continue
        key = (name_of(record), record.group, record.customer_id)
        unit = units.setdefault(key, _Unit(record.variant))
        unit.converted |= record.converted
        for conversion in record.conversions:
            unit.orders[conversion.order_id or conversion.event_id] = conversion.revenue
    arms: dict[str, dict[str, Arm]] = defaultdict(lambda: defaultdict(Arm))
    variants: dict[str, dict[str, Arm]] = defaultdict(lambda: defaultdict(Arm))
    for (name, group, _customer), unit in sorted(units.items()):
        revenue = sum(unit.orders.values(), Decimal(0))
        targets = [arms[name][group]]
        if group == "treated":
            targets.append(variants[name][unit.variant])
        for arm in targets:
            arm.revenues.append(revenue)
            arm.converted += int(unit.converted)
    result = []
    for name in sorted(arms):
        groups = arms[name]
        treated, holdout = groups["treated"], groups["holdout"]
        by_variant = dict(variants[name])
        result.append(
            kind(
                name=name,
                treated=treated,
                holdout=holdout,
                suppressed=groups["suppressed"],
                variants=by_variant,
                lift=Comparison.of(treated, holdout),
                variant_lift={
                    variant: Comparison.of(arm, holdout) for variant, arm in by_variant.items()
                },
            )
        )
    return result


def rate_lift(treated: tuple[int, int], holdout: tuple[int, int]) -> dict[str, Any]:
    """Conversion-rate lift from (converted, total) counts, or why there is none.

    The live dashboard's figure: it counts decisions (closed windows) from a
    worker's counters, where the report counts customers from the topics.
    """
    why = too_small(treated[0], treated[1], holdout[0], holdout[1])
    if why is not None:
        return {"too_small": why}
    return {"conversion_rate": _difference(compare_rates(*treated, *holdout))}

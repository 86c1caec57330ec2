"""Contact policy: whether, when and in which arm a decided send goes out.

Consent and unsubscribe suppress marketing (transactional mail still goes);
quiet hours in the customer's own zone move send_after; holdout and variant
are hash buckets of (campaign name, customer) so they never change on replay.
A send is described by a ``ResolvedSend`` (campaign name, flow, step, channel,
transactional flag, priority, variants, attribution), so a shop's own
campaigns go through exactly the policies the built-in ones do.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from lifecycle.ids import unit_interval
from lifecycle.playbook import CampaignRule, Playbook, QuietHours
from lifecycle.state import CustomerState, SentMark, trusted
from schemas.records import Channel, Trigger

__all__ = [
    "ResolvedSend",
    "Suppression",
    "apply_caps",
    "decide",
    "in_holdout",
    "quiet_hours_end",
]


@dataclass(frozen=True, slots=True)
class ResolvedSend:
    """One send with every setting resolved: what the policies need to decide it.

    A flow's send fields, over the ``campaigns.<name>`` rule of a built-in
    campaign, over the defaults (``from_rule`` builds one from a rule alone).
    """

    campaign: str
    flow: str
    step: str
    channel: Channel = "email"
    transactional: bool = False
    priority: int = 50
    variants: Mapping[str, float] = field(default_factory=lambda: {"A": 1.0})
    attribution_window: timedelta = timedelta(days=7)
    goal: Literal["purchase", "checkout"] = "purchase"

    @classmethod
    def from_rule(
        cls, campaign: str, rule: CampaignRule, *, flow: str | None = None, step: str = "0"
    ) -> ResolvedSend:
        """The send of a built-in campaign's rule (the flow defaults to the campaign)."""
        return cls(
            campaign=campaign,
            flow=campaign if flow is None else flow,
            step=step,
            channel=rule.channel,
            transactional=rule.transactional,
            priority=rule.priority,
            variants=rule.variants,
            attribution_window=rule.attribution_window,
            goal=rule.goal,
        )


@dataclass(frozen=True, slots=True)
class Suppression:
    """A send the rules chose but the policy stopped; counted, never silently dropped."""

    customer_id: str
    campaign: str
    reason: str
    cause: str
    trigger_id: str = field(default="", compare=False)
    """The id the trigger would have had: its attribution window is keyed by it."""
    variant: str = field(default="", compare=False)
    flow: str = field(default="", compare=False)
    step: str = field(default="", compare=False)


def quiet_hours_end(at: datetime, zone: str, quiet: QuietHours) -> datetime | None:
    """When quiet hours in ``zone`` end, if ``at`` falls inside them; else None.

    Works on local wall-clock times, so a DST change between ``at`` and the
    end of the quiet period still gives 08:00 local, not 07:00 or 09:00.
    """
    if not quiet.enabled or quiet.start == quiet.end:
        return None
    tz = ZoneInfo(zone)
    local = at.astimezone(tz)
    clock = local.time().replace(tzinfo=None)
    if quiet.start < quiet.end:
        inside = quiet.start <= clock < quiet.end
        end_day = local.date()
    else:  # the period spans midnight, e.g. 21:00-08:00
        inside = clock >= quiet.start or clock < quiet.end
        end_day = local.date() + timedelta(days=1) if clock >= quiet.start else local.date()
    if not inside:
        return None
    return datetime.combine(end_day, quiet.end, tzinfo=tz).astimezone(UTC)


def _variant(variants: Mapping[str, float], campaign: str, customer_id: str) -> str:
    if len(variants) == 1:  # what the draw below gives for any point: no hash to compute
        return next(iter(variants))
    point = unit_interval("variant", campaign, customer_id) * sum(variants.values())
    for name, weight in sorted(variants.items()):
        if point < weight:
            return name
        point -= weight
    return max(variants)  # float rounding at the very top of the range


def in_holdout(campaign: str, customer_id: str, share: float) -> bool:
    """The holdout draw: a hash of (name, customer), so the simulator can predict it.

    ``campaign`` is the name drawn on: a built-in campaign's (which is also its flow's).
    """
    return unit_interval("holdout", campaign, customer_id) < share


def decide(
    state: CustomerState,
    send: ResolvedSend,
    *,
    trigger_id: str,
    holdout: bool,
    cause: str,
    at: datetime,
    payload: dict[str, Any],
    playbook: Playbook,
) -> Trigger | Suppression:
    """The trigger for ``send``, or its suppression (consent, unsubscribe).

    The caller draws ``holdout`` (per campaign for a built-in, per run for a
    flow) and makes ``trigger_id``; ``cause`` is what a suppression names.
    """
    campaign = send.campaign
    variant = _variant(send.variants, campaign, state.customer_id)
    if not send.transactional:
        reason = state.profile.marketing_stop(send.channel)
        if reason is not None:
            return Suppression(
                state.customer_id,
                campaign,
                reason,
                cause,
                trigger_id,
                variant,
                send.flow,
                send.step,
            )
    send_after = at
    quiet = playbook.policies.quiet_hours
    zone = state.profile.timezone or quiet.default_timezone
    if not send.transactional and zone:
        send_after = quiet_hours_end(at, zone, quiet) or at
    return trusted(
        Trigger,
        trigger_id=trigger_id,
        customer_id=state.customer_id,
        campaign=campaign,
        flow=send.flow,
        step=send.step,
        channel=send.channel,
        stage=state.stage,
        created_at=at,
        send_after=send_after,
        variant=variant,
        holdout=holdout,
        payload=payload,
    )


def _over_a_cap(marks: list[SentMark], send_after: datetime, playbook: Playbook) -> bool:
    for cap in playbook.policies.frequency_caps:
        near = sum(1 for m in marks if abs(m.send_after - send_after) < cap.within)
        if near >= cap.count:
            return True
    return False


def apply_caps(
    state: CustomerState,
    decided: Sequence[tuple[Trigger, ResolvedSend]],
    playbook: Playbook,
    now: datetime,
) -> tuple[list[Trigger], list[Suppression]]:
    """Frequency caps over the marketing triggers decided together for one cause,
    each with the send it came from (its priority, its transactional flag).

    The highest priority goes first, so when sends collide the more
    important one is sent; messages already sent stand. Two messages count
    against each other when their send times are closer than a cap's window.
    Transactional triggers pass untouched. Records the sent ones in ``state``.
    """
    horizon = now - playbook.policies.longest_cap
    state.marketing_sent = [m for m in state.marketing_sent if m.send_after > horizon]
    kept: dict[int, Trigger] = {}
    suppressed: list[Suppression] = []
    ranked = sorted(enumerate(decided), key=lambda item: -item[1][1].priority)
    for index, (trigger, send) in ranked:
        if send.transactional:
            kept[index] = trigger
            continue
        if _over_a_cap(state.marketing_sent, trigger.send_after, playbook):
            suppressed.append(
                Suppression(
                    state.customer_id,
                    trigger.campaign,
                    "frequency_cap",
                    trigger.trigger_id,
                    trigger.trigger_id,
                    trigger.variant,
                    trigger.flow,
                    trigger.step,
                )
            )
            continue
        kept[index] = trigger
        state.marketing_sent.append(
            trusted(SentMark, send_after=trigger.send_after, campaign=trigger.campaign)
        )
    state.marketing_sent.sort(key=lambda m: m.send_after)
    return [kept[i] for i in sorted(kept)], suppressed

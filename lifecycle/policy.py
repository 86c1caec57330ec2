"""Contact policy: whether, when and in which arm a decided campaign goes out.

Consent and unsubscribe suppress marketing (transactional mail still goes);
quiet hours in the customer's own zone move send_after; holdout and variant
are hash buckets of (campaign, customer) so they never change on replay.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from lifecycle.ids import stable_id, unit_interval
from lifecycle.playbook import CampaignRule, Playbook, QuietHours
from lifecycle.state import CustomerState, SentMark
from schemas.records import Campaign, Trigger

__all__ = ["Suppression", "apply_caps", "decide", "in_holdout", "quiet_hours_end"]


@dataclass(frozen=True, slots=True)
class Suppression:
    """A campaign the rules chose but the policy stopped; counted, never silently dropped."""

    customer_id: str
    campaign: Campaign
    reason: str
    cause: str
    trigger_id: str = field(default="", compare=False)
    """The id the trigger would have had: its attribution window is keyed by it."""
    variant: str = field(default="", compare=False)


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


def _variant(rule: CampaignRule, campaign: Campaign, customer_id: str) -> str:
    point = unit_interval("variant", campaign.value, customer_id) * sum(rule.variants.values())
    for name, weight in sorted(rule.variants.items()):
        if point < weight:
            return name
        point -= weight
    return max(rule.variants)  # float rounding at the very top of the range


def in_holdout(campaign: Campaign, customer_id: str, share: float) -> bool:
    """The holdout draw: a hash of (campaign, customer), so the simulator can predict it."""
    return unit_interval("holdout", campaign.value, customer_id) < share


def decide(
    state: CustomerState,
    campaign: Campaign,
    *,
    cause: str,
    at: datetime,
    payload: dict[str, Any],
    playbook: Playbook,
) -> Trigger | Suppression | None:
    """The trigger for ``campaign``, its suppression, or None when the campaign is off."""
    rule = playbook.campaign(campaign)
    if rule is None:
        return None
    trigger_id = stable_id("trigger", state.customer_id, campaign.value, cause)
    variant = _variant(rule, campaign, state.customer_id)
    if not rule.transactional:
        for reason, stopped in (
            ("unsubscribed", state.profile.unsubscribed),
            ("no_consent", not state.profile.marketing_consent),
        ):
            if stopped:
                return Suppression(state.customer_id, campaign, reason, cause, trigger_id, variant)
    send_after = at
    if not rule.transactional and state.profile.timezone:
        send_after = (
            quiet_hours_end(at, state.profile.timezone, playbook.policies.quiet_hours) or at
        )
    holdout = in_holdout(campaign, state.customer_id, playbook.holdout_share(rule))
    return Trigger(
        trigger_id=trigger_id,
        customer_id=state.customer_id,
        campaign=campaign,
        channel=rule.channel,
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
    state: CustomerState, decided: list[Trigger], playbook: Playbook, now: datetime
) -> tuple[list[Trigger], list[Suppression]]:
    """Frequency caps over the marketing triggers decided together for one cause.

    The highest priority goes first, so when campaigns collide the more
    important one is sent; messages already sent stand. Two messages count
    against each other when their send times are closer than a cap's window.
    Transactional triggers pass untouched. Records the sent ones in ``state``.
    """
    horizon = now - playbook.policies.longest_cap
    state.marketing_sent = [m for m in state.marketing_sent if m.send_after > horizon]
    kept: dict[int, Trigger] = {}
    suppressed: list[Suppression] = []
    ranked = sorted(
        enumerate(decided),
        key=lambda item: -playbook.campaigns[item[1].campaign].priority,
    )
    for index, trigger in ranked:
        if playbook.campaigns[trigger.campaign].transactional:
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
                )
            )
            continue
        kept[index] = trigger
        state.marketing_sent.append(
            SentMark(send_after=trigger.send_after, campaign=trigger.campaign.value)
        )
    state.marketing_sent.sort(key=lambda m: m.send_after)
    return [kept[i] for i in sorted(kept)], suppressed

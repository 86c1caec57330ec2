"""Date flows' due moments: a yearly date in a trait (a birthday, a signup
anniversary), at a local time in the customer's zone.

The record keeps each date flow's next moment (``CustomerState.dates``), a timer
like any other, so it is worked out again only when the traits may have changed,
the moment has passed, or the record has none yet.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from lifecycle.flows.effects import Effects
from lifecycle.flows.model import DateTrigger
from lifecycle.flows.program import CompiledFlow
from lifecycle.state import CustomerState

__all__ = ["date_trait", "next_date", "next_moment", "schedule_date", "trait_date"]


def _on(year: int, month: int, day: int) -> date:
    """``month``/``day`` in ``year``; 29 February is the 28th in other years."""
    if month == 2 and day == 29:
        try:
            return date(year, 2, 29)
        except ValueError:
            return date(year, 2, 28)
    return date(year, month, day)


def trait_date(value: Any) -> date | None:
    """The date a trait holds (``YYYY-MM-DD``), None for any other value."""
    if isinstance(value, date):
        return value
    if isinstance(value, str) and len(value) == 10:
        try:
            return date.fromisoformat(value)
        except ValueError:
            return None
    return None


def next_date(value: Any, at: time, zone: str | None, after: datetime) -> datetime | None:
    """The first moment strictly after ``after`` when the yearly date ``value``
    (``YYYY-MM-DD``) falls at ``at`` local time in ``zone`` (UTC when None); None for
    a value that is not a date."""
    day = trait_date(value)
    if day is None:
        return None
    try:
        tz: Any = ZoneInfo(zone) if zone else UTC
    except (ValueError, KeyError, OSError):
        tz = UTC
    year = after.astimezone(tz).year
    for candidate in (year, year + 1, year + 2):
        local = datetime.combine(_on(candidate, day.month, day.day), at, tzinfo=tz)
        moment = local.astimezone(UTC)
        if moment > after:
            return moment
    return None


def schedule_date(fx: Effects, cf: CompiledFlow) -> None:
    """Keep the date flow ``cf``'s next moment in the record, none for a trait that
    is not a date."""
    state = fx.state
    due = next_moment(state, cf, fx.playbook.policies.quiet_hours.default_timezone, fx.at)
    if due is None:
        state.dates.pop(cf.name, None)
    else:
        state.dates[cf.name] = due


def next_moment(
    state: CustomerState, cf: CompiledFlow, default_zone: str | None, after: datetime
) -> datetime | None:
    """The date flow ``cf``'s first moment after ``after`` for this customer, None for a
    trait that is not a date. A customer whose signup gave no zone is in the
    playbook's ``default_timezone``, as quiet hours place them, so the mail is not sent
    at the hour in UTC only for quiet hours to hold it back."""
    value = state.profile.traits.get(date_trait(cf))
    if value is None:
        return None
    at = _trigger(cf).at
    return next_date(value, at, state.profile.timezone or default_zone, after)


def date_trait(cf: CompiledFlow) -> str:
    """The trait the date flow ``cf`` reads (``birthday`` of ``traits.birthday``)."""
    return _trigger(cf).date.removeprefix("traits.")


def _trigger(cf: CompiledFlow) -> DateTrigger:
    trigger = cf.flow.trigger
    assert isinstance(trigger, DateTrigger)
    return trigger

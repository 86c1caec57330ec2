"""Value types the playbook's YAML is written in: durations and percentages."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import ROUND_CEILING, Decimal
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field
from pydantic_core import PydanticCustomError

__all__ = [
    "NOT_POSITIVE",
    "NO_UNIT",
    "NO_UNIT_MESSAGE",
    "TOO_LONG",
    "Duration",
    "Percent",
    "days_up",
    "equal_arms",
    "percent_number",
]

_DURATION = re.compile(r"^\s*(?:\d+(?:\.\d+)?\s*[smhdw]\s*)+$")
_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def _short_duration(value: Any) -> Any:
    """Accept ``90m``, ``1h``, ``7d``, ``2w`` and sums of them (``1h30m``, ``2d 12h``)
    besides pydantic's ISO 8601 (``PT1H``) forms.

    A bare number is refused: pydantic would read it as seconds, and a marketer who
    writes ``within: 180`` means days more often than three minutes."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise PydanticCustomError(NO_UNIT, NO_UNIT_MESSAGE)
    if isinstance(value, str) and _DURATION.match(value):
        seconds = sum(float(n) * _UNIT_SECONDS[u] for n, u in _PART.findall(value))
        try:
            return timedelta(seconds=seconds)
        except OverflowError as exc:
            raise PydanticCustomError(TOO_LONG, "must be at most 999999999 days") from exc
    return value


NO_UNIT = "no_unit"
"""The error type of a duration given as a bare number."""
NO_UNIT_MESSAGE = "a duration needs a unit: 90m, 1h, 25d, 2w (or ISO 8601, P25D)"

TOO_LONG = "too_long"
"""The error type of a duration beyond what a ``timedelta`` holds."""

NOT_POSITIVE = "not_positive"
"""The error type of a duration of no time (``flows.parse`` says so in its own words)."""


def _positive(value: timedelta) -> timedelta:
    """A wait or a window of no time is a mistake; said in the playbook's words, not as
    pydantic's ``timedelta(0)``."""
    if value <= timedelta(0):
        raise PydanticCustomError(NOT_POSITIVE, "must be longer than 0")
    return value


Duration = Annotated[timedelta, BeforeValidator(_short_duration), AfterValidator(_positive)]
Percent = Annotated[Decimal, Field(ge=0, le=100)]


_DAY_US = Decimal(86_400_000_000)


def days_up(days: Decimal | int) -> timedelta:
    """A number of days (a condition's bound, an RFM breakpoint) as a timedelta, rounded
    up to the microsecond: the first instant at least that many days on."""
    return timedelta(microseconds=int((days * _DAY_US).to_integral_value(ROUND_CEILING)))


def percent_number(percent: Decimal) -> int | float:
    """A percent as the JSON number a playbook's own ``data`` would give: 20, or 12.5."""
    return int(percent) if percent == percent.to_integral_value() else float(percent)


def equal_arms(names: list[Any]) -> dict[str, float]:
    """``variants: [a, b]``, in a campaign rule or a flow's send: each named arm with the
    same weight. An empty list gives no arm, which each caller refuses in its own words."""
    for name in names:
        if not isinstance(name, str) or not name:
            msg = f"a variant's name must be a text, not {name!r}"
            raise ValueError(msg)
    if len(set(names)) != len(names):
        msg = "names a variant twice"
        raise ValueError(msg)
    return dict.fromkeys(names, 1.0)

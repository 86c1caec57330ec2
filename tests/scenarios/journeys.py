"""Every named journey, in one tuple: the themes' journeys, in the order they read."""

from __future__ import annotations

from tests.scenarios import carts, churn, loyalty, policies, purchases, signups
from tests.scenarios.model import Journey

JOURNEYS: tuple[Journey, ...] = (
    *signups.JOURNEYS,
    *carts.JOURNEYS,
    *purchases.JOURNEYS,
    *churn.JOURNEYS,
    *loyalty.JOURNEYS,
    *policies.JOURNEYS,
)
"""Every journey, by name in ``Journey.name``; names and customer ids are unique."""

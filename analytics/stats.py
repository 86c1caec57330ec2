"""The statistics of a holdout comparison, named so a reader can look each one up.

- Conversion rate difference (treated minus holdout): the 95% interval is
  Newcombe's hybrid score interval (Newcombe 1998, method 10: Wilson score
  intervals of each rate, combined), which keeps its coverage at small rates
  and small groups where the textbook Wald interval does not; the p-value is
  the two-sided pooled two-proportion z-test.
- Revenue per customer difference: Welch's unequal-variances t-test, with its
  95% interval (scipy), because revenue has very different spreads in the two
  groups (most customers spend nothing).
- Too small to say: a comparison is only made when each group has at least
  ``MIN_GROUP`` customers and the expected number of converted and of
  unconverted customers in each group (under no effect) is at least
  ``MIN_EXPECTED``, the usual condition for the normal approximation.
  Otherwise the report says why, instead of printing a number.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "CONFIDENCE",
    "MIN_EXPECTED",
    "MIN_GROUP",
    "Difference",
    "compare_means",
    "compare_rates",
    "too_small",
    "wilson",
]

CONFIDENCE = 0.95
MIN_GROUP = 30
MIN_EXPECTED = 5.0


@dataclass(frozen=True, slots=True)
class Difference:
    """Treated minus holdout, with its interval and the test's two-sided p-value."""

    estimate: float
    low: float
    high: float
    p_value: float
    test: str

    @property
    def significant(self) -> bool:
        return self.p_value < 1 - CONFIDENCE

    def covers(self, value: float) -> bool:
        return self.low <= value <= self.high


def _scipy_stats() -> Any:
    """scipy.stats, imported on first use: it costs ~0.4 s, paid by every command
    (a worker's start and recovery too) though only reports need it."""
    from scipy import stats

    return stats


def _z() -> float:
    return float(_scipy_stats().norm.ppf(0.5 + CONFIDENCE / 2))


def wilson(successes: int, n: int) -> tuple[float, float]:
    """Wilson score interval of one proportion."""
    z = _z()
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def too_small(x1: int, n1: int, x2: int, n2: int) -> str | None:
    """Why two groups cannot be compared, or None when they can."""
    if min(n1, n2) < MIN_GROUP:
        return f"fewer than {MIN_GROUP} customers in a group"
    pooled = (x1 + x2) / (n1 + n2)
    expected = min(n * share for n in (n1, n2) for share in (pooled, 1 - pooled))
    if expected < MIN_EXPECTED:
        return f"fewer than {MIN_EXPECTED:g} expected conversions (or non-conversions) in a group"
    return None


def compare_rates(x1: int, n1: int, x2: int, n2: int) -> Difference:
    """Rate 1 minus rate 2: Newcombe's hybrid score interval, pooled z-test p-value."""
    p1, p2 = x1 / n1, x2 / n2
    l1, u1 = wilson(x1, n1)
    l2, u2 = wilson(x2, n2)
    estimate = p1 - p2
    low = estimate - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    high = estimate + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    pooled = (x1 + x2) / (n1 + n2)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    p_value = 1.0 if spread == 0 else float(2 * _scipy_stats().norm.sf(abs(estimate) / spread))
    return Difference(estimate, low, high, p_value, "two-proportion z-test; Newcombe interval")


def compare_means(first: Sequence[float], second: Sequence[float]) -> Difference | None:
    """Mean 1 minus mean 2 by Welch's t-test; None when both groups have no spread."""
    if len(first) < 2 or len(second) < 2:
        return None
    if max(first) == min(first) and max(second) == min(second):
        return None
    result = _scipy_stats().ttest_ind(first, second, equal_var=False)
    interval = result.confidence_interval(CONFIDENCE)
    estimate = math.fsum(first) / len(first) - math.fsum(second) / len(second)
    return Difference(
        estimate, float(interval.low), float(interval.high), float(result.pvalue), "Welch t-test"
    )

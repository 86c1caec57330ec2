"""The named tests give the published numbers, and refuse groups too small to compare."""

from __future__ import annotations

import pytest
from scipy import stats as scipy_stats

from analytics.stats import compare_means, compare_rates, too_small, wilson


def test_wilson_matches_newcombe_1998() -> None:
    low, high = wilson(81, 263)
    assert (round(low, 4), round(high, 4)) == (0.2553, 0.3662)


@pytest.mark.parametrize(
    ("x1", "n1", "x2", "n2", "expected"),
    [
        (56, 70, 48, 80, (0.0524, 0.3339)),  # Newcombe 1998, Table II, method 10
        (9, 10, 3, 10, (0.1705, 0.8090)),
    ],
)
def test_difference_interval_is_newcombes_hybrid_score(
    x1: int, n1: int, x2: int, n2: int, expected: tuple[float, float]
) -> None:
    d = compare_rates(x1, n1, x2, n2)
    assert d.estimate == pytest.approx(x1 / n1 - x2 / n2)
    assert (round(d.low, 4), round(d.high, 4)) == expected


def test_p_value_is_the_pooled_two_proportion_z_test() -> None:
    d = compare_rates(56, 70, 48, 80)
    pooled = 104 / 150
    z = 0.2 / (pooled * (1 - pooled) * (1 / 70 + 1 / 80)) ** 0.5
    assert d.p_value == pytest.approx(2 * scipy_stats.norm.sf(z))
    assert d.significant
    assert not compare_rates(20, 100, 18, 100).significant


def test_revenue_is_compared_by_welch() -> None:
    first = [0.0, 0.0, 10.0, 25.0, 0.0, 40.0]
    second = [0.0, 5.0, 0.0, 0.0, 0.0, 0.0, 7.0]
    d = compare_means(first, second)
    assert d is not None
    expected = scipy_stats.ttest_ind(first, second, equal_var=False)
    assert d.p_value == pytest.approx(expected.pvalue)
    assert d.estimate == pytest.approx(sum(first) / 6 - sum(second) / 7)
    assert d.low < d.estimate < d.high
    assert compare_means([0.0] * 5, [0.0] * 5) is None


def test_too_small_says_why() -> None:
    assert too_small(10, 100, 3, 29) == "fewer than 30 customers in a group"
    assert "expected conversions" in (too_small(1, 400, 0, 40) or "")
    assert too_small(40, 400, 5, 40) is not None  # 4.1 conversions expected in the holdout
    assert too_small(60, 400, 8, 40) is None

"""Predicted customer value: BG/NBD and Gamma-Gamma, evaluated in closed form.

BG/NBD (Fader, Hardie and Lee, "Counting Your Customers the Easy Way",
Marketing Science 2005) gives, from a customer's repeat purchases ``x``, the
time of the last one ``t_x`` and their age ``T``, the probability that they
are still active and the purchases to expect over a horizon. Gamma-Gamma
(Fader, Hardie and Lee 2005, "RFM and CLV") gives the spend to expect per
purchase. Their product is the predicted CLV. The parameters are fitted
offline (``analytics.clv_fit``); here they are only evaluated, in pure
Python, because this runs on the hot path for every purchase.
"""

from __future__ import annotations

import functools
import math
from array import array
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

from lifecycle.state import CustomerState
from lifecycle.units import Duration

__all__ = [
    "BgNbd",
    "ClvModel",
    "GammaGamma",
    "Prediction",
    "customer_summary",
    "forget_repeats",
    "hyp2f1",
    "predict",
]


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BgNbd(_Params):
    """Purchase rate ~ Gamma(r, alpha); drop-out probability ~ Beta(a, b)."""

    r: float = Field(gt=0)
    alpha: float = Field(gt=0)
    a: float = Field(gt=0)
    b: float = Field(gt=0)

    def p_alive(self, x: int, t_x: float, t: float) -> float:
        """P(still active | x repeat purchases, the last at t_x, observed for t)."""
        if x == 0:
            return 1.0
        ratio: float = ((self.alpha + t) / (self.alpha + t_x)) ** (self.r + x)
        return 1.0 / (1.0 + (self.a / (self.b + x - 1)) * ratio)

    def expected_purchases(self, horizon: float, x: int, t_x: float, t: float) -> float:
        """E[purchases in the next ``horizon`` | x, t_x, t] (paper, equation 10)."""
        r, alpha, a, b = self.r, self.alpha, self.a, self.b
        if horizon <= 0:
            return 0.0
        z = horizon / (alpha + t + horizon)
        head = (a + b + x - 1) / (a - 1) if a != 1 else math.inf
        shrink: float = ((alpha + t) / (alpha + t + horizon)) ** (r + x)
        body = 1 - shrink * hyp2f1(r + x, b + x, a + b + x - 1, z)
        denominator = 1.0
        if x > 0:
            ratio: float = ((alpha + t) / (alpha + t_x)) ** (r + x)
            denominator += (a / (b + x - 1)) * ratio
        return max(0.0, head * body / denominator)


class GammaGamma(_Params):
    """Spend per purchase ~ Gamma(p, nu), nu ~ Gamma(q, v)."""

    p: float = Field(gt=0)
    q: float = Field(gt=1)
    v: float = Field(gt=0)

    def expected_spend(self, x: int, mean_spend: float) -> float:
        """E[spend per purchase | x purchases averaging ``mean_spend``]."""
        if x <= 0:
            return self.p * self.v / (self.q - 1)
        return self.p * (self.v + x * mean_spend) / (self.p * x + self.q - 1)


class ClvModel(_Params):
    """Fitted parameters and the units they were fitted in (playbook ``scores.clv_model``).

    The defaults are the published CDNOW estimates (weeks): a starting point
    until ``lifecycle clv fit`` has fitted the shop's own history.
    """

    enabled: bool = True
    time_unit: Duration = timedelta(days=7)
    horizon: Duration = timedelta(days=364)
    bgnbd: BgNbd = BgNbd(r=0.243, alpha=4.414, a=0.793, b=2.426)
    gamma_gamma: GammaGamma = GammaGamma(p=6.25, q=3.74, v=15.44)


@dataclass(frozen=True, slots=True)
class Prediction:
    """One customer's predictions at one time: made for a step's outputs and never
    serialized itself, so a plain dataclass: a pydantic model costs far more to build,
    and a payload asks for one on every send."""

    p_alive: float
    expected_purchases: float
    predicted_clv: Decimal


def hyp2f1(a: float, b: float, c: float, z: float, *, tol: float = 1e-12) -> float:
    """Gauss's hypergeometric 2F1(a, b; c; z) for 0 <= z < 1, by its power series.

    BG/NBD only needs z = h / (alpha + T + h) in [0, 1); the terms shrink like
    z^n, so even z = 0.99 converges within a few thousand terms.
    """
    if not 0 <= z < 1:
        msg = f"hyp2f1 needs 0 <= z < 1, got {z}"
        raise ValueError(msg)
    term = 1.0
    total = 1.0
    if a > 0 and b > 0 and c > 0:
        # Every term is positive (BG/NBD's case): no abs(). A term is the one before
        # times ratio_n * z, ratio_n = (a + n)(b + n) / ((c + n)(n + 1)) computed with
        # the same operations in the same order as in one expression, so the same sum.
        ratios = _term_ratios(a, b, c)
        done = 0
        while True:
            for ratio in ratios[done:] if done else ratios:
                term *= ratio * z
                total += term
                if term < tol * total:
                    return total
            done = len(ratios)
            if done >= _MAX_TERMS:
                return total
            _grow(ratios, a, b, c, min(_MAX_TERMS, 2 * done + 64))
    n = 0
    while n < _MAX_TERMS:
        term *= (a + n) * (b + n) / ((c + n) * (n + 1)) * z
        total += term
        n += 1
        if abs(term) < tol * abs(total):
            break
    return total


_MAX_TERMS = 100_000
"""Where a series that has not converged stops."""


@functools.lru_cache(maxsize=64)
def _term_ratios(a: float, b: float, c: float) -> array[float]:
    """The series' term ratios without z, grown as a sum needs them (``_grow``).

    They depend on the repeat purchases alone (a = r + x, ...), and the terms a sum
    needs on z alone: a customer's every prediction, and every customer with the
    same x, reuses them, leaving two multiplications and an addition per term."""
    return array("d")


def _grow(ratios: array[float], a: float, b: float, c: float, count: int) -> None:
    n = float(len(ratios))  # a float counter: exact below 2**53
    after = n + 1.0
    while len(ratios) < count:
        ratios.append((a + n) * (b + n) / ((c + n) * after))
        n = after
        after += 1.0


def _units(delta: timedelta, unit: timedelta) -> float:
    return delta / unit


def customer_summary(
    state: CustomerState, now: datetime, unit: timedelta
) -> tuple[int, float, float]:
    """(x, t_x, T) of BG/NBD from a record: repeat purchase days, in ``unit``s."""
    first = state.first_order_at
    if first is None:
        return 0, 0.0, 0.0
    last = state.last_order_at or first
    x = max(0, state.purchase_days - 1)
    return x, _units(last - first, unit), _units(max(now, last) - first, unit)


def _bgnbd(bgnbd: BgNbd, horizon: float, x: int, t_x: float, t: float) -> tuple[float, float]:
    """BG/NBD's two answers, rounded as a prediction keeps them: (expected purchases
    over ``horizon``, p_alive)."""
    purchases = bgnbd.expected_purchases(horizon, x, t_x, t)
    return purchases, round(bgnbd.p_alive(x, t_x, t), 4)


_answers = functools.lru_cache(maxsize=4096)(_bgnbd)
"""Many customers ask the same question: every first purchase is (x, t_x, T) = (0, 0, 0),
and a timer a fixed delay after it (review request, nudge, at risk) is (0, 0, delay)."""


def forget_repeats() -> None:
    """Empty the cache of repeated questions, as a new process has it.

    The cache outlives a backtest: a benchmark that times several runs in one
    process clears it before each, or a run would find the answers of the run
    before it (the same customers' questions) and look cheaper than it is."""
    _answers.cache_clear()
    _term_ratios.cache_clear()


def predict(state: CustomerState, now: datetime, model: ClvModel) -> Prediction | None:
    """The customer's predictions at ``now``; None before the first purchase.

    Evaluated on every call: the core asks once per step (``lifecycle.scoring.ScoresAt``).
    The value is rounded to the cent by formatting (``.2f``): the digits
    ``round(value, 2)`` gives, to two places, without a float round and a quantize.
    """
    if not model.enabled or state.first_order_at is None:
        return None
    unit = model.time_unit
    x, t_x, t = customer_summary(state, now, unit)
    purchases, alive = _answers(model.bgnbd, _units(model.horizon, unit), x, t_x, t)
    mean = float(state.revenue / state.orders) if state.orders else 0.0
    spend = model.gamma_gamma.expected_spend(x, mean)
    return Prediction(alive, round(purchases, 4), Decimal(f"{purchases * spend:.2f}"))

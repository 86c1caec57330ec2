"""Fitting BG/NBD and Gamma-Gamma to a shop's history, by maximum likelihood.

Offline work (``lifecycle clv fit``): it reads every purchase once, reduces
each customer to BG/NBD's (x, t_x, T) and Gamma-Gamma's mean repeat spend,
and maximises the published log-likelihoods with scipy. The engine only
evaluates the fitted parameters (``lifecycle.clv``).

Conventions follow the papers (and the Lifetimes package): purchases are
counted by day, ``x`` is the number of repeat purchase days, the monetary
value is the mean of the repeat days' totals, and ``T`` runs from the first
purchase to the end of the calibration period.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import minimize
from scipy.special import betaln, gammaln

from lifecycle.clv import BgNbd, GammaGamma
from schemas.events import PurchaseEvent

__all__ = ["Fit", "Summary", "fit", "fit_bgnbd", "fit_gamma_gamma", "summarise"]

Floats = NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Summary:
    """Per customer: repeat purchase days, the last one's time, age, mean repeat spend."""

    customers: list[str]
    x: Floats
    t_x: Floats
    t: Floats
    monetary: Floats


@dataclass(frozen=True, slots=True)
class Fit:
    bgnbd: BgNbd
    gamma_gamma: GammaGamma | None
    customers: int
    repeat_customers: int
    log_likelihood: float


def summarise(purchases: Iterable[PurchaseEvent], until: datetime, unit: timedelta) -> Summary:
    """Reduce the purchases made up to ``until`` to the models' statistics."""
    days: dict[str, dict[date, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    first_at: dict[str, datetime] = {}
    for event in purchases:
        if event.occurred_at > until:
            continue
        day = event.occurred_at.date()
        days[event.key][day] += event.total
        if event.key not in first_at or event.occurred_at < first_at[event.key]:
            first_at[event.key] = event.occurred_at
    customers = sorted(days)
    x, t_x, t, monetary = [], [], [], []
    for key in customers:
        ordered = sorted(days[key])
        first = first_at[key]
        start = datetime.combine(ordered[0], first.timetz())
        last = datetime.combine(ordered[-1], first.timetz())
        x.append(len(ordered) - 1)
        t_x.append((last - start) / unit)
        t.append((until - start) / unit)
        repeat = [float(days[key][d]) for d in ordered[1:]]
        monetary.append(sum(repeat) / len(repeat) if repeat else 0.0)
    return Summary(customers, np.array(x, float), np.array(t_x), np.array(t), np.array(monetary))


def _bgnbd_log_likelihood(params: Floats, x: Floats, t_x: Floats, t: Floats) -> float:
    r, alpha, a, b = np.exp(params)
    common = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + betaln(a, b + x) - betaln(a, b)
    stays = -(r + x) * np.log(alpha + t)
    with np.errstate(divide="ignore", invalid="ignore"):
        leaves = np.where(
            x > 0,
            np.log(a) - np.log(np.maximum(b + x - 1, 1e-300)) - (r + x) * np.log(alpha + t_x),
            -np.inf,
        )
    return float(np.sum(common + np.logaddexp(stays, leaves)))


def fit_bgnbd(summary: Summary) -> tuple[BgNbd, float]:
    """Maximum-likelihood BG/NBD parameters and the log-likelihood they reach."""
    result = minimize(
        lambda p: -_bgnbd_log_likelihood(p, summary.x, summary.t_x, summary.t),
        x0=np.log([1.0, 1.0, 1.0, 1.0]),
        method="Nelder-Mead",
        options={"xatol": 1e-10, "fatol": 1e-10, "maxiter": 20_000, "maxfev": 40_000},
    )
    r, alpha, a, b = (float(v) for v in np.exp(result.x))
    return BgNbd(r=r, alpha=alpha, a=a, b=b), float(-result.fun)


def _gamma_gamma_log_likelihood(params: Floats, x: Floats, m: Floats) -> float:
    p, q, v = np.exp(params)
    px = p * x
    return float(
        np.sum(
            gammaln(px + q)
            - gammaln(px)
            - gammaln(q)
            + q * np.log(v)
            + (px - 1) * np.log(m)
            + px * np.log(x)
            - (px + q) * np.log(v + m * x)
        )
    )


def fit_gamma_gamma(summary: Summary) -> GammaGamma | None:
    """Gamma-Gamma on the customers with repeat purchases; None when there are none."""
    repeat = (summary.x > 0) & (summary.monetary > 0)
    if not repeat.any():
        return None
    x, m = summary.x[repeat], summary.monetary[repeat]
    result = minimize(
        lambda p: -_gamma_gamma_log_likelihood(p, x, m),
        x0=np.log([1.0, 2.0, 1.0]),
        method="Nelder-Mead",
        options={"xatol": 1e-10, "fatol": 1e-10, "maxiter": 20_000, "maxfev": 40_000},
    )
    p, q, v = (float(val) for val in np.exp(result.x))
    if q <= 1:  # the mean spend would be infinite: no usable model
        return None
    return GammaGamma(p=p, q=q, v=v)


def fit(purchases: Iterable[PurchaseEvent], until: datetime, unit: timedelta) -> Fit:
    summary = summarise(purchases, until, unit)
    if not summary.customers:
        msg = "no purchases before the end of the calibration period"
        raise ValueError(msg)
    if not (summary.x > 0).any():  # the likelihood then grows without bound: no model
        msg = "no customer bought again before the end of the calibration period: nothing to fit"
        raise ValueError(msg)
    bgnbd, log_likelihood = fit_bgnbd(summary)
    return Fit(
        bgnbd=bgnbd,
        gamma_gamma=fit_gamma_gamma(summary),
        customers=len(summary.customers),
        repeat_customers=int((summary.x > 0).sum()),
        log_likelihood=log_likelihood,
    )

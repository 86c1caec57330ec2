"""Predicted value: BG/NBD and Gamma-Gamma, checked against published numbers."""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from scipy.special import hyp2f1 as reference_hyp2f1

from analytics.clv_fit import fit, summarise
from harness.datasets import CDNOW_END_OF_CALIBRATION, cdnow_events, cdnow_file
from lifecycle import clv
from lifecycle.clv import (
    BgNbd,
    ClvModel,
    GammaGamma,
    customer_summary,
    forget_repeats,
    hyp2f1,
    predict,
)
from lifecycle.state import CustomerState
from schemas.events import EventAdapter, PurchaseEvent

PAPER = BgNbd(r=0.243, alpha=4.414, a=0.793, b=2.426)
WEEK = timedelta(days=7)


@pytest.mark.parametrize(
    ("a", "b", "c", "z"),
    [
        (2.243, 4.426, 4.219, 0.5),
        (0.243, 2.426, 2.219, 0.95),
        (1.0, 1.0, 2.0, 0.0),
        (3.2, 0.5, 1.1, 0.99),
    ],
)
def test_hypergeometric_series_matches_scipy(a: float, b: float, c: float, z: float) -> None:
    assert hyp2f1(a, b, c, z) == pytest.approx(reference_hyp2f1(a, b, c, z), rel=1e-9)


def _one_expression(a: float, b: float, c: float, z: float, tol: float = 1e-12) -> float:
    """The series as its textbook loop: each term from the one before in one expression."""
    term = total = 1.0
    n = 0.0
    while n < 100_000:
        term *= (a + n) * (b + n) / ((c + n) * (n + 1.0)) * z
        total += term
        n += 1.0
        if term < tol * total:
            break
    return total


def test_the_series_kept_ratios_give_the_textbook_loops_float() -> None:
    """The term ratios a sum keeps (per a, b, c) and grows leave every bit as it was:
    the same x asked at many z, short sums before long ones and after, and again
    once forgotten."""
    forget_repeats()
    zs = [0.3, 0.999, 0.5, 0.92, 0.0, 0.9995, 0.1]
    for x in (0, 1, 2, 7, 40):
        a, b, c = PAPER.r + x, PAPER.b + x, PAPER.a + PAPER.b + x - 1
        for z in zs:
            assert hyp2f1(a, b, c, z) == _one_expression(a, b, c, z), (x, z)
    forget_repeats()
    for z in reversed(zs):
        assert hyp2f1(PAPER.r, PAPER.b, PAPER.a + PAPER.b - 1, z) == _one_expression(
            PAPER.r, PAPER.b, PAPER.a + PAPER.b - 1, z
        )


def test_hypergeometric_refuses_z_outside_the_unit_interval() -> None:
    with pytest.raises(ValueError, match="0 <= z < 1"):
        hyp2f1(1, 1, 2, 1.0)


def test_the_papers_worked_example() -> None:
    """Fader, Hardie and Lee (2005): a customer with x = 2, t_x = 30.43, T = 38.86
    is expected to make 1.226 purchases in the next 39 weeks."""
    assert PAPER.expected_purchases(39, 2, 30.43, 38.86) == pytest.approx(1.226, abs=5e-4)


def test_probability_alive() -> None:
    assert PAPER.p_alive(0, 0, 50) == 1.0  # never repeated: no drop-out opportunity seen
    recent = PAPER.p_alive(5, 38, 39)
    stale = PAPER.p_alive(5, 5, 39)
    assert 0 < stale < recent < 1
    assert PAPER.p_alive(1, 10, 10) == pytest.approx(1 / (1 + 0.793 / 2.426))


def test_gamma_gamma_expected_spend_shrinks_to_the_population_mean() -> None:
    model = GammaGamma(p=6.25, q=3.74, v=15.44)
    population = 6.25 * 15.44 / 2.74
    assert model.expected_spend(0, 0) == pytest.approx(population)
    few = model.expected_spend(1, 100.0)
    many = model.expected_spend(20, 100.0)
    assert population < few < many < 100.0


def _buyer(first: datetime, orders: int, revenue: str, last_after: timedelta) -> CustomerState:
    """A customer with ``orders`` on as many days, the first at ``first``."""
    return CustomerState(
        customer_id="c1",
        first_seen_at=first,
        last_event_at=first + last_after,
        orders=orders,
        revenue=Decimal(revenue),
        first_order_at=first,
        last_order_at=first + last_after,
        purchase_days=orders,
    )


def test_predict_on_a_record() -> None:
    first = datetime(2026, 1, 5, tzinfo=UTC)
    state = _buyer(first, 3, "90.00", 4 * WEEK)
    now = first + 10 * WEEK
    assert customer_summary(state, now, WEEK) == (2, 4.0, 10.0)
    model = ClvModel()
    prediction = predict(state, now, model)
    assert prediction is not None
    expected_purchases = model.bgnbd.expected_purchases(52, 2, 4.0, 10.0)
    spend = model.gamma_gamma.expected_spend(2, 30.0)
    assert prediction.p_alive == round(model.bgnbd.p_alive(2, 4.0, 10.0), 4)
    assert float(prediction.predicted_clv) == pytest.approx(expected_purchases * spend, abs=0.01)
    assert predict(state.model_copy(update={"first_order_at": None}), now, model) is None
    assert predict(state, now, model.model_copy(update={"enabled": False})) is None


def test_a_repeated_question_is_answered_once_until_forgotten(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first = datetime(2026, 1, 5, tzinfo=UTC)
    state = _buyer(first, 2, "40.00", 3 * WEEK)
    now = first + 7 * WEEK + timedelta(hours=5)  # an (x, t_x, T) no other test asks
    series: list[float] = []

    def counted(a: float, b: float, c: float, z: float) -> float:
        series.append(z)
        return hyp2f1(a, b, c, z)

    monkeypatch.setattr(clv, "hyp2f1", counted)
    answer = predict(state, now, ClvModel())
    assert len(series) == 1
    assert predict(state, now, ClvModel()) == answer
    assert len(series) == 1  # the second customer asking the same is answered from the cache
    forget_repeats()
    assert predict(state, now, ClvModel()) == answer
    assert len(series) == 2  # computed again, as a new process would


@pytest.fixture(scope="module")
def cdnow_sample() -> list[PurchaseEvent]:
    events = [EventAdapter.validate_python(e) for e in cdnow_events("CDNOW_sample.txt")]
    assert all(isinstance(e, PurchaseEvent) for e in events)
    return [e for e in events if isinstance(e, PurchaseEvent)]


def test_cdnow_summary_equals_the_published_one(cdnow_sample: list[PurchaseEvent]) -> None:
    """Our (x, t_x, T) of the 2,357 sample customers equal the summary Lifetimes ships."""
    ours = summarise(cdnow_sample, CDNOW_END_OF_CALIBRATION, WEEK)
    published = {
        f"cdnow-{row['ID']}": row
        for row in csv.DictReader(cdnow_file("cdnow_customers_summary.csv"))
    }
    assert len(ours.customers) == len(published) == 2357
    for i, customer in enumerate(ours.customers):
        row = published[customer]
        assert (ours.x[i], round(ours.t_x[i], 2), round(ours.t[i], 2)) == (
            float(row["frequency"]),
            float(row["recency"]),
            float(row["T"]),
        )


def test_cdnow_fit_matches_the_papers_estimates(cdnow_sample: list[PurchaseEvent]) -> None:
    """BG/NBD (Fader, Hardie and Lee 2005): r 0.243, alpha 4.414, a 0.793, b 2.426,
    log-likelihood -9582.4; Gamma-Gamma ("RFM and CLV", 2005): p 6.25, q 3.74, v 15.44."""
    result = fit(cdnow_sample, CDNOW_END_OF_CALIBRATION, WEEK)
    got = result.bgnbd
    for name, published in (("r", 0.243), ("alpha", 4.414), ("a", 0.793), ("b", 2.426)):
        assert getattr(got, name) == pytest.approx(published, rel=0.01), name
    assert result.log_likelihood == pytest.approx(-9582.4, abs=0.5)
    assert (result.customers, result.repeat_customers) == (2357, 946)
    spend = result.gamma_gamma
    assert spend is not None
    for name, published in (("p", 6.25), ("q", 3.74), ("v", 15.44)):
        assert getattr(spend, name) == pytest.approx(published, rel=0.01), name


def test_the_record_keeps_its_latest_predictions() -> None:
    from lifecycle.core import apply
    from lifecycle.playbook import default_playbook

    book = default_playbook()
    state = None
    for n, day in enumerate(("2026-01-05", "2026-01-19", "2026-02-02")):
        body = {
            "event_id": f"p{n}",
            "type": "purchase",
            "occurred_at": f"{day}T10:00:00Z",
            "customer_id": "c1",
            "order_id": f"o{n}",
            "total": "30.00",
            "currency": "EUR",
        }
        state = apply(state, EventAdapter.validate_python(body), book).state
    assert state is not None
    assert state.predicted_at == datetime(2026, 2, 2, 10, tzinfo=UTC)
    expected = predict(state, state.predicted_at, book.scores.clv_model)
    assert expected is not None
    assert (state.p_alive, state.predicted_clv) == (expected.p_alive, expected.predicted_clv)
    assert state.purchase_days == 3

"""Lift against the holdout on simulated experiments whose true effect is known.

Each run is a lean trial (``campaign_trial``): customers sign up (the welcome
decision), some buy within the window anyway, and treated ones buy once more
with a set probability. The pure backtest and the report measure it.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from analytics.lift import CampaignLift
from analytics.period import Period
from analytics.report import Records, Report, build_report
from analytics.simulation import Effect, campaign_trial
from lifecycle.backtest import Backtest
from lifecycle.playbook import Playbook, parse_playbook
from schemas.codec import dumps
from schemas.events import EventAdapter
from schemas.records import Campaign

RUNS = 100
CUSTOMERS = 400
BASE = 0.20
HOLDOUT = 0.30
OTHERS_OFF = "\n".join(
    f"  {c.value}: {{enabled: false}}" for c in Campaign if c is not Campaign.WELCOME
)


def lean_playbook(holdout: float) -> Playbook:
    return parse_playbook(
        f"policies: {{default_holdout: {holdout}}}\n"
        "scores: {clv_model: {enabled: false}}\n"
        f"campaigns:\n{OTHERS_OFF}\n"
    )


@pytest.fixture(scope="module")
def playbook() -> Playbook:
    return lean_playbook(HOLDOUT)


def trial_report(playbook: Playbook, seed: int, extra: float, customers: int = CUSTOMERS) -> Report:
    """Backtest a trial past its last window's end, then report on it."""
    holdout = playbook.policies.default_holdout
    effect = Effect(extra, holdout=holdout)
    lines = [
        dumps(e) for e in campaign_trial(customers, seed=seed, base_purchase=BASE, effect=effect)
    ]
    last = EventAdapter.validate_json(lines[-1]).occurred_at
    items = list(Backtest(playbook).run(lines, until=last + timedelta(days=8)))
    return build_report(Records.of_backtest(lines, items), Period(), playbook)


def welcome_lift(playbook: Playbook, seed: int, extra: float) -> CampaignLift:
    [lift] = trial_report(playbook, seed, extra).campaigns
    return lift


def test_a_known_effect_is_measured(playbook: Playbook) -> None:
    lift = welcome_lift(playbook, seed=1, extra=0.5)
    truth = 0.5 * (1 - BASE)
    assert lift.lift.conversion is not None
    assert lift.lift.conversion.covers(truth)
    assert lift.lift.conversion.significant
    assert lift.treated.customers + lift.holdout.customers == CUSTOMERS
    assert lift.suppressed.customers == 0
    assert lift.lift.revenue is not None
    assert lift.lift.revenue.estimate > 0


def test_the_interval_covers_the_true_effect_in_at_least_90_of_100_runs(
    playbook: Playbook,
) -> None:
    extra = 0.15
    truth = extra * (1 - BASE)
    covered = 0
    for seed in range(RUNS):
        conversion = welcome_lift(playbook, seed, extra).lift.conversion
        assert conversion is not None, seed
        covered += conversion.covers(truth)
    assert covered >= 90


def test_no_effect_is_significant_in_about_5_of_100_runs(playbook: Playbook) -> None:
    significant = 0
    for seed in range(1000, 1000 + RUNS):
        conversion = welcome_lift(playbook, seed, 0.0).lift.conversion
        assert conversion is not None, seed
        significant += conversion.significant
    assert significant <= 10


def test_a_tiny_holdout_says_so_instead_of_a_number() -> None:
    report = trial_report(lean_playbook(0.02), seed=3, extra=0.2, customers=200)
    [lift] = report.campaigns
    assert lift.lift.conversion is None
    assert lift.lift.too_small == "fewer than 30 customers in a group"
    assert "holdout too small to say: fewer than 30 customers" in report.text()
    assert report.as_dict()["campaigns"][0]["lift"] == {"too_small": lift.lift.too_small}

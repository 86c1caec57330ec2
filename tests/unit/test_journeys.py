"""Named customer journeys through the pure core (tests/scenarios): exact outputs, coverage."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import pytest

from lifecycle.playbook import Playbook
from schemas.events import EventAdapter
from schemas.records import Campaign, Stage
from tests.scenarios import JOURNEYS, Advance, Journey, event_time, final_states, run_journey

S = Stage

DESIGN_MOVES = {
    # docs/campaigns.md, Stages: browse without signup -> prospect; signup -> lead
    (None, S.PROSPECT),
    (None, S.LEAD),
    (S.PROSPECT, S.LEAD),
    # first purchase -> first_time_buyer; second -> repeat_customer
    (S.LEAD, S.FIRST_TIME_BUYER),
    (S.FIRST_TIME_BUYER, S.REPEAT_CUSTOMER),
    # 4+ purchases in 365 days, or top RFM segment -> loyal; loyal plus referral or review
    (S.REPEAT_CUSTOMER, S.LOYAL),
    (S.LOYAL, S.ADVOCATE),
    # no purchase for 60 days (or 2x the typical gap) -> at_risk, from every buying stage
    *((s, S.AT_RISK) for s in (S.FIRST_TIME_BUYER, S.REPEAT_CUSTOMER, S.LOYAL, S.ADVOCATE)),
    # no purchase for 120 days -> churned
    (S.AT_RISK, S.CHURNED),
    # purchase while at_risk or churned -> reactivated; next purchase -> repeat_customer
    (S.AT_RISK, S.REACTIVATED),
    (S.CHURNED, S.REACTIVATED),
    (S.REACTIVATED, S.REPEAT_CUSTOMER),
}


def each(journeys: Sequence[Journey]) -> pytest.MarkDecorator:
    """Parametrise a test over ``journeys``, each test id the journey's name."""
    return pytest.mark.parametrize("journey", journeys, ids=[j.name for j in journeys])


@each(JOURNEYS)
def test_journey_gives_exactly_the_expected_outputs(journey: Journey, playbook: Playbook) -> None:
    moves, sends = run_journey(journey, playbook)
    assert {"moves": moves, "sends": sends} == {
        "moves": list(journey.moves),
        "sends": list(journey.sends),
    }


def test_journeys_cover_every_stage_move_and_campaign(journeys: dict[str, Journey]) -> None:
    every = journeys.values()
    assert len(every) >= 22
    moves = {(m.from_stage, m.to_stage) for j in every for m in j.moves}
    assert {to for _, to in moves} == set(Stage)
    assert DESIGN_MOVES - moves == set()
    campaigns = {s.campaign for j in every for s in j.sends}
    assert campaigns == set(Campaign)
    assert {s.holdout for j in every for s in j.sends} == {True, False}
    assert any(s.send_after is not None for j in every for s in j.sends)  # quiet hours


def test_names_keys_and_event_ids_are_unique() -> None:
    assert len({j.name for j in JOURNEYS}) == len(JOURNEYS)
    owner: dict[str, str] = {}
    bodies: dict[str, object] = {}
    for journey in JOURNEYS:
        keys = set()
        for body in journey.events:
            event = EventAdapter.validate_python(dict(body))
            keys.add(event.key)
            if event.event_id in bodies:  # only a deliberate redelivery, unchanged
                assert bodies[event.event_id] == body, event.event_id
                assert owner[event.event_id] == journey.name, event.event_id
            bodies[event.event_id] = body
            owner[event.event_id] = journey.name
        assert journey.customer in keys, journey.name
        for key in keys:
            assert owner.setdefault(f"key:{key}", journey.name) == journey.name, key
    redelivered = Counter(str(b["event_id"]) for j in JOURNEYS for b in j.events) - Counter(
        bodies.keys()
    )
    assert set(redelivered) == {"duplicate-e2"}


@each(JOURNEYS)
def test_events_are_valid_and_time_only_moves_forward(journey: Journey) -> None:
    last = None
    for step in journey.steps:
        if isinstance(step, Advance):
            when = step.to
        else:
            occurred = step["occurred_at"]
            assert isinstance(occurred, str)
            assert occurred[-6] in "+-", occurred  # RFC 3339 with an explicit offset
            EventAdapter.validate_python(dict(step))
            when = event_time(step)
        assert last is None or when >= last, journey.name
        last = when
    assert isinstance(journey.steps[-1], Advance)


@each([j for j in JOURNEYS if j.kafka_ready])
def test_kafka_ready_journeys_need_only_the_final_advance(
    journey: Journey, playbook: Playbook
) -> None:
    """What a worker would do: apply the events, then its clock passes the horizon."""
    whole = run_journey(journey, playbook)
    moves, sends, states = final_states(
        journey, playbook, [*journey.events, Advance(journey.horizon)]
    )
    assert (moves, sends) == whole
    pending = [due for state in states.values() for due in state.timers.values()]
    assert all(due > journey.horizon for due in pending)

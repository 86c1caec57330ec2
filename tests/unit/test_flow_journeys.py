"""The contract's flows example as journeys (tests/scenarios/flows.py): exact outputs.

Each journey runs through the pure core with its own playbook laid over the
defaults, and must give exactly its transitions, its triggers (with flow, step
and channel), its suppressions (with the reason) and what the runs of the
playbook's flows did (entered, exited with the reason), in order.
"""

from __future__ import annotations

import pytest

from lifecycle.playbook import Playbook
from schemas.events import EventAdapter
from tests.scenarios import (
    JOURNEYS,
    Advance,
    Journey,
    event_time,
    final_states,
    flows,
    recipes,
)
from tests.scenarios.run import assert_exact, run_journey


def each(journeys: tuple[Journey, ...]) -> pytest.MarkDecorator:
    return pytest.mark.parametrize("journey", journeys, ids=[j.name for j in journeys])


def known(journey: Journey) -> object:
    """``journey`` as a test parameter; one of ``flows.OPEN_BUGS`` is expected to fail."""
    bug = flows.OPEN_BUGS.get(journey.name)
    marks = () if bug is None else pytest.mark.xfail(reason=bug, strict=True)
    return pytest.param(journey, id=journey.name, marks=marks)


@pytest.mark.parametrize("journey", [known(j) for j in (*flows.JOURNEYS, *flows.RECORD_CHANGES)])
def test_flow_journey_gives_exactly_the_expected_outputs(
    journey: Journey, playbook: Playbook
) -> None:
    assert_exact(journey, playbook)


def test_the_playbook_is_designs_block_verbatim_plus_one_flow() -> None:
    assert flows.FLOWS_PLAYBOOK.startswith(flows.DESIGN_PLAYBOOK)
    assert all(j.playbook == flows.FLOWS_PLAYBOOK for j in flows.JOURNEYS)


def test_flow_journeys_cover_the_example() -> None:
    sends = [s for j in flows.JOURNEYS for s in j.sends]
    steps = {(s.flow or s.campaign, s.step) for s in sends}
    assert {
        ("replenish_coffee", "1"),
        ("cart_series", "3.then.0"),
        ("cart_series", "3.else.0"),
        ("vip_welcome", "0"),
        ("win_back", "0"),
        ("birthday", "0"),
        ("nordic_wishlist", "1.then.0"),
        ("nordic_wishlist", "1.else.0"),
    } <= steps
    assert {s.payload["discount_percent"] for s in sends if s.campaign == "win_back"} == {
        10,
        15,
        20,
    }
    assert {s.holdout for s in sends if s.campaign == "replenish_coffee"} == {True, False}
    reasons = {e.reason for j in flows.JOURNEYS for e in j.flow_events if e.kind == "exited"}
    assert reasons == {"completed", "exit_on", "filters", "restarted"}
    assert {s.reason for j in flows.JOURNEYS for s in j.suppressed} == {
        "frequency_cap",
        "no_consent",
    }


def test_names_keys_and_event_ids_are_unique_among_all_journeys() -> None:
    ours = (*flows.JOURNEYS, *flows.RECORD_CHANGES, *recipes.journeys())
    every = (*JOURNEYS, *ours)
    assert len({j.name for j in every}) == len(every)
    owner: dict[str, str] = {}
    for journey in ours:
        for body in journey.events:
            event = EventAdapter.validate_python(dict(body))
            for name in (event.event_id, f"key:{event.key}"):
                assert owner.setdefault(name, journey.name) == journey.name, name
    for journey in JOURNEYS:
        for body in journey.events:
            event = EventAdapter.validate_python(dict(body))
            assert event.event_id not in owner, event.event_id
            assert f"key:{event.key}" not in owner, event.key


@each((*flows.JOURNEYS, *flows.RECORD_CHANGES))
def test_flow_journey_events_are_valid_and_time_only_moves_forward(journey: Journey) -> None:
    last = None
    for step in journey.steps:
        when = step.to if isinstance(step, Advance) else event_time(step)
        assert last is None or when >= last
        last = when
    assert isinstance(journey.steps[-1], Advance)
    assert journey.kafka_ready


@each(flows.JOURNEYS)
def test_flow_journeys_need_only_the_final_advance(journey: Journey, playbook: Playbook) -> None:
    """What a worker does: the events, then its clock passes the horizon."""
    whole = run_journey(journey, playbook)
    moves, sends, states = final_states(
        journey, playbook, [*journey.events, Advance(journey.horizon)]
    )
    assert (moves, sends) == whole
    pending = [due for state in states.values() for due in state.timers.values()]
    assert all(due > journey.horizon for due in pending)

"""Running a journey through one partition's runtime, as a wall-clock worker would."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from lifecycle.backtest import MERGE_TOPIC
from lifecycle.clock import ClockMode
from lifecycle.core import Outcome
from lifecycle.flows import yaml12
from lifecycle.flows.counts import FlowEvent
from lifecycle.playbook import Playbook, parse_playbook
from lifecycle.recommend import MemoryPairs, Recommender
from lifecycle.runtime import Applied, DictStore, PartitionRuntime, Result, complete
from lifecycle.state import CustomerState
from schemas.events import INBOUND_TOPICS, TOPIC_OF_TYPE, Event, EventAdapter
from schemas.internal import Claim, ProspectHistory
from tests.scenarios.model import (
    HIGHLIGHTS,
    Advance,
    Journey,
    Move,
    Send,
    Step,
    Suppressed,
)


@functools.cache
def _parsed(text: str) -> Playbook:
    return parse_playbook(text, "<journey playbook>")


def journey_playbook(journey: Journey, playbook: Playbook) -> Playbook:
    """The journey's own playbook laid over the defaults, or ``playbook`` when it has none."""
    return playbook if journey.playbook is None else _parsed(journey.playbook)


@functools.cache
def _named_flows(text: str) -> frozenset[str]:
    data = yaml12.load(text) or {}
    return frozenset(data.get("flows") or {})


def own_flows(journey: Journey) -> frozenset[str]:
    """The flows the journey's playbook names: those whose runs the journey states."""
    return frozenset() if journey.playbook is None else _named_flows(journey.playbook)


@dataclass
class Outputs:
    """What a journey produced, in the terms its expectation states."""

    moves: list[Move] = field(default_factory=list)
    sends: list[Send] = field(default_factory=list)
    suppressed: list[Suppressed] = field(default_factory=list)
    flow_events: list[FlowEvent] = field(default_factory=list)


def record_outputs(
    outcome: Outcome,
    key: str,
    journey: Journey,
    moves: list[Move],
    sends: list[Send],
    outputs: Outputs | None = None,
) -> None:
    """Append ``outcome``'s transitions and triggers as the journey states them; with
    ``outputs``, its suppressions and the runs of the journey's own flows there too."""
    own = None if key == journey.customer else key
    for t in outcome.transitions:
        moves.append(Move(t.from_stage, t.to_stage, t.reason, t.caused_by, t.at, own))
    for trigger in outcome.triggers:
        fields = HIGHLIGHTS.get(trigger.campaign) or journey.highlights.get(trigger.campaign)
        sends.append(
            Send(
                trigger.campaign,
                trigger.created_at,
                trigger.holdout,
                None if trigger.send_after == trigger.created_at else trigger.send_after,
                None if fields is None else {f: trigger.payload.get(f) for f in fields},
                own,
                None if trigger.flow == trigger.campaign else trigger.flow,
                trigger.step,
                trigger.channel,
            )
        )
    if outputs is None:
        return
    for s in outcome.suppressed:
        outputs.suppressed.append(Suppressed(s.campaign, s.flow, s.step, s.reason, own))
    named = own_flows(journey)
    outputs.flow_events.extend(e for e in outcome.flow_events if e.flow in named)


def final_states(
    journey: Journey, playbook: Playbook, steps: Sequence[Step] | None = None
) -> tuple[list[Move], list[Send], dict[str, CustomerState]]:
    """``run_journey``, plus the records left at the end, by key."""
    outputs, states = journey_outputs(journey, playbook, steps)
    return outputs.moves, outputs.sends, states


def journey_outputs(
    journey: Journey, playbook: Playbook, steps: Sequence[Step] | None = None
) -> tuple[Outputs, dict[str, CustomerState]]:
    """Every output of ``run_journey`` (suppressions and flow runs too), and the records
    left at the end, by key. The journey's own playbook, if it has one, replaces ``playbook``."""
    playbook = journey_playbook(journey, playbook)
    states: dict[str, CustomerState] = {}
    outputs = Outputs()
    runtime: PartitionRuntime[int] = PartitionRuntime.open(
        [*INBOUND_TOPICS, MERGE_TOPIC],
        ClockMode.WALL,
        timedelta(0),
        playbook,
        DictStore(states),
        Recommender(MemoryPairs(), playbook.recommendations),
    )

    def take(results: Iterable[Result[int]], position: int) -> None:
        for result in results:
            assert isinstance(result, Applied), result  # a core failure fails the journey
            outcome = result.outcome
            record_outputs(outcome, result.key, journey, outputs.moves, outputs.sends, outputs)
            merges: list[Claim | ProspectHistory] = [*outcome.claims]
            if outcome.history is not None:
                merges.append(outcome.history)
            for message in merges:
                runtime.offer(MERGE_TOPIC, position, message)  # one partition: all keys
                take(runtime.drain(), position)

    for position, step in enumerate(journey.steps if steps is None else steps):
        if isinstance(step, Advance):
            take(runtime.tick(step.to, complete), position)
            continue
        event: Event = EventAdapter.validate_python(dict(step))
        runtime.offer(TOPIC_OF_TYPE[event.type], position, event)
        take(runtime.drain(), position)
    return outputs, states


def run_journey(
    journey: Journey, playbook: Playbook, steps: Sequence[Step] | None = None
) -> tuple[list[Move], list[Send]]:
    """Walk ``journey`` (or ``steps`` in its place) through the pure core.

    The steps go through one partition's runtime (``lifecycle.runtime``), as a
    worker in wall-clock mode runs them: records kept per event key (one journey
    may see an anonymous prospect and the customer it became, merged as on the
    broker); erase deletes one. An event fires its own customer's due timers
    first; an ``Advance`` is a tick, firing every record's timers due before
    it, earliest first. Returns the transitions and the triggers, in order.
    """
    moves, sends, _ = final_states(journey, playbook, steps)
    return moves, sends


def assert_exact(journey: Journey, playbook: Playbook) -> None:
    """The journey's moves, sends, suppressions and flow runs are exactly its expectation."""
    outputs, _ = journey_outputs(journey, playbook)
    assert {
        "moves": outputs.moves,
        "sends": outputs.sends,
        "suppressed": outputs.suppressed,
        "flow_events": outputs.flow_events,
    } == {
        "moves": list(journey.moves),
        "sends": list(journey.sends),
        "suppressed": list(journey.suppressed),
        "flow_events": list(journey.flow_events),
    }

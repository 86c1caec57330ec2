"""Running a journey through one partition's runtime, as a wall-clock worker would."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import timedelta

from lifecycle.backtest import MERGE_TOPIC
from lifecycle.clock import ClockMode
from lifecycle.core import Outcome
from lifecycle.playbook import Playbook
from lifecycle.recommend import MemoryPairs, Recommender
from lifecycle.runtime import Applied, DictStore, PartitionRuntime, Result, complete
from lifecycle.state import CustomerState
from schemas.events import INBOUND_TOPICS, TOPIC_OF_TYPE, Event, EventAdapter
from schemas.internal import Claim, ProspectHistory
from tests.scenarios.model import HIGHLIGHTS, Advance, Journey, Move, Send, Step


def record_outputs(
    outcome: Outcome, key: str, journey: Journey, moves: list[Move], sends: list[Send]
) -> None:
    own = None if key == journey.customer else key
    for t in outcome.transitions:
        moves.append(Move(t.from_stage, t.to_stage, t.reason, t.caused_by, t.at, own))
    for trigger in outcome.triggers:
        fields = HIGHLIGHTS.get(trigger.campaign)
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
            )
        )


def final_states(
    journey: Journey, playbook: Playbook, steps: Sequence[Step] | None = None
) -> tuple[list[Move], list[Send], dict[str, CustomerState]]:
    """``run_journey``, plus the records left at the end, by key."""
    states: dict[str, CustomerState] = {}
    moves: list[Move] = []
    sends: list[Send] = []
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
            record_outputs(outcome, result.key, journey, moves, sends)
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
    return moves, sends, states


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

"""Every named journey through the agent's wiring, in memory (``tests/fakes.py``).

The journeys of ``tests/scenarios`` (``test_journeys`` and ``test_flow_journeys``
run them through the pure runtime), each with its own playbook if it has one,
here through what a worker does with Kafka's messages:
admission in offset order, the merge of topics per partition, identity-merge
messages through their own topic, ticks, the checkpoint's commit sequence.
Each journey's customers must get exactly its expected stage moves and
triggers, in order, and the inputs' offsets must all be committed at the end.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from agents.ticks import encode_tick
from lifecycle.clock import ClockMode
from lifecycle.core import Outcome
from lifecycle.playbook import Playbook
from schemas.codec import dumps
from schemas.records import Transition, Trigger
from streams.producer import route
from streams.settings import Settings
from tests.fakes import MemoryWorker
from tests.scenarios import (
    JOURNEYS,
    Advance,
    Journey,
    Move,
    Send,
    event_time,
    flows,
    recipes,
    record_outputs,
)
from tests.scenarios.run import journey_playbook

SETTINGS = Settings(clock=ClockMode.WALL, batch_linger=0.0, output_hold=0.0)


def outputs(worker: MemoryWorker, journey: Journey) -> tuple[list[Move], list[Send]]:
    """The worker's transitions and triggers, per key in the order it sent them."""
    per_key: dict[str, Outcome] = {}
    for topic in ("transitions", "triggers"):
        for key, value in worker.broker.values(SETTINGS.topic(topic)):
            assert key is not None
            record: Any = Transition if topic == "transitions" else Trigger
            per_key.setdefault(key.decode(), Outcome(state=None)).emitted.append(
                record.model_validate(value)
            )
    moves: list[Move] = []
    sends: list[Send] = []
    for key, outcome in per_key.items():
        record_outputs(outcome, key, journey, moves, sends)
    return moves, sends


def per_key(items: list[Any]) -> dict[str | None, list[Any]]:
    grouped: dict[str | None, list[Any]] = {}
    for item in items:
        grouped.setdefault(item.key, []).append(item)
    return grouped


async def walk(journey: Journey, playbook: Playbook) -> MemoryWorker:
    worker = MemoryWorker.of(SETTINGS, playbook)
    await worker.start()
    for step in journey.steps:
        if isinstance(step, Advance):
            value = encode_tick(step.to, SETTINGS.app_id)
            for partition in range(SETTINGS.partitions):
                worker.broker.append(SETTINGS.topic("ticks"), None, value, partition)
        else:
            topic, key = route(dict(step), SETTINGS)
            worker.broker.append(topic, key, dumps(step), timestamp=event_time(step).timestamp())
        await worker.run()
    assert await worker.processor.drain()  # a clean stop commits every offset applied
    return worker


EVERY = [
    *(pytest.param(j, id=j.name) for j in JOURNEYS),
    *(pytest.param(j, id=j.name) for j in flows.JOURNEYS),
    *(pytest.param(j, id=j.name) for j in recipes.journeys()),
]


@pytest.mark.parametrize("journey", EVERY)
def test_the_agent_gives_each_journey_exactly_its_outputs(
    journey: Journey, playbook: Playbook
) -> None:
    worker = asyncio.run(walk(journey, journey_playbook(journey, playbook)))
    moves, sends = outputs(worker, journey)
    assert per_key(moves) == per_key(list(journey.moves))
    assert per_key(sends) == per_key(list(journey.sends))
    assert worker.broker.values(SETTINGS.topic("deadletter")) == []
    inputs = {*SETTINGS.event_topics, SETTINGS.topic("merge")}
    ends = {tp: len(log) for tp, log in worker.broker.logs.items() if tp.topic in inputs and log}
    committed = worker.broker.committed
    assert {tp: o for tp, o in committed.items() if tp.topic in inputs and o} == ends

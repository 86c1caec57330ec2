"""Outputs leave when the agent runs out of messages, once held a quarter of
``LIFECYCLE_OUTPUT_HOLD``: at light load they do not wait out the whole hold, and
under load (a stream buffer that keeps refilling) they still leave together."""

from __future__ import annotations

import asyncio

from lifecycle.playbook import default_playbook
from streams.settings import Settings
from tests.fakes import Event, MemoryWorker
from tests.unit.test_pipelined_commit import SIGNUP, publish

SETTINGS = Settings(batch_linger=0.0, output_hold=0.2)


def test_held_outputs_leave_when_the_agent_runs_dry_after_a_quarter_of_the_hold() -> None:
    worker = MemoryWorker.of(SETTINGS, default_playbook())
    checkpoint = worker.processor.checkpoint
    triggers = SETTINGS.topic("triggers")

    async def run() -> None:
        await worker.start()
        publish(worker, SIGNUP)
        message = worker.consumer.next()
        assert message is not None
        await worker.processor.handle(Event(message))  # type: ignore[arg-type]
        assert checkpoint.batch.outputs.held  # the welcome, held
        await checkpoint.release_outputs()
        assert checkpoint.batch.outputs.held  # held for less than a quarter of the hold
        await asyncio.sleep(SETTINGS.output_hold / 4)
        await checkpoint.release_outputs()
        assert not checkpoint.batch.outputs.held
        assert [value["campaign"] for _, value in worker.broker.values(triggers)] == ["welcome"]

    asyncio.run(run())

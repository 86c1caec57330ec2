"""``/ready``'s verdict (``agents.web.ready``): a worker is ready only when a message
handed over now would be applied without waiting for anything of the worker's own."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from lifecycle.playbook import default_playbook
from streams.settings import Settings
from tests.fakes import MemoryWorker


def faust_app(worker: MemoryWorker) -> SimpleNamespace:
    """What ``ready`` reads of Faust's app: a worker past its rebalance and recovery."""
    done = asyncio.Event()
    done.set()
    return SimpleNamespace(
        rebalancing=False,
        in_recovery=False,
        tables=SimpleNamespace(recovery=SimpleNamespace(completed=done)),
        consumer=SimpleNamespace(assignment=worker.consumer.assignment),
    )


async def test_ready_waits_for_the_rebuild_then_for_the_resume_points() -> None:
    from agents.web import ready

    worker = MemoryWorker.of(Settings(), default_playbook())
    processor, app = worker.processor, faust_app(worker)
    answered = asyncio.Event()

    async def resume_points(tps: list[object]) -> dict[object, int]:
        await answered.wait()  # the broker has not answered yet
        return dict.fromkeys(tps, 0)

    processor.offsets.resume_points = resume_points  # type: ignore[assignment]
    await worker.start()  # the assignment asks for the resume points
    assert ready(app, processor) == (False, "timer heaps not rebuilt yet")
    processor.partitions.rebuild_timers()
    assert ready(app, processor) == (False, "resume points not read yet")

    answered.set()
    assert processor.offsets.resuming is not None
    await processor.offsets.resuming
    assert ready(app, processor) == (True, "ready")


async def test_an_ask_for_the_resume_points_that_failed_is_made_again_at_a_tick() -> None:
    """With no event coming, a tick is what asks again; otherwise the worker would
    never be ready."""
    from agents.web import ready

    worker = MemoryWorker.of(Settings(), default_playbook())
    processor, app = worker.processor, faust_app(worker)
    asked = 0

    async def resume_points(tps: list[object]) -> dict[object, int]:
        nonlocal asked
        asked += 1
        if asked == 1:
            away = "the broker is away"
            raise ConnectionError(away)
        return dict.fromkeys(tps, 0)

    processor.offsets.resume_points = resume_points  # type: ignore[assignment]
    await worker.start()
    assert processor.offsets.resuming is not None
    await processor.offsets.resuming
    processor.partitions.rebuild_timers()
    assert ready(app, processor) == (False, "resume points not read yet")

    await worker.tick()
    assert await worker.run() > 0  # the ticks
    assert processor.offsets.resuming is not None
    await processor.offsets.resuming
    assert asked == 2
    assert ready(app, processor) == (True, "ready")

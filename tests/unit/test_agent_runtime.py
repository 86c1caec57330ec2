"""A core failure on any message the agent handles, merge messages included, is
parked on the dead-letter topic, never raised, and writes nothing."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from lifecycle.core import apply
from lifecycle.playbook import default_playbook
from schemas.codec import dumps, encode_model
from schemas.inbound import Rejection, parse_event
from schemas.internal import Claim, ProspectHistory
from streams.settings import Settings
from tests.fakes import MemoryWorker
from tests.unit.test_runtime import fail_on

AT = datetime(2026, 3, 1, 10, 5, tzinfo=UTC)


@pytest.mark.parametrize("kind", [Claim, ProspectHistory])
def test_a_core_failure_on_a_merge_message_is_dead_lettered_not_raised(
    kind: type, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only events and timers were caught before: a bad merge message stopped the worker."""
    settings = Settings(batch_linger=0.0)
    worker = MemoryWorker.of(settings, default_playbook())
    browse = parse_event(
        dumps({"type": "browse", "event_id": "b1", "occurred_at": "2026-03-01T10:00:00Z",
               "anonymous_id": "anon", "product_id": "teapot"})
    )  # fmt: skip
    assert not isinstance(browse, Rejection)
    prospect = apply(None, browse, worker.processor.playbook).state
    assert prospect is not None
    stored = encode_model(prospect)
    worker.customers.data[0][b"anon"] = stored
    item: Claim | ProspectHistory = Claim(anonymous_id="anon", customer_id="c1", at=AT, cause="s1")
    if kind is ProspectHistory:
        history = apply(prospect, item, worker.processor.playbook).history
        assert history is not None
        item = history
    fail_on(monkeypatch, kind)
    merge = settings.topic("merge")
    worker.broker.append(merge, b"x", b"not a merge message", partition=0)
    worker.broker.append(merge, b"anon", encode_model(item), partition=0, timestamp=AT.timestamp())

    async def run() -> None:
        await worker.start()
        await worker.run()

    asyncio.run(run())
    letters = [letter for _, letter in worker.broker.values(settings.topic("deadletter"))]
    assert [(lt["topic"], lt["offset"], lt["reason"]) for lt in letters] == [
        (merge, 0, "invalid_field"),
        (merge, 1, "processing_error"),
    ]
    assert worker.customers.data[0] == {b"anon": stored}  # nothing written for it

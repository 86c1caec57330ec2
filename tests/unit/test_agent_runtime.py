"""The agent hands what its partition runtime yields to the batch, without a broker:
a core failure on any message, merge messages included, is parked, never raised."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest

from agents.lifecycle import LifecycleProcessor
from lifecycle.core import apply
from lifecycle.playbook import default_playbook
from schemas.codec import dumps, encode_model, loads
from schemas.inbound import Rejection, parse_event
from schemas.internal import Claim, ProspectHistory
from streams.app import create_app
from streams.settings import Settings
from tests.unit.test_runtime import fail_on

AT = datetime(2026, 3, 1, 10, 5, tzinfo=UTC)


class Table(dict[bytes, bytes]):
    """The customers table as the processor reads it between commits."""


def processor() -> LifecycleProcessor:
    processor = LifecycleProcessor(create_app(Settings()), default_playbook())
    processor.table = Table()
    return processor


def message(topic: str, offset: int, value: bytes) -> Any:
    """A Faust event as the runtime holds it: only its message is read."""
    return SimpleNamespace(
        message=SimpleNamespace(
            topic=topic, partition=0, offset=offset, timestamp=AT.timestamp(), key=b"k",
            value=value, headers=[],
        )
    )  # fmt: skip


def sent(worker: LifecycleProcessor, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Any]]:
    """What the worker hands to its producer, decoded, as (topic, value)."""
    out: list[tuple[str, Any]] = []
    monkeypatch.setattr(
        worker, "_send", lambda topic, _key, value: out.append((topic, loads(value)))
    )
    return out


@pytest.mark.parametrize("kind", [Claim, ProspectHistory])
def test_a_core_failure_on_a_merge_message_is_dead_lettered_not_raised(
    kind: type, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only events and timers were caught before: a bad merge message stopped the worker."""
    fail_on(monkeypatch, kind)
    worker = processor()
    browse = parse_event(
        dumps({"type": "browse", "event_id": "b1", "occurred_at": "2026-03-01T10:00:00Z",
               "anonymous_id": "anon", "product_id": "teapot"})
    )  # fmt: skip
    assert not isinstance(browse, Rejection)
    prospect = apply(None, browse, worker.playbook).state
    assert prospect is not None
    worker.table[b"anon"] = encode_model(prospect)
    claim = Claim(anonymous_id="anon", customer_id="c1", at=AT, cause="s1")
    merge = worker.merge_topic
    runtime = worker.runtime_of(0)
    item: Claim | ProspectHistory = claim
    if kind is ProspectHistory:
        history = apply(prospect, claim, worker.playbook).history
        assert history is not None
        item = history
    outputs = sent(worker, monkeypatch)
    runtime.offer(merge, message(merge, 7, encode_model(item)), item)
    assert worker.hand_on(runtime.drain()) == 1
    [(topic, letter)] = outputs
    assert topic == worker.settings.topic("deadletter")
    assert (letter["topic"], letter["offset"], letter["reason"]) == (merge, 7, "processing_error")
    assert worker.batch.records == {}  # nothing written for the failed message

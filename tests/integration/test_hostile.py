"""Garbage through the real broker, interleaved with a simulated shop's events.

The worker must never stop; every hostile message must be in the dead-letter
topic with the reason the shared parser gives it (or the routing reason for a
key or topic that does not match the body); and every valid event must be
processed exactly as the pure core processes the valid events alone.
Duplicates of valid events are valid input that must change nothing.
"""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from analytics.simulation import simulate
from harness.engine import (
    OUTPUTS,
    Worker,
    backtest,
    collect,
    create_topics,
    publish_raw,
    stored_states,
    unique_settings,
)
from harness.hostile import VALID, corpus, mutations
from schemas.codec import dumps, to_jsonable
from schemas.inbound import Rejection, parse_event
from streams.producer import route

Record = tuple[str, bytes | None, bytes]


def test_hostile_input_is_dead_lettered_and_valid_input_processed(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    settings = unique_settings(kafka_bootstrap, tmp_path)
    create_topics(settings)
    events = list(simulate(80, seed=29, duplicate_rate=0.05))
    runner, expected = backtest(settings, events)

    purchase = settings.topic("purchase")
    bad: list[tuple[Record, str]] = [((purchase, b"c1", raw), why) for raw, why in corpus()]
    now = datetime.now(UTC)
    for raw in mutations(150, seed=29):
        reason = parse_event(raw, received_at=now)
        assert isinstance(reason, Rejection)
        bad.append(((purchase, b"c1", raw), reason.reason.value))
    bad.append(((purchase, b"someone-else", dumps(VALID)), "key_mismatch"))
    bad.append(((purchase, None, dumps(VALID)), "key_mismatch"))
    bad.append(((settings.topic("browse"), b"c1", dumps(VALID)), "wrong_topic"))

    rng = random.Random(29)
    stream: list[Record] = [(*route(e, settings), dumps(e)) for e in events]
    for record, _ in bad:  # scattered among the valid ones, which keep their order
        stream.insert(rng.randrange(len(stream) + 1), record)
    worker = Worker(settings, tmp_path / "worker.log").start()
    try:
        publish_raw(settings, stream)
        letters = collect(settings, ["deadletter"], expected=len(bad), quiet=4)
        outputs = collect(settings, OUTPUTS, expected=len(expected))
        worker.assert_alive()
        states = stored_states(settings)
    finally:
        worker.stop()

    assert Counter(d["value"]["reason"] for d in letters) == Counter(why for _, why in bad)
    assert all(d["value"]["message"] for d in letters)
    assert sorted((o["topic"], o["key"], dumps(o["value"])) for o in outputs) == sorted(
        (settings.topic(o.topic), o.key, dumps(to_jsonable(o.value))) for o in expected
    )
    assert states == {k: to_jsonable(s) for k, s in runner.states.items()}
    assert "Traceback" not in worker.log_text()

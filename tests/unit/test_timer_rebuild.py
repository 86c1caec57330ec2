"""A worker's rebuild from its stored records: the timer heaps, and the event time
its ticks carry, which is all that moves an idle partition's clock at the end of input."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from agents.lifecycle import LifecycleProcessor, earliest_timer
from analytics.simulation import simulate
from lifecycle.backtest import Backtest
from lifecycle.clock import ClockMode
from lifecycle.playbook import default_playbook
from schemas.codec import dumps, to_jsonable
from streams.app import create_app
from streams.producer import partitioner_of
from streams.settings import Settings


def stored_records(settings: Settings) -> tuple[list[tuple[int, bytes, bytes]], Backtest]:
    """A simulated shop's records as the table holds them, per partition."""
    runner = Backtest(
        default_playbook(), partitioner_of(settings), received_at=datetime(2026, 1, 1, tzinfo=UTC)
    )
    for _ in runner.run([dumps(event) for event in simulate(30, seed=5)]):
        pass
    partition_of = partitioner_of(settings)
    rows = [
        (partition_of(key), key.encode(), dumps(to_jsonable(state)))
        for key, state in runner.states.items()
    ]
    return rows, runner


def test_a_restarted_worker_ticks_at_the_latest_event_time_it_stored() -> None:
    settings = Settings(clock=ClockMode.EVENT)
    rows, runner = stored_records(settings)
    processor = LifecycleProcessor(create_app(settings), default_playbook())
    stored: Any = lambda: iter(rows)  # noqa: E731 - the table's scan, without a store
    processor.stored_by_partition = stored  # type: ignore[method-assign]
    assert processor.tick_time() is None  # a fresh process has released nothing

    processor.rebuild_timers()

    latest = max(state.last_event_at for state in runner.states.values())
    assert processor.tick_time() == latest
    pending = {
        key: min(state.timers.values()) for key, state in runner.states.items() if state.timers
    }
    heaps = {p: runtime.timers for p, runtime in processor.runtimes.items()}
    assert sum(len(heap) for heap in heaps.values()) == len(pending) > 0


def test_a_records_summary_reads_its_earliest_timer_as_the_validated_record_has_it() -> None:
    rows, runner = stored_records(Settings())
    states = {key.encode(): state for key, state in runner.states.items()}
    assert any(state.timers for state in states.values())
    for _, key, raw in rows:
        assert earliest_timer(raw) == min(states[key].timers.values(), default=None)

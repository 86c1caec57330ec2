"""A worker's rebuild from its stored records: the timer heaps, and the event time
its ticks carry, which is all that moves an idle partition's clock at the end of input."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from analytics.simulation import simulate
from lifecycle.backtest import Backtest
from lifecycle.clock import ClockMode
from lifecycle.playbook import Playbook, default_playbook, parse_playbook
from schemas.codec import dumps, to_jsonable
from schemas.internal import DatedSummary, RecordSummary
from streams.producer import partitioner_of
from streams.settings import Settings
from tests.fakes import MemoryWorker


def stored_records(
    settings: Settings, extras: bool = False, playbook: Playbook | None = None
) -> tuple[list[tuple[int, bytes, bytes]], Backtest]:
    """A simulated shop's records as the table holds them, per partition (``extras``:
    with its traits, a birthday among them)."""
    runner = Backtest(
        playbook or default_playbook(),
        partitioner_of(settings),
        received_at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    for _ in runner.run([dumps(event) for event in simulate(30, seed=5, extras=extras)]):
        pass
    partition_of = partitioner_of(settings)
    rows = [
        (partition_of(key), key.encode(), dumps(to_jsonable(state)))
        for key, state in runner.states.items()
    ]
    return rows, runner


def restarted(
    settings: Settings, rows: list[tuple[int, bytes, bytes]], playbook: Playbook | None = None
) -> MemoryWorker:
    """A worker started over a table that holds ``rows``, its heaps not rebuilt yet."""
    worker = MemoryWorker.of(settings, playbook or default_playbook())
    for partition, key, raw in rows:
        worker.customers.data[partition][key] = raw
    return worker


def test_a_restarted_worker_ticks_at_the_latest_event_time_it_stored() -> None:
    settings = Settings(clock=ClockMode.EVENT)
    rows, runner = stored_records(settings)
    processor = restarted(settings, rows).processor
    assert processor.ticker.time() is None  # a fresh process has released nothing

    processor.partitions.rebuild_timers()

    latest = max(state.last_event_at for state in runner.states.values())
    assert processor.ticker.time() == latest
    pending = {
        key: min(state.timers.values()) for key, state in runner.states.items() if state.timers
    }
    heaps = {p: runtime.timers for p, runtime in processor.partitions.runtimes.items()}
    assert sum(len(heap) for heap in heaps.values()) == len(pending) > 0


def test_a_records_summary_reads_its_earliest_timer_as_the_validated_record_has_it() -> None:
    rows, runner = stored_records(Settings())
    states = {key.encode(): state for key, state in runner.states.items()}
    assert any(state.timers for state in states.values())
    for _, key, raw in rows:
        assert RecordSummary.model_validate_json(raw).earliest_timer == min(
            states[key].timers.values(), default=None
        )


BIRTHDAY = '{trigger: {date: traits.birthday, at: "09:00"}, steps: [{send: {campaign: birthday}}]}'


_NEVER = datetime.max.replace(tzinfo=UTC)


def heap_deadlines(worker: MemoryWorker) -> dict[str, datetime]:
    return {
        key: due
        for runtime in worker.processor.partitions.runtimes.values()
        for key, due in runtime.timers.deadlines.items()
    }


def test_a_rebuild_under_a_new_date_flow_wakes_the_records_that_lack_it() -> None:
    """The records were written before the playbook had its birthday flow: each one
    with the trait is woken at its last event time, the first sweep, so the wake-up
    schedules the flow (``core._advance``). Records written under that flow keep
    their earliest timer: each has its birthday scheduled already."""
    settings = Settings(clock=ClockMode.EVENT)
    with_flow = parse_playbook(f"flows:\n  birthday: {BIRTHDAY}\n")
    rows, runner = stored_records(settings, extras=True)
    worker = restarted(settings, rows, with_flow)

    worker.processor.partitions.rebuild_timers()

    born = {key for key, state in runner.states.items() if state.profile.traits.get("birthday")}
    assert born
    assert heap_deadlines(worker) == {
        key: min([*state.timers.values(), state.last_event_at])
        if key in born
        else min(state.timers.values())
        for key, state in runner.states.items()
        if state.timers or key in born
    }
    assert any(  # the wake-up comes before any timer the record has
        heap_deadlines(worker)[key] < min(runner.states[key].timers.values(), default=_NEVER)
        for key in born
    )

    rows, runner = stored_records(settings, extras=True, playbook=with_flow)
    worker = restarted(settings, rows, with_flow)
    worker.processor.partitions.rebuild_timers()
    assert all("date:birthday" in runner.states[key].timers for key in born)
    assert heap_deadlines(worker) == {
        key: min(state.timers.values()) for key, state in runner.states.items() if state.timers
    }


def test_a_rebuild_wakes_a_record_lacking_a_date_flow_only_when_its_trait_is_a_date() -> None:
    """A trait that is not a date gives the flow no moment (``dates.next_date``), so a
    wake-up would schedule nothing: the rebuild leaves such a record at its timers
    rather than waking it at every rebuild."""
    last = datetime(2026, 3, 1, 12, tzinfo=UTC)
    timer = datetime(2026, 4, 1, tzinfo=UTC)
    flows = {"birthday": "birthday"}

    def wake(birthday: object, dates: dict[str, str] | None = None) -> datetime | None:
        stored = {
            "timers": {"review_request": timer.isoformat()},
            "last_event_at": last.isoformat(),
            "dates": dates,
            "profile": {"traits": {"birthday": birthday}},
        }
        return DatedSummary.model_validate_json(dumps(stored)).wake_at(flows)

    assert wake("1990-05-17") == last
    assert wake("1990-05-17", {"birthday": "2026-05-17T09:00:00+00:00"}) == timer
    for not_a_date in ("someday", "17/05/1990", "1990-02-30", 19900517, True, None):
        assert wake(not_a_date) == timer, not_a_date


async def test_the_heaps_are_rebuilt_once_the_tables_are_recovered_not_at_a_message() -> None:
    settings = Settings()
    rows, runner = stored_records(settings)
    processor = restarted(settings, rows).processor
    recovered = asyncio.Event()
    rebuild = asyncio.ensure_future(processor.rebuild_when_recovered(recovered))
    await asyncio.sleep(0)
    assert processor.timers_stale  # the tables are not recovered yet

    recovered.set()
    await rebuild

    assert not processor.timers_stale
    pending = sum(1 for state in runner.states.values() if state.timers)
    assert sum(len(r.timers) for r in processor.partitions.runtimes.values()) == pending > 0


async def test_a_message_being_handled_keeps_the_rebuild_to_itself() -> None:
    settings = Settings()
    rows, _ = stored_records(settings)
    processor = restarted(settings, rows).processor
    recovered = asyncio.Event()
    recovered.set()
    async with processor.busy:
        await processor.rebuild_when_recovered(recovered)
    assert processor.timers_stale
    assert not processor.partitions.runtimes


async def test_the_end_of_a_recovery_is_announced_after_the_rebuild() -> None:
    """The worker returns the heap's freed pages then (``agents.worker``): the rebuild
    parses every stored record, so announced before it, its garbage stayed resident."""
    settings = Settings()
    rows, _ = stored_records(settings)
    processor = restarted(settings, rows).processor
    stale_when_called: list[bool] = []
    processor.after_recovery = lambda: stale_when_called.append(processor.timers_stale)
    recovered = asyncio.Event()
    recovered.set()
    await processor.rebuild_when_recovered(recovered)
    assert stale_when_called == [False]

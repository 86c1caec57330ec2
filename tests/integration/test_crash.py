"""Crash test: kill -9 a worker again and again under load; lose nothing, count nothing twice.

Simulated events are published at a steady rate while the worker is killed
with SIGKILL at random moments after it has joined the group, then
restarted. Each kill leaves a dead member behind until its session ends.
Once the worker is killed while its join waits: the group's next generation
counts that member too, so the next worker gets part of the partitions and
the rest a session later (the path on which ``Delivery.stalled`` recovers
records fetched but never delivered). At
the end every customer record must equal the pure core's answer on the same
input, every expected trigger_id must have been emitted
(at least once: delivery is at-least-once) and no other.
"""

from __future__ import annotations

import functools
import random
import signal
import threading
import time
from pathlib import Path
from typing import Any

from analytics.simulation import simulate
from harness.engine import (
    OUTPUTS,
    Worker,
    backtest,
    collect,
    create_topics,
    lag_report,
    personal_data_in,
    publish,
    record_differences,
    stored_states,
    topic_config,
    unique_settings,
    wait_caught_up,
    wait_for,
    wait_ready,
)
from mailer.service import plan
from schemas.codec import to_jsonable
from schemas.records import Campaign, Trigger
from streams.admin import CHANGELOG_TOPIC_CONFIG
from streams.broker import find_free_port
from tests.integration.mail import Inbox, Mailer

KILLS = 10


class Run:
    """A simulated shop published at a steady rate, and the pure core's answer to it."""

    def __init__(
        self, settings: Any, customers: int, seed: int, gate: threading.Event | None = None
    ) -> None:
        """With ``gate``, half the events go out, then the rest once the gate opens:
        load after a moment the test chooses, whatever the machine's speed."""
        self.settings = settings
        create_topics(settings)
        self.events = list(simulate(customers, seed=seed))
        self.runner, self.expected = backtest(settings, self.events)
        self.gate = gate
        # A daemon: a test that fails before it opens the gate does not keep the
        # session waiting for the second half.
        self.publisher = threading.Thread(target=self._publish, daemon=True)

    def _publish(self) -> None:
        half = len(self.events) // 2 if self.gate is not None else len(self.events)
        publish(self.settings, self.events[:half], rate=250.0)
        if self.gate is not None:
            self.gate.wait(timeout=900)
            publish(self.settings, self.events[half:], rate=250.0)

    def check(self, workers: list[Worker]) -> None:
        """Every record equals the core's; every expected trigger_id came, and no other."""
        self.publisher.join()
        for worker in workers:  # the last restart may still wait for the dead member's session
            assert wait_ready(worker.settings)["status"] == 200, worker.status()
        if not wait_caught_up(self.settings):
            lagging = lag_report(self.settings)
            raise AssertionError(
                f"the workers never caught up with the input; lagging: {lagging}\n"
                + "\n".join(worker.status() for worker in workers)
            )
        expected_ids = {o.value.trigger_id for o in self.expected if isinstance(o.value, Trigger)}
        triggers = self.settings.topic("triggers")
        # The committed input says nothing of the timers that fire once the input is over
        # (on a tick, with the partitions idle), and resent duplicates reach any count
        # before the last originals: read again until every expected trigger came, or
        # the deadline says one never will.
        deadline = time.monotonic() + 300
        while True:
            records = collect(self.settings, OUTPUTS, expected=len(self.expected), timeout=300)
            emitted = [r["value"]["trigger_id"] for r in records if r["topic"] == triggers]
            if set(emitted) >= expected_ids or time.monotonic() > deadline:
                break
        for worker in workers:
            worker.assert_alive()
            # A full run's log, through ten kills: no simulated email or name in it.
            assert personal_data_in(worker.log_text(), self.events) == []
        states = stored_states(self.settings)
        missing, extra = expected_ids - set(emitted), set(emitted) - expected_ids
        never = [
            f"missing {t.trigger_id}: {t.campaign} for {t.customer_id} at {t.created_at}"
            for o in self.expected
            if isinstance(t := o.value, Trigger) and t.trigger_id in missing
        ]
        assert (missing, extra) == (set(), set()), "\n".join(
            [
                f"{len(missing)} expected triggers never came, {len(extra)} came unexpected:",
                *never[:10],
                *(f"unexpected {trigger_id}" for trigger_id in sorted(extra)[:10]),
                *released_unordered(workers)[:20],
            ]
        )
        want: dict[str, Any] = {k: to_jsonable(s) for k, s in self.runner.states.items()}
        lost = [k for k in want if k not in states]
        differ = [k for k in want if k in states and states[k] != want[k]]
        assert (lost, differ) == ([], []), "\n".join(
            [
                f"{len(lost)} records lost {lost[:3]}; {len(differ)} differ, stored against core:",
                *record_differences(states, want),
                *released_unordered(workers)[:20],
            ]
        )
        assert set(states) == set(want)


def released_unordered(workers: list[Worker]) -> list[str]:
    """The workers' warnings that a merge released messages without waiting: after
    them the records may differ from the core's by design, and say why they do."""
    marks = ("releasing without it", "order may differ")
    return [
        line
        for worker in workers
        for line in worker.log_text().splitlines()
        if any(mark in line for mark in marks)
    ]


def mailed(inbox: Inbox) -> list[str]:
    """The trigger_id of every mail the SMTP server received (its Message-ID)."""
    return [m.removeprefix("<").removesuffix("@lifecycle>") for m in inbox.ids()]


def joining(worker: Worker, since: int) -> bool:
    """Whether the worker has asked to join the group since log position ``since``."""
    return "(Re-)joining group" in worker.log_text()[since:]


def kill(worker: Worker) -> None:
    assert worker.process is not None
    worker.process.send_signal(signal.SIGKILL)
    worker.process.wait()


def test_kill_9_under_load_loses_nothing(
    kafka_bootstrap: str, tmp_path: Path, smtp: tuple[Inbox, int]
) -> None:
    # The simulated shop's triggers are from its own past: the mailer must not expire them.
    # A dead member is dropped after a 10 s session, so ten kills take minutes, not ten.
    ages = dict.fromkeys(Campaign, 20 * 365 * 86400.0)
    settings = unique_settings(kafka_bootstrap, tmp_path).model_copy(
        update={"mailer_max_age": ages, "session_timeout": 10.0}
    )
    run = Run(settings, customers=400, seed=17)
    inbox, port = smtp
    worker = Worker(run.settings, tmp_path / "worker.log")
    mailer = Mailer(run.settings, port, tmp_path)

    def unconfirmed() -> set[str]:
        return mailer.outbox_ids("unconfirmed")

    since = 0
    rng = random.Random(3)
    try:  # the stops in ``finally`` are no-ops for a process that did not start
        worker.start()
        mailer.start()
        run.publisher.start()
        for n in range(KILLS):
            if n == KILLS // 2:  # once while its join waits for the last one's session
                asked = functools.partial(joining, worker, since)
                assert wait_for(asked, timeout=300), worker.status()
                time.sleep(0.5)
            else:  # a moment after it joined, whatever the machine's speed
                assert wait_ready(run.settings)["status"] == 200, worker.status()
                time.sleep(rng.uniform(0.5, 3.5))
            kill(worker)
            since = len(worker.log_text())
            worker.start()
            if n % 3 == 1:  # the reference mailer is killed too, now and then
                mailer.kill()
                mailer.start()
        run.check([worker])
        sendable = {
            o.value.trigger_id
            for o in run.expected
            if isinstance(o.value, Trigger) and plan(o.value) == "send"
        }
        wait_for(lambda: len(set(mailed(inbox)) | unconfirmed()) >= len(sendable), timeout=600)
        time.sleep(2)  # nothing more must come
    finally:
        worker.stop()
        mailer.stop()
    delivered = mailed(inbox)
    assert mailer.outbox_ids("expired") == set()
    assert len(delivered) == len(set(delivered)), "a trigger was mailed twice"
    assert set(delivered) | mailer.outbox_ids("unconfirmed") == sendable
    assert len(mailer.outbox_ids("unconfirmed")) <= 3  # at most one in flight per mailer kill
    assert personal_data_in(mailer.log.read_text(), run.events) == []
    for table in ("customers", "copurchase"):  # what the recoveries read: compacted, small segments
        config = topic_config(run.settings, f"{run.settings.app_id}-{table}-changelog")
        assert config["cleanup.policy"] == "compact"
        assert {k: config[k] for k in CHANGELOG_TOPIC_CONFIG} == {
            k: str(v) for k, v in CHANGELOG_TOPIC_CONFIG.items()
        }


def test_a_survivor_takes_over_and_the_partitions_spread_back(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    # A short session, so the group gives the dead worker's partitions away mid-stream.
    settings = unique_settings(kafka_bootstrap, tmp_path).model_copy(
        update={"session_timeout": 8.0}
    )
    other = settings.model_copy(
        update={"web_port": find_free_port(1), "data_dir": tmp_path / "other"}
    )
    took_over = threading.Event()
    run = Run(settings, customers=700, seed=23, gate=took_over)
    survivor = Worker(settings, tmp_path / "survivor.log")
    victim = Worker(other, tmp_path / "victim.log")

    def rebalances(worker: Worker) -> int:
        return worker.log_text().count("timer heaps rebuilt")  # once per assignment

    try:  # the stops in ``finally`` are no-ops for a process that did not start
        survivor.start()
        victim.start()
        run.publisher.start()
        assert wait_for(lambda: rebalances(survivor) and rebalances(victim), timeout=300)
        time.sleep(4)  # both own partitions, mid-stream
        kill(victim)  # the survivor takes its partitions, state and pending timers over
        assert wait_for(lambda: rebalances(survivor) >= 2, timeout=300), "no takeover"
        took_over.set()  # the second half of the load: the survivor alone
        time.sleep(4)
        before = rebalances(survivor), rebalances(victim)
        victim.start()  # rejoins: the partitions spread back
        assert wait_for(
            lambda: rebalances(survivor) > before[0] and rebalances(victim) > before[1],
            timeout=300,
        ), "the partitions did not spread back"
        run.check([survivor, victim])
    finally:
        survivor.stop()
        victim.stop()

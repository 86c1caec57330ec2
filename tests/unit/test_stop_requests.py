"""Signals as one stop request: raised where the command is, or a wake-up inside a loop,
and never during clean-up (real signals, sent to this process)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from cli.dev import freshness, stale_worker_state
from cli.stop_requests import StopRequests
from streams.admin import TopicReport


def test_the_first_signal_interrupts_and_later_ones_are_only_noted() -> None:
    with StopRequests() as stops:
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGTERM)
        assert stops.reason == "SIGTERM"
        os.kill(os.getpid(), signal.SIGHUP)  # would end the process without the handler
        assert stops.reason == "SIGTERM"
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # restored on leaving


def test_a_shielded_clean_up_is_not_interrupted() -> None:
    with StopRequests() as stops:
        stops.shield()
        os.kill(os.getpid(), signal.SIGINT)
        assert stops.reason == "SIGINT"


def test_a_deferred_step_finishes_before_the_interrupt() -> None:
    steps: list[str] = []

    def step(stops: StopRequests) -> None:
        with stops.deferred():
            os.kill(os.getpid(), signal.SIGHUP)
            steps.append("finished")

    with StopRequests() as stops:
        with pytest.raises(KeyboardInterrupt):
            step(stops)
        assert steps == ["finished"]


def test_inside_a_loop_a_signal_wakes_it_instead() -> None:
    woken: list[str] = []
    with StopRequests() as stops:
        with stops.waking(lambda: woken.append("stop")):
            os.kill(os.getpid(), signal.SIGINT)
            stops.request("output closed")
        assert woken == ["stop", "stop"]
        assert stops.reason == "SIGINT"
        with stops.waking(lambda: woken.append("late")):  # requested before: woken at once
            pass
        assert woken[-1] == "late"


def reports(*statuses: str) -> list[TopicReport]:
    return [TopicReport(f"t{i}", 4, status) for i, status in enumerate(statuses)]


def test_dev_says_fresh_or_resuming_from_what_it_found(tmp_path: Path) -> None:
    dev, home = tmp_path / "dev", tmp_path / "kafka"
    assert freshness(reports("created", "created"), False, dev, home).startswith(
        "fresh start: new topics, no worker state"
    )
    stale = freshness(reports("created", "created"), True, dev, home)
    assert stale.startswith("fresh start")
    assert "is removed" in stale
    assert stale_worker_state(reports("created", "created"), True)
    resumed = freshness(reports("exists", "exists", "created"), True, dev, home)
    assert resumed.startswith("resuming: 2 of 3 topics exist")
    assert f"worker state in {dev / 'worker'}" in resumed
    assert str(home) in resumed
    assert not stale_worker_state(reports("exists", "created"), True)

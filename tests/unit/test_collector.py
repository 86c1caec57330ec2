"""The backtest runs CPython's cycle collector as a worker does (``streams.collector``):
rarely, and with the same outputs."""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import streams.collector
from analytics.simulation import simulate
from cli.main import main
from schemas.codec import dumps
from streams.collector import GC_THRESHOLDS


def _backtest(events: Path, out: Path) -> list[int]:
    """``lifecycle backtest EVENTS -o OUT``, in this process; the generation of each
    collection the cycle collector ran meanwhile."""
    collections: list[int] = []

    def count(phase: str, info: dict[str, Any]) -> None:
        if phase == "stop":
            collections.append(info["generation"])

    gc.callbacks.append(count)
    try:
        result = CliRunner().invoke(
            main, ["backtest", str(events), "-o", str(out)], catch_exceptions=False
        )
    finally:
        gc.callbacks.remove(count)
    assert result.exit_code == 0, result.output
    return collections


def test_the_backtest_collects_rarely_and_emits_what_it_emits_under_the_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"".join(dumps(event) + b"\n" for event in simulate(1000, seed=3)))
    rare = _backtest(events, tmp_path / "rare.jsonl")
    assert gc.get_threshold() == GC_THRESHOLDS
    assert gc.get_freeze_count() > 0  # what start-up built is walked no more

    gc.unfreeze()
    gc.set_threshold(700, 10, 10)  # CPython's defaults
    with monkeypatch.context() as patch:
        patch.setattr(streams.collector, "collect_garbage_rarely", lambda: None)
        defaults = _backtest(events, tmp_path / "defaults.jsonl")

    # A young collection per 50,000 allocations rather than per 700, and no full one
    # but the first (the collect before the freeze).
    assert 5 * len(rare) < len(defaults)
    assert rare.count(2) == 1
    outputs = (tmp_path / "rare.jsonl").read_bytes()
    assert outputs.count(b"\n") > 2000
    assert outputs == (tmp_path / "defaults.jsonl").read_bytes()

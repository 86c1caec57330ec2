"""bench.core's record round trip: what a worker pays per table read and write."""

from __future__ import annotations

from bench.core import build_lines, record_round_trip, run_once
from lifecycle.backtest import Backtest
from lifecycle.playbook import default_playbook
from schemas.codec import encode_model
from streams.producer import partitioner


def test_record_round_trip_times_every_final_record() -> None:
    lines = build_lines(40, seed=3, duplicates=0.0, bad_every=0)
    runner = Backtest(default_playbook(), partitioner(2))
    for _ in runner.run(lines):
        pass
    sizes = [len(encode_model(state)) for state in runner.states.values()]

    _, _, states = run_once(lines, 2)  # what ``--codec`` times: the timed run's final records
    records, mean_size, decode_us, validate_us, encode_us = record_round_trip(states)

    assert records == len(sizes) > 0
    assert mean_size == sum(sizes) / len(sizes)
    assert decode_us > 0
    assert validate_us > 0
    assert encode_us > 0

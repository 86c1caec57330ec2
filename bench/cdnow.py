"""All of CDNOW's master file through a real broker, compared with the backtest.

    .venv/bin/python -m bench.cdnow [--partitions P]

The full-size run of tests/integration/test_cdnow.py, which publishes only the
sample (a tenth) to keep the suite short: 69,659 purchases of 23,570 customers
published to a local broker of its own, one worker in event time until every
output the backtest expects has come, a clean stop, then the outputs and the
stored customer records compared with the backtest's. Prints one line and
exits non-zero on a difference; results go to bench/RESULTS.md by hand.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from harness.datasets import cdnow_events
from harness.engine import create_topics, through_the_broker, unique_settings
from streams.broker import LocalBroker, find_free_port


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--file", default="CDNOW_master.txt", help="or CDNOW_sample.txt")
    args = parser.parse_args(argv)
    events = cdnow_events(args.file)
    tmp = Path(tempfile.mkdtemp(prefix="bench-cdnow-"))
    broker = LocalBroker(port=find_free_port(), home=tmp / "kafka")
    status = broker.start(timeout=300)
    try:
        settings = unique_settings(status.bootstrap, tmp, partitions=args.partitions)
        create_topics(settings)
        run = through_the_broker(settings, events, tmp / "worker.log", timeout=3600)
    finally:
        broker.stop()
    outputs = run.outputs == run.expected_outputs
    differ = sorted(
        k for k in run.expected_records if run.records.get(k) != run.expected_records[k]
    )
    print(
        f"CDNOW {args.file}: {len(events)} events, {len(run.expected_records)} customers, "
        f"{args.partitions} partitions; backtest {run.backtest_seconds:.1f} s, worker "
        f"{run.worker_seconds:.1f} s (start-up included); outputs equal: "
        f"{'yes' if outputs else 'NO'}; stored records equal: "
        f"{'yes' if not differ and len(run.records) == len(run.expected_records) else 'NO'}"
        f"{f' ({len(differ)} differ, e.g. {differ[:3]})' if differ else ''}; "
        f"worker exit {run.returncode}"
    )
    return 0 if outputs and not differ and run.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

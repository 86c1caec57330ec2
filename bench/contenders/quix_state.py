"""quix-streams' stateful floor: a count per customer in its RocksDB state, nothing else.

Every event reads and writes its customer's count through quix's state (one
store for all inbound topics, ``bench.contenders.quix_app.merged``), with
its changelog topic and checkpoints at quix's defaults: the least any quix
app keeping per-customer state pays per event.
"""

from __future__ import annotations

from typing import Any

from bench.contenders.config import Contender
from bench.contenders.quix_app import merged, quix_app


def count(_value: bytes, state: Any) -> None:
    state.set("count", state.get("count", 0) + 1)


def main() -> None:
    config = Contender.from_argv()
    app = quix_app(config)
    merged(app, config).update(count, stateful=True)
    app.run()


if __name__ == "__main__":
    main()

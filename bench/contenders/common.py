"""What the Faust contenders share: their configuration (``bench.contenders.config``) and app.

The Faust contenders get the engine's own app configuration (raw bytes, at
least once, the same broker settings), so the only difference between them
and the engine is what their agent does per event. ``FAUST_VARIANTS`` are the
settings and extension points the harness measures on the counting agent.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from agents.worker import quiet
from bench.contenders.config import Contender
from streams.app import FAUST_DEFAULTS, drop_monitor
from streams.faust_compat import fast_lz4, lean_hand_off
from streams.kafka import broker_credentials
from streams.settings import Settings

__all__ = ["FAUST_VARIANTS", "Contender", "faust_app", "run_faust"]


BIG_BUFFERS: dict[str, Any] = {
    "broker_max_poll_records": 10_000,
    "stream_buffer_maxsize": 65_536,
    "consumer_max_fetch_size": 16 * 1024 * 1024,
}
"""More messages per fetch, per thread hand-off and per stream buffer."""


def engine_extensions(app: Any) -> None:
    """The Faust extensions ``streams.app.create_app`` installs: the engine's own floor."""
    drop_monitor(app)
    lean_hand_off(app)


FAUST_VARIANTS: dict[str, tuple[dict[str, Any], Callable[[Any], None] | None]] = {
    "default": ({}, None),
    "no-monitor": ({}, drop_monitor),
    "big-buffers": (BIG_BUFFERS, None),
    "tuned": (BIG_BUFFERS, drop_monitor),
    "lean-hand-off": ({}, lean_hand_off),
    "engine": ({}, engine_extensions),
}


def faust_app(config: Contender, **overrides: Any) -> Any:
    """A Faust app configured like the engine's (``streams.app.create_app``)."""
    import faust

    settings, hook = FAUST_VARIANTS[config.variant]
    fast_lz4()  # as create_app: FAUST_DEFAULTS' lz4 in its fast mode
    app = faust.App(
        config.group,
        broker=f"kafka://{config.broker}",
        store="rocksdb://",
        datadir=config.data_dir,
        web_enabled=True,
        web_host="127.0.0.1",
        web_port=config.web_port,
        web_bind="127.0.0.1",
        topic_partitions=config.partitions,
        topic_replication_factor=1,
        broker_credentials=broker_credentials(Settings(broker=config.broker)),
        **{**FAUST_DEFAULTS, **settings, **overrides},
    )
    if hook is not None:
        hook(app)
    return app


def run_faust(app: Any) -> None:
    import faust

    worker = faust.Worker(app, loglevel="WARNING")
    quiet(worker)
    worker.execute_from_commandline()

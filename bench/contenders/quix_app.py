"""The quix-streams application every quix contender runs, and its inbound dataframes.

Configured as quix-streams ships it, but for what a fair run on the
harness's input needs: the run's consumer group, reading from the earliest
offset, state under the run's directory, and warnings-only logs (quix logs
each checkpoint at INFO). Commits, checkpointing, changelogs and the
processing guarantee (at least once) stay at quix's defaults. The harness's
broker speaks plaintext, which is all these contenders connect with.

Imports only quixstreams and ``bench.contenders.config``: these modules run
in ``.venv-quix`` (``make quix``), which has no Faust.
"""

from __future__ import annotations

from typing import Any

from quixstreams import Application
from quixstreams.dataframe import StreamingDataFrame

from bench.contenders.config import Contender

__all__ = ["inbound", "merged", "quix_app"]


def quix_app(config: Contender, **options: Any) -> Application:
    return Application(
        broker_address=config.broker,
        consumer_group=config.group,
        auto_offset_reset="earliest",
        state_dir=config.data_dir,
        loglevel="WARNING",
        **options,
    )


def inbound(app: Application, config: Contender) -> list[StreamingDataFrame]:
    """One dataframe per inbound topic, values and keys as the raw bytes on the broker."""
    return [
        app.dataframe(app.topic(name, key_deserializer="bytes", value_deserializer="bytes"))
        for name in config.topics
    ]


def merged(app: Application, config: Contender) -> StreamingDataFrame:
    """All inbound topics as one dataframe (``concat``), so a customer's state is one,
    whichever topic an event arrives on: what the Faust table keyed by customer is."""
    first, *rest = inbound(app, config)
    for other in rest:
        first = first.concat(other)
    return first

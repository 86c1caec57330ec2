"""Faust's floor: an agent that only counts events (no decoding, no state, no output).

The most any Faust agent can do on this machine with these settings: every
cost left is Faust's own per-message machinery (fetch, thread hand-off,
conductor, stream, acks, commits).
"""

from __future__ import annotations

from typing import Any

from bench.contenders.common import Contender, faust_app, run_faust


def main() -> None:
    config = Contender.from_argv()
    app = faust_app(config)
    inbound = app.topic(*config.topics, key_serializer="raw", value_serializer="raw")
    counted = [0]

    async def count(stream: Any) -> None:
        async for _value in stream:
            counted[0] += 1

    app.agent(inbound, name="count")(count)
    run_faust(app)


if __name__ == "__main__":
    main()

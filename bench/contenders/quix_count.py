"""quix-streams' floor: a dataframe per inbound topic that only counts (no decoding, no state).

What is left is quix's own per-message machinery: confluent-kafka's poll,
the dataframe's pipeline, offsets tracked and committed on its checkpoints.
"""

from __future__ import annotations

from bench.contenders.config import Contender
from bench.contenders.quix_app import inbound, quix_app


def main() -> None:
    config = Contender.from_argv()
    app = quix_app(config)
    counted = [0]

    def count(_value: bytes) -> None:
        counted[0] += 1

    for frame in inbound(app, config):
        frame.update(count)
    app.run()


if __name__ == "__main__":
    main()

"""The obvious quix-streams peer: the naive Faust agent's per-event work as a quix dataframe.

Per event, exactly what ``bench.contenders.naive`` does: one pydantic model
(the event), the customer's record read from state and written back (quix's
RocksDB state here, one store for all inbound topics, with its changelog),
the lifecycle core applied with the default playbook, and each output
produced to the out topic. The state holds the encoded record as is
(``RocksDBOptions`` with pass-through ``dumps``/``loads``), the bytes the
Faust table holds, so neither peer pays for a second encoding.
"""

from __future__ import annotations

from typing import Any

from quixstreams.state.rocksdb import RocksDBOptions

from bench.contenders.config import Contender
from bench.contenders.quix_app import merged, quix_app
from lifecycle.core import apply
from lifecycle.playbook import default_playbook
from lifecycle.state import CustomerState
from schemas.codec import encode_model
from schemas.events import EventAdapter

RECORD = b"record"
"""The state key of the customer's record (bytes: the pass-through ``dumps`` keeps keys as is)."""


def same(value: bytes) -> bytes:
    return value


def main() -> None:
    config = Contender.from_argv()
    app = quix_app(config, rocksdb_options=RocksDBOptions(dumps=same, loads=same))
    playbook = default_playbook()
    out = app.topic(config.out_topic, key_serializer="bytes", value_serializer="bytes")

    def naive(value: bytes, state: Any) -> list[bytes]:
        event = EventAdapter.validate_json(value)
        raw = state.get(RECORD)
        customer = None if raw is None else CustomerState.model_validate_json(raw)
        outcome = apply(customer, event, playbook)
        if outcome.state is not None:
            state.set(RECORD, encode_model(outcome.state))
        return [encode_model(record) for record in outcome.emitted]

    merged(app, config).apply(naive, stateful=True, expand=True).to_topic(out)
    app.run()


if __name__ == "__main__":
    main()

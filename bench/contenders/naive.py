"""The obvious peer: the engine's per-event work written the way a typical Faust app is.

Per event: one pydantic model (the event), the record read and written back
through a Faust table, the lifecycle core applied, and each output sent with
its own ``await topic.send``. No cross-topic merge, no timers, no batching:
it does less than the engine, and what it does, it does one event at a time.
"""

from __future__ import annotations

from typing import Any

from bench.contenders.common import Contender, faust_app, run_faust
from lifecycle.core import apply
from lifecycle.playbook import default_playbook
from lifecycle.state import CustomerState
from schemas.codec import encode_model
from schemas.events import EventAdapter


def main() -> None:
    config = Contender.from_argv()
    app = faust_app(config)
    playbook = default_playbook()
    inbound = app.topic(*config.topics, key_serializer="raw", value_serializer="raw")
    out = app.topic(config.out_topic, key_serializer="raw", value_serializer="raw")
    table = app.Table(
        "customers", default=None, partitions=config.partitions, key_type=bytes, value_type=bytes
    )

    async def naive(stream: Any) -> None:
        async for key, value in stream.items():
            event = EventAdapter.validate_json(value)
            raw = table.get(key)
            state = None if raw is None else CustomerState.model_validate_json(raw)
            outcome = apply(state, event, playbook)
            if outcome.state is not None:
                table[key] = encode_model(outcome.state)
            for record in outcome.emitted:
                await out.send(key=key, value=encode_model(record))

    app.agent(inbound, name="naive")(naive)
    run_faust(app)


if __name__ == "__main__":
    main()

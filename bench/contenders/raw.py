"""The Python limit: aiokafka consume -> orjson decode -> produce, no framework.

Same topics, partitions and batch size as the Faust contenders; each batch's
outputs are acknowledged by the broker before its offsets are committed, the
at-least-once contract the engine keeps too.
"""

from __future__ import annotations

import asyncio

import orjson

from bench.contenders.common import Contender
from streams import kafka
from streams.settings import Settings


async def run(config: Contender) -> None:
    settings = Settings(broker=config.broker)
    consumer = kafka.consumer(
        settings,
        *config.topics,
        group_id=config.group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=config.extra.get("fetch_bytes", 1024 * 1024),
    )
    producer = kafka.producer(settings, acks="all")
    await consumer.start()
    await producer.start()
    max_records = config.extra.get("max_records")
    try:
        while True:
            batches = await consumer.getmany(timeout_ms=500, max_records=max_records)
            sent = []
            for tp, records in batches.items():
                for record in records:
                    body = orjson.loads(record.value or b"{}")
                    value = orjson.dumps({"event_id": body["event_id"], "type": body["type"]})
                    sent.append(
                        await producer.send(
                            config.out_topic, value, key=record.key, partition=tp.partition
                        )
                    )
            if sent:
                await asyncio.gather(*sent)
                await consumer.commit()
    finally:
        await producer.stop()
        await consumer.stop()


def main() -> None:
    asyncio.run(run(Contender.from_argv()))


if __name__ == "__main__":
    main()

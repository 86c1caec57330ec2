# aiokafka: murmur2, Kafka's default partitioner (as the Java client).
# Engine setting: LIFECYCLE_INPUT_PARTITIONER=murmur2 (the default).
import asyncio
import json
import os

from aiokafka import AIOKafkaProducer

BROKER = os.environ.get("KAFKA_BROKER", "localhost:9092")
PREFIX = os.environ.get("LIFECYCLE_TOPIC_PREFIX", "")

event = {
    "event_id": "evt-aiokafka-1",
    "type": "purchase",
    "occurred_at": "2025-03-02T12:00:00Z",
    "customer_id": "cust-43",
    "order_id": "o-1001",
    "total": "25.00",
    "currency": "EUR",
    "items": [{"product_id": "p-7", "quantity": 2, "unit_price": "12.50"}],
}


async def main() -> None:
    producer = AIOKafkaProducer(bootstrap_servers=BROKER, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        key = event.get("customer_id") or event["anonymous_id"]  # the customer key
        await producer.send_and_wait(
            PREFIX + "events.purchase", json.dumps(event).encode(), key=key.encode()
        )
    finally:
        await producer.stop()


asyncio.run(main())

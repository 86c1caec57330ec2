# confluent-kafka (librdkafka): CRC32, its default partitioner (consistent_random),
# as kcat, node-rdkafka and the Go and .NET clients.
# Engine setting: LIFECYCLE_INPUT_PARTITIONER=crc32
# (or pass "partitioner": "murmur2_random" below and keep the default murmur2).
import json
import os
import sys

from confluent_kafka import Producer

BROKER = os.environ.get("KAFKA_BROKER", "localhost:9092")
PREFIX = os.environ.get("LIFECYCLE_TOPIC_PREFIX", "")

event = {
    "event_id": "evt-confluent-1",
    "type": "purchase",
    "occurred_at": "2025-03-02T12:00:00Z",
    "customer_id": "cust-43",
    "order_id": "o-1002",
    "total": "25.00",
    "currency": "EUR",
    "items": [{"product_id": "p-7", "quantity": 2, "unit_price": "12.50"}],
}


failed = []


def delivered(err, msg):
    if err is not None:
        failed.append(err)


producer = Producer({"bootstrap.servers": BROKER, "enable.idempotence": True})
key = event.get("customer_id") or event["anonymous_id"]  # the customer key
producer.produce(
    PREFIX + "events.purchase", json.dumps(event).encode(), key=key.encode(), on_delivery=delivered
)
if producer.flush(30) or failed:
    sys.exit(f"not delivered: {failed or 'timed out'}")

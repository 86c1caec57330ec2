#!/bin/sh
# kcat (librdkafka): CRC32, its default partitioner (consistent_random).
# Engine setting: LIFECYCLE_INPUT_PARTITIONER=crc32
# (or add -X partitioner=murmur2_random and keep the default murmur2).
# -K'|' splits each line into key|value: the key is the customer key.
set -eu
BROKER="${KAFKA_BROKER:-localhost:9092}"
PREFIX="${LIFECYCLE_TOPIC_PREFIX:-}"
echo 'cust-43|{"event_id":"evt-kcat-1","type":"purchase","occurred_at":"2025-03-02T12:00:00Z","customer_id":"cust-43","order_id":"o-1003","total":"25.00","currency":"EUR","items":[{"product_id":"p-7","quantity":2,"unit_price":"12.50"}]}' \
  | kcat -P -b "$BROKER" -t "${PREFIX}events.purchase" -K'|' -X enable.idempotence=true

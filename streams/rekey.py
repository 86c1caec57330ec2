"""What ``repartition`` mode decides for each inbound record, without any I/O.

The re-keying stage (``agents.repartition``) copies every inbound record to
the inbound topic's re-keyed copy, on the partition murmur2 gives its
customer key, so the lifecycle agent finds each customer's events where it
expects them whatever the shops' producers did: keyed by CRC32, keyed by a
partitioner of their own, keyless, random. Each copy carries where its
original sits, so a dead letter still names the record the shop sent.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from streams.producer import key_partition

__all__ = ["SOURCE_HEADER", "Source", "read_source", "rekeyed", "routing_key", "source_header"]

SOURCE_HEADER = "lifecycle-source"
"""Header of a re-keyed copy: ``[topic, partition, offset, keyed]`` of its original
(``keyed``: the original carried the key the copy has)."""


def routing_key(key: bytes | None, value: bytes | None) -> bytes | None:
    """The customer key a record belongs to: its own key when it has a usable one
    (non-empty UTF-8), else the ``customer_id`` or ``anonymous_id`` of its JSON value,
    the contract's routing rule; None when neither says (the record is unroutable).

    A key that differs from the value's customer key is kept: the lifecycle agent
    dead-letters it as ``key_mismatch``, as it does without re-keying.
    """
    if key:
        try:
            key.decode("utf-8")
        except UnicodeDecodeError:
            pass
        else:
            return key
    try:
        body = orjson.loads(value or b"")
    except orjson.JSONDecodeError:
        return None
    if not isinstance(body, dict):
        return None
    for field in ("customer_id", "anonymous_id"):
        found = body.get(field)
        if isinstance(found, str) and found:
            return found.encode("utf-8")
    return None


def rekeyed(
    key: bytes | None, value: bytes | None, partition: int, partitions: int
) -> tuple[bytes | None, int]:
    """Key and partition of a record's re-keyed copy: murmur2 of its customer key; an
    unroutable record keeps its key and its partition number (the lifecycle agent
    dead-letters it there, as it would have on the inbound topic)."""
    routed = routing_key(key, value)
    if routed is None:
        return key, partition
    return routed, key_partition(routed, partitions, "murmur2")


def source_header(topic: str, partition: int, offset: int, keyed: bool) -> tuple[str, bytes]:
    return SOURCE_HEADER, orjson.dumps([topic, partition, offset, keyed])


@dataclass(frozen=True, slots=True)
class Source:
    """Where a re-keyed copy's original sits, and whether it had the copy's key."""

    topic: str
    partition: int
    offset: int
    keyed: bool


def read_source(headers: Mapping[str, bytes] | Iterable[tuple[str, bytes]] | None) -> Source | None:
    """The ``SOURCE_HEADER`` of a record's headers (as aiokafka or Faust give them), if any."""
    if not headers:
        return None
    pairs: Iterable[Any] = headers.items() if isinstance(headers, Mapping) else headers
    for name, raw in pairs:
        if name != SOURCE_HEADER:
            continue
        try:
            topic, partition, offset, keyed = orjson.loads(raw)
        except (orjson.JSONDecodeError, TypeError, ValueError):
            return None
        if isinstance(topic, str) and isinstance(partition, int) and isinstance(offset, int):
            return Source(topic, partition, offset, bool(keyed))
        return None
    return None

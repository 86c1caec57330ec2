"""Shops' producers partition keys their own way: the engine must come out the same.

Real producers on the real broker: confluent-kafka (librdkafka) under its
default partitioner (CRC32), under ``murmur2_random``, keyless at random, and
Debian's kcat. Each time the worker, told the producers' partitioner (or
re-keying its input itself), emits exactly the backtest's records and ends
with exactly its customer records; told the wrong one, it counts and reports
the misrouted records. The snippets of docs/producers.md run here too.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from aiokafka import TopicPartition
from confluent_kafka import Producer

from harness.engine import (
    OUTPUTS,
    ROOT,
    Worker,
    backtest,
    collect,
    create_topics,
    scrape,
    stored_states,
    unique_settings,
    value,
    wait_for,
)
from lifecycle.backtest import Backtest, Output
from schemas.codec import dumps, loads, to_jsonable
from streams.kafka import consumer
from streams.producer import crc32_partition, default_partition, key_partition, route
from streams.reader import read_to_end
from streams.settings import Settings

PARTITIONS = 4
SNIPPETS = ROOT / "docs" / "snippets"


def journey() -> list[dict[str, Any]]:
    """Anonymous browsing, a signup that claims it, and two customers' purchases of the
    same products (co-purchases: recommendations depend on who shares a partition)."""

    def order(customer: str, n: int, day: int, products: list[str]) -> dict[str, Any]:
        items = [{"product_id": p, "quantity": 1, "unit_price": "10.00"} for p in products]
        return {
            "event_id": f"{customer}-p{n}",
            "type": "purchase",
            "occurred_at": f"2025-03-{day:02d}T12:00:00Z",
            "customer_id": customer,
            "order_id": f"{customer}-o{n}",
            "total": f"{10 * len(products)}.00",
            "currency": "EUR",
            "items": items,
        }

    return [
        {
            "event_id": "anon-a1-b1",
            "type": "browse",
            "occurred_at": "2025-03-01T10:00:00Z",
            "anonymous_id": "anon-a1",
            "product_id": "p-1",
        },
        {
            "event_id": "cust-a-s1",
            "type": "signup",
            "occurred_at": "2025-03-01T10:05:00Z",
            "customer_id": "cust-a",
            "email": "a@mail.example",
            "anonymous_id": "anon-a1",
            "marketing_consent": True,
        },
        {
            "event_id": "cust-b-s1",
            "type": "signup",
            "occurred_at": "2025-03-01T11:00:00Z",
            "customer_id": "cust-b",
            "email": "b@mail.example",
            "marketing_consent": True,
        },
        order("cust-a", 1, 2, ["p-1", "p-2"]),
        order("cust-b", 1, 3, ["p-1", "p-3"]),
        order("cust-a", 2, 20, ["p-1"]),
        order("cust-b", 2, 21, ["p-2"]),
    ]


def keys_split(partitions: int) -> bool:
    """Whether the journey's keys land differently under the two schemes (else the test
    could not tell them apart)."""
    keys = [b"anon-a1", b"cust-a", b"cust-b"]
    return any(crc32_partition(k, partitions) != default_partition(k, partitions) for k in keys)


def produce(
    settings: Settings,
    records: list[tuple[str, bytes | None, bytes]],
    partitioner: str | None = None,
) -> list[tuple[str, int, int]]:
    """Send (topic, key, value) with confluent-kafka, each acknowledged before the next
    (a shop backend's order); where each landed: (topic, partition, offset)."""
    config: dict[str, Any] = {"bootstrap.servers": settings.broker, "enable.idempotence": True}
    if partitioner is not None:
        config["partitioner"] = partitioner
    producer = Producer(config)
    landed: list[tuple[str, int, int]] = []
    failed: list[Any] = []

    def delivered(err: Any, msg: Any) -> None:
        if err is not None:
            failed.append(err)
        else:
            landed.append((msg.topic(), msg.partition(), msg.offset()))

    for topic, key, raw in records:
        producer.produce(topic, raw, key=key, on_delivery=delivered)
        assert producer.flush(60) == 0
    assert not failed
    return landed


def journey_records(
    settings: Settings, events: list[dict[str, Any]], keyed: bool = True
) -> list[tuple[str, bytes | None, bytes]]:
    records = []
    for event in events:
        topic, key = route(event, settings)
        records.append((topic, key if keyed else None, dumps(event)))
    return records


def assert_equals_backtest(
    settings: Settings, worker: Worker, runner: Backtest, outputs: list[Output]
) -> None:
    """The worker's records, per topic and key (Kafka's order), and its customer records
    are the backtest's."""
    expected: dict[str, list[Any]] = {}
    for item in outputs:
        expected.setdefault(f"{item.topic}|{item.key}", []).append(to_jsonable(item.value))
    records = collect(settings, OUTPUTS, expected=len(outputs), timeout=180)
    worker.assert_alive()
    logical = {settings.topic(n): n for n in OUTPUTS}
    got: dict[str, list[Any]] = {}
    for r in sorted(records, key=lambda r: (r["topic"], r["partition"], r["offset"])):
        got.setdefault(f"{logical[r['topic']]}|{r['key']}", []).append(r["value"])
    assert got == expected
    assert stored_states(settings) == {k: to_jsonable(s) for k, s in runner.states.items()}


def merged(runner: Backtest) -> None:
    """The reference answer itself has the identity merge the user's case lost."""
    assert "anon-a1" not in runner.states
    assert runner.summary.merges == 1
    assert runner.states["cust-a"].stage is not None


def misrouted(settings: Settings) -> float:
    """``lifecycle_misrouted_total`` over all topics; -1 while the worker does not answer."""
    try:
        samples = scrape(settings)
    except OSError:  # not listening yet
        return -1
    return sum(
        count for (name, _labels), count in samples.items() if name == "lifecycle_misrouted_total"
    )


@pytest.mark.parametrize("partitions", [3, 7])
def test_the_schemes_are_the_real_clients_partitioners(
    kafka_bootstrap: str, tmp_path: Path, partitions: int
) -> None:
    """confluent-kafka's default (consistent_random) is crc32, its murmur2_random is
    murmur2, key for key, on a real topic."""
    settings = unique_settings(kafka_bootstrap, tmp_path, partitions=partitions)
    create_topics(settings)
    topic = settings.topic("browse")
    rng = random.Random(partitions)
    keys = [f"cust-{n}" for n in range(100)]
    keys += [
        "".join(rng.choice("aZ9-_é€😀") for _ in range(rng.randint(1, 40))) for _ in range(100)
    ]
    for partitioner, scheme in [
        (None, "crc32"),
        ("consistent", "crc32"),
        ("murmur2_random", "murmur2"),
    ]:
        landed = produce(settings, [(topic, k.encode(), b"{}") for k in keys], partitioner)
        assert [p for _, p, _ in landed] == [
            key_partition(k.encode(), partitions, scheme) for k in keys
        ], partitioner


def test_confluent_default_partitioner_with_crc32(kafka_bootstrap: str, tmp_path: Path) -> None:
    settings = unique_settings(kafka_bootstrap, tmp_path, partitions=PARTITIONS)
    settings = settings.model_copy(update={"input_partitioner": "crc32"})
    assert keys_split(PARTITIONS)
    create_topics(settings)
    events = journey()
    runner, outputs = backtest(settings, events)
    merged(runner)
    landed = produce(settings, journey_records(settings, events))
    assert [p for _, p, _ in landed] == [
        crc32_partition(route(e, settings)[1], PARTITIONS) for e in events
    ]
    worker = Worker(settings, tmp_path / "worker.log").start()
    try:
        assert_equals_backtest(settings, worker, runner, outputs)
        assert misrouted(settings) == 0
    finally:
        worker.stop()


def test_confluent_murmur2_random_with_the_default(kafka_bootstrap: str, tmp_path: Path) -> None:
    settings = unique_settings(kafka_bootstrap, tmp_path, partitions=PARTITIONS)
    assert settings.input_partitioner == "murmur2"
    create_topics(settings)
    events = journey()
    runner, outputs = backtest(settings, events)
    merged(runner)
    produce(settings, journey_records(settings, events), "murmur2_random")
    worker = Worker(settings, tmp_path / "worker.log").start()
    try:
        assert_equals_backtest(settings, worker, runner, outputs)
        assert misrouted(settings) == 0
    finally:
        worker.stop()


def test_the_wrong_partitioner_is_counted_and_named(kafka_bootstrap: str, tmp_path: Path) -> None:
    """CRC32 producers, murmur2 setting (the user's case): the metric and one warning per
    partition name the fix, without the customer keys."""
    settings = unique_settings(kafka_bootstrap, tmp_path, partitions=PARTITIONS)
    create_topics(settings)
    events = journey()
    landed = produce(settings, journey_records(settings, events))
    wrong = [
        (topic, partition)
        for (topic, partition, _), event in zip(landed, events, strict=True)
        if default_partition(route(event, settings)[1], PARTITIONS) != partition
    ]
    assert wrong
    worker = Worker(settings, tmp_path / "worker.log").start()
    try:
        assert wait_for(lambda: misrouted(settings) == len(wrong), timeout=120)
        samples = scrape(settings)
        for topic in {t for t, _ in wrong}:
            count = sum(1 for t, _ in wrong if t == topic)
            assert value(samples, "lifecycle_misrouted_total", topic=topic) == count
        log = worker.log_text()
        warnings = re.findall(r"(\S+)\[(\d+)\]: records whose key belongs on another.*", log)
        assert sorted({(t, int(p)) for t, p in warnings}) == sorted(set(wrong))
        assert len(warnings) == len(set(wrong))  # one per partition
        assert "LIFECYCLE_INPUT_PARTITIONER=crc32" in log
        for key in ("anon-a1", "cust-a", "cust-b"):
            assert key not in log
        worker.assert_alive()
    finally:
        worker.stop()


def test_keyless_random_producers_with_repartition(kafka_bootstrap: str, tmp_path: Path) -> None:
    """Keyless records on random partitions: the engine re-keys them. Each is published
    once the previous one is re-keyed, as a live shop's events come: Kafka orders
    nothing across partitions, so only then is a customer's order on one topic defined.
    An unroutable record is dead-lettered under its original topic, partition and offset."""
    settings = unique_settings(kafka_bootstrap, tmp_path, partitions=PARTITIONS)
    settings = settings.model_copy(update={"input_partitioner": "repartition"})
    create_topics(settings)
    events = journey()
    runner, outputs = backtest(settings, events)
    merged(runner)
    worker = Worker(settings, tmp_path / "worker.log").start()
    try:
        copies = settings.event_topics
        landed = []
        for n, record in enumerate(journey_records(settings, events, keyed=False), start=1):
            landed += produce(settings, [record], "random")
            assert wait_for(lambda n=n: copied(settings, copies) >= n, timeout=120)
        assert len({p for _, p, _ in landed}) > 1  # random, really
        assert_equals_backtest(settings, worker, runner, outputs)
        [(topic, partition, offset)] = produce(
            settings, [(settings.topic("cart"), None, b"not json")], "random"
        )
        [letter] = collect(settings, ["deadletter"], expected=1, timeout=120)
        body = letter["value"]
        assert (body["topic"], body["partition"], body["offset"]) == (topic, partition, offset)
        assert body["key"] is None
        assert misrouted(settings) == 0
        worker.assert_alive()
    finally:
        worker.stop()


def copied(settings: Settings, topics: list[str]) -> int:
    """Records in the re-keyed copies so far."""

    async def count() -> int:
        reader = consumer(settings, group_id=None)
        await reader.start()
        try:
            tps = [TopicPartition(t, p) for t in topics for p in range(settings.partitions)]
            return sum((await reader.end_offsets(tps)).values())
        finally:
            await reader.stop()

    return asyncio.run(count())


KCAT = shutil.which("kcat")


def test_kcat_default_partitioner_with_crc32(kafka_bootstrap: str, tmp_path: Path) -> None:
    """kcat as shops run it, one call per topic with ``key|value`` lines (``make test``
    installs Debian's kcat)."""
    assert KCAT is not None, "kcat is not installed: run `make kcat` (Debian's package)"
    settings = unique_settings(kafka_bootstrap, tmp_path, partitions=PARTITIONS)
    settings = settings.model_copy(update={"input_partitioner": "crc32"})
    create_topics(settings)
    events = journey()
    runner, outputs = backtest(settings, events)
    by_topic: dict[str, list[str]] = {}
    for topic, key, raw in journey_records(settings, events):
        assert key is not None
        by_topic.setdefault(topic, []).append(f"{key.decode()}|{raw.decode()}")
    for topic, lines in by_topic.items():
        subprocess.run(
            [KCAT, "-P", "-b", settings.broker, "-t", topic, "-K|"],
            input="\n".join(lines) + "\n",
            text=True,
            check=True,
            timeout=60,
        )
    stored = asyncio.run(read_to_end(settings, list(by_topic)))
    assert len(stored) == len(events)
    for m in stored:
        assert m.partition == crc32_partition(m.key or b"", PARTITIONS)
    worker = Worker(settings, tmp_path / "worker.log").start()
    try:
        assert_equals_backtest(settings, worker, runner, outputs)
        assert misrouted(settings) == 0
    finally:
        worker.stop()


SETTING = re.compile(r"LIFECYCLE_INPUT_PARTITIONER=(\w+)")


@pytest.mark.parametrize("snippet", sorted(p.name for p in SNIPPETS.iterdir()))
def test_the_docs_snippets_publish_where_their_setting_says(
    kafka_bootstrap: str, tmp_path: Path, snippet: str
) -> None:
    """Each snippet of docs/producers.md, run as written, puts its event on the topic of
    its type, keyed by the customer, on the partition of the setting it names."""
    path = SNIPPETS / snippet
    text = path.read_text()
    assert text.strip() in (ROOT / "docs" / "producers.md").read_text(), "docs differ"
    scheme = SETTING.findall(text)[0]
    settings = unique_settings(kafka_bootstrap, tmp_path, partitions=PARTITIONS)
    create_topics(settings)
    command = [sys.executable, str(path)] if path.suffix == ".py" else ["sh", str(path)]
    env = {
        **os.environ,
        "KAFKA_BROKER": settings.broker,
        "LIFECYCLE_TOPIC_PREFIX": settings.topic_prefix,
    }
    subprocess.run(command, env=env, check=True, timeout=60, cwd=tmp_path)
    [m] = asyncio.run(read_to_end(settings, settings.inbound_topics))
    event = loads(m.value or b"")
    topic, key = route(event, settings)
    assert (m.topic, m.key) == (topic, key)
    assert crc32_partition(key, PARTITIONS) != default_partition(key, PARTITIONS)
    assert m.partition == key_partition(
        key, PARTITIONS, "crc32" if scheme == "crc32" else "murmur2"
    )

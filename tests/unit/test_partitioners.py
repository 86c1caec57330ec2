"""The two key-to-partition schemes, re-keying, and what a misrouted record makes the worker say.

The schemes are checked against the clients' own published vectors here; the
integration test (tests/integration/test_partitioners.py) checks them against
real confluent-kafka producers on a real topic.
"""

from __future__ import annotations

import ctypes
from pathlib import Path
from types import SimpleNamespace

import orjson
import pytest
from aiokafka.partitioner import DefaultPartitioner

from agents.metrics import EngineMetrics
from agents.misrouting import RouteCheck, fitting_scheme, misrouting_warning
from streams.producer import (
    crc32_partition,
    default_partition,
    kafka_partitioner,
    key_partition,
    partitioner,
    partitioner_of,
)
from streams.rekey import SOURCE_HEADER, read_source, rekeyed, routing_key, source_header
from streams.settings import Settings


def test_murmur2_is_the_java_clients() -> None:
    """Kafka's own test vectors (UtilsTest.testMurmur2), as signed 32-bit hashes."""
    from aiokafka.partitioner import murmur2

    vectors = {b"21": -973932308, b"foobar": -790332482, b"abc": 479470107}
    for key, expected in vectors.items():
        assert ctypes.c_int32(murmur2(key)).value == expected
        assert default_partition(key, 1000) == (expected & 0x7FFFFFFF) % 1000


def test_crc32_is_the_ieee_crc_modulo_the_partitions() -> None:
    """CRC-32's check value: crc("123456789") = 0xCBF43926 (librdkafka's rd_crc32 is it)."""
    assert crc32_partition(b"123456789", 1 << 32) == 0xCBF43926
    assert crc32_partition(b"123456789", 7) == 0xCBF43926 % 7
    assert crc32_partition(b"", 5) == 0


def test_the_schemes_differ_and_each_key_has_one_partition() -> None:
    keys = [f"cust-{n}".encode() for n in range(200)]
    murmur = [key_partition(k, 6, "murmur2") for k in keys]
    crc = [key_partition(k, 6, "crc32") for k in keys]
    assert murmur == [default_partition(k, 6) for k in keys]
    assert crc == [crc32_partition(k, 6) for k in keys]
    assert sum(m != c for m, c in zip(murmur, crc, strict=True)) > 100  # ~5/6 of them
    assert set(murmur) == set(crc) == set(range(6))


def test_string_partitioner_and_settings() -> None:
    assert partitioner(4, "crc32")("anon-a1") == crc32_partition(b"anon-a1", 4)
    assert partitioner(4)("anon-a1") == default_partition(b"anon-a1", 4)
    for mode, expected in [("murmur2", default_partition), ("crc32", crc32_partition)]:
        partition_of = partitioner_of(Settings(partitions=3, input_partitioner=mode))
        assert partition_of("é-ü") == expected("é-ü".encode(), 3)
    # repartition mode: the engine partitions its own copies with murmur2
    repartitioned = partitioner_of(Settings(partitions=3, input_partitioner="repartition"))
    assert repartitioned("anon-a1") == default_partition(b"anon-a1", 3)


def test_kafka_partitioner_matches_aiokafkas_default_for_murmur2() -> None:
    default = DefaultPartitioner()
    ours = kafka_partitioner("murmur2")
    crc = kafka_partitioner("crc32")
    ids = [0, 1, 2, 3, 4]
    for n in range(100):
        key = f"k{n}".encode()
        assert ours(key, ids, ids) == default(key, ids, ids)
        assert crc(key, ids, ids) == crc32_partition(key, 5)
    assert ours(None, ids, [3]) == 3  # keyless: an available partition


def test_the_input_partitioner_setting_is_validated() -> None:
    assert Settings().input_partitioner == "murmur2"
    with pytest.raises(ValueError, match="input_partitioner"):
        Settings(input_partitioner="random")


def test_repartition_topics_are_internal_only_in_repartition_mode() -> None:
    plain = Settings(topic_prefix="p.")
    assert plain.event_topics == plain.inbound_topics
    assert not any("repartition" in t for t in plain.internal_topics)
    mode = Settings(topic_prefix="p.", input_partitioner="repartition")
    assert mode.repartition_of["p.events.purchase"] == "p.lifecycle.repartition.events.purchase"
    assert mode.event_topics == [mode.repartition_of[t] for t in mode.inbound_topics]
    assert set(mode.event_topics) <= set(mode.internal_topics)
    replay = mode.for_replay("replay-app", "replay.")
    assert not set(replay.event_topics) & set(mode.event_topics)


def test_a_replay_shares_only_the_inbound_topics_with_the_live_app() -> None:
    """Its merge messages, ticks and re-keyed copies are its own: the live app never
    reads a claim the replay makes again, nor the replay one of the live app's."""
    for mode in ("murmur2", "repartition"):
        live = Settings(topic_prefix="p.", input_partitioner=mode)
        replay = live.for_replay("replay-app", "replay.")
        assert replay.inbound_topics == live.inbound_topics
        assert not set(replay.internal_topics) & set(live.internal_topics)
        assert replay.topic("merge") == "p.replay.lifecycle.merge"
        assert replay.topic("ticks") == "p.replay.lifecycle.ticks"
        unprefixed = live.for_replay("replay-app", "")  # outputs to the live topics
        assert not set(unprefixed.internal_topics) & set(live.internal_topics)


def test_routing_key_takes_the_record_key_else_the_values_customer_key() -> None:
    customer = orjson.dumps({"customer_id": "c-1", "anonymous_id": "a-1"})
    anonymous = orjson.dumps({"anonymous_id": "a-1"})
    assert routing_key(b"c-9", customer) == b"c-9"  # a wrong key is kept: key_mismatch later
    assert routing_key(None, customer) == b"c-1"
    assert routing_key(b"", anonymous) == b"a-1"
    assert routing_key(b"\xff\xfe", anonymous) == b"a-1"  # not UTF-8: not a customer key
    assert routing_key(None, b"not json") is None
    assert routing_key(None, b"[1, 2]") is None
    assert routing_key(None, orjson.dumps({"customer_id": 7})) is None
    assert routing_key(None, None) is None


def test_rekeyed_partitions_by_murmur2_and_leaves_unroutable_records_in_place() -> None:
    value = orjson.dumps({"customer_id": "c-1"})
    assert rekeyed(None, value, 3, 4) == (b"c-1", default_partition(b"c-1", 4))
    assert rekeyed(None, b"garbage", 3, 4) == (None, 3)
    assert rekeyed(b"\xff", b"garbage", 2, 4) == (b"\xff", 2)


def test_the_source_header_round_trips() -> None:
    name, raw = source_header("events.cart", 2, 41, keyed=False)
    assert name == SOURCE_HEADER
    found = read_source([("other", b"x"), (name, raw)])
    assert found is not None
    assert (found.topic, found.partition, found.offset, found.keyed) == (
        "events.cart",
        2,
        41,
        False,
    )
    assert read_source({name: raw}) == found
    assert read_source(None) is None
    assert read_source([(name, b"nonsense")]) is None


def test_fitting_scheme_names_the_producers_partitioner() -> None:
    key = next(
        f"k{n}".encode()
        for n in range(100)
        if crc32_partition(f"k{n}".encode(), 4) != default_partition(f"k{n}".encode(), 4)
    )
    assert fitting_scheme(key, crc32_partition(key, 4), 4) == "crc32"
    assert fitting_scheme(key, default_partition(key, 4), 4) == "murmur2"
    other = ({0, 1, 2, 3} - {crc32_partition(key, 4), default_partition(key, 4)}).pop()
    assert fitting_scheme(key, other, 4) is None


def message(topic: str, partition: int, key: bytes) -> SimpleNamespace:
    return SimpleNamespace(topic=topic, partition=partition, key=key)


def test_a_misrouted_record_is_counted_per_record_and_warned_once_per_partition(
    caplog: pytest.LogCaptureFixture,
) -> None:
    metrics = EngineMetrics()
    check = RouteCheck(Settings(partitions=4), metrics)
    keys = [f"cust-{n}".encode() for n in range(60)]
    wrong = [k for k in keys if crc32_partition(k, 4) != default_partition(k, 4)]
    assert len(wrong) >= 3
    with caplog.at_level("WARNING", logger="agents.misrouting"):
        for key in keys:
            check.check(message("events.purchase", crc32_partition(key, 4), key))
    assert all(check.check(message("events.cart", default_partition(k, 4), k)) for k in keys)
    count = metrics.registry.get_sample_value(
        "lifecycle_misrouted_total", {"topic": "events.purchase"}
    )
    assert count == len(wrong)
    partitions = {crc32_partition(k, 4) for k in wrong}
    assert len(caplog.records) == len(partitions)  # one per partition, not per record
    for record in caplog.records:
        text = record.getMessage()
        assert "LIFECYCLE_INPUT_PARTITIONER=crc32" in text
        assert not any(k.decode() in text for k in keys)  # never the key


def test_the_warning_suggests_repartition_when_no_scheme_fits() -> None:
    text = misrouting_warning("events.cart", 1, "murmur2", None)
    assert "LIFECYCLE_INPUT_PARTITIONER=repartition" in text
    assert "events.cart[1]" in text


def test_nothing_is_checked_in_repartition_mode() -> None:
    metrics = EngineMetrics()
    check = RouteCheck(Settings(partitions=4, input_partitioner="repartition"), metrics)
    key = b"cust-1"
    wrong = (default_partition(key, 4) + 1) % 4
    assert check.check(message("x", wrong, key))
    assert metrics.registry.get_sample_value("lifecycle_misrouted_total", {"topic": "x"}) is None


@pytest.mark.parametrize("mode", ["murmur2", "crc32", "repartition"])
def test_the_workers_own_keyed_sends_and_lookups_use_the_setting(tmp_path: Path, mode: str) -> None:
    """Faust routes merge messages (sent without a partition) and ``/customers/{id}``
    by its ``producer_partitioner``; the agent subscribes to the re-keyed copies in
    ``repartition`` mode, and to the inbound topics otherwise."""
    from streams.app import create_app

    settings = Settings(
        input_partitioner=mode, store="memory", data_dir=tmp_path, topic_prefix="u."
    )
    topology = create_app(settings)
    route_key = topology.app.conf.producer_partitioner
    scheme = "crc32" if mode == "crc32" else "murmur2"
    ids = [3, 1, 0, 2]  # as aiokafka may list them
    for n in range(50):
        key = f"cust-{n}".encode()
        assert route_key(key, ids, ids) == key_partition(key, 4, scheme)
    subscribed = set(topology.inbound.topics)
    assert subscribed == {*settings.event_topics, "u.lifecycle.ticks", "u.lifecycle.merge"}
    assert (mode == "repartition") == (not subscribed & set(settings.inbound_topics))

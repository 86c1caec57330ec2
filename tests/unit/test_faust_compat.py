"""The version guard of ``streams.faust_compat``: every private name it relies on still
exists in the installed faust-streaming, mode and aiokafka, it relies on no other, and
the Faust loop it copies is still the one it was copied from.

A release that renames or drops one of them fails here, not in a worker at a
rebalance; the list is ``PRIVATE_NAMES``, next to the code that uses it.
"""

from __future__ import annotations

import ast
import asyncio
import importlib
import inspect
import time
from collections import deque
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiokafka.codec
import faust
import orjson
import pytest
from aiokafka.consumer.fetcher import Fetcher
from aiokafka.protocol.fetch import FetchRequest
from aiokafka.protocol.offset import OffsetRequest
from aiokafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from faust.types import Message

from streams import faust_compat, kafka
from streams.app import create_app
from streams.faust_compat import (
    COPIED_LOOP_DIGEST,
    COPIED_TABLES_START_DIGEST,
    PRIVATE_NAMES,
    RawSchema,
    fetch_loop_digest,
    tables_start_digest,
)
from streams.settings import Settings

BROKER = "127.0.0.1:1"  # nothing listens: no test here connects


def _owner(path: str) -> Any:
    """The class (``package.module.Class``) or the module a ``PRIVATE_NAMES`` key names."""
    try:
        return importlib.import_module(path)
    except ModuleNotFoundError:
        module, _, name = path.rpartition(".")
        return getattr(importlib.import_module(module), name)


@pytest.fixture
async def instances(tmp_path: Path) -> Any:
    """One live object of each owner: most of the names are set by constructors."""
    app = faust.App(
        "compat-test",
        broker=f"kafka://{BROKER}",
        broker_credentials=None,
        web_enabled=False,
        store="rocksdb://",
        datadir=str(tmp_path),
    )
    table = app.Table("t", default=None, partitions=2, key_type=bytes, value_type=bytes)
    settings = Settings(broker=BROKER)
    consumer, producer = kafka.consumer(settings), kafka.producer(settings)
    # A started consumer makes its own; the fixture makes one as aiokafka does.
    fetcher = Fetcher(consumer._client, consumer._subscription)  # noqa: SLF001
    yield {
        "mode.Service": app.consumer,
        "faust.App": app,
        "faust.streams": importlib.import_module("faust.streams"),
        "faust.transport.conductor.Conductor": app.topics,
        "faust.transport.consumer.Consumer": app.consumer,
        "faust.transport.drivers.aiokafka.Consumer": app.consumer,
        "faust.transport.drivers.aiokafka.AIOKafkaConsumerThread": AIOKafkaConsumerThread(
            app.consumer
        ),
        "faust.transport.drivers.aiokafka.Producer": app.producer,
        "faust.stores.rocksdb.Store": table.data,
        "faust.tables.manager.TableManager": app.tables,
        "faust.tables.recovery.Recovery": app.tables.recovery,
        "aiokafka.AIOKafkaConsumer": consumer,
        "aiokafka.admin.AIOKafkaAdminClient": kafka.admin_client(settings),
        "aiokafka.AIOKafkaClient": producer.client,  # the producer's is public
        "aiokafka.consumer.fetcher.Fetcher": fetcher,
    }
    await fetcher.close()
    for client in (consumer, producer):
        await client.stop()  # never started: releases what the constructor opened


async def test_every_private_name_relied_on_exists_in_the_installed_releases(
    instances: dict[str, Any],
) -> None:
    assert set(instances) == set(PRIVATE_NAMES), "a new owner needs an instance here"
    missing = []
    for path, names in PRIVATE_NAMES.items():
        owner, instance = _owner(path), instances[path]
        assert instance is owner if inspect.ismodule(owner) else isinstance(instance, owner)
        missing += [f"{path}.{name}" for name in names if not hasattr(instance, name)]
    assert not missing, f"gone from the installed releases: {missing}"


def _private_names_used(tree: ast.Module) -> set[str]:
    """Private names the module reads, imports, asks ``getattr`` for or overrides."""
    used = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            used.add(node.attr)
        elif isinstance(node, ast.ImportFrom):
            used.update(alias.name for alias in node.names)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "getattr"
            and isinstance(node.args[1], ast.Constant)
        ):
            used.add(str(node.args[1].value))
        elif isinstance(node, ast.ClassDef):
            used.update(item.name for item in node.body if isinstance(item, ast.AsyncFunctionDef))
            used.update(item.name for item in node.body if isinstance(item, ast.FunctionDef))
    return {name for name in used if name.startswith("_") and not name.startswith("__")}


def test_the_list_names_exactly_the_private_names_the_module_uses() -> None:
    """Both ways: a name used but not listed escapes the guard, and a name listed but
    no longer used keeps a release from being taken for no reason."""
    tree = ast.parse(Path(faust_compat.__file__).read_text(encoding="utf-8"))
    listed = {name for names in PRIVATE_NAMES.values() for name in names}
    assert _private_names_used(tree) == listed


def test_fausts_fetch_loop_is_the_one_the_hand_off_was_written_against() -> None:
    """``HandOffConsumer._drain_messages`` repeats Faust's loop but for the hand-off:
    a Faust release that changes that loop must be read before it is run, since
    the copy would silently drop whatever it added."""
    assert fetch_loop_digest() == COPIED_LOOP_DIGEST, (
        "faust-streaming changed Consumer._drain_messages: bring "
        "streams/faust_compat.py's HandOffConsumer in line, then its digest"
    )


def test_fausts_table_start_is_the_one_the_bulk_manager_repeats() -> None:
    """``BulkTableManager.on_start`` is Faust's without its sleep: a release that starts
    its tables differently must be read before the repeat is run."""
    assert tables_start_digest() == COPIED_TABLES_START_DIGEST, (
        "faust-streaming changed TableManager.on_start: bring "
        "streams/faust_compat.py's BulkTableManager.on_start in line, then its digest"
    )


@pytest.mark.parametrize(
    ("key", "value"), [(b"c-1", b'{"type": "cart"}'), (None, b"{}"), (b"c-1", None)]
)
async def test_the_raw_schema_makes_the_event_fausts_raw_decode_makes(
    tmp_path: Path, key: bytes | None, value: bytes | None
) -> None:
    """The inbound topic's ``RawSchema`` skips Faust's serializer registry: its event must
    be the one Faust's own ``raw`` decode makes of the same message, tombstones and
    keyless messages included."""
    topology = create_app(Settings(data_dir=tmp_path, topic_prefix="u."))
    app = topology.app
    assert isinstance(topology.inbound.schema, RawSchema)
    message = Message("u.events.cart", 2, 7, 1_700_000_000.0, 0, [("h", b"1")], key, value, None)
    fausts = faust.Schema(key_serializer="raw", value_serializer="raw").compile(app)
    expected = await fausts(message)
    got = await RawSchema().compile(app)(message)
    assert type(got) is type(expected) is app.conf.Event
    assert (got.key, got.value, got.headers, got.message, got.app) == (
        expected.key,
        expected.value,
        expected.headers,
        expected.message,
        expected.app,
    )


async def test_the_producer_buffer_is_flushed_when_full_and_only_then(tmp_path: Path) -> None:
    """Faust's conductor waits for its producer's buffer before each message; the
    engine's check reads the buffer's length instead of Faust's settings, and still
    runs Faust's flush once more than ``max_messages`` wait."""
    app = create_app(Settings(data_dir=tmp_path, topic_prefix="u.")).app
    buffer: Any = app.producer.buffer
    flushed: list[int] = []

    async def flush_atmost(n: int) -> int:
        flushed.append(n)
        while buffer.pending.qsize():
            buffer.pending.get_nowait()
        return n

    buffer.flush_atmost = flush_atmost
    buffer.app = None  # Faust's own check reads the app's settings here, at every message
    await buffer.wait_until_ebb()
    for n in range(buffer.max_messages):
        buffer.pending.put_nowait(n)
    await buffer.wait_until_ebb()
    assert flushed == []
    buffer.app = app  # full: Faust's own wait runs
    buffer.pending.put_nowait(-1)
    await buffer.wait_until_ebb()
    assert flushed == [buffer.max_messages]


class Inner:
    """An aiokafka client answering each request with the response it is given."""

    def __init__(self, response: Any) -> None:
        self.response = response
        self.cluster = "the cluster"
        self.called: list[float] = []

    async def send(self, node_id: int, request: Any, **kwargs: Any) -> Any:
        self.called.append(time.monotonic())
        await asyncio.sleep(0.01)  # the round trip
        self.called.append(time.monotonic())
        return self.response


def _fetch(*tps: tuple[str, int]) -> FetchRequest:
    by_topic: dict[str, list[tuple[int, int, int]]] = {}
    for topic, partition in tps:
        by_topic.setdefault(topic, []).append((partition, 0, 1024))
    return FetchRequest(500, 1, 1024, 0, list(by_topic.items()))


async def test_fetch_answers_keep_each_highwater_with_its_requests_send_and_answer() -> None:
    """A fetch answer without error sets its partition's highwater with when the request
    left (before the client sent it) and when the answer came (after); a partition
    answered with an error keeps its last answer, and other requests are not fetches."""
    response = SimpleNamespace(
        topics=[("t", [(0, 0, 12, 12, 0, [], -1, b""), (1, 6, -1, -1, 0, [], -1, b"")])]
    )
    inner = Inner(response)
    answers = faust_compat.FetchAnswers(inner)
    answers.latest[("t", 1)] = (4, 1.0, 2.0)
    assert await answers.send(1, _fetch(("t", 0), ("t", 1))) is response
    highwater, sent, answered = answers.latest[("t", 0)]
    assert highwater == 12
    assert sent <= inner.called[0] < inner.called[1] <= answered
    assert answers.latest[("t", 1)] == (4, 1.0, 2.0)  # NotLeaderForPartition: unchanged
    other = SimpleNamespace(topics=[("t", [(0, 0, 99, 99)])])  # a list-offsets answer's shape
    inner.response = other
    assert await answers.send(1, OffsetRequest(-1, 0, [("t", [(0, -1)])])) is other
    assert answers.latest[("t", 0)][0] == 12
    assert answers.cluster == "the cluster"  # everything else is the client's


async def test_a_record_was_appended_by_the_first_answer_whose_highwater_passed_it() -> None:
    """A backlog's records were appended before the first answer that showed them, long
    before the answer that brings them; a record no answer kept has passed, now."""
    inner = Inner(None)
    answers = faust_compat.FetchAnswers(inner)
    times = []
    for highwater in (5, 5, 9, 12):
        inner.response = SimpleNamespace(topics=[("t", [(0, 0, highwater, 0, 0, [], -1, b"")])])
        await answers.send(1, _fetch(("t", 0)))
        times.append(answers.latest[("t", 0)][2])
    assert answers.appended_by(("t", 0), 0) == times[0]
    assert answers.appended_by(("t", 0), 4) == times[0]
    assert answers.appended_by(("t", 0), 5) == times[2]  # 5 came with the highwater 9
    assert answers.appended_by(("t", 0), 11) == times[3]
    before = time.monotonic()
    assert answers.appended_by(("t", 0), 12) >= before  # no answer showed it yet
    assert answers.appended_by(("t", 1), 0) >= before


async def test_fetched_and_appended_by_read_the_answers_of_the_fetchers_client() -> None:
    """The merge's two reads come from the wrapped client, installed once; nothing before
    the consumer has a fetcher, or before an answer."""
    client = kafka.consumer(Settings(broker=BROKER))  # never connects
    try:
        consumer = SimpleNamespace(_thread=SimpleNamespace(_ensure_consumer=lambda: client))
        tp = faust.types.TP("t", 0)
        assert faust_compat.fetched(consumer, tp) is None  # no fetcher yet
        fetcher = client._fetcher = Fetcher(client._client, client._subscription)  # noqa: SLF001
        assert faust_compat.fetched(consumer, tp) is None
        before = time.monotonic()
        assert faust_compat.appended_by(consumer, tp, 0) >= before
        answers = faust_compat.fetch_answers(consumer)
        assert answers is not None
        assert fetcher._client is answers  # noqa: SLF001
        assert answers.client is client._client  # noqa: SLF001
        assert faust_compat.fetch_answers(consumer) is answers  # wrapped once
        answers.latest[("t", 0)] = (42, 1.5, 2.5)
        answers.rises[("t", 0)] = deque([(42, 2.5)])
        assert faust_compat.fetched(consumer, tp) == (42, 1.5)
        assert faust_compat.appended_by(consumer, tp, 41) == 2.5
        await fetcher.close()
    finally:
        await client.stop()


def _lz4_batch(values: list[bytes]) -> bytes:
    builder = DefaultRecordBatchBuilder(
        magic=2,
        compression_type=DefaultRecordBatch.CODEC_LZ4,
        is_transactional=0,
        producer_id=-1,
        producer_epoch=-1,
        base_sequence=-1,
        batch_size=1 << 20,
    )
    for offset, value in enumerate(values):
        builder.append(offset, timestamp=None, key=b"c%d" % offset, value=value, headers=[])
    return bytes(builder.build())


def test_the_engines_lz4_batches_are_fast_mode_frames_that_kafka_reads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """After ``fast_lz4`` (which ``create_app`` calls) a batch is compressed in lz4's
    fast mode, not aiokafka's level 9: a larger frame than level 9's, whose records read
    back as they were written, by aiokafka's own reader."""
    for module in faust_compat.lz4_builders():
        monkeypatch.setattr(module, "lz4_encode", aiokafka.codec.lz4_encode)  # level 9
    values = [
        orjson.dumps({"trigger_id": "%032x" % (n * 7919), "campaign": "welcome", "n": n})
        for n in range(300)
    ]
    level9 = _lz4_batch(values)
    faust_compat.fast_lz4()
    fast = _lz4_batch(values)
    assert len(fast) > len(level9)  # level 9 packs more: the fast mode was used
    for built in (level9, fast):
        batch = DefaultRecordBatch(built)
        assert batch.compression_type == DefaultRecordBatch.CODEC_LZ4
        assert [record.value for record in batch] == values

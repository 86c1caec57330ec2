"""The fetch answers a worker's merge judges, from a real broker.

``streams.faust_compat.FetchAnswers`` wraps the client of an aiokafka consumer's
fetcher: each partition a fetch asked for keeps the highwater of its answer, when
the request left and when the answer came. A highwater read by a request sent after
a record was acknowledged counts that record, however the broker's reads of the
other partitions of the same fetch fell.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from aiokafka.structs import TopicPartition

from bench.measure import create_topic
from streams import kafka
from streams.faust_compat import answers_of
from streams.lag import LagProbe
from streams.settings import Settings

pytestmark = pytest.mark.integration


async def test_every_answer_keeps_its_highwater_and_the_times_of_its_request(
    kafka_bootstrap: str,
) -> None:
    settings = Settings(broker=kafka_bootstrap)
    busy, quiet = f"answers-busy-{uuid.uuid4().hex[:8]}", f"answers-quiet-{uuid.uuid4().hex[:8]}"
    for topic in (busy, quiet):
        await create_topic(kafka_bootstrap, topic, 1)
    producer = kafka.producer(settings, acks="all")
    reader = kafka.consumer(
        settings, busy, quiet, group_id=None, auto_offset_reset="earliest", fetch_max_wait_ms=200
    )
    await producer.start()
    try:
        await producer.send_and_wait(busy, b"first")
        await reader.start()
        answers = answers_of(reader)
        assert answers is not None
        assert answers_of(reader) is answers
        got = await reader.getmany(timeout_ms=10_000)  # the wrapped client still fetches
        assert [r.value for records in got.values() for r in records] == [b"first"]

        await producer.send_and_wait(quiet, b"second")
        acknowledged = time.monotonic()
        deadline = acknowledged + 10
        while time.monotonic() < deadline:
            await reader.getmany(timeout_ms=500)
            mark = answers.latest.get((quiet, 0))
            if mark is not None and mark[1] > acknowledged:
                break
            await asyncio.sleep(0)
        highwater, sent, answered = answers.latest[(quiet, 0)]
        assert sent > acknowledged, "no fetch of the quiet topic was sent after the record"
        assert highwater == 1  # a request sent after the acknowledgement counts the record
        assert sent < answered
        busy_mark = answers.latest[(busy, 0)]  # an empty answer counts as well
        assert busy_mark[0] == 1
        assert busy_mark[1] < busy_mark[2]
    finally:
        await reader.stop()
        await producer.stop()


async def test_an_ask_for_the_ends_answers_while_the_fetch_waits(kafka_bootstrap: str) -> None:
    """A revisit's ask (``LagProbe.end_offsets``, a client of the worker's own) gives
    each partition's end in one round trip while the fetcher's fetch still waits for
    records (30 s here), and is kept as an answer sent then; an older answer coming
    late does not replace it."""
    settings = Settings(broker=kafka_bootstrap)
    topic = f"answers-ends-{uuid.uuid4().hex[:8]}"
    await create_topic(kafka_bootstrap, topic, 2)
    producer = kafka.producer(settings, acks="all")
    reader = kafka.consumer(
        settings, topic, group_id=None, auto_offset_reset="latest", fetch_max_wait_ms=30_000
    )
    await producer.start()
    try:
        await reader.start()
        answers = answers_of(reader)
        assert answers is not None
        await reader.getmany(timeout_ms=1_000)  # positions set: a 30 s fetch is out
        await producer.send_and_wait(topic, b"r0", partition=0)
        acknowledged = time.monotonic()
        await reader.getmany(timeout_ms=5_000)  # the waiting fetch answers with it
        async with LagProbe(settings, topics=[topic]) as probe:
            await probe.end_offsets([TopicPartition(topic, 0)])  # its connection is open
            for n in range(3):
                await producer.send_and_wait(topic, f"r{n}".encode(), partition=1)
            sent = time.monotonic()
            ends = await probe.end_offsets([TopicPartition(topic, p) for p in (0, 1)])
            answered = time.monotonic()
        assert answered - sent < 5.0, "the ask waited behind the fetch"
        assert {tp.partition: end for tp, end in ends.items()} == {0: 1, 1: 3}
        for tp, end in ends.items():
            answers.keep((tp.topic, tp.partition), end, sent, answered)
        assert answers.latest[(topic, 1)] == (3, sent, answered)
        assert sent > acknowledged
        answers.keep((topic, 1), 2, sent - 1.0, answered)  # an older answer, late
        assert answers.latest[(topic, 1)] == (3, sent, answered)
    finally:
        await reader.stop()
        await producer.stop()

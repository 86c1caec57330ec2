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

from bench.measure import create_topic
from streams import kafka
from streams.faust_compat import answers_of
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

"""A re-keyed copy's watermark: first seen complete, kept while its inbound ends stay."""

from __future__ import annotations

from streams.copy_watermark import CopyWatermarks
from streams.lag import PartitionLag

COPIES = {"in.cart": "rp.cart", "in.privacy": "rp.privacy"}


def rows(topic: str, *ends_committed: tuple[int, int]) -> list[PartitionLag]:
    return [
        PartitionLag(topic, p, end, committed, end - committed)
        for p, (end, committed) in enumerate(ends_committed)
    ]


def test_a_copy_is_complete_only_on_a_fetch_after_its_inbound_topic_was_copied() -> None:
    marks = CopyWatermarks(COPIES)
    marks.observe(rows("in.cart", (10, 4), (5, 5)), now=1_000)
    assert not marks.complete_before("rp.cart", 5_000)  # 6 records not copied yet
    marks.observe(rows("in.cart", (10, 10), (5, 5)), now=2_000)
    assert not marks.complete_before("rp.cart", 1_999)  # a fetch from before the copies
    assert marks.complete_before("rp.cart", 2_000)
    assert not marks.complete_before("rp.privacy", 9_000)  # never measured


def test_the_moment_stays_while_the_ends_stay_and_moves_when_records_arrive() -> None:
    marks = CopyWatermarks(COPIES)
    marks.observe(rows("in.privacy", (3, 3), (0, 0)), now=1_000)
    for now in (1_250, 1_500, 1_750):  # checked every 0.25 s, nothing new: a sparse topic
        marks.observe(rows("in.privacy", (3, 3), (0, 0)), now=now)
    assert marks.complete_before("rp.privacy", 1_100)  # a fetch between checks still counts
    marks.observe(rows("in.privacy", (4, 3), (0, 0)), now=2_000)
    # Behind: what was copied by 1_000 still counts; the new record is like one not yet
    # published (live input), until the copy is seen complete again.
    assert marks.complete_before("rp.privacy", 2_100)
    marks.observe(rows("in.privacy", (4, 4), (0, 0)), now=2_250)
    assert not marks.complete_before("rp.privacy", 2_000)  # the new record may be missing
    assert marks.complete_before("rp.privacy", 2_250)

"""Tick messages: the time they carry, and only to the app that sent them."""

from __future__ import annotations

from datetime import UTC, datetime

from agents.ticks import decode_tick, encode_tick

AT = datetime(2026, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)


def test_a_tick_round_trips_its_time() -> None:
    assert decode_tick(encode_tick(AT, "shop"), "shop") == AT


def test_another_apps_tick_carries_no_time() -> None:
    """A replay sharing the ticks topic with the live app must not take its wall clock."""
    assert decode_tick(encode_tick(AT, "shop"), "shop-replay") is None


def test_empty_or_foreign_ticks_only_wake_the_merge() -> None:
    for value in (None, b"", b"not json", b"[1]", encode_tick(None, "shop")):
        assert decode_tick(value, "shop") is None


def test_the_encoding_is_what_earlier_versions_wrote() -> None:
    """Byte for byte the orjson form of ``{"at": ..., "app": ...}``: workers of
    the previous version read these ticks during a rolling upgrade."""
    assert encode_tick(AT, "shop") == b'{"at":"2026-05-01T12:00:00.123456+00:00","app":"shop"}'
    assert encode_tick(AT.replace(microsecond=0), "shop") == (
        b'{"at":"2026-05-01T12:00:00+00:00","app":"shop"}'
    )
    assert encode_tick(None, "shop-replay") == b'{"at":null,"app":"shop-replay"}'


def test_a_tick_time_must_be_text() -> None:
    """A number is not read as seconds since 1970: the tick only wakes the merge."""
    assert decode_tick(b'{"at":1767225600,"app":"shop"}', "shop") is None

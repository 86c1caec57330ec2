"""Tick messages: the time they carry, and only to the app that sent them."""

from __future__ import annotations

from datetime import UTC, datetime

from agents.lifecycle import decode_tick, encode_tick

AT = datetime(2026, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)


def test_a_tick_round_trips_its_time() -> None:
    assert decode_tick(encode_tick(AT, "shop"), "shop") == AT


def test_another_apps_tick_carries_no_time() -> None:
    """A replay sharing the ticks topic with the live app must not take its wall clock."""
    assert decode_tick(encode_tick(AT, "shop"), "shop-replay") is None


def test_empty_or_foreign_ticks_only_wake_the_merge() -> None:
    for value in (None, b"", b"not json", b"[1]", encode_tick(None, "shop")):
        assert decode_tick(value, "shop") is None

"""Deterministic ids and hash buckets.

Replays and redeliveries must produce the same transition_id and trigger_id,
and the same holdout and variant assignment, on any machine: so all of them
come from a cryptographic hash of stable inputs, never from randomness or time.
"""

from __future__ import annotations

import hashlib

__all__ = ["stable_id", "unit_interval"]

_SEP = "\x1f"


def _digest(parts: tuple[str, ...]) -> bytes:
    return hashlib.blake2b(_SEP.join(parts).encode("utf-8"), digest_size=16).digest()


def stable_id(*parts: str) -> str:
    """A 32-hex-character id that depends only on ``parts``."""
    return _digest(parts).hex()


def unit_interval(*parts: str) -> float:
    """A number in [0, 1) spread uniformly over customers, fixed for the same parts."""
    return int.from_bytes(_digest(parts)[:8], "big") / 2**64

"""A run of a flow as the interpreter holds it: stored in the record while it
waits (``FlowRun``), or ``Live`` while the cause that starts it runs its first
steps, and keyed in ``CustomerState.runs`` by its flow and ``per`` value.

A run that never waits is never stored, so a ``Live`` run costs no model.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

from lifecycle.state import FlowRun, RunOrder

__all__ = ["Live", "Run", "run_key"]


def run_key(name: str, value: str) -> str:
    """A run's key in the record: the flow, then ``:`` and its ``per`` value, if any."""
    return f"{name}:{value}" if value else name


class Live(NamedTuple):
    """A run this cause starts: stored (as a ``FlowRun``) only once it waits."""

    flow: str
    key: str
    run_id: str
    started_at: datetime
    holdout: bool
    order: RunOrder | None = None
    properties: dict[str, Any] | None = None


Run = FlowRun | Live

"""What the flow modules need from the core's step (``Effects``), and the one
condition context a step's conditions share (``step_ctx``).

A protocol, not the core's class: the interpreter, the payloads and the activity
logs read and write the step through it, so none of them imports the core.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from lifecycle.flows.conditions import Ctx
from lifecycle.flows.counts import FlowEvent
from lifecycle.playbook import Playbook
from lifecycle.policy import ResolvedSend
from lifecycle.state import CustomerState
from schemas.records import Stage

if TYPE_CHECKING:
    from lifecycle.scoring import ScoresAt

__all__ = ["Effects", "step_ctx"]


class Effects(Protocol):
    """What the interpreter needs from the core's step: the record, the cause, the sends."""

    state: CustomerState
    playbook: Playbook
    scores: ScoresAt
    entered: list[Stage]
    fresh: bool
    flow_ctx: Ctx | None

    at: datetime
    ref: str
    flow_events: list[FlowEvent]

    def greeting(self) -> dict[str, Any]: ...
    def recommend(self, seeds: list[str]) -> list[str]: ...
    def send(
        self,
        send: ResolvedSend,
        *,
        trigger_id: str,
        holdout: bool,
        payload: Callable[[], dict[str, Any]],
    ) -> None: ...


def step_ctx(fx: Effects) -> Ctx:
    """The step's ``Ctx``, made once: it reads the record when asked, so one serves
    every condition of the step however the record changes in between."""
    ctx = fx.flow_ctx
    if ctx is None:
        ctx = fx.flow_ctx = Ctx(
            state=fx.state,
            now=fx.at,
            scores=fx.scores,
            tiers=fx.playbook.scores.clv_tiers,
            segments=fx.playbook.segments,
        )
    return ctx

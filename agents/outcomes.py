"""What the partition runtime did, handed on: outputs and merge messages to the
checkpoint, refusals and core failures to the dead-letter topic, counts to metrics."""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable, Iterator
from datetime import datetime

from agents.intake import Intake, where
from agents.metrics import EngineMetrics
from lifecycle.clock import ClockMode
from lifecycle.core import Due, Outcome
from lifecycle.runtime import Applied, Failed, Refused, Result
from lifecycle.state import CustomerState
from schemas.codec import encode_model
from schemas.events import Event
from schemas.inbound import Reason, Rejection
from schemas.internal import Claim, ProspectHistory
from schemas.records import topic_of
from streams.checkpoint import Checkpoint, Durable
from streams.faust_compat import FaustEvent, FaustMessage
from streams.settings import Settings
from streams.turns import Turns

__all__ = ["Outcomes", "stage_of"]

log = logging.getLogger(__name__)


def stage_of(state: CustomerState | None) -> str | None:
    return state.stage.value if state is not None and state.stage else None


def _log_core_failure(doing: str, exc: Exception) -> None:
    """Type and frames only: exception texts can quote personal fields."""
    log.error(
        "lifecycle core failed %s with %s:\n%s",
        doing,
        type(exc).__name__,
        "".join(traceback.format_tb(exc.__traceback__)),
    )


class Outcomes:
    """Hands on each runtime result, in the runtime's order."""

    def __init__(
        self, settings: Settings, intake: Intake, checkpoint: Checkpoint, metrics: EngineMetrics
    ) -> None:
        self.settings = settings
        self.intake = intake
        self.checkpoint = checkpoint
        self.metrics = metrics
        self.merge_topic = settings.topic("merge")
        self.latest_event: datetime | None = None
        """The latest event time released, which ticks carry in event mode."""
        self.applied = 0

    async def hand_on(
        self, results: Iterator[Result[FaustEvent]], stop: Callable[[], bool] = lambda: False
    ) -> int:
        """Hand on ``results`` in turns of the event loop (``streams.turns``); how many
        messages they released (the timers fired are not messages).

        A merge can release thousands of held messages at once (a backlog's partition
        once its last topic is caught up). Once ``stop()`` says so (the worker is
        stopping, or its partitions were taken away meanwhile), the rest is left at
        the next message: the runtime yields a message's result once it is applied,
        so the messages not taken stay held, and the batch's offsets stop before them."""
        released = 0
        turns = Turns()
        for result in results:
            self._take(result)
            if result.position is not None:
                released += 1
                if stop():
                    break
            await turns.passed()
        return released

    def _take(self, result: Result[FaustEvent]) -> None:
        match result:
            case Applied():
                self._applied(result)
            case Failed():
                self._failed(result)
            case Refused():
                self.dead_letter(result.position.message, result.rejection)

    def dead_letter(self, message: FaustMessage, rejection: Rejection) -> None:
        topic, value = self.intake.dead_letter(message, rejection)
        self.checkpoint.send(topic, message.key, value)

    def _applied(self, result: Applied[FaustEvent]) -> None:
        """The outputs of what the runtime applied (its record is pending already)."""
        key, outcome, cause = result.key.encode(), result.outcome, result.input
        before = None if result.before is None else result.before.value
        match cause:
            case Due():
                self._emit(key, outcome, before)
            case Claim():
                history = outcome.history
                if history is None:
                    return  # merged before, or never seen: nothing to do
                customer = history.customer_id.encode()
                self.checkpoint.merge(self.merge_topic, customer, encode_model(history))
                self._emit(key, outcome, before)
            case ProspectHistory():
                if not outcome.duplicate:
                    self._emit(key, outcome, before)
            case _:
                self._saw(cause)
                self.metrics.event(cause.type, "duplicate" if outcome.duplicate else "accepted")
                self.applied += 1
                if outcome.changed:
                    arrived = None if result.position is None else result.position.message.timestamp
                    self._emit(key, outcome, before, arrived)

    def _failed(self, result: Failed[FaustEvent]) -> None:
        """A bug must not stop the partition: a timer is dropped, a message parked."""
        cause, exc = result.input, result.error
        if result.position is None:  # a timer: no message to park
            _log_core_failure("firing timers", exc)
            return
        message = result.position.message
        _log_core_failure("on {}[{}]@{}".format(*where(message)), exc)
        if not isinstance(cause, Due | Claim | ProspectHistory):
            self._saw(cause)
            self.metrics.event(cause.type, "dead_lettered", Reason.PROCESSING_ERROR.value)
        self.dead_letter(
            message, Rejection(Reason.PROCESSING_ERROR, f"{type(exc).__name__} in core")
        )

    def _saw(self, event: Event) -> None:
        if self.latest_event is None or event.occurred_at > self.latest_event:
            self.latest_event = event.occurred_at

    def _emit(
        self, key: bytes, outcome: Outcome, before: str | None, arrived: float | None = None
    ) -> None:
        """Hand the outputs and identity claims to the checkpoint (the new record is
        pending already); ``arrived`` is when the causing event reached the broker
        (None for timers), the start of the event-to-trigger latency."""
        checkpoint = self.checkpoint
        for claim in outcome.claims:
            checkpoint.merge(self.merge_topic, claim.anonymous_id.encode(), encode_model(claim))
        for record in outcome.emitted:
            checkpoint.send(self.settings.topic(topic_of(record)), key, encode_model(record))
        checkpoint.observe(outcome, before, stage_of(outcome.state), arrived)

    async def observe(self, durable: Durable) -> None:
        """Count what a commit made durable: outcomes, stage moves, latencies."""
        await durable.tally.apply(time.time(), self.settings.clock is ClockMode.WALL)

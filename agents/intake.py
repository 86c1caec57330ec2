"""What an inbound message is to the runtime: an event, a merge message, or a refusal.

Validation (the ingest step) runs inline in the agent: a separate ingest hop
would double Faust's per-message cost for no gain in safety, since a bad
message is dead-lettered before it touches state. Refusals are counted here,
once; the dead letter names the record the shop sent (a re-keyed copy's
original).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from pydantic import ValidationError

from agents.metrics import EngineMetrics
from agents.misrouting import RouteCheck
from lifecycle.runtime import Item
from schemas.codec import encode_model
from schemas.events import INBOUND_TOPICS
from schemas.inbound import Reason, Rejection, check_routing, dead_letter, parse_event
from schemas.internal import MergeAdapter
from streams.faust_compat import FaustMessage
from streams.rekey import read_source
from streams.settings import Settings

__all__ = ["Intake", "where"]

log = logging.getLogger(__name__)


def where(message: FaustMessage) -> tuple[str, int, int]:
    """Where a message sits, for logs: never its key or value (personal data)."""
    return message.topic, message.partition, message.offset


def received_at(message: FaustMessage) -> datetime | None:
    """The record's timestamp (Faust gives seconds): the anchor of the future bound."""
    stamp = message.timestamp
    return None if stamp is None or stamp < 0 else datetime.fromtimestamp(stamp, UTC)


class Intake:
    """Reads inbound messages for one worker."""

    def __init__(self, settings: Settings, metrics: EngineMetrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.limits = settings.input_limits
        self.merge_topic = settings.topic("merge")
        self.deadletter_topic = settings.topic("deadletter")
        self.routes = RouteCheck(settings, metrics)
        self.logical = {settings.topic(n): n for n in INBOUND_TOPICS}
        self.logical.update({settings.repartition_topic(n): n for n in INBOUND_TOPICS})

    def item(self, message: FaustMessage) -> Item:
        """What ``message`` offers its partition's runtime."""
        if message.topic == self.merge_topic:
            try:
                return MergeAdapter.validate_json(message.value or b"")  # no value: invalid
            except ValidationError:  # not ours: only the engine writes this topic
                return Rejection(Reason.INVALID_FIELD, "not a merge message")
        parsed = parse_event(message.value, limits=self.limits, received_at=received_at(message))
        if isinstance(parsed, Rejection):
            self.metrics.event(parsed.event_type or "unknown", "dead_lettered", parsed.reason.value)
            return parsed
        rejection = check_routing(parsed, message.key, self.logical.get(message.topic))
        if rejection is not None:
            self.metrics.event(parsed.type, "dead_lettered", rejection.reason.value)
            return rejection
        self.routes.check(message)
        return parsed

    def dead_letter(self, message: FaustMessage, rejection: Rejection) -> tuple[str, bytes]:
        """The dead-letter topic and record for ``message``."""
        topic, partition, offset = message.topic, message.partition, message.offset
        key = message.key
        source = read_source(message.headers) if self.settings.repartitioned else None
        if source is not None:
            topic, partition, offset = source.topic, source.partition, source.offset
            key = key if source.keyed else None
        record = dead_letter(
            topic=topic,
            partition=partition,
            offset=offset,
            key=key,
            value=message.value,
            rejection=rejection,
            at=datetime.fromtimestamp(message.timestamp, UTC),
        )
        log.warning("dead-lettered %s[%d]@%d: %s", *where(message), rejection.reason.value)
        return self.deadletter_topic, encode_model(record)

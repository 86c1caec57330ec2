"""What a journey is: its steps, the outputs it expects, and the time of an event."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import NamedTuple

from lifecycle.flows.counts import FlowEvent
from schemas.records import Campaign, Stage

Body = Mapping[str, object]
"""An inbound event exactly as a producer publishes it (JSON-compatible values)."""


@dataclass(frozen=True, slots=True)
class Advance:
    """Move the clock to ``to``: every timer due strictly before it fires."""

    to: datetime


Step = Body | Advance


class Move(NamedTuple):
    """An expected transition; ``key`` None means the journey's own customer."""

    from_stage: Stage | None
    to_stage: Stage
    reason: str
    caused_by: str
    at: datetime
    key: str | None = None


class Send(NamedTuple):
    """An expected trigger.

    ``send_after`` None means "the same as created_at". ``payload`` holds exactly
    the campaign's highlight fields (``HIGHLIGHTS``, and the journey's own
    ``Journey.highlights``), None for other campaigns. ``flow`` None means the
    flow named like the campaign (every built-in); ``step`` is the send's index
    path in its flow (``"0"``, ``"3.then.0"``).
    """

    campaign: Campaign | str
    created_at: datetime
    holdout: bool = False
    send_after: datetime | None = None
    payload: Mapping[str, object] | None = None
    key: str | None = None
    flow: str | None = None
    step: str = "0"
    channel: str = "email"


class Suppressed(NamedTuple):
    """An expected suppression: a send a policy stopped, and why (``frequency_cap``...)."""

    campaign: str
    flow: str
    step: str
    reason: str
    key: str | None = None


HIGHLIGHTS: Mapping[Campaign, tuple[str, ...]] = {
    Campaign.BROWSE_ABANDONMENT: ("viewed_products", "products"),
    Campaign.CART_ABANDONMENT: ("items", "value"),
    Campaign.ORDER_THANK_YOU: ("order_id",),
    Campaign.REVIEW_REQUEST: ("order_id", "products"),
    Campaign.CHURN_PREVENTION: ("survey", "discount_percent"),
    Campaign.WIN_BACK: ("discount_percent",),
}
"""The payload fields compared per campaign (docs/campaigns.md, Campaigns: payload highlights)."""


@dataclass(frozen=True, slots=True)
class Journey:
    """One named customer story: its steps and exactly what they must produce.

    ``customer`` is the journey's own key (``Move.key``/``Send.key`` None means
    it); ``kafka_ready`` is checked by the unit tests (see the module docstring).

    ``playbook`` is YAML laid over the default playbook, as a shop's playbook
    file is (None: the default playbook). A journey with one also states each
    send's flow and step, the payload fields its own campaigns are judged on
    (``highlights``), every suppression (``suppressed``) and what the runs of the
    flows its playbook names did (``flow_events``: entered, exited with the
    reason, skipped), in order.
    """

    name: str
    about: str
    customer: str
    steps: tuple[Step, ...]
    moves: tuple[Move, ...]
    sends: tuple[Send, ...]
    kafka_ready: bool = True
    playbook: str | None = None
    highlights: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    suppressed: tuple[Suppressed, ...] = ()
    flow_events: tuple[FlowEvent, ...] = ()

    @property
    def events(self) -> list[Body]:
        return [s for s in self.steps if not isinstance(s, Advance)]

    @property
    def horizon(self) -> datetime:
        """How far the journey's clock gets: its last step's time."""
        last = self.steps[-1]
        return last.to if isinstance(last, Advance) else event_time(last)


def event_time(body: Body) -> datetime:
    occurred = body["occurred_at"]
    assert isinstance(occurred, str)
    return datetime.fromisoformat(occurred).astimezone(UTC)


def events_in_time_order(journeys: Iterable[Journey]) -> list[Body]:
    """The event steps of ``journeys``, stably sorted by ``occurred_at``."""
    return sorted((e for j in journeys for e in j.events), key=event_time)

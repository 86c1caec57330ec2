"""Named customer journeys with their exact expected outputs (the default playbook).

A journey is a list of steps for one customer: an inbound event (the JSON body
a shop backend publishes, with a unique ``event_id`` and an explicit RFC 3339
``occurred_at``) or an ``Advance`` of the partition's clock (a tick). The
expectation is the exact, ordered list of stage transitions (``Move``) and
triggers (``Send``) the journey produces. ``run_journey`` walks the steps
through the partition runtime; the unit tests compare, and the integration tests
can publish the event steps of a subset to a real broker and compare the same way.

Every expectation is derived from the contract (README.md, docs/campaigns.md)
and the default playbook; where the contract is silent (reason names, which
browse starts the 2 h wait, a redelivered order under a new event id) the
core's choice is followed.

Layout: ``model`` (what a journey is), ``steps`` (builders of events and of
expected outputs), ``stories`` (journeys that begin alike: a lead, a buyer, a
buyer who lapses, one who comes back), the themes ``signups``, ``carts``,
``purchases``, ``churn``, ``loyalty`` and ``policies`` (the journeys; a family
that differs only in its numbers is one builder, called once per journey),
``journeys`` (all of them, in order), ``run`` (the runner) and ``fixtures``
(the suite's shared fixtures, registered by the root ``conftest.py``).
Journeys with a playbook of their own (``Journey.playbook``, laid over the
default one) are apart: ``flows`` (the contract's flows and segments example) and
``recipes`` (the README's flow recipes, read from README.md).

Conventions, so that no policy other than the one a journey is about changes
its outputs:

- customers are chosen so that no campaign holds them out (``holdout`` is a
  hash of campaign and customer id), except in ``holdout_customer_is_marked``;
- marketing triggers of one customer are more than 24 h apart and at most three
  fall in any 7 days, except in the ``frequency_cap_*`` journeys;
- customer and anonymous ids, and event ids, are unique across journeys (one
  event is deliberately repeated, unchanged, in ``duplicate_event_changes_nothing``),
  so the event steps of many journeys can share one set of topics.

Kafka: a journey is ``kafka_ready`` when only its final ``Advance`` needs the
worker's clock: every earlier ``Advance`` is implied by the events after it,
since ``apply`` first fires the customer's own timers due before the event.
A worker whose clock passes ``horizon`` emits the expectation, plus records
stamped after ``horizon`` (timers the journey leaves pending; none falls due
exactly at ``horizon``). In event-time mode, publish the events of all chosen
journeys in ``occurred_at`` order (``events_in_time_order``): a partition's
clock is its watermark, shared by every customer in it.
"""

from __future__ import annotations

from tests.scenarios.journeys import JOURNEYS
from tests.scenarios.model import (
    HIGHLIGHTS,
    Advance,
    Body,
    Journey,
    Move,
    Send,
    Step,
    event_time,
    events_in_time_order,
)
from tests.scenarios.run import final_states, record_outputs, run_journey

__all__ = [
    "HIGHLIGHTS",
    "JOURNEYS",
    "Advance",
    "Body",
    "Journey",
    "Move",
    "Send",
    "Step",
    "event_time",
    "events_in_time_order",
    "final_states",
    "record_outputs",
    "run_journey",
]

"""Named journeys through the real broker: the same records as the pure core.

A representative subset of the named journeys (``tests/scenarios``) is
published, in event-time order, to one worker in event-time mode; a last
visitor's page view carries event time to the latest horizon. Each journey's records up to its own
horizon must be exactly its named expectation, and every record the worker
emitted must equal, field for field, what the pure core emits on the same input.
Journeys with a playbook of their own (the contract's flows example, the README's
recipes) run the same way, on one worker per playbook (``LIFECYCLE_PLAYBOOK``).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from harness.engine import (
    OUTPUTS,
    Worker,
    backtest,
    collect,
    create_topics,
    publish_raw,
    unique_settings,
)
from lifecycle.core import Outcome
from schemas.codec import dumps, to_jsonable
from schemas.records import Transition, Trigger
from streams.producer import route
from streams.settings import Settings
from tests.scenarios import (
    Journey,
    Move,
    Send,
    events_in_time_order,
    flows,
    recipes,
    record_outputs,
)

SUBSET = (
    "prospect_browses_then_signs_up",
    "cart_abandoned_after_an_hour",
    "cart_saved_at_exactly_one_hour",
    "browse_then_cart_sends_cart_mail_only",
    "no_review_for_a_refunded_order",
    "second_purchase_nudge_after_30_days",
    "first_time_buyer_churns_low_value",
    "slow_buyer_at_risk_after_twice_their_gap",
    "churned_customer_comes_back",
    "loyal_customer_reviews_and_becomes_advocate",
    "quiet_hours_hold_a_late_cart_mail",
    "duplicate_event_changes_nothing",
    "erase_stops_everything",
)


def visitor(at: datetime) -> dict[str, Any]:
    return {
        "event_id": "visitor-carries-time",
        "type": "browse",
        "occurred_at": at.isoformat(),
        "anonymous_id": "anon-carries-time",
        "url": "/",
    }


def core_records(
    settings: Settings, events: list[dict[str, Any]], end: datetime
) -> dict[str, list[Any]]:
    """The pure core over the same lines, merged and partitioned as the worker does
    (``Backtest``), every record fired by ``end``, per key: its topic and its JSON."""
    out: dict[str, list[Any]] = {}
    for item in backtest(settings, events, until=end)[1]:
        record = {"topic": settings.topic(item.topic), "value": to_jsonable(item.value)}
        out.setdefault(item.key, []).append(record)
    return out


def as_expected(
    journey: Journey, records: dict[str, list[dict[str, Any]]]
) -> tuple[list[Move], list[Send]]:
    """The worker's records of ``journey``'s keys up to its horizon, in the journey's terms."""
    moves: list[Move] = []
    sends: list[Send] = []
    for key, values in records.items():
        outcome = Outcome(state=None)
        for value in values:
            record: Transition | Trigger = (
                Transition.model_validate(value)
                if "to_stage" in value
                else Trigger.model_validate(value)
            )
            stamp = record.at if isinstance(record, Transition) else record.created_at
            if stamp <= journey.horizon:
                outcome.emitted.append(record)
        record_outputs(outcome, key, journey, moves, sends)
    return moves, sends


def test_journeys_on_the_broker_equal_the_pure_core(
    kafka_bootstrap: str, tmp_path: Path, journeys: dict[str, Journey]
) -> None:
    settings: Settings = unique_settings(kafka_bootstrap, tmp_path)
    on_the_broker(settings, tmp_path, [journeys[name] for name in SUBSET])


def _by_playbook() -> dict[str, list[Journey]]:
    """The journeys with a playbook of their own (the contract's flows example, the README's
    recipes, the demo's wishlist), grouped by it: one worker runs each group."""
    groups: dict[str, list[Journey]] = {}
    every = (*flows.JOURNEYS, *flows.RECORD_CHANGES, *recipes.journeys())
    for journey in every:
        if journey.playbook is not None and journey.name not in flows.OPEN_BUGS:
            groups.setdefault(journey.playbook, []).append(journey)
    return groups


PLAYBOOK_GROUPS = list(_by_playbook().values())


@pytest.mark.parametrize("group", PLAYBOOK_GROUPS, ids=[g[0].name for g in PLAYBOOK_GROUPS])
def test_flow_journeys_on_the_broker_equal_the_pure_core(
    kafka_bootstrap: str, tmp_path: Path, group: list[Journey]
) -> None:
    """A worker started with the group's playbook (``LIFECYCLE_PLAYBOOK``)."""
    book = tmp_path / "playbook.yaml"
    assert group[0].playbook is not None
    book.write_text(group[0].playbook, encoding="utf-8")
    settings = unique_settings(kafka_bootstrap, tmp_path).model_copy(update={"playbook": book})
    on_the_broker(settings, tmp_path, group)


def on_the_broker(settings: Settings, tmp_path: Path, subset: list[Journey]) -> None:
    """Publish ``subset``'s events to a worker of ``settings``: every record it emits
    equals the pure core's, and each journey's own are exactly its expectation."""
    create_topics(settings)
    events = [dict(e) for e in events_in_time_order(subset)]
    end = max(j.horizon for j in subset)
    published = [*events, visitor(end)]
    core = core_records(settings, published, end)
    expected_count = sum(len(v) for v in core.values())
    worker = Worker(settings, tmp_path / "worker.log").start()
    try:
        records: list[tuple[str, bytes | None, bytes]] = []
        for event in published:
            topic, key = route(event, settings)
            records.append((topic, key, dumps(event)))
        publish_raw(settings, records)
        got = collect(settings, OUTPUTS, expected=expected_count, quiet=4)
        worker.assert_alive()
    finally:
        worker.stop()
    per_key: dict[str, list[Any]] = {}
    for r in sorted(got, key=lambda r: (r["partition"], r["offset"])):
        per_key.setdefault(r["key"], []).append(r)
    # Per key and topic, Kafka keeps order: compare each customer's records topic by topic.
    for key, values in core.items():
        mine = per_key.get(key, [])
        for topic in map(settings.topic, OUTPUTS):
            want = [v["value"] for v in values if v["topic"] == topic]
            have = [r["value"] for r in mine if r["topic"] == topic]
            assert have == want, f"{key} {topic}"
    assert sum(len(v) for v in per_key.values()) == expected_count
    for journey in subset:
        keys = {journey.customer} | {m.key for m in journey.moves if m.key}
        decided = (settings.topic("transitions"), settings.topic("triggers"))
        moves, sends = as_expected(
            journey,
            {
                k: [r["value"] for r in per_key.get(k, []) if r["topic"] in decided]
                for k in sorted(keys)
            },
        )
        assert in_order(moves) == in_order(journey.moves), journey.name
        assert in_order(sends) == in_order(journey.sends), journey.name


def in_order(outputs: Iterable[Move | Send]) -> list[Move | Send]:
    """Sorted by their fields as text: a campaign or stage compares as its name, so an
    expectation's ``Campaign.WELCOME`` and a record's ``"welcome"`` sort alike."""
    return sorted(outputs, key=lambda output: [str(f) for f in output])

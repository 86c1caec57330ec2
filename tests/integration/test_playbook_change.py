"""A worker restarted with a changed playbook: in-flight runs go on or end ``flow_changed``.

Two customers each wait in a run of a flow when the first worker stops. The
second worker reads a playbook in which one flow lost the step its run waits
at (that run ends, counted ``flow_changed``, and sends nothing more), while the
other flow kept its step but lengthened the wait (that run goes on, at the wake
time stored when it fell asleep). The new playbook also gains a birthday flow: a
customer who signed up with the trait and does nothing more still gets the
birthday that comes after the restart (the rebuild wakes the record, and the
wake-up schedules the flow).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from harness.engine import (
    Worker,
    collect,
    create_topics,
    publish,
    scrape,
    unique_settings,
    value,
    wait_for,
    wait_ready,
)
from streams.broker import find_free_port
from streams.settings import Settings
from tests.integration.test_web import get
from tests.scenarios.steps import browse, cart, day, signup

BEFORE = """
flows:
  cart_abandonment: {enabled: false}
  series:
    trigger: {event: cart, where: {action: add}}
    steps: [{wait: 1h}, {send: {campaign: series_1}}, {wait: 2d}, {send: {campaign: series_2}}]
  kept:
    trigger: {event: cart, where: {action: checkout_started}}
    steps: [{wait: 1h}, {send: {campaign: kept_1}}, {wait: 2d}, {send: {campaign: kept_2}}]
"""

AFTER = """
flows:
  cart_abandonment: {enabled: false}
  series:
    trigger: {event: cart, where: {action: add}}
    steps: [{wait: 1h}, {send: {campaign: series_1}}]
  kept:
    trigger: {event: cart, where: {action: checkout_started}}
    steps: [{wait: 1h}, {send: {campaign: kept_1}}, {wait: 3d}, {send: {campaign: kept_2}}]
  birthday:
    trigger: {date: traits.birthday, at: "09:00"}
    steps: [{send: {campaign: birthday}}]
"""


def sends(settings: Settings, expected: int) -> list[tuple[str, str, str, datetime]]:
    """(customer, campaign, step, created_at) of every trigger record, sorted."""
    records = collect(settings, ["triggers"], expected=expected, quiet=4)
    return sorted(
        (
            r["key"],
            r["value"]["campaign"],
            r["value"]["step"],
            datetime.fromisoformat(r["value"]["created_at"]),
        )
        for r in records
    )


def test_a_changed_playbook_ends_runs_whose_step_is_gone(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    before, after = tmp_path / "before.yaml", tmp_path / "after.yaml"
    before.write_text(BEFORE, encoding="utf-8")
    after.write_text(AFTER, encoding="utf-8")
    settings = unique_settings(kafka_bootstrap, tmp_path).model_copy(update={"playbook": before})
    create_topics(settings)
    publish(
        settings,
        [
            signup("s-1", day(0), "c-series"),
            signup("s-2", day(0), "c-kept"),
            signup("s-3", day(0), "c-birthday", traits={"birthday": "1990-01-11"}),  # day 5
            cart("c-1", day(2), "c-series", "add", "cart-1", "p-tea"),
            cart("c-2", day(2), "c-kept", "checkout_started", "cart-2", "p-tea"),
            browse("b-1", day(3), anonymous="time-carrier"),
        ],
    )
    first = Worker(settings, tmp_path / "first.log").start()
    try:
        wait_ready(settings)
        asleep = sends(settings, expected=5)
        first.assert_alive()
    finally:
        first.stop()
    day2 = day(2, 11)
    assert [(c, campaign, step) for c, campaign, step, _ in asleep] == [
        ("c-birthday", "welcome", "0"),
        ("c-kept", "kept_1", "1"),
        ("c-kept", "welcome", "0"),
        ("c-series", "series_1", "1"),
        ("c-series", "welcome", "0"),
    ]
    assert {at for _, campaign, _, at in asleep if campaign != "welcome"} == {day2}

    changed = settings.model_copy(update={"playbook": after, "web_port": find_free_port(1)})
    second = Worker(changed, tmp_path / "second.log").start()
    try:
        wait_ready(changed)

        def birthday_timer() -> list[Any]:
            status, view = get(changed, "/customers/c-birthday", token=None)
            timers = view.get("pending_timers", []) if status == 200 else []
            return [t["due"] for t in timers if t["timer"] == "date:birthday"]

        # The first tick wakes the record (the restored event time, day 3), and the
        # wake-up schedules the flow the playbook gained, before any event of its own.
        assert wait_for(lambda: bool(birthday_timer()), timeout=60)
        assert birthday_timer() == [day(5, 9).isoformat().replace("+00:00", "Z")]
        publish(changed, [browse("b-2", day(6), anonymous="time-carrier")])

        def flow_changed() -> float:
            return value(
                scrape(changed), "lifecycle_flow_exited_total", flow="series", reason="flow_changed"
            )

        assert wait_for(lambda: flow_changed() == 1.0, timeout=120)
        went_on = sends(changed, expected=7)
        samples = scrape(changed)
        second.assert_alive()
    finally:
        second.stop()
    assert went_on == sorted(
        [
            *asleep,
            ("c-kept", "kept_2", "3", day(4, 11)),
            ("c-birthday", "birthday", "0", day(5, 9)),
        ]
    )
    assert value(samples, "lifecycle_flow_exited_total", flow="kept", reason="completed") == 1.0
    assert value(samples, "lifecycle_flow_exited_total", flow="kept", reason="flow_changed") == 0

"""Time on the real broker: live wall-clock timers, a replay in event time, a restart.

The playbook here shrinks every wait to seconds, so a live run with events
stamped "now" sees carts abandoned, reviews requested and customers slide to
at_risk and churned within the test, on the wall clock.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from harness.engine import (
    Worker,
    collect,
    create_topics,
    publish_raw,
    stored_states,
    unique_settings,
    wait_ready,
)
from lifecycle.clock import ClockMode
from schemas.codec import dumps
from streams.broker import find_free_port
from streams.producer import route
from streams.settings import Settings
from tests.scenarios import Body, steps


def fast_playbook(cart_delay: int = 3) -> str:
    return f"""
policies:
  frequency_caps: []   # every timer's mail must show, seconds apart
stages:
  at_risk: {{after: 8s}}
  churned: {{after: 12s, min_at_risk: 2s}}
campaigns:
  cart_abandonment: {{delay: {cart_delay}s}}
  browse_abandonment: {{delay: 4s}}
  review_request: {{delay: 5s}}
  second_purchase_nudge: {{delay: 6s}}
"""


CART_DELAY = 15
"""The carts' wait in the restart test: long enough that a worker stops before it on a
machine several times slower than ours (a clean stop writes its last batch first)."""


@pytest.fixture
def live(kafka_bootstrap: str, tmp_path: Path) -> Settings:
    """A live app on the wall clock, with the seconds-long playbook and its own topics."""
    path = tmp_path / "fast.yaml"
    path.write_text(fast_playbook(), encoding="utf-8")
    settings = unique_settings(kafka_bootstrap, tmp_path, clock=ClockMode.WALL)
    settings = settings.model_copy(update={"playbook": path})
    create_topics(settings)
    return settings


def signup(customer: str, at: datetime) -> Body:
    return steps.signup(f"{customer}-signup", at, customer)


def cart(customer: str, at: datetime, n: int = 1) -> Body:
    return steps.cart(
        f"{customer}-cart-{n}", at, customer, "add", f"{customer}-c{n}", f"p-{n}", 1, "19.90"
    )


def browse(customer: str, at: datetime, n: int = 1) -> Body:
    return steps.browse(f"{customer}-browse-{n}", at, customer=customer, product=f"p-{n}")


def purchase(customer: str, at: datetime, n: int = 1) -> Body:
    order = f"{customer}-o{n}"
    return steps.purchase(f"{customer}-purchase-{n}", at, customer, order, "19.90", f"p-{n}")


def visitor(at: datetime) -> Body:
    """An anonymous visitor's page view: no timers of its own, it only carries time."""
    return steps.browse(f"visit-{at.timestamp()}", at, anonymous="anon-visitor")


def send_live(settings: Settings, script: list[tuple[float, Any]]) -> datetime:
    """Publish each (offset seconds, event builder) at its moment, stamped with the wall
    clock as a shop would; returns the time of the first event."""
    start = datetime.now(UTC)
    for offset, build in sorted(script, key=lambda item: item[0]):
        at = start + timedelta(seconds=offset)
        pause = (at - datetime.now(UTC)).total_seconds()
        if pause > 0:
            time.sleep(pause)
        event = build(datetime.now(UTC))
        topic, key = route(event, settings)
        publish_raw(settings, [(topic, key, dumps(event))])
    return start


def shop_script() -> list[tuple[float, Any]]:
    """Customers whose stories need every kind of timer, each well clear of its deadline."""
    script: list[tuple[float, Any]] = []
    for n in range(4):
        c = f"cust-cart-{n}"  # abandons a cart
        script += [(0.0, lambda at, c=c: signup(c, at)), (0.2, lambda at, c=c: cart(c, at))]
    for n in range(3):
        c = f"cust-buyer-{n}"  # carts then buys at once: no abandonment; a review, a nudge, ...
        script += [
            (0.1, lambda at, c=c: signup(c, at)),
            (0.3, lambda at, c=c: cart(c, at)),
            (0.6, lambda at, c=c: purchase(c, at)),
        ]
    for n in range(2):
        c = f"cust-browser-{n}"  # browses and leaves
        script += [(0.1, lambda at, c=c: signup(c, at)), (0.4, lambda at, c=c: browse(c, at))]
    c = "cust-repeat"  # buys twice: repeat customer, then at risk and churned
    script += [
        (0.0, lambda at, c=c: signup(c, at)),
        (0.5, lambda at, c=c: purchase(c, at, 1)),
        (1.5, lambda at, c=c: purchase(c, at, 2)),
    ]
    return script


def by_topic(records: list[dict[str, Any]], settings: Settings) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {"transitions": [], "triggers": []}
    for r in records:
        name = "transitions" if r["topic"] == settings.topic("transitions") else "triggers"
        out[name].append(r["value"])
    return out


def test_replay_in_event_time_rebuilds_the_live_state_and_trigger_ids(
    live: Settings, tmp_path: Path
) -> None:
    worker = Worker(live, tmp_path / "live.log").start()
    replayer: Worker | None = None
    try:
        send_live(live, shop_script())
        # Every deadline of the script is within 16 s of its start (churn: 1.5 + 14 s).
        time.sleep(17)
        # The live clock has passed them all; one more event carries event time as far,
        # so the replay's watermark reaches what the wall clock reached.
        send_live(
            live,
            [
                (
                    0.0,
                    lambda at: (
                        browse("anon-sentinel", at)
                        | {"customer_id": None, "anonymous_id": "anon-sentinel"}
                    ),
                )
            ],
        )
        live_records = collect(live, ["transitions", "triggers"], expected=1, quiet=4)
        worker.assert_alive()
        got = by_topic(live_records, live)
        campaigns = {t["campaign"] for t in got["triggers"]}
        assert {
            "welcome",
            "cart_abandonment",
            "browse_abandonment",
            "order_thank_you",
            "review_request",
            "second_purchase_nudge",
            "churn_prevention",
            "win_back",
        } <= campaigns
        stages = {(t["from_stage"], t["to_stage"]) for t in got["transitions"]}
        assert {("repeat_customer", "at_risk"), ("at_risk", "churned")} <= stages
        # No abandonment mail for the carts that were bought.
        assert not [
            t
            for t in got["triggers"]
            if t["campaign"] == "cart_abandonment" and t["customer_id"].startswith("cust-buyer")
        ]

        replay = live.for_replay(f"{live.app_id}-replay", "replay.")
        # ``lifecycle replay`` as a user runs it: the live settings, a new app id.
        replayer = Worker(
            live,
            tmp_path / "replay.log",
            ("replay", "--app-id", replay.app_id),
            env={"LIFECYCLE_WEB_PORT": str(find_free_port(1))},
        )
        replayer.start()
        replayed = collect(replay, ["transitions", "triggers"], expected=len(live_records), quiet=4)
        replayer.assert_alive()
        again = by_topic(replayed, replay)
        assert sorted(t["trigger_id"] for t in again["triggers"]) == sorted(
            t["trigger_id"] for t in got["triggers"]
        )
        assert sorted(t["transition_id"] for t in again["transitions"]) == sorted(
            t["transition_id"] for t in got["transitions"]
        )
        live_states = stored_states(live)
        assert len(live_states) == 11
        assert stored_states(replay) == live_states
    finally:
        worker.stop()
        if replayer is not None:
            replayer.stop()


@pytest.mark.parametrize("store", ["rocksdb", "memory"])
def test_timers_due_while_the_worker_was_down_fire_once_after_restart(
    live: Settings, tmp_path: Path, store: str
) -> None:
    """rocksdb keeps the table on disk; memory recovers it from the changelog: either
    way the heaps are rebuilt from the table before the first sweep."""
    playbook = tmp_path / "down.yaml"
    playbook.write_text(fast_playbook(cart_delay=CART_DELAY), encoding="utf-8")
    settings = live.model_copy(update={"store": store, "playbook": playbook})
    worker = Worker(settings, tmp_path / "worker.log").start()
    customers = [f"cust-down-{n}" for n in range(8)]
    try:
        # Started and assigned first: the carts' deadline must not pass during start-up.
        assert wait_ready(settings)["status"] == 200
        script: list[tuple[float, Any]] = []
        for c in customers:
            script += [(0.0, lambda at, c=c: signup(c, at)), (0.1, lambda at, c=c: cart(c, at))]
        carted = time.monotonic()
        send_live(settings, script)
        welcomes = collect(settings, ["triggers"], expected=len(customers), quiet=0.5)
        assert len(welcomes) == len(customers)  # processed: the carts' timers are stored
        worker.stop()
        down_since = time.monotonic()
        assert down_since - carted < CART_DELAY, "stopped after the carts' deadline: no test"
        time.sleep(CART_DELAY + 1 - (down_since - carted))  # every deadline passes while down
        worker.start()
        triggers = collect(settings, ["triggers"], expected=2 * len(customers), quiet=3)
        worker.assert_alive()
        carts = [t["value"] for t in triggers if t["value"]["campaign"] == "cart_abandonment"]
        assert sorted(t["customer_id"] for t in carts) == customers
        ids = [t["trigger_id"] for t in carts]
        assert len(set(ids)) == len(ids)  # each exactly once
        assert "timer heaps rebuilt: 8 pending" in worker.log_text()
    finally:
        worker.stop()

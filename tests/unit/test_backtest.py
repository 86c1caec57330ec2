"""The backtest: the pure core over raw lines, merged per partition like a worker."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from analytics.simulation import simulate
from lifecycle.backtest import Backtest, LineRejected, Output
from lifecycle.clock import just_after
from lifecycle.core import Due, Outcome, apply
from lifecycle.ordering import order_key
from lifecycle.playbook import Playbook, parse_playbook
from lifecycle.recommend import MemoryPairs, Recommender
from lifecycle.state import CustomerState
from schemas.codec import dumps, encode_model
from schemas.events import Event
from schemas.inbound import Reason, Rejection, parse_event
from schemas.records import Trigger, topic_of
from streams.producer import partitioner

Encoded = tuple[str, str, bytes]


def line(type_: str, event_id: str, at: str, **fields: Any) -> bytes:
    return dumps({"type": type_, "event_id": event_id, "occurred_at": at, **fields})


def encode(items: Iterable[Output | LineRejected]) -> list[Encoded]:
    return [
        (item.topic, item.key, encode_model(item.value))
        for item in items
        if isinstance(item, Output)
    ]


def _encoded(key: str, outcome: Outcome) -> list[Encoded]:
    return [(topic_of(r), key, encode_model(r)) for r in outcome.emitted]


def reference(events: Sequence[Event], playbook: Playbook) -> list[Encoded]:
    """``apply`` over ``events`` in the given order, then every customer's timers
    up to the last event's time: outputs encoded like ``encode``."""
    states: dict[str, CustomerState] = {}
    out: list[Encoded] = []
    shop = Recommender(MemoryPairs(), playbook.recommendations)  # one partition: one store
    for e in events:
        outcome = apply(states.get(e.key), e, playbook, shop)
        if outcome.state is None:
            states.pop(e.key, None)
        else:
            states[e.key] = outcome.state
        out += _encoded(e.key, outcome)
        for products in outcome.orders:
            shop.record(products)
    if events:
        end = just_after(max(e.occurred_at for e in events))
        for key, state in states.items():
            out += _encoded(key, apply(state, Due(end), playbook, shop))
    return out


def parsed(lines: Iterable[bytes]) -> list[Event]:
    events = [parse_event(raw) for raw in lines]
    assert not any(isinstance(e, Rejection) for e in events)
    return events  # type: ignore[return-value]


def by_key(outputs: Iterable[Encoded]) -> dict[str, list[Encoded]]:
    grouped: dict[str, list[Encoded]] = defaultdict(list)
    for output in outputs:
        grouped[output[1]].append(output)
    return dict(grouped)


SIGNUP = line(
    "signup",
    "s1",
    "2025-01-10T09:00:00Z",
    customer_id="c1",
    email="c1@x.example",
    marketing_consent=True,
)
PURCHASE = line(
    "purchase",
    "p1",
    "2025-01-10T09:05:00Z",
    customer_id="c1",
    order_id="o1",
    total="25.00",
    currency="EUR",
)


def test_purchase_listed_before_an_earlier_signup_is_applied_after_it(
    playbook: Playbook,
) -> None:
    outputs = encode(Backtest(playbook).run([PURCHASE, SIGNUP]))
    assert outputs == reference(parsed([SIGNUP, PURCHASE]), playbook)
    assert outputs != reference(parsed([PURCHASE, SIGNUP]), playbook)
    stages = [o[2] for o in outputs if o[0] == "transitions"]
    assert b'"from_stage":null,"to_stage":"lead"' in stages[0]
    assert b'"from_stage":"lead","to_stage":"first_time_buyer"' in stages[1]


def test_same_topic_is_applied_in_file_order(playbook: Playbook) -> None:
    # a refund listed after its purchase but stamped earlier: FIFO within the purchase topic
    refund = line(
        "refund", "r1", "2025-01-10T09:01:00Z", customer_id="c1", order_id="o1", amount="25.00"
    )
    runner = Backtest(playbook)
    outputs = encode(runner.run([PURCHASE, refund]))
    assert outputs == reference(parsed([PURCHASE, refund]), playbook)
    state = runner.states["c1"]
    assert (state.orders, state.revenue) == (0, Decimal(0))


def test_same_instant_signup_precedes_purchase(playbook: Playbook) -> None:
    purchase = line(
        "purchase",
        "a-first",
        "2025-01-10T09:00:00Z",
        customer_id="c1",
        order_id="o1",
        total="5",
        currency="EUR",
    )
    signup = line("signup", "z-last", "2025-01-10T09:00:00Z", customer_id="c1", email="a@b.c")
    runner = Backtest(playbook)
    outputs = encode(runner.run([purchase, signup]))
    assert outputs == reference(parsed([signup, purchase]), playbook)


def test_malformed_lines_are_reported_and_the_run_continues(playbook: Playbook) -> None:
    lines = [
        SIGNUP,
        b"not json\n",
        b"\n",
        b"   \n",
        line("browse", "b1", "2025-01-10T09:00:00Z"),
        PURCHASE,
        b'{"type": "refund"}\n',
    ]
    items = list(Backtest(playbook).run(lines))
    rejected = [(i.line, i.rejection.reason) for i in items if isinstance(i, LineRejected)]
    assert rejected == [
        (2, Reason.INVALID_JSON),
        (5, Reason.MISSING_FIELD),
        (7, Reason.MISSING_FIELD),
    ]
    assert encode(items) == reference(parsed([SIGNUP, PURCHASE]), playbook)


def test_summary_counts(playbook: Playbook) -> None:
    lines = [
        line("browse", "b1", "2025-01-10T08:00:00Z", anonymous_id="a1"),
        SIGNUP,
        line(  # claims a visitor never seen: no merge, and no duplicate either
            "signup",
            "s2",
            "2025-01-10T09:01:00Z",
            customer_id="c2",
            email="c2@x.example",
            anonymous_id="a9",
        ),
        PURCHASE,
        PURCHASE,  # a redelivery: the one duplicate
        b"not json",
        b"",
        line("privacy", "x1", "2025-01-10T10:00:00Z", customer_id="c2", action="erase"),
    ]
    runner = Backtest(playbook)
    items = list(runner.run(lines))
    summary = runner.summary
    assert (
        summary.lines,
        summary.events,
        summary.rejected,
        summary.duplicates,
        summary.erased,
        summary.transitions,
        summary.triggers,
        summary.held_out,
    ) == (7, 6, 1, 1, 1, 4, 2, 0)
    assert summary.suppressed == Counter({"welcome:no_consent": 1})
    assert summary.triggers_by_campaign == Counter({"welcome": 1, "order_thank_you": 1})
    assert summary.stages == Counter({"prospect": 1, "first_time_buyer": 1})
    assert sorted(runner.states) == ["a1", "c1"]
    assert len(encode(items)) == 6
    assert summary.line() == (
        "backtest: 7 lines, 6 events, 1 rejected, 1 duplicates, 0 timers fired, 4 transitions, "
        "2 triggers (0 held out), 1 suppressed (welcome:no_consent=1); "
        "stages: first_time_buyer=1 prospect=1"
    )


def test_summary_line_without_events(playbook: Playbook) -> None:
    runner = Backtest(playbook)
    assert list(runner.run([])) == []
    assert runner.summary.line() == (
        "backtest: 0 lines, 0 events, 0 rejected, 0 duplicates, 0 timers fired, 0 transitions, "
        "0 triggers (0 held out), 0 suppressed; stages: none"
    )


@pytest.fixture(scope="module")
def simulated() -> list[bytes]:
    return [dumps(e) for e in simulate(300, seed=3)]


def test_held_out_counts_the_held_out_triggers(playbook: Playbook, simulated: list[bytes]) -> None:
    runner = Backtest(playbook)
    items = [i for i in runner.run(simulated) if isinstance(i, Output)]
    triggers = [i.value for i in items if i.topic == "triggers"]
    assert all(isinstance(t, Trigger) for t in triggers)
    held = sum(1 for t in triggers if isinstance(t, Trigger) and t.holdout)
    assert held > 0
    assert runner.summary.held_out == held
    assert runner.summary.triggers == len(triggers)
    assert runner.summary.transitions == sum(1 for i in items if i.topic == "transitions")
    assert runner.summary.rejected == 0


def test_simulated_run_matches_applying_events_in_event_time_order(
    simulated: list[bytes],
) -> None:
    """Recommendations aside: they read the partition's co-purchase counts at the moment
    a timer fires, which this one-customer-at-a-time reference cannot reproduce."""
    playbook = parse_playbook("recommendations: {count: 0}\n")
    outputs = encode(Backtest(playbook).run(simulated))
    expected = reference(sorted(parsed(simulated), key=order_key), playbook)
    assert by_key(outputs) == by_key(expected)


def test_runs_are_deterministic(playbook: Playbook, simulated: list[bytes]) -> None:
    first = encode(Backtest(playbook).run(simulated))
    second = encode(Backtest(playbook).run(simulated))
    assert len(first) > 500
    assert first == second


def test_partition_count_does_not_change_the_outputs(simulated: list[bytes]) -> None:
    """Except recommendations: each partition counts co-purchases of its own customers."""
    playbook = parse_playbook("recommendations: {count: 0}\n")
    single = encode(Backtest(playbook).run(simulated))
    four = encode(Backtest(playbook, partitioner(4)).run(simulated))
    assert Counter(single) == Counter(four)
    assert by_key(single) == by_key(four)  # and each customer's outputs in the same order


def late_purchase_lines() -> list[bytes]:
    """A cart at 10:00; on the purchase topic, another customer's 11:30 order is
    listed before this customer's 10:45 order: the 10:45 one arrives late."""
    item = {"product_id": "p1", "quantity": 1, "unit_price": "20.00"}
    return [
        line("signup", "s1", "2026-02-20T09:00:00Z", customer_id="c1", email="c1@mail.example",
             marketing_consent=True),
        line("cart", "k1", "2026-03-02T10:00:00Z", customer_id="c1", action="add", cart_id="k",
             product_id="p1", quantity=1, unit_price="20.00", currency="EUR"),
        line("purchase", "p2", "2026-03-02T11:30:00Z", customer_id="c2", order_id="o2",
             total="20.00", currency="EUR", items=[item]),
        line("purchase", "p1", "2026-03-02T10:45:00Z", customer_id="c1", order_id="o1",
             total="20.00", currency="EUR", items=[item]),
    ]  # fmt: skip


def campaigns_of(runner: Backtest, lines: list[bytes]) -> list[tuple[str, str]]:
    return [
        (o.value.customer_id, o.value.campaign)
        for o in runner.run(lines)
        if isinstance(o, Output) and isinstance(o.value, Trigger)
    ]


def test_a_late_purchase_within_the_lateness_cancels_the_abandonment_mail(
    playbook: Playbook,
) -> None:
    runner = Backtest(playbook, lateness=timedelta(hours=1))
    assert ("c1", "cart_abandonment") not in campaigns_of(runner, late_purchase_lines())
    assert runner.summary.triggers_by_campaign["cart_abandonment"] == 0


def test_a_purchase_later_than_the_lateness_finds_the_mail_already_sent(
    playbook: Playbook,
) -> None:
    got = campaigns_of(Backtest(playbook), late_purchase_lines())
    assert got.index(("c1", "cart_abandonment")) < got.index(("c1", "order_thank_you"))

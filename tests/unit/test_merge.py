"""Identity: a prospect merged into the customer who claims it, across partitions."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from lifecycle.backtest import Backtest, Output
from lifecycle.core import apply
from lifecycle.playbook import Playbook
from schemas.codec import dumps
from schemas.events import EventAdapter
from schemas.internal import Claim
from schemas.records import Stage, Transition
from streams.producer import partitioner

PARTITION_OF = partitioner(4)


def body(type_: str, event_id: str, at: str, **fields: Any) -> dict[str, Any]:
    return {"type": type_, "event_id": event_id, "occurred_at": at, **fields}


def ids_on_different_partitions() -> tuple[str, str]:
    anonymous = "anon-merge-1"
    for n in range(100):
        customer = f"cust-merge-{n}"
        if PARTITION_OF(customer) != PARTITION_OF(anonymous):
            return anonymous, customer
    raise AssertionError


ANON, CUST = ids_on_different_partitions()

STORY = [
    body("browse", "b1", "2026-03-01T10:00:00Z", anonymous_id=ANON, product_id="teapot"),
    body("browse", "b2", "2026-03-01T10:02:00Z", anonymous_id=ANON, product_id="kettle"),
    body("signup", "s1", "2026-03-01T10:05:00Z", customer_id=CUST, anonymous_id=ANON,
         email="c@mail.example", marketing_consent=True),
    body("identify", "i1", "2026-03-02T09:00:00Z", customer_id=CUST, anonymous_id=ANON),
]  # fmt: skip


def test_signup_with_an_anonymous_id_claims_the_prospect(playbook: Playbook) -> None:
    outcome = apply(None, EventAdapter.validate_python(STORY[2]), playbook)
    assert outcome.claims == [
        Claim(anonymous_id=ANON, customer_id=CUST, at=outcome.claims[0].at, cause="s1")
    ]


def test_retire_hands_on_the_history_once(playbook: Playbook) -> None:
    prospect = None
    for raw in STORY[:2]:
        prospect = apply(prospect, EventAdapter.validate_python(raw), playbook).state
    assert prospect is not None
    assert prospect.prospect_views == ["teapot", "kettle"]
    claim = Claim(anonymous_id=ANON, customer_id=CUST, at=prospect.last_event_at, cause="s1")
    outcome = apply(prospect, claim, playbook)
    assert outcome.state is None  # a tombstone for the prospect
    assert outcome.history is not None
    assert outcome.history.views == ("teapot", "kettle")
    assert apply(None, claim, playbook).history is None  # claimed again: nothing left to hand on


def test_a_known_customer_is_never_retired(playbook: Playbook) -> None:
    known = apply(None, EventAdapter.validate_python(STORY[2]), playbook).state
    claim = Claim(anonymous_id=CUST, customer_id="someone", at=known.signed_up_at, cause="x")  # type: ignore[union-attr,arg-type]
    assert apply(known, claim, playbook).history is None


def test_backtest_merges_across_partitions_and_twice_is_harmless(playbook: Playbook) -> None:
    runner = Backtest(playbook, PARTITION_OF)
    outputs = [o for o in runner.run([dumps(b) for b in STORY]) if isinstance(o, Output)]
    assert ANON not in runner.states  # retired
    customer = runner.states[CUST]
    assert customer.anonymous_ids == [ANON]
    assert customer.prospect_views == ["kettle", "teapot"]
    assert customer.first_seen_at < customer.signed_up_at  # type: ignore[operator]
    assert runner.summary.merges == 1  # the identify claimed the same visitor: no-op
    moves = [o.value for o in outputs if isinstance(o.value, Transition)]
    assert [(m.customer_id, m.to_stage) for m in moves] == [
        (ANON, Stage.PROSPECT),
        (CUST, Stage.LEAD),
    ]


def test_fold_twice_changes_nothing(playbook: Playbook) -> None:
    runner = Backtest(playbook, PARTITION_OF)
    list(runner.run([dumps(b) for b in STORY[:3]]))
    customer = runner.states[CUST]
    history_again = apply(
        apply(None, EventAdapter.validate_python(STORY[0]), playbook).state,
        Claim(anonymous_id=ANON, customer_id=CUST, at=customer.signed_up_at, cause="s1"),  # type: ignore[arg-type]
        playbook,
    ).history
    assert history_again is not None
    assert apply(customer, history_again, playbook).duplicate
    assert apply(None, history_again, playbook).state is None  # erased meanwhile


def test_erase_then_signup_again_starts_a_fresh_record(playbook: Playbook) -> None:
    story = [
        *STORY[:3],
        body("privacy", "x1", "2026-03-03T10:00:00Z", customer_id=CUST, action="erase"),
        body("browse", "b3", "2026-03-04T10:00:00Z", customer_id=CUST, product_id="mug"),
        body("signup", "s2", "2026-03-05T10:00:00Z", customer_id=CUST,
             email="c@mail.example", marketing_consent=True),
    ]  # fmt: skip
    runner = Backtest(playbook, PARTITION_OF)
    outputs = [o for o in runner.run([dumps(b) for b in story]) if isinstance(o, Output)]
    fresh = runner.states[CUST]
    assert fresh.anonymous_ids == []  # the identity link went with the erased record
    assert fresh.prospect_views == ["mug"]
    assert fresh.signed_up_at is not None
    assert fresh.signed_up_at.day == 5
    welcomes = [o.value for o in outputs if getattr(o.value, "campaign", None) == "welcome"]
    assert len(welcomes) == 2  # one per life of the record
    assert runner.summary.erased == 1


def guest_order(event_id: str, at: str, order_id: str, total: str, **ids: Any) -> dict[str, Any]:
    return body("purchase", event_id, at, order_id=order_id, total=total, currency="EUR",
                items=[{"product_id": f"p-{order_id}", "quantity": 1, "unit_price": total}],
                **(ids or {"anonymous_id": ANON}))  # fmt: skip


GUEST = [
    guest_order("g1", "2026-03-01T10:00:00Z", "o1", "30.00"),
    body("signup", "s1", "2026-03-01T10:05:00Z", customer_id=CUST, anonymous_id=ANON,
         email="c@mail.example", marketing_consent=True),
]  # fmt: skip


def merged(playbook: Playbook, story: list[dict[str, Any]]) -> tuple[Backtest, list[Transition]]:
    runner = Backtest(playbook, PARTITION_OF)
    outputs = [o for o in runner.run([dumps(b) for b in story]) if isinstance(o, Output)]
    return runner, [o.value for o in outputs if isinstance(o.value, Transition)]


def test_a_guest_checkout_becomes_the_customers_first_order(playbook: Playbook) -> None:
    """A guest buys, then signs up with the guest's id: the order is the customer's, so
    the customer is a first-time buyer from the signup on, and the next order makes a
    repeat customer (docs/campaigns.md, Stages: first purchase, second purchase)."""
    story = [*GUEST, guest_order("c1", "2026-03-20T10:00:00Z", "o2", "50.00", customer_id=CUST)]
    runner, moves = merged(playbook, story)
    customer = runner.states[CUST]
    assert (customer.orders, customer.revenue) == (2, Decimal("80.00"))
    assert customer.bought == ["p-o1", "p-o2"]
    assert [str(t.date()) for t in customer.purchase_times] == ["2026-03-01", "2026-03-20"]
    mine = [
        (m.from_stage, m.to_stage, m.reason, m.caused_by) for m in moves if m.customer_id == CUST
    ]
    assert mine == [
        (None, Stage.LEAD, "signup", "s1"),
        (Stage.LEAD, Stage.FIRST_TIME_BUYER, "merged_orders", "s1"),
        (Stage.FIRST_TIME_BUYER, Stage.REPEAT_CUSTOMER, "repeat_purchase", "c1"),
    ]
    merge_move = next(m for m in moves if m.reason == "merged_orders")
    assert merge_move.snapshot.orders == 1


def test_a_guest_order_refunded_after_the_merge_is_the_customers_to_refund(
    playbook: Playbook,
) -> None:
    def refund(event_id: str, amount: str) -> dict[str, Any]:
        return body("refund", event_id, "2026-03-02T10:00:00Z", customer_id=CUST,
                    order_id="o1", amount=amount)  # fmt: skip

    runner, _ = merged(playbook, [*GUEST, refund("r1", "10.00")])
    assert (runner.states[CUST].orders, runner.states[CUST].revenue) == (1, Decimal("20.00"))
    runner, _ = merged(playbook, [*GUEST, refund("r1", "10.00"), refund("r2", "20.00")])
    assert (runner.states[CUST].orders, runner.states[CUST].revenue) == (0, Decimal("0.00"))


def test_an_order_sent_as_the_guests_and_as_the_customers_counts_once(playbook: Playbook) -> None:
    again = guest_order("c1", "2026-03-01T10:00:00Z", "o1", "30.00", customer_id=CUST)
    runner, moves = merged(playbook, [GUEST[0], again, GUEST[1]])
    customer = runner.states[CUST]
    assert (customer.orders, customer.revenue, customer.purchase_days) == (1, Decimal("30.00"), 1)
    assert [m.reason for m in moves if m.customer_id == CUST] == ["first_purchase"]


def test_a_visitor_who_bought_nothing_hands_on_no_orders(playbook: Playbook) -> None:
    prospect = apply(None, EventAdapter.validate_python(STORY[0]), playbook).state
    claim = Claim(anonymous_id=ANON, customer_id=CUST, at=prospect.last_event_at, cause="s1")  # type: ignore[union-attr]
    history = apply(prospect, claim, playbook).history
    assert history is not None
    assert history.orders is None
    assert b'"orders"' not in dumps(history)  # the message an earlier version reads


def test_a_history_coming_back_after_an_erase_stays_out_of_the_ids_next_record(
    playbook: Playbook,
) -> None:
    """The customer signs up (claiming the visitor), is erased, and browses again, all
    before the visitor's history comes back from the other partition, as it may in a
    worker: the history belonged to the erased record, so the new one does not take it
    (the backtest, whose history comes back at once, erases it with the old record)."""
    visitor = apply(None, EventAdapter.validate_python(STORY[0]), playbook).state
    signed = apply(None, EventAdapter.validate_python(STORY[2]), playbook)
    history = apply(visitor, signed.claims[0], playbook).history
    assert history is not None
    erase = body("privacy", "x1", "2026-03-01T10:06:00Z", customer_id=CUST, action="erase")
    assert apply(signed.state, EventAdapter.validate_python(erase), playbook).state is None
    for at in ("2026-03-01T10:07:00Z", "2026-03-01T10:05:00Z", "2026-03-01T10:04:59Z"):
        again = body("browse", "b9", at, customer_id=CUST, product_id="mug")
        reborn = apply(None, EventAdapter.validate_python(again), playbook).state
        assert reborn is not None  # begun after the erase, whatever its event's time

        folded = apply(reborn, history, playbook)
        assert folded.duplicate
        assert folded.state is reborn
        assert (reborn.anonymous_ids, reborn.prospect_views) == ([], ["mug"])
    assert apply(signed.state, history, playbook).state.anonymous_ids == [ANON]  # type: ignore[union-attr]


def test_a_late_signup_still_merges_the_visitor_into_a_record_begun_after_it(
    playbook: Playbook,
) -> None:
    """The customer's browse at 10:30 is applied before their signup of 10:05, which
    came late: the record began after the signup, yet applied it, so the history folds."""
    visitor = apply(None, EventAdapter.validate_python(STORY[0]), playbook).state
    first = body("browse", "b9", "2026-03-01T10:30:00Z", customer_id=CUST, product_id="mug")
    record = apply(None, EventAdapter.validate_python(first), playbook).state
    signed = apply(record, EventAdapter.validate_python(STORY[2]), playbook)
    assert signed.state is not None
    assert signed.state.first_seen_at > signed.claims[0].at
    history = apply(visitor, signed.claims[0], playbook).history
    assert history is not None
    assert apply(signed.state, history, playbook).state.anonymous_ids == [ANON]  # type: ignore[union-attr]


def login_story(own: str, guest: str, login: str, visitor: str) -> list[dict[str, Any]]:
    """A customer signs up on 01-01 and orders o1 at ``own``; as the guest ``visitor``
    they order o2 at ``guest``, and log in at ``login``: the lines in time order."""
    lines = [
        body("signup", "s1", "2026-01-01T10:00:00Z", customer_id=CUST, email="c@mail.example"),
        guest_order("o1", own, "o1", "30.00", customer_id=CUST),
        guest_order("g2", guest, "o2", "50.00", anonymous_id=visitor),
        body("identify", "i1", login, customer_id=CUST, anonymous_id=visitor),
    ]
    return sorted(lines, key=lambda line: str(line["occurred_at"]))


def test_a_guest_order_after_the_customer_went_at_risk_reactivates_them(
    playbook: Playbook,
) -> None:
    """The customer's one order is on 01-02; at risk from 03-03. On 04-01 they buy as a
    guest and log in: a purchase while at risk, as it would be with their own id."""
    story = login_story(
        "2026-01-02T10:00:00Z", "2026-04-01T10:00:00Z", "2026-04-01T10:05:00Z", "anon-risk"
    )
    runner, moves = merged(playbook, story)
    mine = [(m.to_stage, m.reason) for m in moves if m.customer_id == CUST]
    assert mine[-2:] == [
        (Stage.AT_RISK, "no_purchase_at_risk"),
        (Stage.REACTIVATED, "merged_orders"),
    ]
    assert runner.states[CUST].orders == 2


def test_guest_orders_at_one_instant_each_count(playbook: Playbook) -> None:
    """Four guest orders, two of them at the same second: four purchases for the loyal
    rule, as four orders of the customer's own would be."""
    times = ["2026-02-01T10:00:00Z", "2026-02-10T10:00:00Z", *["2026-02-20T10:00:00Z"] * 2]
    orders = [guest_order(f"g{n}", at, f"o{n}", "10.00") for n, at in enumerate(times)]
    signup = body("signup", "s1", "2026-02-21T10:00:00Z", customer_id=CUST, anonymous_id=ANON,
                  email="c@mail.example")  # fmt: skip
    runner, _ = merged(playbook, [*orders, signup])
    customer = runner.states[CUST]
    assert (len(customer.purchase_times), customer.purchase_days) == (4, 3)
    assert customer.stage is Stage.LOYAL


def test_a_history_folds_however_many_events_came_before_it(playbook: Playbook) -> None:
    """The claim is remembered in the record (``claimed``) until its history comes back,
    not only as a recent event id: 250 events after the signup still find it."""
    visitor = apply(None, EventAdapter.validate_python(STORY[0]), playbook).state
    signed = apply(None, EventAdapter.validate_python(STORY[2]), playbook)
    record = signed.state
    for n in range(250):
        view = body("browse", f"v{n}", "2026-03-01T10:06:00Z", customer_id=CUST, product_id="p")
        record = apply(record, EventAdapter.validate_python(view), playbook).state
    assert record is not None
    assert "s1" not in record.recent_event_ids
    history = apply(visitor, signed.claims[0], playbook).history
    assert history is not None
    folded = apply(record, history, playbook).state
    assert folded is not None
    assert (folded.anonymous_ids, folded.claimed) == ([ANON], [])


def test_a_guest_who_bought_after_the_customer_has_the_latest_products(
    playbook: Playbook,
) -> None:
    """``bought`` keeps the products most recent last, so the ones bought as a guest after
    the customer's own order come last (a guest checkout, then a login)."""
    later = login_story(
        "2026-01-02T10:00:00Z", "2026-01-05T10:00:00Z", "2026-01-05T10:05:00Z", "anon-later"
    )
    runner, _ = merged(playbook, later)
    assert runner.states[CUST].bought == ["p-o1", "p-o2"]
    earlier = login_story(  # the guest's order before the customer's own
        "2026-01-10T10:00:00Z", "2026-01-05T10:00:00Z", "2026-01-11T10:05:00Z", "anon-earlier"
    )
    runner, _ = merged(playbook, earlier)
    assert runner.states[CUST].bought == ["p-o2", "p-o1"]

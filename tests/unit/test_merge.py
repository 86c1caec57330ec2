"""Identity: a prospect merged into the customer who claims it, across partitions."""

from __future__ import annotations

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

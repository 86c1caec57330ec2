"""The flow interpreter: each trigger kind, step kind and run-control key, with exact triggers.

Every test runs a tiny playbook whose built-in flows are off, with no caps, no
quiet hours and no default holdout, so what it shows is the flow alone.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from unittest import mock

import pytest

from lifecycle.core import Due, Outcome, apply
from lifecycle.flows.closures import event_test
from lifecycle.flows.conditions import event_holds
from lifecycle.flows.counts import FlowEvent
from lifecycle.flows.dates import next_date
from lifecycle.flows.model import Leaf
from lifecycle.flows.program import program
from lifecycle.ids import stable_id
from lifecycle.playbook import Playbook, parse_playbook
from lifecycle.policy import in_holdout
from lifecycle.state import CustomerState, decode_record
from schemas.codec import encode_model
from schemas.events import Event, EventAdapter
from schemas.records import Campaign, Trigger

T0 = datetime(2025, 3, 3, 10, 0, tzinfo=UTC)
"""A Monday, 10:00 UTC."""
H = timedelta(hours=1)
D = timedelta(days=1)

QUIET = "policies:\n  default_holdout: 0\n  frequency_caps: []\n  quiet_hours: {enabled: false}\n"
OFF = "".join(f"  {c.value}: {{enabled: false}}\n" for c in Campaign)


def book(flows: str, segments: str = "", policies: str = QUIET) -> Playbook:
    """The built-ins off, then ``flows`` (YAML lines under ``flows:``, indented 2)."""
    text = policies + "flows:\n" + OFF + flows
    if segments:
        text += "segments:\n" + segments
    return parse_playbook(text)


def ev(type_: str, n: int | str, at: datetime, customer: str = "c1", **fields: Any) -> Event:
    return EventAdapter.validate_python(
        {
            "type": type_,
            "event_id": f"e{n}",
            "occurred_at": at.isoformat(),
            "customer_id": customer,
            **fields,
        }
    )


def identify(n: int | str, at: datetime, customer: str = "c1", **fields: Any) -> Event:
    return ev("identify", n, at, customer, anonymous_id=f"a-{customer}", **fields)


def signup(n: int, at: datetime, customer: str = "c1", **fields: Any) -> Event:
    return ev(
        "signup",
        n,
        at,
        customer,
        email=f"{customer}@mail.example",
        marketing_consent=True,
        **fields,
    )


def purchase(
    n: int, at: datetime, order: str, total: str = "10.00", category: str = "tea", **kw: Any
) -> Event:
    item = {"product_id": f"p-{category}", "category": category, "quantity": 1, "unit_price": total}
    return ev("purchase", n, at, order_id=order, total=total, currency="EUR", items=[item], **kw)


def cart(n: int, at: datetime, action: str = "add", product: str = "p1", **kw: Any) -> Event:
    return ev(
        "cart",
        n,
        at,
        action=action,
        cart_id="k1",
        product_id=product,
        quantity=1,
        unit_price="5.00",
        currency="EUR",
        **kw,
    )


class Shop:
    """One customer's record through ``apply``, collecting every output."""

    def __init__(self, playbook: Playbook) -> None:
        self.playbook = playbook
        self.states: dict[str, CustomerState] = {}
        self.outcomes: list[Outcome] = []

    def feed(self, *inputs: Event | tuple[str, datetime]) -> Shop:
        for given in inputs:
            if isinstance(given, tuple):
                key, now = given
                outcome = apply(self.states.get(key), Due(now), self.playbook)
            else:
                key = given.key
                outcome = apply(self.states.get(key), given, self.playbook)
            if outcome.state is None:
                self.states.pop(key, None)
            else:
                self.states[key] = outcome.state
            self.outcomes.append(outcome)
        return self

    def until(self, now: datetime, key: str = "c1") -> Shop:
        return self.feed((key, now))

    @property
    def triggers(self) -> list[Trigger]:
        return [t for o in self.outcomes for t in o.triggers]

    def sent(self) -> list[tuple[str, str, str, datetime]]:
        """(flow, step, campaign, created_at) of every trigger, in order."""
        return [(t.flow, t.step, t.campaign, t.created_at) for t in self.triggers]

    @property
    def events(self) -> list[FlowEvent]:
        return [e for o in self.outcomes for e in o.flow_events]

    def state(self, key: str = "c1") -> CustomerState:
        return self.states[key]


def flow_timers(state: CustomerState) -> dict[str, datetime]:
    return {k: v for k, v in state.timers.items() if not k.startswith("attribution:")}


def run_id(flow: str, cause: str, key: str = "", customer: str = "c1") -> str:
    return stable_id("run", customer, flow, key, cause)


def trigger_id(flow: str, cause: str, step: str, key: str = "", customer: str = "c1") -> str:
    return stable_id("trigger", customer, flow, run_id(flow, cause, key, customer), step)


# --- triggers --------------------------------------------------------------------------


def test_event_trigger_with_where_matches_or_not() -> None:
    shop = Shop(
        book(
            "  coffee:\n"
            "    trigger: {event: purchase, where: {items.category: coffee}}\n"
            "    steps: [{send: {campaign: coffee}}]\n"
        )
    )
    shop.feed(
        signup(0, T0 - D),
        purchase(1, T0, "o1", category="tea"),
        purchase(2, T0 + H, "o2", category="coffee"),
    )
    assert shop.sent() == [("coffee", "0", "coffee", T0 + H)]
    [trigger] = shop.triggers
    assert trigger.trigger_id == trigger_id("coffee", "e2", "0")
    assert shop.events == [
        FlowEvent("coffee", "entered"),
        FlowEvent("coffee", "exited", "completed"),
    ]


def test_stage_enter_starts_on_the_move() -> None:
    shop = Shop(
        book(
            "  first:\n    trigger: {stage_enter: first_time_buyer}\n"
            "    steps: [{send: {campaign: first}}]\n"
        )
    )
    shop.feed(signup(1, T0), purchase(2, T0 + H, "o1"), purchase(3, T0 + 2 * H, "o2"))
    assert shop.sent() == [("first", "0", "first", T0 + H)]


def test_a_flow_no_event_can_trigger_is_never_evaluated_for_other_events() -> None:
    """The index: a browse pays only for flows keyed by browse (none here)."""
    shop = Shop(
        book(
            "  wish:\n"
            "    trigger: {event: custom, where: {name: wishlist_add}}\n"
            "    exit_on: [{event: custom, where: {name: wishlist_remove}}]\n"
            "    steps: [{wait: 1d}, {send: {campaign: wish}}]\n"
        )
    )
    compiled = program(shop.playbook)
    wish = compiled.flows["wish"]
    assert wish.where is not None
    matched = mock.Mock(wraps=wish.where)
    counted = replace(compiled, flows={**compiled.flows, "wish": replace(wish, where=matched)})
    shop.playbook.derived.value = counted  # the playbook's cache: what the core runs
    assert program(shop.playbook) is counted
    shop.feed(ev("browse", 1, T0, product_id="p1"), signup(2, T0), cart(3, T0))
    assert matched.call_count == 0
    shop.feed(ev("custom", 4, T0 + H, name="wishlist_add"))
    assert matched.call_count == 1
    assert list(shop.state().runs) == ["wish"]


def test_segment_enter_fires_on_the_turn_to_true_only() -> None:
    shop = Shop(
        book(
            "  big:\n    trigger: {segment_enter: big}\n    steps: [{send: {campaign: big}}]\n",
            segments="  big: {field: revenue, gte: 100}\n",
        )
    )
    shop.feed(
        signup(1, T0),
        purchase(2, T0 + H, "o1", "60.00"),
        purchase(3, T0 + 2 * H, "o2", "60.00"),  # 120: turns true
        purchase(4, T0 + 3 * H, "o3", "60.00"),  # still true: nothing
        ev("refund", 5, T0 + 4 * H, order_id="o3", amount="60.00"),  # 120: still true
        ev("refund", 6, T0 + 5 * H, order_id="o2", amount="60.00"),  # 60: false
        purchase(7, T0 + 6 * H, "o4", "50.00"),  # 110: true again
    )
    assert shop.sent() == [("big", "0", "big", T0 + 2 * H), ("big", "0", "big", T0 + 6 * H)]
    assert shop.state().segments == {"big": True}


def test_segment_enter_on_a_new_record_and_a_silent_baseline_on_an_old_one() -> None:
    flows = (
        "  known:\n    trigger: {segment_enter: known}\n    steps: [{send: {campaign: known}}]\n"
    )
    segments = "  known: {field: signed_up, eq: true}\n"
    fresh = Shop(book(flows, segments)).feed(signup(1, T0))
    assert fresh.sent() == [("known", "0", "known", T0)]
    # A record made before the segment was tracked: its first evaluation sends nothing.
    before = Shop(book("")).feed(signup(1, T0))
    later = Shop(book(flows, segments))
    later.states = dict(before.states)
    later.feed(identify(2, T0 + H))
    assert later.sent() == []
    assert later.state().segments == {"known": True}


def test_segment_enter_counts_a_timer_change() -> None:
    """A stage move made by a timer is a change of the record: segments see it."""
    shop = Shop(
        book(
            "  risky:\n    trigger: {segment_enter: risky}\n"
            "    steps: [{send: {campaign: risky}}]\n",
            segments="  risky: {field: stage, eq: at_risk}\n",
        )
    )
    shop.feed(signup(1, T0), purchase(2, T0, "o1")).until(T0 + 61 * D)
    assert shop.sent() == [("risky", "0", "risky", T0 + 60 * D)]


BIRTHDAY = (
    '  birthday:\n    trigger: {date: traits.birthday, at: "09:00"}\n'
    "    steps: [{send: {campaign: birthday}}]\n"
)


def test_date_trigger_every_year_at_local_time() -> None:
    shop = Shop(book(BIRTHDAY))
    shop.feed(signup(1, T0, timezone="Europe/Berlin", traits={"birthday": "1990-03-05"}))
    assert shop.state().dates == {"birthday": datetime(2025, 3, 5, 8, 0, tzinfo=UTC)}  # CET
    shop.until(datetime(2026, 3, 6, tzinfo=UTC))
    assert shop.sent() == [
        ("birthday", "0", "birthday", datetime(2025, 3, 5, 8, 0, tzinfo=UTC)),
        ("birthday", "0", "birthday", datetime(2026, 3, 5, 8, 0, tzinfo=UTC)),
    ]


def test_date_trigger_today_after_the_hour_waits_a_year_and_follows_a_trait_change() -> None:
    shop = Shop(book(BIRTHDAY))
    shop.feed(signup(1, T0, traits={"birthday": "1990-03-03"}))  # 10:00 UTC, after 09:00
    assert shop.state().dates == {"birthday": datetime(2026, 3, 3, 9, 0, tzinfo=UTC)}  # no zone
    shop.feed(identify(2, T0 + H, traits={"birthday": "1990-04-01"}))
    assert shop.state().dates == {"birthday": datetime(2025, 4, 1, 9, 0, tzinfo=UTC)}
    shop.feed(identify(3, T0 + 2 * H, traits={"birthday": None}))
    assert shop.state().dates == {}
    assert shop.state().timers == {}


def test_a_date_without_the_customers_zone_is_in_the_playbooks_default_zone() -> None:
    zone = "{enabled: false, default_timezone: America/New_York}"
    policies = QUIET.replace("{enabled: false}", zone)
    shop = Shop(book(BIRTHDAY, policies=policies))
    shop.feed(signup(1, T0, traits={"birthday": "1990-03-05"}))  # no timezone of its own
    assert shop.state().dates == {"birthday": datetime(2025, 3, 5, 14, 0, tzinfo=UTC)}  # EST
    shop.feed(signup(2, T0 + H, timezone="Europe/Berlin"))  # its own zone wins
    assert shop.state().dates == {"birthday": datetime(2025, 3, 5, 8, 0, tzinfo=UTC)}  # CET


def test_a_date_flow_the_playbook_gains_is_scheduled_at_the_records_next_wake_up() -> None:
    """Records written before the playbook had the flow (a worker restarted with a new
    playbook, whose rebuild wakes them): the wake-up schedules the flow from then on,
    so a customer who does nothing still gets the next birthday, and not one that
    passed while the flow did not exist."""
    shop = Shop(book(""))
    shop.feed(
        signup(1, T0, traits={"birthday": "1990-03-05"}),
        signup(2, T0, "c2", traits={"birthday": "1990-03-01"}),
        signup(3, T0, "c3"),
    )
    assert shop.state().dates == {}
    assert shop.state().timers == {}
    shop.playbook = book(BIRTHDAY)
    wake = T0 + D
    shop.until(wake).until(wake, "c2").until(wake, "c3")
    first, second, third = shop.outcomes[-3:]
    assert first.changed
    assert second.changed
    assert not third.changed
    assert shop.state().timers == {"date:birthday": datetime(2025, 3, 5, 9, 0, tzinfo=UTC)}
    assert shop.state("c2").dates == {"birthday": datetime(2026, 3, 1, 9, 0, tzinfo=UTC)}
    assert shop.state("c3").dates == {}
    shop.until(datetime(2025, 3, 6, tzinfo=UTC)).until(datetime(2025, 3, 6, tzinfo=UTC), "c2")
    assert shop.sent() == [("birthday", "0", "birthday", datetime(2025, 3, 5, 9, 0, tzinfo=UTC))]


@pytest.mark.parametrize(
    ("after", "expected"),
    [
        (datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 2, 28, 9, 0, tzinfo=UTC)),
        (datetime(2027, 3, 1, tzinfo=UTC), datetime(2028, 2, 29, 9, 0, tzinfo=UTC)),
    ],
)
def test_a_29_february_date_is_the_28th_in_other_years(after: datetime, expected: datetime) -> None:
    assert next_date("2000-02-29", T0.time().replace(hour=9), None, after) == expected


def test_a_date_in_the_dst_gap_and_a_bad_value() -> None:
    at = datetime(2025, 3, 30, 0, 0, tzinfo=UTC).time().replace(hour=2, minute=30)
    # 02:30 does not exist in Berlin on 30 March 2025: fold 0 reads it with the old offset
    due = next_date("1990-03-30", at, "Europe/Berlin", datetime(2025, 3, 1, tzinfo=UTC))
    assert due == datetime(2025, 3, 30, 1, 30, tzinfo=UTC)
    assert next_date("soon", at, None, T0) is None
    assert next_date(19900330, at, None, T0) is None


# --- steps -------------------------------------------------------------------------------


def test_wait_is_a_timer_that_survives_a_stored_record() -> None:
    playbook = book(
        "  later:\n    trigger: {event: signup}\n"
        "    steps: [{wait: 1h}, {send: {campaign: a}}, {wait: 23h}, {send: {campaign: b}}]\n"
    )
    shop = Shop(playbook).feed(signup(1, T0))
    assert flow_timers(shop.state()) == {"flow:later": T0 + H}
    # through the bytes, as a worker stores and reads it back
    shop.states["c1"] = decode_record(encode_model(shop.state()))
    shop.until(T0 + H)  # due strictly before the clock: not yet
    assert shop.sent() == []
    shop.until(T0 + H + timedelta(seconds=1))
    assert flow_timers(shop.state()) == {"flow:later": T0 + 24 * H}
    shop.states["c1"] = decode_record(encode_model(shop.state()))
    shop.until(T0 + 25 * H)
    assert shop.sent() == [("later", "1", "a", T0 + H), ("later", "3", "b", T0 + 24 * H)]
    assert [t.trigger_id for t in shop.triggers] == [
        trigger_id("later", "e1", "1"),
        trigger_id("later", "e1", "3"),
    ]
    assert "later" not in shop.state().runs
    assert flow_timers(shop.state()) == {}


def test_send_with_every_field() -> None:
    shop = Shop(
        book(
            "  full:\n"
            "    trigger: {event: purchase}\n"
            "    steps:\n"
            "      - send:\n"
            "          campaign: full.1\n"
            "          channel: webhook\n"
            "          transactional: true\n"
            "          priority: 90\n"
            "          variants: {X: 1}\n"
            "          include: [order, properties, referral_code, recommendations]\n"
            "          data:\n"
            "            fixed: 7\n"
            "            tiered: {by: clv_tier, high: 3, low: 1}\n"
            "            staged: {by: stage, loyal: yes, default: none}\n"
            "            missing: {by: country, SE: hej}\n"
        )
    )
    shop.feed(signup(1, T0), purchase(2, T0 + H, "o1", "20.00", properties={"gift": True}))
    [trigger] = shop.triggers
    assert (trigger.campaign, trigger.channel, trigger.variant, trigger.holdout) == (
        "full.1",
        "webhook",
        "X",
        False,
    )
    payload = dict(trigger.payload)
    for standard in ("email", "first_name", "locale", "segment", "clv", "clv_tier"):
        assert standard in payload
    order = {
        "order_id": "o1",
        "total": "20.00",
        "currency": "EUR",
        "items": [{"product_id": "p-tea", "quantity": 1, "unit_price": "20.00", "category": "tea"}],
        "products": ["p-tea"],
    }
    assert {k: payload[k] for k in list(payload)[-13:]} == {
        "predicted_clv": payload["predicted_clv"],
        "order": order,
        "order_id": "o1",
        "total": "20.00",
        "currency": "EUR",
        "items": order["items"],
        "products": ["p-tea"],
        "properties": {"gift": True},
        "referral_code": stable_id("referral", "c1")[:10].upper(),
        "recommendations": [],
        "fixed": 7,
        "tiered": 1,
        "staged": "none",
    }
    assert "missing" not in payload


def test_a_transactional_send_is_not_capped_nor_needs_consent() -> None:
    policies = "policies:\n  quiet_hours: {enabled: false}\n"
    shop = Shop(
        book(
            "  a: {trigger: {event: signup}, steps: [{send: {campaign: a}}]}\n"
            "  b: {trigger: {event: signup}, steps: [{send: {campaign: b}}]}\n"
            "  t: {trigger: {event: signup},"
            " steps: [{send: {campaign: t, transactional: true}}]}\n",
            policies=policies,
        )
    )
    shop.feed(signup(1, T0, customer="c7"))
    assert [t.campaign for t in shop.triggers] == ["a", "t"]
    assert [(s.campaign, s.reason, s.flow) for o in shop.outcomes for s in o.suppressed] == [
        ("b", "frequency_cap", "b")
    ]


BRANCHY = (
    "  series:\n"
    "    trigger: {event: cart, where: {action: add}}\n"
    "    exit_on: [{event: purchase}]\n"
    "    steps:\n"
    "      - wait: 1h\n"
    "      - branch:\n"
    "          if: {field: orders, gte: 1}\n"
    "          then:\n"
    "            - branch:\n"
    "                if: {field: revenue, gte: 100}\n"
    "                then: [{send: {campaign: vip}}]\n"
    "                else: [{wait: 1d}, {send: {campaign: buyer}}]\n"
    "          else: [{send: {campaign: stranger}}]\n"
    "      - send: {campaign: after}\n"
)


@pytest.mark.parametrize(
    ("before", "expected"),
    [
        ([], [("1.else.0", "stranger", T0 + H), ("2", "after", T0 + H)]),
        (["50.00"], [("1.then.0.else.1", "buyer", T0 + 25 * H), ("2", "after", T0 + 25 * H)]),
        (["150.00"], [("1.then.0.then.0", "vip", T0 + H), ("2", "after", T0 + H)]),
    ],
)
def test_branch_then_else_nested(
    before: list[str], expected: list[tuple[str, str, datetime]]
) -> None:
    shop = Shop(book(BRANCHY))
    earlier = [purchase(10 + n, T0 - D, f"o{n}", total) for n, total in enumerate(before)]
    shop.feed(signup(1, T0 - 2 * D), *earlier, cart(2, T0)).until(T0 + 3 * D)
    assert [(s, c, at) for _, s, c, at in shop.sent()] == expected


# --- run control -------------------------------------------------------------------------

REPLENISH = (
    "  refill:\n"
    "    trigger: {event: purchase, where: {items.category: coffee}}\n"
    "    exit_on: [{event: purchase, where: {items.category: coffee}}]\n"
    "    steps: [{wait: 25d}, {send: {campaign: refill}}]\n"
)


def test_exit_on_ends_the_run_and_the_same_event_starts_a_new_one() -> None:
    shop = Shop(book(REPLENISH))
    shop.feed(
        signup(0, T0 - D),
        purchase(1, T0, "o1", category="coffee"),
        purchase(2, T0 + 10 * D, "o2", category="coffee"),
    )
    shop.until(T0 + 40 * D)
    assert shop.sent() == [("refill", "1", "refill", T0 + 35 * D)]
    assert shop.triggers[0].trigger_id == trigger_id("refill", "e2", "1")
    assert shop.events == [
        FlowEvent("refill", "entered"),
        FlowEvent("refill", "exited", "exit_on"),
        FlowEvent("refill", "entered"),
        FlowEvent("refill", "exited", "completed"),
    ]


REVIEWS = (
    "  ask:\n"
    "    trigger: {event: purchase}\n"
    "    per: order_id\n"
    "    exit_on: [{event: refund, where: {remaining: 0}}, {event: engagement}]\n"
    "    steps: [{wait: 7d}, {send: {campaign: ask, include: [order]}}]\n"
)


def test_per_runs_one_per_value_and_exit_on_ends_only_the_value_it_names() -> None:
    shop = Shop(book(REVIEWS))
    shop.feed(
        signup(0, T0 - D),
        purchase(1, T0, "o1"),
        purchase(2, T0 + H, "o2"),
        purchase(3, T0 + 2 * H, "o3"),
        ev("refund", 4, T0 + 3 * H, order_id="o1", amount="4.00"),  # partial: goes on
        ev("refund", 5, T0 + 4 * H, order_id="o2", amount="10.00"),  # full: o2's run ends
    )
    assert sorted(shop.state().runs) == ["ask:o1", "ask:o3"]
    shop.until(T0 + 8 * D)
    assert [(t.step, t.payload["order_id"], t.created_at) for t in shop.triggers] == [
        ("1", "o1", T0 + 7 * D),
        ("1", "o3", T0 + 7 * D + 2 * H),
    ]
    assert shop.triggers[0].trigger_id == trigger_id("ask", "e1", "1", key="o1")


def test_exit_on_without_the_per_field_ends_every_run_of_the_flow() -> None:
    shop = Shop(book(REVIEWS))
    shop.feed(
        purchase(1, T0, "o1"),
        purchase(2, T0 + H, "o2"),
        ev("engagement", 3, T0 + 2 * H, action="click", channel="email"),
    ).until(T0 + 10 * D)
    assert shop.sent() == []
    assert shop.events[-2:] == [FlowEvent("ask", "exited", "exit_on")] * 2


def test_per_missing_skips() -> None:
    shop = Shop(
        book(
            "  gift:\n    trigger: {event: custom}\n    per: properties.gift_id\n"
            "    steps: [{send: {campaign: gift}}]\n"
        )
    )
    shop.feed(
        signup(0, T0 - D),
        ev("custom", 1, T0, name="gift"),
        ev("custom", 2, T0 + H, name="gift", properties={"gift_id": "g1"}),
    )
    assert shop.events[0] == FlowEvent("gift", "skipped", "per_missing")
    assert shop.state().runs == {}
    assert shop.sent() == [("gift", "0", "gift", T0 + H)]


FILTERED = (
    "  nudge:\n"
    "    trigger: {event: signup}\n"
    "    filters: [{field: orders, lt: 2}]\n"
    "    steps: [{wait: 2d}, {send: {campaign: nudge}}]\n"
)


def test_filters_fail_at_entry() -> None:
    shop = Shop(book(FILTERED))
    shop.feed(purchase(1, T0, "o1"), purchase(2, T0, "o2"), signup(3, T0 + H))
    assert shop.state().runs == {}
    assert shop.events == [FlowEvent("nudge", "entered"), FlowEvent("nudge", "exited", "filters")]


def test_filters_fail_before_a_send() -> None:
    shop = Shop(book(FILTERED))
    shop.feed(signup(1, T0), purchase(2, T0 + H, "o1"), purchase(3, T0 + 2 * H, "o2"))
    shop.until(T0 + 3 * D)
    assert shop.sent() == []
    assert shop.events == [FlowEvent("nudge", "entered"), FlowEvent("nudge", "exited", "filters")]


def welcome(re_entry: str) -> Playbook:
    return book(
        f"  hello:\n    trigger: {{event: identify}}\n    re_entry: {re_entry}\n"
        "    steps: [{send: {campaign: hello}}]\n"
    )


@pytest.mark.parametrize(
    ("re_entry", "sent"),
    [
        ("always", [T0, T0 + 10 * D, T0 + 40 * D]),
        ("once", [T0]),
        ("30d", [T0, T0 + 40 * D]),
    ],
)
def test_re_entry(re_entry: str, sent: list[datetime]) -> None:
    shop = Shop(welcome(re_entry))
    shop.feed(signup(9, T0 - D), *(identify(n, T0 + d * D) for n, d in enumerate((0, 10, 40))))
    assert [at for *_, at in shop.sent()] == sent
    skipped = 3 - len(sent)
    assert shop.events.count(FlowEvent("hello", "skipped", "re_entry")) == skipped


@pytest.mark.parametrize("re_entry", ["once", "30d"])
def test_a_trigger_the_filters_turn_away_does_not_use_up_re_entry(re_entry: str) -> None:
    shop = Shop(
        book(
            f"  hello:\n    trigger: {{event: identify}}\n    re_entry: {re_entry}\n"
            "    filters: [{traits.plan: pro}]\n    steps: [{send: {campaign: hello}}]\n"
        )
    )
    shop.feed(
        signup(9, T0 - D),
        identify(1, T0, traits={"plan": "free"}),  # turned away: never ran
        identify(2, T0 + D, traits={"plan": "pro"}),  # runs: its first run
        identify(3, T0 + 2 * D, traits={"plan": "pro"}),  # within re_entry of that run
    )
    assert [at for *_, at in shop.sent()] == [T0 + D]
    assert shop.events.count(FlowEvent("hello", "exited", "filters")) == 1
    assert shop.events.count(FlowEvent("hello", "skipped", "re_entry")) == 1


@pytest.mark.parametrize("ignore", [False, True])
def test_on_retrigger_restart_or_ignore(ignore: bool) -> None:
    rule = "    on_retrigger: ignore\n" if ignore else ""
    shop = Shop(
        book(
            "  c:\n    trigger: {event: cart}\n"
            + rule
            + "    steps: [{wait: 1h}, {send: {campaign: c}}]\n"
        )
    )
    shop.feed(signup(0, T0 - D), cart(1, T0), cart(2, T0 + 30 * timedelta(minutes=1)))
    shop.until(T0 + 3 * H)
    if ignore:
        assert shop.sent() == [("c", "1", "c", T0 + H)]
        assert shop.triggers[0].trigger_id == trigger_id("c", "e1", "1")
        assert FlowEvent("c", "skipped", "running") in shop.events
    else:
        assert shop.sent() == [("c", "1", "c", T0 + 90 * timedelta(minutes=1))]
        assert shop.triggers[0].trigger_id == trigger_id("c", "e2", "1")
        assert FlowEvent("c", "exited", "restarted") in shop.events


def test_a_late_retrigger_does_not_restart() -> None:
    shop = Shop(
        book("  c:\n    trigger: {event: cart}\n    steps: [{wait: 1h}, {send: {campaign: c}}]\n")
    )
    shop.feed(signup(0, T0 - D), cart(1, T0), cart(2, T0 - 10 * timedelta(minutes=1)))
    shop.until(T0 + 3 * H)
    assert shop.sent() == [("c", "1", "c", T0 + H)]


def test_holdout_is_drawn_per_flow_at_entry_and_held_out_sends_are_marked() -> None:
    playbook = book(
        "  h:\n    trigger: {event: identify}\n    holdout: 0.3\n"
        "    steps: [{wait: 1h}, {send: {campaign: h}}]\n"
    )
    held = []
    for n in range(2000):
        shop = Shop(playbook).feed(signup(n, T0 - D, customer=f"c{n}"))
        shop.feed(identify(f"i{n}", T0, customer=f"c{n}")).until(T0 + 2 * H, f"c{n}")
        [trigger] = shop.triggers
        assert trigger.holdout == in_holdout("h", f"c{n}", 0.3)
        held.append(trigger.holdout)
    assert 0.27 < sum(held) / len(held) < 0.33


# --- playbook changes under a run ----------------------------------------------------------

V1 = (
    "  series:\n    trigger: {event: cart}\n"
    "    steps: [{wait: 1h}, {send: {campaign: one}}, {wait: 1d}, {send: {campaign: two}}]\n"
)


@pytest.mark.parametrize(
    ("v2", "sent", "ended"),
    [
        # the step the run sleeps in is gone: it ends, sending nothing
        (
            "  series:\n    trigger: {event: cart}\n    steps: [{send: {campaign: one}}]\n",
            [],
            "flow_changed",
        ),
        # gone
        ("", [], "flow_changed"),
        # no longer a wait at that path
        (
            "  series:\n    trigger: {event: cart}\n"
            "    steps: [{send: {campaign: x}}, {wait: 1h}]\n",
            [],
            "flow_changed",
        ),
        # still a wait (of another length): goes on at the stored time, from the new steps
        (
            "  series:\n    trigger: {event: cart}\n"
            "    steps: [{wait: 5h}, {send: {campaign: uno}},"
            " {wait: 1d}, {send: {campaign: dos}}]\n",
            [("1", "uno", T0 + H), ("3", "dos", T0 + 25 * H)],
            "completed",
        ),
    ],
)
def test_a_run_whose_flow_changed(
    v2: str, sent: list[tuple[str, str, datetime]], ended: str
) -> None:
    shop = Shop(book(V1)).feed(signup(0, T0 - D), cart(1, T0))
    assert shop.state().runs["series"].step == "0"
    later = Shop(book(v2))
    later.states = dict(shop.states)
    later.until(T0 + 2 * D)
    assert [(s, c, at) for _, s, c, at in later.sent()] == sent
    assert later.events[-1] == FlowEvent("series", "exited", ended)
    assert later.state().runs == {}


def test_a_built_in_turned_off_under_a_run() -> None:
    shop = Shop(parse_playbook(QUIET)).feed(signup(0, T0 - D), cart(1, T0))
    assert list(shop.state().runs) == ["cart_abandonment"]
    later = Shop(parse_playbook(QUIET + "campaigns:\n  cart_abandonment: {enabled: false}\n"))
    later.states = dict(shop.states)
    later.until(T0 + 2 * H)
    assert later.triggers == []
    assert later.events == [FlowEvent("cart_abandonment", "exited", "flow_changed")]


def test_erase_ends_every_run() -> None:
    shop = Shop(book(V1)).feed(
        cart(1, T0), ev("privacy", 2, T0 + H - timedelta(minutes=1), action="erase")
    )
    assert shop.events[-1] == FlowEvent("series", "exited", "erased")
    assert shop.states == {}


# --- records an older version wrote ----------------------------------------------------------


def test_a_record_from_before_flows_sends_its_pending_mails_at_the_same_times() -> None:
    older = (
        b'{"customer_id":"c1","stage":"first_time_buyer","first_seen_at":"2025-03-01T10:00:00Z",'
        b'"last_event_at":"2025-03-03T10:00:00Z","signed_up_at":"2025-03-01T10:00:00Z",'
        b'"profile":{"email":"c1@mail.example","marketing_consent":true},"orders":1,'
        b'"revenue":"10.00","first_order_at":"2025-03-02T10:00:00Z",'
        b'"last_order_at":"2025-03-02T10:00:00Z","order_net":{"o1":"10.00"},'
        b'"cart_id":"k1","cart":{"p1":{"quantity":2,"unit_price":"5.00","currency":"EUR"}},'
        b'"cart_touched_at":"2025-03-03T10:00:00Z","browsed":["p9","p8"],'
        b'"browse_started_at":"2025-03-03T09:00:00Z",'
        b'"pending_reviews":{"o1":{"at":"2025-03-02T10:00:00Z","products":["p-tea"]}},'
        b'"nudged":false,"timers":{"cart_abandonment":"2025-03-03T11:00:00Z"}}'
    )
    playbook = parse_playbook(QUIET)
    shop = Shop(playbook)
    shop.states["c1"] = decode_record(older)
    shop.until(datetime(2025, 4, 5, tzinfo=UTC))
    assert [(t.campaign, t.created_at, t.step) for t in shop.triggers] == [
        ("browse_abandonment", datetime(2025, 3, 3, 11, 0, tzinfo=UTC), "1"),
        ("cart_abandonment", datetime(2025, 3, 3, 11, 0, tzinfo=UTC), "1"),
        ("review_request", datetime(2025, 3, 9, 10, 0, tzinfo=UTC), "1"),
        ("second_purchase_nudge", datetime(2025, 4, 1, 10, 0, tzinfo=UTC), "1"),
    ]
    by = {t.campaign: t.payload for t in shop.triggers}
    assert by["cart_abandonment"]["value"] == "10.00"
    assert by["browse_abandonment"]["viewed_products"] == ["p8", "p9"]
    assert by["browse_abandonment"]["products"] == ["p8", "p9"]
    assert (by["review_request"]["order_id"], by["review_request"]["products"]) == ("o1", ["p-tea"])
    state = shop.state()
    assert state.legacy is None
    assert state.entered == {"welcome": datetime(2025, 3, 1, 10, 0, tzinfo=UTC)}


def test_schedule_lists_a_run_and_a_date() -> None:
    shop = Shop(book(BIRTHDAY + V1))
    shop.feed(signup(1, T0, traits={"birthday": "1990-06-01"}), cart(2, T0))
    assert shop.state().timers == {
        "date:birthday": datetime(2025, 6, 1, 9, 0, tzinfo=UTC),
        "flow:series": T0 + H,
    }


# --- includes and the logs conditions read ---------------------------------------------------


def test_include_cart_and_viewed_products() -> None:
    shop = Shop(
        book(
            "  look:\n    trigger: {event: custom}\n"
            "    steps: [{wait: 1h}, {send: {campaign: look, include: [cart, viewed_products]}}]\n"
        )
    )
    shop.feed(
        signup(0, T0 - D),
        ev("browse", 1, T0 - H, product_id="old"),  # before the run: not in it
        ev("custom", 2, T0, name="x"),
        ev("browse", 3, T0 + 10 * timedelta(minutes=1), product_id="b"),
        ev("browse", 4, T0 + 20 * timedelta(minutes=1), product_id="c"),
        ev("browse", 5, T0 + 30 * timedelta(minutes=1), product_id="b"),
        cart(6, T0 + 40 * timedelta(minutes=1), product="p1"),
    ).until(T0 + 2 * H)
    [trigger] = shop.triggers
    assert {
        k: trigger.payload[k] for k in ("cart_id", "items", "value", "currency", "products")
    } == {
        "cart_id": "k1",
        "items": [{"product_id": "p1", "quantity": 1, "unit_price": "5.00"}],
        "value": "5.00",
        "currency": "EUR",
        "products": ["b", "c"],  # most recent view first
    }
    assert trigger.payload["viewed_products"] == ["b", "c"]
    assert trigger.payload["cart"] == {
        k: trigger.payload[k] for k in ("cart_id", "items", "value", "currency")
    }


def test_includes_with_fields_of_one_name_keep_each_whole() -> None:
    """An order and a cart both have items and a currency, an order and the views both
    products: the first include listed has the top-level field, and the cart and the
    order are each whole under their own name."""
    shop = Shop(
        book(
            "  oc:\n    trigger: {event: purchase}\n    steps: [{wait: 1h}, {send: {campaign: oc,"
            " transactional: true, include: [order, cart, viewed_products]}}]\n"
            "  co:\n    trigger: {event: purchase}\n    steps: [{wait: 1h}, {send: {campaign: co,"
            " transactional: true, include: [viewed_products, cart, order]}}]\n"
        )
    )
    shop.feed(
        signup(0, T0 - D),
        purchase(1, T0, "o1", total="25.00"),
        ev("browse", 2, T0 + 30 * timedelta(minutes=1), product_id="p7"),
        cart(3, T0 + 40 * timedelta(minutes=1), product="p8"),
    ).until(T0 + 2 * H)
    by = {t.campaign: t.payload for t in shop.triggers}
    order = {
        "order_id": "o1",
        "total": "25.00",
        "currency": "EUR",
        "items": [{"product_id": "p-tea", "quantity": 1, "unit_price": "25.00", "category": "tea"}],
        "products": ["p-tea"],
    }
    basket = {
        "cart_id": "k1",
        "items": [{"product_id": "p8", "quantity": 1, "unit_price": "5.00"}],
        "value": "5.00",
        "currency": "EUR",
    }
    for campaign in ("oc", "co"):
        assert (by[campaign]["order"], by[campaign]["cart"]) == (order, basket)
        assert by[campaign]["viewed_products"] == ["p7"]
    assert (by["oc"]["items"], by["oc"]["products"]) == (order["items"], ["p-tea"])
    assert (by["co"]["items"], by["co"]["products"]) == (basket["items"], ["p7"])


def test_an_order_line_carries_its_category_only_when_the_purchase_gave_one() -> None:
    """The order include shows each line as the purchase gave it; the record keeps the
    run's order through its wait, and reads back the same."""
    shop = Shop(
        book(
            "  thanks:\n    trigger: {event: purchase}\n"
            "    steps: [{wait: 1h}, {send: {campaign: thanks, transactional: true,"
            " include: [order]}}]\n"
        )
    )
    lines = [
        {"product_id": "p1", "category": "coffee", "quantity": 2, "unit_price": "4.50"},
        {"product_id": "p2", "quantity": 1, "unit_price": "3.00"},
    ]
    shop.feed(
        signup(0, T0 - D),
        ev("purchase", 1, T0, order_id="o1", total="12.00", currency="EUR", items=lines),
    )
    assert b'"category":"coffee"' in encode_model(shop.state())
    stored = encode_model(shop.state())
    assert decode_record(stored) == shop.state()
    assert encode_model(decode_record(stored)) == stored
    shop.until(T0 + 2 * H)
    [trigger] = [t for t in shop.triggers if t.campaign == "thanks"]
    assert trigger.payload["items"] == [
        {"product_id": "p1", "quantity": 2, "unit_price": "4.50", "category": "coffee"},
        {"product_id": "p2", "quantity": 1, "unit_price": "3.00"},
    ]


def test_an_empty_cart_is_worth_money() -> None:
    shop = Shop(
        book(
            "  left:\n    trigger: {event: cart, where: {action: remove}}\n"
            "    steps: [{send: {campaign: left, include: [cart]}}]\n"
        )
    )
    shop.feed(signup(0, T0 - D), cart(1, T0), cart(2, T0 + H, "remove"))
    [trigger] = [t for t in shop.triggers if t.campaign == "left"]
    assert (trigger.payload["items"], trigger.payload["value"]) == ([], "0.00")


def test_bought_and_viewed_conditions_read_logs_kept_only_when_needed() -> None:
    flows = (
        "  fan:\n    trigger: {segment_enter: fan}\n    steps: [{send: {campaign: fan}}]\n"
        "  looker:\n    trigger: {event: custom}\n"
        "    filters: [{viewed: {category: shoes, min_count: 2, within: 1d}}]\n"
        "    steps: [{send: {campaign: looker}}]\n"
    )
    segments = "  fan: {bought: {category: coffee, min_count: 2, within: 30d}}\n"
    shop = Shop(book(flows, segments))
    shop.feed(
        signup(0, T0),
        purchase(1, T0, "o1", category="coffee"),
        ev("browse", 2, T0 + H, category="shoes"),
        ev("custom", 3, T0 + 2 * H, name="x"),  # one view: filtered out
        ev("browse", 4, T0 + 3 * H, category="shoes"),
        ev("custom", 5, T0 + 4 * H, name="x"),
        purchase(6, T0 + 40 * D, "o2", category="coffee"),  # the first one is out of 30 days
        purchase(7, T0 + 41 * D, "o3", category="coffee"),
    )
    assert shop.sent() == [
        ("looker", "0", "looker", T0 + 4 * H),
        ("fan", "0", "fan", T0 + 41 * D),
    ]
    state = shop.state()
    assert [m.order_id for m in state.bought_log] == ["o2", "o3"]  # older than 30 days: gone
    shop.feed(ev("browse", 8, T0 + 42 * D, category="hats"))
    assert [m.category for m in shop.state().view_log] == ["hats"]  # older than 1 day: gone
    plain = Shop(book(REVIEWS)).feed(signup(0, T0), purchase(1, T0, "o1"))
    assert (plain.state().bought_log, plain.state().view_log) == ([], [])


# --- conditions compiled to closures ---------------------------------------------------------


class _Thing:
    """An event stand-in whose one field ``v`` holds any value."""

    def __init__(self, value: object) -> None:
        self.v = value


LEAF_CASES = [
    (op, literal)
    for op in ("eq", "ne", "gt", "gte", "lt", "lte", "exists")
    for literal in ("a", 5, 0.2, True, False)
    if op != "exists" or isinstance(literal, bool)  # exists takes true or false only
]


@pytest.mark.parametrize(("op", "literal"), LEAF_CASES)
def test_a_closure_decides_as_the_generic_evaluator(op: str, literal: object) -> None:
    values = [None, "a", "b", 5, 5.0, Decimal("5.00"), Decimal("NaN"), 0.2, 4, 6, True, False]
    for cond in (
        Leaf(path="v", op=op, value=literal),
        Leaf(path="v", op="in", value=("a", "b")),
        Leaf(path="v", op="not_in", value=("a",)),
    ):
        test = event_test(cond)
        for value in values:
            thing = _Thing(value)
            assert test(thing) == event_holds(cond, thing), (cond, value)


class _Line:
    def __init__(self, value: object) -> None:
        self.v = value


class _Bag:
    """An event stand-in with ``properties``, ``traits`` and ``items``."""

    def __init__(self, values: list[object]) -> None:
        self.properties = {"v": values[0]} if values else {}
        self.traits = None if not values else {"v": values[-1]}
        self.items = [_Line(v) for v in values]


@pytest.mark.parametrize(("op", "literal"), LEAF_CASES)
@pytest.mark.parametrize("path", ["items.v", "properties.v", "traits.v"])
def test_a_closure_on_a_list_or_a_map_decides_as_the_generic_evaluator(
    op: str, literal: object, path: str
) -> None:
    values = [None, "a", "b", 5, 5.0, Decimal("5.00"), Decimal("NaN"), 0.2, 4, 6, True, False]
    lists = [[], [None], [Decimal("NaN")], *([v] for v in values), values, ["b", None], [4, 6]]
    outcomes = set()
    for cond in (
        Leaf(path=path, op=op, value=literal),
        Leaf(path=path, op="in", value=("a", "b")),
        Leaf(path=path, op="not_in", value=("a",)),
    ):
        test = event_test(cond)
        for given in lists:
            bag = _Bag(given)
            expected = event_holds(cond, bag)
            assert test(bag) == expected, (cond, given)
            outcomes.add(expected)
    assert outcomes == {True, False}


def test_priority_decides_a_cap_collision_and_properties_wait_with_the_run() -> None:
    policies = "policies:\n  default_holdout: 0\n  quiet_hours: {enabled: false}\n"
    shop = Shop(
        book(
            "  low: {trigger: {event: custom}, steps: [{send: {campaign: low, priority: 10}}]}\n"
            "  high: {trigger: {event: custom}, steps: [{send: {campaign: high, priority: 90}}]}\n",
            policies=policies,
        )
    )
    shop.feed(signup(0, T0 - 2 * D), ev("custom", 1, T0, name="x"))
    assert [t.campaign for t in shop.triggers] == ["high"]  # low comes first, high wins
    assert [(s.campaign, s.reason) for o in shop.outcomes for s in o.suppressed] == [
        ("low", "frequency_cap")
    ]
    later = Shop(
        book(
            "  high:\n    trigger: {event: custom}\n"
            "    steps: [{wait: 1h}, {send: {campaign: high, include: [properties]}}]\n"
        )
    )
    later.feed(signup(0, T0 - 2 * D), ev("custom", 1, T0, name="x", properties={"size": 42}))
    assert later.state().runs["high"].properties == {"size": 42}
    later.states["c1"] = decode_record(encode_model(later.state()))
    later.until(T0 + 2 * H)
    [trigger] = later.triggers
    assert trigger.payload["properties"] == {"size": 42}

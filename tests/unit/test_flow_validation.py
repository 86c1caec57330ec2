"""The flows language's parser: the contract's example, composition, and one line per bad input."""

from __future__ import annotations

import contextlib
from datetime import time, timedelta

import pytest

from lifecycle.flows.model import (
    Activity,
    AllOf,
    Branch,
    DateTrigger,
    EventMatch,
    FlowDef,
    Leaf,
    Picker,
    SegmentEnter,
    SegmentRef,
    Send,
    StageEnter,
    Wait,
)
from lifecycle.flows.parse import FlowError, Language, parse_language, segments_used
from lifecycle.flows.report import language_digest
from lifecycle.flows.yaml12 import load
from lifecycle.playbook import Playbook, PlaybookError, default_playbook, parse_playbook
from lifecycle.units import NO_UNIT_MESSAGE
from schemas.records import Stage
from tests.scenarios.flows import DESIGN_PLAYBOOK as DESIGN_EXAMPLE

"""The contract's flows and segments example playbook, verbatim."""


def test_the_design_example_parses() -> None:
    book = parse_playbook(DESIGN_EXAMPLE, "design.yaml")
    assert list(book.segments) == ["vip", "coffee", "nordics"]
    assert book.segments["nordics"].cond == Leaf(
        path="traits.country", op="in", value=("NO", "SE", "DK")
    )
    assert book.segments["coffee"].cond == Activity(
        kind="bought", category="coffee", within=timedelta(days=180)
    )
    vip = book.segments["vip"].cond
    assert isinstance(vip, AllOf)
    assert vip.items[0] == Leaf(path="revenue", op="gte", value=500)
    flows = book.flows
    # The example's win_back is the built-in one word for word, so it stays the built-in;
    # the others follow the defaults
    assert flows["win_back"].builtin
    assert [name for name, flow in flows.items() if not flow.builtin] == [
        "replenish_coffee",
        "cart_series",
        "vip_welcome",
        "birthday",
    ]
    replenish = flows["replenish_coffee"]
    assert replenish.trigger == EventMatch(
        event="purchase", where=Leaf(path="items.category", op="eq", value="coffee")
    )
    assert replenish.exit_on == (replenish.trigger,)
    assert replenish.filters == (Leaf(path="p_alive", op="gte", value=0.2),)
    assert (replenish.re_entry, replenish.on_retrigger, replenish.holdout) == (
        "always",
        "restart",
        0.1,
    )
    assert replenish.steps[0] == Wait(wait=timedelta(days=25))
    send = replenish.steps[1]
    assert isinstance(send, Send)
    assert (send.send.campaign, send.send.channel, send.send.priority) == (
        "replenish_coffee",
        "email",
        50,
    )
    cart = flows["cart_series"]
    assert [type(s) for s in cart.steps] == [Wait, Send, Wait, Branch]
    branch = cart.steps[3]
    assert isinstance(branch, Branch)
    assert branch.if_ == SegmentRef(name="vip")
    assert isinstance(branch.then[0], Send)
    assert branch.then[0].send.data == {"discount_percent": 10}
    assert flows["vip_welcome"].trigger == SegmentEnter(segment_enter="vip")
    assert flows["win_back"].trigger == StageEnter(stage_enter=Stage.CHURNED)
    win_back = flows["win_back"].steps[0]
    assert isinstance(win_back, Send)
    assert win_back.send.data == {
        "discount_percent": Picker(by="clv_tier", values={"high": 20, "mid": 15, "low": 10})
    }
    assert flows["birthday"].trigger == DateTrigger(date="traits.birthday", at=time(9, 0))
    assert segments_used(cart, book.segments) == ["vip"]


def test_the_design_example_keeps_the_defaults() -> None:
    book = parse_playbook(DESIGN_EXAMPLE)
    default = default_playbook()
    assert (book.stages, book.policies, book.campaigns) == (
        default.stages,
        default.policies,
        default.campaigns,
    )


def test_an_empty_playbook_has_the_default_language() -> None:
    assert parse_playbook("").flows == Playbook().flows == default_playbook().flows
    assert parse_playbook("segments:\nflows:\n") == default_playbook()


def test_unquoted_times_and_country_codes() -> None:
    book = parse_playbook(
        "segments:\n  nordics: {field: country, in: [NO, SE, DK]}\n"
        "flows:\n  birthday:\n    trigger: {date: traits.birthday, at: 09:30}\n"
        "    steps: [{send: {campaign: birthday}}]\n"
    )
    assert book.segments["nordics"].cond == Leaf(path="country", op="in", value=("NO", "SE", "DK"))
    assert book.flows["birthday"].trigger == DateTrigger(date="traits.birthday", at=time(9, 30))


def test_a_date_trigger_defaults_to_nine() -> None:
    book = parse_playbook(
        "flows:\n  b: {trigger: {date: traits.birthday}, steps: [{send: {campaign: b}}]}\n"
    )
    assert book.flows["b"].trigger == DateTrigger(date="traits.birthday", at=time(9, 0))


def test_run_control_fields() -> None:
    book = parse_playbook(
        "flows:\n"
        "  review:\n"
        "    trigger: {event: purchase}\n"
        "    per: order_id\n"
        "    re_entry: 30d\n"
        "    on_retrigger: ignore\n"
        "    holdout: 0\n"
        "    exit_on: [{event: refund}, {event: custom, where: {name: order_cancelled}}]\n"
        "    steps:\n"
        "      - wait: 7d\n"
        "      - send:\n"
        "          campaign: review\n"
        "          channel: webhook\n"
        "          transactional: false\n"
        "          priority: 30\n"
        "          variants: {A: 1, B: 2}\n"
        "          include: [order, recommendations]\n"
        "          data: {stars: 5, tone: {by: stage, loyal: warm, default: plain}}\n"
    )
    flow = book.flows["review"]
    assert (flow.per, flow.re_entry, flow.on_retrigger, flow.holdout) == (
        "order_id",
        timedelta(days=30),
        "ignore",
        0.0,
    )
    assert [e.event for e in flow.exit_on] == ["refund", "custom"]
    send = flow.steps[1]
    assert isinstance(send, Send)
    spec = send.send
    assert (spec.channel, spec.transactional, spec.priority) == ("webhook", False, 30)
    assert spec.variants == {"A": 1.0, "B": 2.0}
    assert spec.include == ("order", "recommendations")
    assert spec.data["tone"] == Picker(
        by="stage", values={"loyal": "warm"}, default="plain", has_default=True
    )


def test_path_value_pairs_all_hold() -> None:
    """Several PATH: VALUE pairs in one mapping are the ``all`` of them, in their order,
    and PATH: {OP: VALUE} is the leaf of that operator: the same flow as the long form."""
    short = parse_playbook(
        "segments:\n"
        "  nordic_buyers: {orders: {gte: 1}, traits.country: {in: [NO, SE]}}\n"
        "  mid: {revenue: {gte: 100, lt: 500}}\n"
        "flows:\n"
        "  x:\n"
        "    trigger: {event: cart, where: {action: add, properties.source: email}}\n"
        "    filters: [{consent: true, country: NO}]\n"
        "    steps: [{send: {campaign: x, variants: [A, B]}}]\n"
    )
    long = parse_playbook(
        "segments:\n"
        "  nordic_buyers:\n"
        "    all: [{field: orders, gte: 1}, {field: traits.country, in: [NO, SE]}]\n"
        "  mid: {all: [{field: revenue, gte: 100}, {field: revenue, lt: 500}]}\n"
        "flows:\n"
        "  x:\n"
        "    trigger:\n"
        "      event: cart\n"
        "      where: {all: [{field: action, eq: add}, {field: properties.source, eq: email}]}\n"
        "    filters: [{all: [{consent: true}, {country: NO}]}]\n"
        "    steps: [{send: {campaign: x, variants: {A: 1, B: 1}}}]\n"
    )
    assert short.segments == long.segments
    assert short.flows == long.flows
    assert language_digest(short) == language_digest(long)
    assert short.segments["nordic_buyers"].cond == AllOf(
        items=(
            Leaf(path="orders", op="gte", value=1),
            Leaf(path="traits.country", op="in", value=("NO", "SE")),
        )
    )
    assert short.segments["mid"].cond == AllOf(
        items=(
            Leaf(path="revenue", op="gte", value=100),
            Leaf(path="revenue", op="lt", value=500),
        )
    )
    # one operator is the leaf itself, not an ``all`` of one
    one = parse_playbook("segments:\n  big: {revenue: {gte: 500}}\n")
    assert one.segments["big"].cond == Leaf(path="revenue", op="gte", value=500)


def test_a_wait_may_sum_units() -> None:
    book = parse_playbook(
        "flows:\n  x: {trigger: {event: cart}, steps: [{wait: 1h30m}, {send: {campaign: x}}]}\n"
    )
    assert book.flows["x"].steps[0] == Wait(wait=timedelta(minutes=90))


# --- composition with the defaults ------------------------------------------------------------

BUILTIN = parse_language(
    load("segments:\n  big: {field: revenue, gte: 1000}\n")["segments"],
    load(
        "flows:\n"
        "  welcome: {trigger: {event: signup}, re_entry: once,"
        " steps: [{send: {campaign: welcome}}]}\n"
        "  big_spender: {trigger: {segment_enter: big}, steps: [{send: {campaign: big}}]}\n"
    )["flows"],
)


def _shop(text: str) -> Language:
    data = load(text) or {}
    return parse_language(data.get("segments"), data.get("flows"), BUILTIN)


def test_built_ins_are_marked_and_kept_when_the_shop_says_nothing() -> None:
    segments, flows = _shop("")
    assert list(flows) == ["welcome", "big_spender"]
    assert all(f.builtin and f.enabled for f in flows.values())
    assert list(segments) == ["big"]


def test_a_shop_adds_flows_and_segments() -> None:
    segments, flows = _shop(
        "segments:\n  nordics: {field: country, in: [NO, SE]}\n"
        "flows:\n  hej: {trigger: {segment_enter: nordics}, steps: [{send: {campaign: hej}}]}\n"
    )
    assert list(flows) == ["welcome", "big_spender", "hej"]
    assert not flows["hej"].builtin
    assert list(segments) == ["big", "nordics"]


def test_an_integer_too_long_for_a_float_is_still_a_number() -> None:
    book = parse_playbook("segments:\n  rich: {field: revenue, gte: " + "1" * 400 + "}\n")
    assert "rich" in book.segments


def test_enabled_true_alone_keeps_a_built_in_as_it_is() -> None:
    book = parse_playbook("flows:\n  welcome: {enabled: true}\n")
    assert book.flows == parse_playbook("").flows


def test_enabled_false_turns_a_built_in_off_and_keeps_it() -> None:
    _, flows = _shop("flows:\n  welcome: {enabled: false}\n")
    assert not flows["welcome"].enabled
    assert flows["welcome"].model_copy(update={"enabled": True}) == BUILTIN[1]["welcome"]


def test_a_shop_flow_named_like_a_built_in_replaces_it_whole() -> None:
    _, flows = _shop(
        "flows:\n  welcome: {trigger: {event: identify},"
        " steps: [{wait: 1h}, {send: {campaign: hi}}]}\n"
    )
    assert flows["welcome"].trigger == EventMatch(event="identify")
    assert flows["welcome"].re_entry == "always"  # nothing kept from the built-in
    assert not flows["welcome"].builtin


def test_a_built_in_segment_turned_off_still_resolves() -> None:
    segments, flows = _shop("segments:\n  big: {enabled: false}\n")
    assert not segments["big"].enabled
    assert segments["big"].cond is None
    assert flows["big_spender"].enabled


def test_a_shop_segment_replaces_a_built_in_one() -> None:
    segments, _ = _shop("segments:\n  big: {field: revenue, gte: 5000}\n")
    assert segments["big"].cond == Leaf(path="revenue", op="gte", value=5000)


def test_a_flow_may_be_defined_off() -> None:
    book = parse_playbook(
        "flows:\n  x: {enabled: false, trigger: {event: signup}, steps: [{send: {campaign: x}}]}\n"
    )
    assert not book.flows["x"].enabled


def test_models_built_in_code_are_accepted_as_they_are() -> None:
    flow = FlowDef(trigger=EventMatch(event="signup"), steps=(Wait(wait=timedelta(hours=1)),))
    assert Playbook(flows={"x": flow}).flows == {"x": flow}


# --- one line per problem -------------------------------------------------------------------------

FLOW = "flows:\n  x:\n"
CART = FLOW + "    trigger: {event: cart}\n"
SEND = CART + "    steps:\n      - send: "


@pytest.mark.parametrize(
    ("text", "line"),
    [
        (FLOW + "    steps: [{wait: 1h}]\n", "flows.x.trigger: required"),
        (
            FLOW + "    trigger: {event: cart, stage_enter: lead}\n    steps: [{wait: 1h}]\n",
            "flows.x.trigger: needs exactly one of event, stage_enter, segment_enter, date",
        ),
        (
            FLOW + "    trigger: {}\n    steps: [{wait: 1h}]\n",
            "flows.x.trigger: needs exactly one of event, stage_enter, segment_enter, date",
        ),
        (
            FLOW + "    trigger: {event: purchse}\n    steps: [{wait: 1h}]\n",
            "flows.x.trigger.event: unknown event type 'purchse' (one of signup, identify,"
            " browse, cart, purchase, refund, engagement, privacy, custom)",
        ),
        (
            FLOW + "    trigger: {stage_enter: vip}\n    steps: [{wait: 1h}]\n",
            "flows.x.trigger.stage_enter: unknown stage 'vip'",
        ),
        (
            FLOW + "    trigger: {stage_enter: [lead]}\n    steps: [{wait: 1h}]\n",
            "flows.x.trigger.stage_enter: unknown stage ['lead']",
        ),
        (
            FLOW + "    trigger: {segment_enter: vipp}\n    steps: [{wait: 1h}]\n",
            "flows.x.trigger.segment_enter: unknown segment 'vipp'",
        ),
        (
            FLOW + "    trigger: {date: birthday}\n    steps: [{wait: 1h}]\n",
            "flows.x.trigger.date: must be a traits.X path",
        ),
        (
            FLOW + "    trigger: {date: traits.birthday, at: 25:00}\n    steps: [{wait: 1h}]\n",
            "flows.x.trigger.at: must be HH:MM",
        ),
        (
            FLOW + "    trigger: {date: traits.birthday, at: 9}\n    steps: [{wait: 1h}]\n",
            "flows.x.trigger.at: must be HH:MM",
        ),
        (
            FLOW
            + "    trigger: {stage_enter: lead, where: {action: add}}\n    steps: [{wait: 1h}]\n",
            "flows.x.trigger: unknown key 'where'",
        ),
        (
            FLOW + "    trigger: {event: purchase, where: {items.categori: coffee}}\n"
            "    steps: [{wait: 1h}]\n",
            "flows.x.trigger.where.items.categori: purchase events have no field 'items.categori'",
        ),
        (
            FLOW
            + "    trigger: {event: purchase, where: {segment: vip}}\n    steps: [{wait: 1h}]\n",
            "flows.x.trigger.where.segment: conditions in where test the event;"
            " use filters for the customer",
        ),
        (
            FLOW + "    trigger: {event: cart, where: {action: ad}}\n    steps: [{wait: 1h}]\n",
            "flows.x.trigger.where.action:"
            " action is one of add, remove, checkout_started, not 'ad'",
        ),
        (CART, "flows.x.steps: required"),
        (CART + "    steps: []\n", "flows.x.steps: must not be empty"),
        (CART + "    steps: {wait: 1h}\n", "flows.x.steps: must be a list, not {'wait': '1h'}"),
        (
            CART + "    steps: [{wait: 1h}, {wait: 2h}, {sned: {campaign: a}}]\n",
            "flows.x.steps[2]: needs exactly one of wait, send, branch",
        ),
        (
            CART + "    steps: [{wait: 1h, send: {campaign: a}}]\n",
            "flows.x.steps[0]: needs exactly one of wait, send, branch",
        ),
        (CART + "    steps: [{wait: 25x}]\n", "flows.x.steps[0].wait: not a duration: '25x'"),
        (CART + "    steps: [{wait: 0s}]\n", "flows.x.steps[0].wait: must be longer than 0"),
        (
            CART + "    steps: [{wait: 25}]\n",
            "flows.x.steps[0].wait: " + NO_UNIT_MESSAGE,
        ),
        (
            "segments:\n  s: {bought: {category: c, within: 180.5}}\n",
            "segments.s.bought.within: " + NO_UNIT_MESSAGE,
        ),
        (
            "stages:\n  at_risk: {after: 60}\n",
            "stages.at_risk.after: " + NO_UNIT_MESSAGE,
        ),
        (
            CART + "    steps: [{wait: 1000000000d}]\n",
            "flows.x.steps[0].wait: must be at most 999999999 days",
        ),
        (
            CART + "    steps: [{wait: 99999999999999999999d}]\n",
            "flows.x.steps[0].wait: must be at most 999999999 days",
        ),
        (
            "campaigns:\n  cart_abandonment: {delay: 99999999999999999999d}\n",
            "campaigns.cart_abandonment.delay: must be at most 999999999 days",
        ),
        (
            CART + "    steps: [{send: {campaign: a, priority: " + "9" * 5000 + "}}]\n",
            "not valid YAML at line 4, column 44: an integer of 5000 digits is too long",
        ),
        (
            CART + "    steps: [{wait: 1h}, {wait: 2h}, {send: {channel: sms}}]\n",
            "flows.x.steps[2].send.campaign: required",
        ),
        (
            SEND + "{campaign: Cart 1}\n",
            "flows.x.steps[0].send.campaign: not a campaign name: 'Cart 1'",
        ),
        (
            SEND + "{campaign: a, channel: fax}\n",
            "flows.x.steps[0].send.channel: must be one of email, sms, push, webhook",
        ),
        (
            SEND + "{campaign: a, include: [basket]}\n",
            "flows.x.steps[0].send.include[0]: unknown include 'basket'",
        ),
        (
            SEND + "{campaign: a, include: [cart, order]}\n",
            "flows.x.steps[0].send.include[1]: order needs a purchase trigger",
        ),
        (
            SEND + "{campaign: a, data: {discount_percent: {by: clv_teir, high: 20}}}\n",
            "flows.x.steps[0].send.data.discount_percent.by: unknown record path 'clv_teir'",
        ),
        (
            SEND + "{campaign: a, data: {d: {by: traits.size, 1: a, '1.0': b}}}\n",
            "flows.x.steps[0].send.data.d.'1.0': the same VALUE as another: 1",
        ),
        (
            SEND + "{campaign: a, data: {d: {by: traits.size, null: 1, default: 2}}}\n",
            "flows.x.steps[0].send.data.d.null: a VALUE must be a text, a number or true/false",
        ),
        (
            SEND + "{campaign: a, priority: -1}\n",
            "flows.x.steps[0].send.priority: must be a whole number of at least 0",
        ),
        (
            SEND + "{campaign: a, transactional: maybe}\n",
            "flows.x.steps[0].send.transactional: must be true or false",
        ),
        (
            SEND + "{campaign: a, variants: {A: 0}}\n",
            "flows.x.steps[0].send.variants.A: must be a number above 0",
        ),
        (
            SEND + "{campaign: a, variants: {}}\n",
            "flows.x.steps[0].send.variants: needs at least one variant",
        ),
        (SEND + "{campaign: a, subject: hi}\n", "flows.x.steps[0].send: unknown key 'subject'"),
        (
            CART
            + "    steps: [{wait: 1h}, {wait: 1h}, {wait: 1h}, {branch: {then: [{wait: 1h}]}}]\n",
            "flows.x.steps[3].branch.if: required",
        ),
        (
            CART + "    steps: [{branch: {if: {orders: 1}}}]\n",
            "flows.x.steps[0].branch.then: required",
        ),
        (
            CART + "    steps: [{branch: {if: {segment: nope}, then: [{wait: 1h}]}}]\n",
            "flows.x.steps[0].branch.if.segment: unknown segment 'nope'",
        ),
        (
            CART + "    filters: [{field: p_alve, gte: 0.2}]\n    steps: [{wait: 1h}]\n",
            "flows.x.filters[0].field: unknown record path 'p_alve'",
        ),
        (
            CART + "    filters: [{p_alve: 0.2}]\n    steps: [{wait: 1h}]\n",
            "flows.x.filters[0].p_alve: unknown record path 'p_alve'",
        ),
        (
            CART + "    filters: [{field: p_alive, gte2: 0.2}]\n    steps: [{wait: 1h}]\n",
            "flows.x.filters[0]: unknown operator 'gte2'",
        ),
        (
            FLOW + "    trigger: {event: purchase, where: {total: {gtee: 5}}}\n"
            "    steps: [{wait: 1h}]\n",
            "flows.x.trigger.where.total: unknown operator 'gtee'",
        ),
        (
            CART + "    filters: [{revenue: {gte: 5, ltee: 9}}]\n    steps: [{wait: 1h}]\n",
            "flows.x.filters[0].revenue: unknown operator 'ltee'",
        ),
        (
            CART + "    filters: [{clv_tier: platinum}]\n    steps: [{wait: 1h}]\n",
            "flows.x.filters[0].clv_tier: clv_tier is one of high, mid, low, not 'platinum'",
        ),
        (
            CART + "    filters: [{country: [SE, NO]}]\n    steps: [{wait: 1h}]\n",
            "flows.x.filters[0].country: country compares with a single value, not ['SE', 'NO']"
            " (any of several: {country: {in: [...]}})",
        ),
        (
            CART + "    filters: [{field: p_alive, gte: 0.2, lt: 1}]\n    steps: [{wait: 1h}]\n",
            "flows.x.filters[0]: needs exactly one operator",
        ),
        (
            FLOW + "    trigger: {event: purchase, where: {currency: {eq: ~}}}\n"
            "    steps: [{wait: 1h}]\n",
            "flows.x.trigger.where.currency.eq: currency compares with a single value, not null",
        ),
        (
            CART + "    filters: [{field: p_alive}]\n    steps: [{wait: 1h}]\n",
            "flows.x.filters[0]: needs exactly one operator",
        ),
        (
            CART + "    filters: [{field: country, in: NO}]\n    steps: [{wait: 1h}]\n",
            "flows.x.filters[0].in: in needs a list, not 'NO'",
        ),
        (
            CART + "    filters: [{field: stage, not_in: []}]\n    steps: [{wait: 1h}]\n",
            "flows.x.filters[0].not_in: must not be empty",
        ),
        (
            CART + "    filters: [{stage: {in: []}}]\n    steps: [{wait: 1h}]\n",
            "flows.x.filters[0].stage.in: must not be empty",
        ),
        (
            CART + "    filters: [{field: revenue, gte: lots}]\n    steps: [{wait: 1h}]\n",
            "flows.x.filters[0].gte: revenue compares with a number, not 'lots'",
        ),
        (
            CART + "    filters: [{field: country, in: [NO, 5]}]\n    steps: [{wait: 1h}]\n",
            "flows.x.filters[0].in[1]: country compares with a text, not 5",
        ),
        (
            CART + "    filters: [{field: clv_tier, gte: mid}]\n    steps: [{wait: 1h}]\n",
            "flows.x.filters[0].gte: clv_tier has no order: use eq, ne, in or not_in",
        ),
        (
            CART + "    filters: [{stage: {gt: lead}}]\n    steps: [{wait: 1h}]\n",
            "flows.x.filters[0].stage.gt: stage has no order: use eq, ne, in or not_in",
        ),
        (
            CART + "    filters: [{field: consent, lt: true}]\n    steps: [{wait: 1h}]\n",
            "flows.x.filters[0].lt: consent has no order: use eq, ne, in or not_in",
        ),
        (
            FLOW + "    trigger: {event: cart, where: {field: action, lte: add}}\n"
            "    steps: [{wait: 1h}]\n",
            "flows.x.trigger.where.lte: action has no order: use eq, ne, in or not_in",
        ),
        (
            CART + "    filters: [{field: consent, eq: 'yes'}]\n    steps: [{wait: 1h}]\n",
            "flows.x.filters[0].eq: consent compares with true or false, not 'yes'",
        ),
        (
            CART + "    filters: [{field: stage, eq: vip}]\n    steps: [{wait: 1h}]\n",
            "flows.x.filters[0].eq: stage is one of prospect, lead, first_time_buyer,"
            " repeat_customer, loyal, advocate, at_risk, churned, reactivated, not 'vip'",
        ),
        (
            CART + "    filters: [{field: traits.tier, eq: [a]}]\n    steps: [{wait: 1h}]\n",
            "flows.x.filters[0].eq: traits.tier compares with a single value, not ['a']"
            " (any of several: {traits.tier: {in: [...]}})",
        ),
        (
            CART + "    filters: [{field: country, exists: 1}]\n    steps: [{wait: 1h}]\n",
            "flows.x.filters[0].exists: exists needs true or false",
        ),
        (
            CART + "    filters: [{gte: 1}]\n    steps: [{wait: 1h}]\n",
            "flows.x.filters[0]: gte needs a field",
        ),
        (
            CART + "    filters: [{all: []}]\n    steps: [{wait: 1h}]\n",
            "flows.x.filters[0].all: must not be empty",
        ),
        (
            CART + "    filters: [{orders: 1, any: [{country: NO}]}]\n    steps: [{wait: 1h}]\n",
            "flows.x.filters[0]: needs exactly one of all, any, not, segment, bought, viewed,"
            " field or PATH: VALUE pairs, not orders, any",
        ),
        (
            CART + "    filters: [{orders: 1, gte: 2}]\n    steps: [{wait: 1h}]\n",
            "flows.x.filters[0]: needs exactly one of all, any, not, segment, bought, viewed,"
            " field or PATH: VALUE pairs, not orders, gte",
        ),
        (
            CART + "    filters: [{orders: 1, country: [NO]}]\n    steps: [{wait: 1h}]\n",
            "flows.x.filters[0].country: country compares with a single value, not ['NO']"
            " (any of several: {country: {in: [...]}})",
        ),
        (
            CART + "    filters: [{revenue: {gte: lots}}]\n    steps: [{wait: 1h}]\n",
            "flows.x.filters[0].revenue.gte: revenue compares with a number, not 'lots'",
        ),
        (
            CART + "    filters: [{revenue: {gte: 1, above: 2}}]\n    steps: [{wait: 1h}]\n",
            "flows.x.filters[0].revenue: unknown operator 'above'",
        ),
        (
            SEND + "{campaign: a, variants: []}\n",
            "flows.x.steps[0].send.variants: needs at least one variant",
        ),
        (
            SEND + "{campaign: a, variants: [A, A]}\n",
            "flows.x.steps[0].send.variants: names a variant twice",
        ),
        (
            SEND + "{campaign: a, variants: [A, 2]}\n",
            "flows.x.steps[0].send.variants: a variant's name must be a text, not 2",
        ),
        (
            CART + "    filters: [coffee]\n    steps: [{wait: 1h}]\n",
            "flows.x.filters[0]: must be a condition (a mapping), not 'coffee'",
        ),
        (
            CART + "    re_entry: sometimes\n    steps: [{wait: 1h}]\n",
            "flows.x.re_entry: must be always, once or a duration",
        ),
        (
            CART + "    on_retrigger: skip\n    steps: [{wait: 1h}]\n",
            "flows.x.on_retrigger: must be restart or ignore",
        ),
        (
            FLOW + "    trigger: {event: purchase}\n    per: order\n    steps: [{wait: 1h}]\n",
            "flows.x.per: purchase events have no field 'order'",
        ),
        (
            FLOW
            + "    trigger: {event: purchase}\n    per: items.product_id\n"
            + "    steps: [{wait: 1h}]\n",
            "flows.x.per: must name a single value, not a list path",
        ),
        (
            FLOW + "    trigger: {stage_enter: lead}\n    per: order_id\n    steps: [{wait: 1h}]\n",
            "flows.x.per: needs an event trigger",
        ),
        (
            CART + "    holdout: 1.5\n    steps: [{wait: 1h}]\n",
            "flows.x.holdout: must be between 0 and 1",
        ),
        (
            CART + "    holdout: 0.1\n    steps: [{send: {campaign: a, transactional: true}}]\n",
            "flows.x.holdout: a flow with a transactional send cannot have a holdout",
        ),
        (
            CART + "    exit_on: [{event: purchse}]\n    steps: [{wait: 1h}]\n",
            "flows.x.exit_on[0].event: unknown event type 'purchse' (one of signup, identify,"
            " browse, cart, purchase, refund, engagement, privacy, custom)",
        ),
        (
            CART + "    exit_on: [{where: {action: add}}]\n    steps: [{wait: 1h}]\n",
            "flows.x.exit_on[0].event: required",
        ),
        (
            CART
            + "    exit_on: [{event: refund, where: {field: total, gt: 1}}]\n"
            + "    steps: [{wait: 1h}]\n",
            "flows.x.exit_on[0].where.field: refund events have no field 'total'",
        ),
        (
            CART + "    trigers: {event: cart}\n    steps: [{wait: 1h}]\n",
            "flows.x: unknown key 'trigers'",
        ),
        (
            CART + "    enabled: nope\n    steps: [{wait: 1h}]\n",
            "flows.x.enabled: must be true or false",
        ),
        ("flows:\n  x: {enabled: false}\n", "flows.x: enabled: false names no built-in flow"),
        ("flows:\n  x: [a]\n", "flows.x: must be a mapping, not ['a']"),
        ("flows: [a]\n", "flows: must be a mapping, not ['a']"),
        (
            "flows:\n  Cart Series: {trigger: {event: cart}, steps: [{wait: 1h}]}\n",
            "flows.Cart Series: not a name (letters, digits and _)",
        ),
        ("segments:\n  a: {segment: a}\n", "segments.a: refers to itself (a -> a)"),
        (
            "segments:\n  a: {segment: b}\n  b: {not: {segment: a}}\n",
            "segments.a: refers to itself (a -> b -> a)",
        ),
        ("segments:\n  a: {segment: c}\n", "segments.a.segment: unknown segment 'c'"),
        (
            CART + "    filters: [{not: {segment: vipp}}]\n    steps: [{wait: 1h}]\n",
            "flows.x.filters[0].not.segment: unknown segment 'vipp'",
        ),
        (
            "segments:\n  vip: {all: [{bought: {product_id: p, category: c}}]}\n",
            "segments.vip.all[0].bought: needs product_id or category, not both",
        ),
        (
            "segments:\n  vip: {bought: {within: 30d}}\n",
            "segments.vip.bought: needs product_id or category",
        ),
        (
            "segments:\n  vip: {bought: {category: c, within: soon}}\n",
            "segments.vip.bought.within: not a duration: 'soon'",
        ),
        (
            "segments:\n  vip: {viewed: {category: c, min_count: 0}}\n",
            "segments.vip.viewed.min_count: must be a whole number of at least 1, not 0",
        ),
        (
            "segments:\n  vip: {viewed: {category: c, since: 1d}}\n",
            "segments.vip.viewed: unknown key 'since'",
        ),
        (
            "segments:\n  x: {enabled: false}\n",
            "segments.x: enabled: false names no built-in segment",
        ),
        ("segments:\n  x: {}\n", "segments.x: an empty condition"),
        ("flows:\n  welcome: {enabled: maybe}\n", "flows.welcome.enabled: must be true or false"),
        (
            "segments:\n  x: {field: revenue, gte: 1e999}\n",
            "segments.x.gte: revenue compares with a number, not inf",
        ),
        ("flows:\n  welcome: {enabled: 0}\n", "flows.welcome.enabled: must be true or false"),
        ("segments:\n  x: {enabled: 1}\n", "segments.x.enabled: must be true or false"),
        ("flows:\n  x: {enabled: true}\n", "flows.x: enabled: true names no built-in flow"),
    ],
)
def test_each_bad_input_is_refused_in_one_line(text: str, line: str) -> None:
    with pytest.raises(PlaybookError) as info:
        parse_playbook(text, "shop.yaml")
    assert str(info.value) == f"invalid playbook shop.yaml: {line}"


def test_flow_errors_carry_their_place() -> None:
    with pytest.raises(FlowError) as info:
        parse_language(None, load("x: {trigger: {event: cart}, steps: [{wait: 25x}]}"))
    assert info.value.loc == ("flows", "x", "steps", 0, "wait")
    assert info.value.problem == "not a duration: '25x'"


def test_empty_sections_keep_the_default_language(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("lifecycle.playbook.builtin_language", lambda: BUILTIN)
    book = parse_playbook("segments: {}\nflows: {}\n")
    assert (book.segments, book.flows) == BUILTIN
    assert Playbook().flows == BUILTIN[1]
    off = parse_playbook("flows:\n  welcome: {enabled: false}\n")
    assert not off.flows["welcome"].enabled
    assert off.flows["big_spender"] == BUILTIN[1]["big_spender"]


def test_check_names_built_in_replaced_added_and_off(monkeypatch: pytest.MonkeyPatch) -> None:
    from lifecycle.flows.report import describe_playbook, duration

    monkeypatch.setattr("lifecycle.playbook.builtin_language", lambda: BUILTIN)
    book = parse_playbook(
        "flows:\n"
        "  welcome: {enabled: false}\n"
        "  big_spender: {trigger: {segment_enter: big}, holdout: 0.25, per: null,"
        " steps: [{wait: 90m}, {send: {campaign: big, channel: sms, transactional: false}}]}\n"
        "  extra:\n"
        "    trigger: {event: purchase}\n"
        "    per: order_id\n"
        "    re_entry: 2w\n"
        "    filters: [{any: [{bought: {category: tea, within: 30d, min_count: 2}},"
        " {not: {field: country, exists: true}}]}]\n"
        "    steps: [{send: {campaign: order_thank_you, include: [order]}}]\n"
    )
    assert describe_playbook(book, BUILTIN[1]) == [
        "welcome (built-in, off)",
        "big_spender (replaces built-in)  trigger: segment_enter big",
        "  re_entry: always  on_retrigger: restart  holdout: 25%",
        "  steps: 0 wait 90m | 1 send big (sms, priority 50)",
        "  segments: big",
        "extra (added)  trigger: event purchase",
        "  filters: (bought category tea within 30d at least 2x or not country exists)",
        "  re_entry: 14d  on_retrigger: restart  per: order_id  holdout: default",
        "  steps: 0 send order_thank_you (email, priority 100, transactional, include order)",
        "  segments: -",
    ]
    assert [duration(timedelta(seconds=s)) for s in (1, 90, 3600, 86400 * 7)] == [
        "1s",
        "90s",
        "1h",
        "7d",
    ]


ODD_VALUES = [
    None,
    True,
    0,
    -1,
    1.5,
    float("inf"),
    float("nan"),
    1e400,
    "",
    "x",
    [],
    [1],
    {},
    {1: 2},
]


@pytest.mark.parametrize("value", ODD_VALUES, ids=repr)
def test_any_value_anywhere_is_a_flow_error_never_a_crash(value: object) -> None:
    """Each field of a full flow and segment, replaced by an odd value: a FlowError or a parse."""
    flow: dict[str, object] = {
        "trigger": {"event": "purchase", "where": {"items.category": "coffee"}},
        "steps": [
            {"wait": "1h"},
            {"send": {"campaign": "a", "include": ["order"], "data": {"d": {"by": "stage"}}}},
            {"branch": {"if": {"segment": "s"}, "then": [{"wait": "1h"}]}},
        ],
        "exit_on": [{"event": "refund", "where": {"field": "amount", "gt": 1}}],
        "filters": [{"field": "p_alive", "gte": 0.2}],
        "re_entry": "once",
        "on_retrigger": "ignore",
        "per": "order_id",
        "holdout": 0.1,
    }
    segment = {"all": [{"bought": {"category": "c", "within": "1d"}}, {"stage": "lead"}]}
    others: list[dict[str, object]] = [
        {"stage_enter": value},
        {"segment_enter": value},
        {"date": value},
        {"date": "traits.b", "at": value},
        {"event": "cart", "where": value},
    ]
    cases: list[tuple[object, object]] = [
        ({"s": segment}, {"f": {**flow, "trigger": t}}) for t in others
    ]
    for key in flow:
        cases.append(({"s": segment}, {"f": {**flow, key: value}}))
    cases += [
        ({"s": value}, {}),
        ({"s": {"bought": value}}, {}),
        ({}, {"f": value}),
        (value, value),
    ]
    for segments, flows in cases:
        with contextlib.suppress(FlowError):
            parse_language(segments, flows)


def test_the_digest_changes_with_the_flows_only() -> None:
    from lifecycle.flows.report import language_digest

    design = parse_playbook(DESIGN_EXAMPLE)
    assert language_digest(design) == language_digest(parse_playbook(DESIGN_EXAMPLE))
    assert language_digest(design) != language_digest(default_playbook())
    changed = DESIGN_EXAMPLE.replace("wait: 25d", "wait: 26d")
    assert language_digest(parse_playbook(changed)) != language_digest(design)
    other_policy = parse_playbook(DESIGN_EXAMPLE + "policies: {default_holdout: 0.2}\n")
    assert language_digest(other_policy) == language_digest(design)

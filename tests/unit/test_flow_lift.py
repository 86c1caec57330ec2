"""Lift per flow: a flow's sends measured together against the flow's own holdout, in the
report's JSON and text (``lifecycle report``, ``lifecycle backtest --report``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from analytics.lift import campaign_lift, flow_lift
from analytics.period import Period
from analytics.report import Records, build_report
from lifecycle.playbook import default_playbook, parse_playbook
from schemas.records import Attributed, Attribution, Group, Trigger

OPENED = datetime(2026, 3, 1, 10, tzinfo=UTC)
CLOSES = OPENED + timedelta(days=7)


def window(
    n: int, customer: str, campaign: str, flow: str, group: Group, order: str | None
) -> Attribution:
    conversions = (
        ()
        if order is None
        else (Attributed(event_id=f"p{n}", order_id=order, at=OPENED, revenue=Decimal("20.00")),)
    )
    return Attribution(
        attribution_id=f"a{n}",
        trigger_id=f"t{n}",
        customer_id=customer,
        campaign=campaign,
        flow=flow,
        variant="A",
        group=group,
        reason=None,
        goal="purchase",
        opened_at=OPENED,
        closes_at=CLOSES,
        converted=order is not None,
        conversions=conversions,
        revenue=Decimal("20.00") if order else Decimal(0),
        at=CLOSES,
    )


def cart_series() -> list[Attribution]:
    """cart_series sends cart_1 then cart_2 to 40 treated customers (the first 12 buy
    once, inside both windows) and holds out 40 (4 buy); win_back sends once to 2."""
    records: list[Attribution] = []
    n = 0
    for i in range(40):
        order = f"o{i}" if i < 12 else None
        for campaign in ("cart_1", "cart_2"):
            n += 1
            records.append(window(n, f"t{i}", campaign, "cart_series", "treated", order))
    for i in range(40):
        n += 1
        records.append(
            window(n, f"h{i}", "cart_1", "cart_series", "holdout", f"q{i}" if i < 4 else None)
        )
    for i in range(2):
        n += 1
        records.append(window(n, f"w{i}", "win_back", "win_back", "treated", None))
    return records


def test_a_flow_is_measured_by_customer_over_all_its_sends() -> None:
    [cart, win_back] = flow_lift(cart_series(), Period())
    assert (cart.flow, win_back.flow) == ("cart_series", "win_back")
    # One customer in both windows of the flow counts once, their one order once.
    assert (cart.treated.customers, cart.treated.converted) == (40, 12)
    assert cart.treated.revenue == Decimal("240.00")
    assert (cart.holdout.customers, cart.holdout.converted) == (40, 4)
    assert cart.lift.conversion is not None
    assert round(cart.lift.conversion.estimate, 6) == 0.2
    assert cart.as_dict()["flow"] == "cart_series"
    assert win_back.lift.too_small == "fewer than 30 customers in a group"
    # Per campaign, cart_2 has no holdout of its own: only the flow can say.
    by_campaign = {c.campaign: c for c in campaign_lift(cart_series(), Period())}
    assert by_campaign["cart_2"].holdout.customers == 0
    assert by_campaign["cart_2"].lift.too_small is not None


def sent(trigger_id: str, campaign: str, flow: str, step: str = "0") -> Trigger:
    return Trigger(
        trigger_id=trigger_id,
        customer_id="t1",
        campaign=campaign,
        flow=flow,
        step=step,
        channel="email",
        stage=None,
        created_at=OPENED,
        send_after=OPENED,
        variant="A",
        holdout=False,
        payload={},
    )


def test_the_report_prints_the_flow_lift_and_its_open_windows() -> None:
    records = Records(attributions=cart_series())
    records.triggers.append(sent("open-1", "win_back", "win_back"))
    report = build_report(records, Period(), default_playbook())
    flows = report.as_dict()["flows"]
    assert [(f["flow"], f["open_windows"]) for f in flows] == [("cart_series", 0), ("win_back", 1)]
    assert flows[0]["treated"]["customers"] == 40
    text = report.text().splitlines()
    start = text.index(
        "flow lift against its holdout (customers per flow; windows closed in the period; "
        "95% intervals)"
    )
    assert text[start + 1 : start + 6] == [
        "flow                  group       customers converted     rate  rev/cust",
        "cart_series           treated            40        12    30.0%      6.00",
        "                      holdout            40         4    10.0%      2.00",
        "                      suppressed          0         0        -         -",
        text[start + 5],
    ]
    assert text[start + 5].startswith("                      lift: conversion +20.0 pp [")
    assert text[start + 10] == "                      1 decision still open at the period's end"


def test_no_flow_lift_says_so() -> None:
    report = build_report(Records(), Period(), default_playbook())
    assert report.as_dict()["flows"] == []
    text = report.text().splitlines()
    start = text.index(
        "flow lift against its holdout (customers per flow; windows closed in the period; "
        "95% intervals)"
    )
    assert text[start + 2] == "(no attribution window closed in the period)"


def test_open_windows_are_the_marketing_sends_a_flow_or_campaign_rule_says() -> None:
    """A shop's campaign is marketing unless its send says transactional; a built-in
    campaign's rule still decides for the built-in flows."""
    playbook = parse_playbook(
        "flows:\n"
        "  coffee:\n"
        "    trigger: {event: purchase}\n"
        "    steps: [{send: {campaign: receipt_extra, transactional: true}}, {wait: 25d},\n"
        "            {send: {campaign: replenish_coffee}}]\n"
    )
    records = Records(
        triggers=[
            sent("t1", "receipt_extra", "coffee", "0"),
            sent("t2", "replenish_coffee", "coffee", "2"),
            sent("t3", "order_thank_you", "order_thank_you"),  # transactional by its rule
            sent("t4", "welcome", "welcome"),
        ]
    )
    report = build_report(records, Period(), playbook)
    assert report.open_windows == {"replenish_coffee": 1, "welcome": 1}
    assert report.flow_open_windows == {"coffee": 1, "welcome": 1}

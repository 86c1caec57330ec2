"""The index of a playbook's flows: what an event, a stage or a segment can touch."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta

from lifecycle.flows.compile import LogNeed, build_index, step_table
from lifecycle.flows.model import Branch, FlowDef, Send, Wait
from lifecycle.playbook import parse_playbook
from schemas.records import Stage
from tests.unit.test_flow_validation import DESIGN_EXAMPLE


def own(flows: Mapping[str, FlowDef]) -> dict[str, FlowDef]:
    """A playbook's own flows, without the default playbook's built-ins."""
    return {name: flow for name, flow in flows.items() if not flow.builtin}


def test_the_design_example_indexed() -> None:
    book = parse_playbook(DESIGN_EXAMPLE)
    index = build_index(book.segments, own(book.flows))
    assert index.triggers_by_event == {"purchase": ("replenish_coffee",), "cart": ("cart_series",)}
    assert index.exits_by_event == {"purchase": ("replenish_coffee", "cart_series")}
    assert index.by_stage == {}  # the example's win_back is the built-in one, word for word
    assert build_index(book.segments, book.flows).by_stage[Stage.CHURNED] == ("win_back",)
    assert index.by_segment == {"vip": ("vip_welcome",)}
    assert index.tracked_segments == ("vip",)
    assert index.date_flows == ("birthday",)
    assert list(index.steps["cart_series"]) == ["0", "1", "2", "3", "3.then.0", "3.else.0"]
    assert index.bought_log == LogNeed()  # the coffee segment is used by no flow
    assert index.view_log == LogNeed()


def test_logs_are_kept_for_the_longest_window_a_used_condition_reads() -> None:
    book = parse_playbook(
        "segments:\n"
        "  coffee: {bought: {category: coffee, within: 180d}}\n"
        "  fan: {any: [{segment: coffee}, {bought: {product_id: mug, within: 30d}}]}\n"
        "  looker: {viewed: {category: tea}}\n"
        "flows:\n"
        "  a: {trigger: {segment_enter: fan}, steps: [{send: {campaign: a}}]}\n"
        "  b:\n"
        "    trigger: {event: signup}\n"
        "    steps: [{branch: {if: {segment: looker}, then: [{send: {campaign: b}}]}}]\n"
        "  off: {enabled: false, trigger: {event: cart},"
        " filters: [{bought: {category: x}}], steps: [{wait: 1h}]}\n"
    )
    index = build_index(book.segments, own(book.flows))
    assert index.bought_log == LogNeed(True, timedelta(days=180))
    assert index.view_log == LogNeed(True, None)  # no within: everything kept
    assert "off" not in index.flows
    assert index.triggers_by_event == {"signup": ("b",)}


def test_step_paths_through_nested_branches() -> None:
    book = parse_playbook(
        "flows:\n  x:\n    trigger: {event: cart}\n    steps:\n"
        "      - wait: 1h\n"
        "      - branch:\n"
        "          if: {orders: 0}\n"
        "          then: [{branch: {if: {country: SE}, then: [{wait: 1h}, {send: {campaign: a}}],"
        " else: [{send: {campaign: b}}]}}]\n"
        "          else: [{send: {campaign: c}}]\n"
    )
    table = step_table(book.flows["x"].steps)
    assert list(table) == [
        "0",
        "1",
        "1.then.0",
        "1.then.0.then.0",
        "1.then.0.then.1",
        "1.then.0.else.0",
        "1.else.0",
    ]
    assert isinstance(table["1.then.0"], Branch)
    assert isinstance(table["1.then.0.then.0"], Wait)
    assert isinstance(table["1.else.0"], Send)

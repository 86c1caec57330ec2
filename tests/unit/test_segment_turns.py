"""A segment that turns as time passes starts its ``segment_enter`` flows at that moment.

The contract's ``segment_enter`` starts "the moment the condition turns true". Time
alone turns some conditions (``days_since_last_order``, RFM's recency, a ``bought``
or ``viewed`` window, the BG/NBD predictions), so each such segment keeps the next
instant it turns as the record's ``segments`` timer (``lifecycle.flows.turns``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from lifecycle.flows.turns import SEGMENTS_TIMER
from lifecycle.scoring import ScoresAt
from lifecycle.state import decode_record
from schemas.codec import encode_model
from tests.unit.test_flows import T0, D, Shop, book, ev, purchase, signup

US = timedelta(microseconds=1)


def _shop(segment: str, name: str = "seg") -> Shop:
    flow = (
        f"  {name}:\n    trigger: {{segment_enter: {name}}}\n"
        f"    steps: [{{send: {{campaign: {name}}}}}]\n"
    )
    return Shop(book(flow, segments=f"  {name}: {segment}\n"))


def test_days_since_last_order_turns_true_at_its_exact_moment() -> None:
    shop = _shop("{field: days_since_last_order, gte: 90}")
    shop.feed(signup(1, T0), purchase(2, T0, "o1"), purchase(3, T0 + 50 * D, "o2"))
    assert shop.state().timers[SEGMENTS_TIMER] == T0 + 140 * D  # from the last order
    shop.until(T0 + 400 * D)
    assert shop.sent() == [("seg", "0", "seg", T0 + 140 * D)]
    assert shop.state().segments == {"seg": True}
    assert shop.state().segments_due is None  # true from now on: no further turn


def test_gt_turns_just_past_the_bound() -> None:
    shop = _shop("{field: days_since_last_order, gt: 10}")
    shop.feed(signup(1, T0), purchase(2, T0, "o1")).until(T0 + 20 * D)
    assert shop.sent() == [("seg", "0", "seg", T0 + 10 * D + US)]


def test_a_window_that_ends_turns_the_segment_false_so_a_later_order_enters_again() -> None:
    """Without the turn at the window's end the record would still say true at the
    second order (no other change in between), and the flow would not start again."""
    shop = _shop("{bought: {category: coffee, within: 30d}}")
    shop.feed(signup(1, T0), purchase(2, T0, "o1", category="coffee"))
    assert shop.state().segments_due == T0 + 30 * D + US
    shop.until(T0 + 31 * D)
    assert shop.state().segments == {"seg": False}
    shop.feed(purchase(3, T0 + 40 * D, "o2", category="coffee"))
    assert shop.sent() == [("seg", "0", "seg", T0), ("seg", "0", "seg", T0 + 40 * D)]


def test_replenishment_as_a_segment_not_bought_within() -> None:
    shop = _shop(
        "{all: [{bought: {category: coffee}}, {not: {bought: {category: coffee, within: 25d}}}]}"
    )
    shop.feed(signup(1, T0), purchase(2, T0, "o1", category="coffee"))
    shop.feed(purchase(3, T0 + 20 * D, "o2", category="coffee")).until(T0 + 100 * D)
    assert shop.sent() == [("seg", "0", "seg", T0 + 45 * D + US)]


def test_rfm_recency_falls_a_score_past_each_breakpoint() -> None:
    shop = _shop("{field: rfm.r, lte: 3}")  # breakpoints 30 and 60 days: 5, 4, then 3
    shop.feed(signup(1, T0), purchase(2, T0, "o1")).until(T0 + 100 * D)
    assert shop.sent() == [("seg", "0", "seg", T0 + 60 * D + US)]


def test_rfm_segment_turns_with_recency() -> None:
    shop = _shop("{field: rfm_segment, in: [about_to_sleep, need_attention]}")
    shop.feed(signup(1, T0), purchase(2, T0, "o1")).until(T0 + 200 * D)
    # one order: r=5 new_customers, r=4 promising, r=3 about_to_sleep past 60 days
    assert shop.sent() == [("seg", "0", "seg", T0 + 60 * D + US)]


def _p_alive_turn(segment: str) -> tuple[datetime, Callable[[datetime], float]]:
    """The one send of a segment on ``p_alive`` over three orders ten days apart, and
    the customer's ``p_alive`` at any time after them."""
    shop = _shop(segment)
    shop.feed(
        signup(1, T0),
        purchase(2, T0, "o1"),
        purchase(3, T0 + 10 * D, "o2"),
        purchase(4, T0 + 20 * D, "o3"),
    ).until(T0 + 2000 * D)
    [(_, _, _, at)] = shop.sent()
    state, scores = shop.state(), shop.playbook.scores

    def p_alive(when: datetime) -> float:
        prediction = ScoresAt(state, when, scores).prediction()
        assert prediction is not None
        return prediction.p_alive

    return at, p_alive


def test_p_alive_crossing_found_to_the_second() -> None:
    at, p_alive = _p_alive_turn("{field: p_alive, lt: 0.5}")
    assert p_alive(at) < 0.5 <= p_alive(at - timedelta(seconds=1))


def test_a_segment_time_does_not_turn_has_no_timer() -> None:
    shop = _shop("{field: revenue, gte: 100}")
    shop.feed(signup(1, T0), purchase(2, T0, "o1"))
    assert SEGMENTS_TIMER not in shop.state().timers
    assert shop.state().segments_due is None
    assert b"segments_due" not in encode_model(shop.state())


def test_the_turn_is_kept_in_the_record_and_read_back() -> None:
    shop = _shop("{field: days_since_last_order, gte: 90}")
    shop.feed(signup(1, T0), purchase(2, T0, "o1"))
    state = shop.state()
    again = decode_record(encode_model(state))
    assert again == state
    assert again.segments_due == T0 + 90 * D


def test_a_turn_the_playbook_no_longer_has_fires_once_and_goes() -> None:
    shop = _shop("{field: days_since_last_order, gte: 90}")
    shop.feed(signup(1, T0), purchase(2, T0, "o1"))
    shop.playbook = book("")  # the segment is gone: its timer does nothing and is not set again
    shop.until(T0 + 200 * D)
    assert shop.sent() == []
    assert shop.state().segments_due is None


def test_a_visitor_who_views_turns_out_of_a_viewed_window() -> None:
    shop = _shop("{viewed: {category: tea, within: 7d}}")
    shop.feed(signup(1, T0), ev("browse", 2, T0 + D, product_id="p1", category="tea"))
    assert shop.state().segments == {"seg": True}
    shop.until(T0 + 9 * D)
    assert shop.state().segments == {"seg": False}
    shop.feed(ev("browse", 3, T0 + 10 * D, product_id="p1", category="tea"))
    assert [s[3] for s in shop.sent()] == [T0 + D, T0 + 10 * D]


def test_a_min_count_turns_false_when_its_last_needed_order_leaves_the_window() -> None:
    shop = _shop("{bought: {category: tea, within: 30d, min_count: 2}}")
    shop.feed(signup(1, T0), purchase(2, T0, "o1"), purchase(3, T0 + 10 * D, "o2"))
    assert shop.state().segments == {"seg": True}
    assert shop.state().segments_due == T0 + 30 * D + US  # o1, the second newest, leaves
    shop.until(T0 + 31 * D).feed(purchase(4, T0 + 35 * D, "o3"))
    assert [s[3] for s in shop.sent()] == [T0 + 10 * D, T0 + 35 * D]


def test_an_rfm_segment_entered_and_left_with_recency_alone() -> None:
    shop = _shop("{field: rfm_segment, eq: promising}")  # one order: r=4 between 30 and 60 days
    shop.feed(signup(1, T0), purchase(2, T0, "o1"))
    assert shop.state().segments_due == T0 + 30 * D + US
    shop.until(T0 + 31 * D)
    assert shop.sent() == [("seg", "0", "seg", T0 + 30 * D + US)]
    assert shop.state().segments_due == T0 + 60 * D + US  # about_to_sleep from then on
    shop.until(T0 + 61 * D)
    assert shop.state().segments == {"seg": False}


def test_a_static_condition_beside_a_time_one_waits_for_both() -> None:
    shop = _shop("{all: [{field: revenue, gte: 100}, {field: days_since_last_order, gte: 30}]}")
    shop.feed(signup(1, T0), purchase(2, T0, "o1", "60.00"))
    assert shop.state().segments_due is None  # 60 < 100: time alone never turns it
    shop.feed(ev("refund", 3, T0 + 10 * D, order_id="o1", amount="10.00"))
    shop.feed(purchase(4, T0 + 12 * D, "o2", "60.00"))  # 110 from now on
    shop.until(T0 + 50 * D)
    assert shop.sent() == [("seg", "0", "seg", T0 + 42 * D)]


def test_in_a_list_of_days_turns_at_each_of_them() -> None:
    shop = _shop("{field: days_since_last_order, in: [20, 45]}")
    shop.feed(signup(1, T0), purchase(2, T0, "o1")).until(T0 + 60 * D)
    assert shop.sent() == [("seg", "0", "seg", T0 + 20 * D), ("seg", "0", "seg", T0 + 45 * D)]


def test_ne_a_bound_is_not_left_for_its_one_instant() -> None:
    """Not 30 days is false only at the instant of day 30: no turn, so no second send."""
    shop = _shop("{field: days_since_last_order, ne: 30}")
    shop.feed(signup(1, T0), purchase(2, T0 + D, "o1")).until(T0 + 60 * D)
    assert shop.sent() == [("seg", "0", "seg", T0)]  # the lead, who has no last order


def test_a_prediction_equal_to_a_value_turns_when_it_reaches_it() -> None:
    at, p_alive = _p_alive_turn("{field: p_alive, in: [0.45]}")
    assert p_alive(at) == 0.45 < p_alive(at - timedelta(seconds=1))

"""The README's flow recipes ("Write your own flow") as journeys, each on its own block.

The three YAML blocks are read from README.md as they stand, so a recipe that
stops working fails here. Each is laid over the default playbook, as a shop's
file is; the built-in flows and every policy apply (tests/scenarios/flows.py
says how). ``lifecycle/playbook_demo.yaml`` holds the same recipes plus a
wishlist reminder, which its own journey runs.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from lifecycle.flows.counts import FlowEvent
from tests.scenarios.flows import coffee, custom, ran, sent
from tests.scenarios.model import Advance, Body, Journey, Move
from tests.scenarios.steps import (
    GONE,
    LOYAL,
    RISK,
    F,
    L,
    R,
    at,
    cart,
    churn_prevention,
    day,
    loyalty_reward,
    nudge,
    purchase,
    review,
    signup,
    thanks,
    welcome,
    win_back,
)
from tests.scenarios.stories import lead

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DEMO_PLAYBOOK = ROOT / "lifecycle" / "playbook_demo.yaml"
SECTION = "## Write your own flow"


def readme_recipes() -> list[str]:
    """The YAML blocks of the README's "Write your own flow" section, in order."""
    text = README.read_text(encoding="utf-8")
    body = text.split(f"\n{SECTION}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^```yaml\n(.*?)^```$", body, re.MULTILINE | re.DOTALL)


HIGHLIGHTS = {
    "replenish_last_call": ("discount_percent",),
    "cart_reminder": ("items", "value"),
    "cart_last_call": ("items", "value"),
    "cart_vip_offer": ("items", "discount_percent"),
    "birthday": ("coupon",),
    "wishlist_reminder": ("properties",),
}
"""The payload fields judged for the recipes' own campaigns."""


def recipe(journey: Journey, playbook: str, flow_events: Sequence[FlowEvent]) -> Journey:
    """``journey`` (built with the default playbook's builders) on ``playbook``."""
    return replace(
        journey,
        playbook=playbook,
        highlights=HIGHLIGHTS,
        flow_events=tuple(flow_events),
    )


def _replenishment(playbook: str) -> Journey:
    c, k = "cust-recipe-coffee-4", "recipe-coffee"
    return recipe(
        lead(
            "recipe_replenishment",
            "README recipe: a coffee order, the reminder on day 26 and the last call (5%) on "
            "day 36, with the nudge between",
            c,
            k,
            (coffee(f"{k}-e2", day(1), c, f"{k}-o1"), Advance(day(37))),
            (Move(L, F, "first_purchase", f"{k}-e2", day(1)),),
            (
                thanks(day(1), f"{k}-o1"),
                review(day(8), f"{k}-o1", "p-beans"),
                sent("replenish_coffee", "replenish_coffee", "1", day(26)),
                nudge(day(31)),
                sent(
                    "replenish_last_call",
                    "replenish_coffee",
                    "3",
                    day(36),
                    {"discount_percent": 5},
                ),
            ),
        ),
        playbook,
        ran("replenish_coffee"),
    )


def _cart_lines(product: str, price: str) -> dict[str, object]:
    return {"items": [{"product_id": product, "quantity": 1, "unit_price": price}]}


def _cart_series(playbook: str) -> Journey:
    """A lead abandons a kettle: the reminder after 1 h, the last call 2 days on. Four
    orders of 130 later (loyal, 520: a VIP), a grinder: the reminder, and the VIP offer."""
    c, k = "cust-recipe-cart-15", "recipe-cart"
    kettle = _cart_lines("p-kettle", "40.00")
    grinder = _cart_lines("p-grinder", "60.00")
    orders: list[Body | Advance] = [
        purchase(f"{k}-e{n + 2}", day(on), c, f"{k}-o{n}", "130.00")
        for n, on in enumerate((5, 15, 25, 35), 1)
    ]
    return recipe(
        lead(
            "recipe_cart_series_with_a_vip_branch",
            "README recipe: a regular customer's cart gets the reminder and the last call; "
            "as a VIP, the reminder and the VIP offer (10%); no built-in cart mail",
            c,
            k,
            (
                cart(f"{k}-e2", day(2, 11), c, "add", "k1", "p-kettle", 1, "40.00"),
                *orders,
                cart(f"{k}-e7", day(43, 11), c, "add", "k2", "p-grinder", 1, "60.00"),
                Advance(day(46)),
            ),
            (
                Move(L, F, "first_purchase", f"{k}-e3", day(5)),
                Move(F, R, "repeat_purchase", f"{k}-e4", day(15)),
                Move(R, LOYAL, "loyal_orders", f"{k}-e6", day(35)),
            ),
            (
                sent("cart_reminder", "cart_series", "1", day(2, 12), {**kettle, "value": "40.00"}),
                sent(
                    "cart_last_call",
                    "cart_series",
                    "3.else.0",
                    day(4, 12),
                    {**kettle, "value": "40.00"},
                ),
                thanks(day(5), f"{k}-o1"),
                review(day(12), f"{k}-o1"),
                thanks(day(15), f"{k}-o2"),
                review(day(22), f"{k}-o2"),
                thanks(day(25), f"{k}-o3"),
                review(day(32), f"{k}-o3"),
                loyalty_reward(day(35)),
                thanks(day(35), f"{k}-o4"),
                review(day(42), f"{k}-o4"),
                sent(
                    "cart_reminder", "cart_series", "1", day(43, 12), {**grinder, "value": "60.00"}
                ),
                sent(
                    "cart_vip_offer",
                    "cart_series",
                    "3.then.0",
                    day(45, 12),
                    {**grinder, "discount_percent": 10},
                ),
            ),
        ),
        playbook,
        (*ran("cart_series"), *ran("cart_series")),
    )


def _cart_emptied(playbook: str) -> Journey:
    c, k = "cust-recipe-emptied-2", "recipe-emptied"
    return recipe(
        lead(
            "recipe_cart_series_ends_on_an_emptied_cart",
            "README recipe: the only item is removed within the hour: the filter ends the "
            "series before its first mail",
            c,
            k,
            (
                cart(f"{k}-e2", day(2, 11), c, "add", "k1", "p-kettle", 1, "40.00"),
                cart(f"{k}-e3", day(2, 11, 30), c, "remove", "k1", "p-kettle", 1, "40.00"),
                Advance(day(5)),
            ),
        ),
        playbook,
        ran("cart_series", "filters"),
    )


def _birthday(playbook: str) -> Journey:
    """A Tokyo customer's birthday at 10:00 JST (01:00 UTC), in two years: GIFT10 as a
    new customer (the ``default``), GIFT25 after an order of 1100 (high tier) that was
    followed by nothing (nudge, at_risk, churned, each with its built-in mail)."""
    c, k = "cust-recipe-birthday-4", "recipe-birthday"
    return recipe(
        Journey(
            "recipe_birthday",
            "README recipe: yearly at 10:00 in Asia/Tokyo, the coupon by clv_tier: GIFT10, "
            "then GIFT25 a year later",
            c,
            (
                signup(
                    f"{k}-e1",
                    at("2025-01-06T19:00:00+09:00"),
                    c,
                    timezone="Asia/Tokyo",
                    traits={"birthday": "1985-02-10"},
                ),
                purchase(f"{k}-e2", day(56), c, f"{k}-o1", "1100.00"),
                Advance(at("2026-02-11T00:00:00+00:00")),
            ),
            (
                Move(None, L, "signup", f"{k}-e1", day(0)),
                Move(L, F, "first_purchase", f"{k}-e2", day(56)),
                Move(F, RISK, "no_purchase_at_risk", "timer:at_risk", day(116)),
                Move(RISK, GONE, "no_purchase_churned", "timer:churned", day(176)),
            ),
            (
                welcome(day(0)),
                sent(
                    "birthday",
                    "birthday",
                    "0",
                    at("2025-02-10T01:00:00+00:00"),
                    {"coupon": "GIFT10"},
                ),
                thanks(day(56), f"{k}-o1"),
                review(day(63), f"{k}-o1"),
                nudge(day(86)),
                churn_prevention(day(116)),
                win_back(day(176), 20),
                sent(
                    "birthday",
                    "birthday",
                    "0",
                    at("2026-02-10T01:00:00+00:00"),
                    {"coupon": "GIFT25"},
                ),
            ),
        ),
        playbook,
        (*ran("birthday"), *ran("birthday")),
    )


def _wishlist_reminder(playbook: str) -> Journey:
    """The demo playbook's wishlist flow: a second add during the run is ignored, one
    three days after the reminder is too soon for ``re_entry: 7d``, one eight days
    after the first starts a run again."""
    c, k = "cust-demo-wishlist-25", "demo-wishlist"
    grinder = {"product_id": "p-grinder", "category": "grinders", "price": 89.0}
    mug = {"product_id": "p-mug", "category": "mugs", "price": 12.5}
    return recipe(
        lead(
            "demo_wishlist_reminder",
            "demo playbook: wishlist_reminder 2 days after an add, with its properties; "
            "one run at a time, at most one a week",
            c,
            k,
            (
                custom(f"{k}-e2", day(2, 15), c, "wishlist_add", **grinder),
                custom(f"{k}-e3", day(3, 9), c, "wishlist_add", **mug),
                custom(f"{k}-e4", day(7, 15), c, "wishlist_add", **mug),
                custom(f"{k}-e5", day(10, 16), c, "wishlist_add", **mug),
                Advance(day(13)),
            ),
            sends=(
                sent(
                    "wishlist_reminder",
                    "wishlist_reminder",
                    "1",
                    day(4, 15),
                    {"properties": grinder},
                ),
                sent(
                    "wishlist_reminder", "wishlist_reminder", "1", day(12, 16), {"properties": mug}
                ),
            ),
        ),
        playbook,
        (
            FlowEvent("wishlist_reminder", "entered"),
            FlowEvent("wishlist_reminder", "skipped", "running"),
            FlowEvent("wishlist_reminder", "exited", "completed"),
            FlowEvent("wishlist_reminder", "skipped", "re_entry"),
            *ran("wishlist_reminder"),
        ),
    )


def _we_miss_you(playbook: str) -> Journey:
    """The demo playbook's lapsed note: 45 days after the last order, at that moment,
    with no event then (a second order on day 20 moves it from day 46 to day 65)."""
    c, k = "cust-demo-lapsed-2", "demo-lapsed"
    return recipe(
        lead(
            "demo_we_miss_you",
            "demo playbook: we_miss_you when the lapsed segment turns true with time alone, "
            "45 days after the last order",
            c,
            k,
            (
                purchase(f"{k}-e2", day(1), c, f"{k}-o1", "20.00"),
                purchase(f"{k}-e3", day(20), c, f"{k}-o2", "20.00"),
                Advance(day(70)),
            ),
            (
                Move(L, F, "first_purchase", f"{k}-e2", day(1)),
                Move(F, R, "repeat_purchase", f"{k}-e3", day(20)),
            ),
            (
                thanks(day(1), f"{k}-o1"),
                review(day(8), f"{k}-o1"),
                thanks(day(20), f"{k}-o2"),
                review(day(27), f"{k}-o2"),
                sent("we_miss_you", "we_miss_you", "0", day(65)),
            ),
        ),
        playbook,
        ran("we_miss_you"),
    )


def journeys() -> tuple[Journey, ...]:
    """The recipes' journeys, each on its README block, and the demo playbook's own."""
    replenishment, cart_series, birthday = readme_recipes()
    demo = DEMO_PLAYBOOK.read_text(encoding="utf-8")
    return (
        _replenishment(replenishment),
        _cart_series(cart_series),
        _cart_emptied(cart_series),
        _birthday(birthday),
        _wishlist_reminder(demo),
        _we_miss_you(demo),
    )

"""The benchmark's playbooks of flows, written out by a program so that they stay reviewable.

    .venv/bin/python -m bench.flows50            # writes bench/playbooks/*.yaml
    .venv/bin/python -m bench.flows50 --check    # exit 1 when a file differs from this program

``flows50.yaml`` is what a coffee shop's marketers might build: 50 flows and
20 segments on top of the default playbook, each kind of trigger, step and run
control of the flows and segments language (docs/flows.md), and conditions on
every kind of fact (record paths, traits, properties, bought and viewed). Its
triggers are the events ``bench.core``'s input sends when the simulator adds
its extras (traits on signup, properties on carts and purchases,
``wishlist_add`` custom events), so the benchmark measures flows that run.

``untriggered50.yaml`` has 50 flows that no event of that input starts: they
listen for refunds, engagement, privacy and identify events, which the
simulator never sends, and for custom events under names it never uses. It
measures what flows that never run cost the events that do come. Its
conditions read no ``bought`` or ``viewed``: such a condition makes every
record keep a log of orders or views whether or not its flow ever runs, which
is a cost of the condition, not of an idle flow.

``noflows.yaml`` turns every built-in flow off: the engine's cost without any
flow (facts, stages, scores, the runtime, parsing and encoding), the base
against which the default's and flows50's flows are a budget.

The files are checked in; a unit test checks that they are what this program
writes, and that ``lifecycle playbook check`` accepts them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

from lifecycle.flows import yaml12
from lifecycle.playbook import default_playbook

__all__ = ["PLAYBOOKS", "flows50", "noflows", "render", "untriggered50"]

Doc = dict[str, Any]

CATEGORIES = ("coffee", "tea", "mugs", "grinders", "accessories")
"""The simulator's product categories (``analytics.simulation``)."""


def _send(campaign: str, **fields: Any) -> Doc:
    return {"send": {"campaign": campaign, **fields}}


def _wait(duration: str) -> Doc:
    return {"wait": duration}


def _branch(cond: Doc, then: list[Doc], otherwise: list[Doc] | None = None) -> Doc:
    branch: Doc = {"if": cond, "then": then}
    if otherwise is not None:
        branch["else"] = otherwise
    return {"branch": branch}


def _field(path: str, op: str, value: Any) -> Doc:
    return {"field": path, op: value}


CONSENT = {"consent": True}
TIER_DISCOUNT = {"by": "clv_tier", "high": 20, "mid": 15, "low": 10}
TRAIT_GIFT = {"by": "traits.tier", "gold": "tote_bag", "silver": "sample_pack", "default": "none"}


def _segments() -> Doc:
    """Twenty segments: record paths, traits, orders and views, and segments of segments."""
    return {
        "vip": {
            "all": [_field("revenue", "gte", 500), _field("stage", "in", ["loyal", "advocate"])]
        },
        "high_value": {"clv_tier": "high"},
        "mid_or_high": _field("clv_tier", "in", ["mid", "high"]),
        "repeat_buyers": _field("orders", "gte", 2),
        "champions": _field("rfm_segment", "in", ["champions", "loyal_customers"]),
        "recent_buyers": _field("rfm.r", "gte", 4),
        "big_basket": _field("aov", "gte", 60),
        "likely_active": _field("p_alive", "gte", 0.5),
        "fading": {"all": [_field("orders", "gte", 1), _field("p_alive", "lt", 0.3)]},
        "reachable": {"all": [CONSENT, _field("country", "exists", True)]},
        "gold_tier": {"traits.tier": "gold"},
        "silver_plus": _field("traits.tier", "in", ["silver", "gold"]),
        "newsletter": {"traits.newsletter": True},
        "eu": _field("country", "in", ["DE", "FR"]),
        "coffee_buyers": {"bought": {"category": "coffee", "within": "180d"}},
        "tea_lovers": {"bought": {"category": "tea", "within": "365d", "min_count": 2}},
        "grinder_owners": {"bought": {"category": "grinders"}},
        "coffee_browsers": {"viewed": {"category": "coffee", "within": "14d"}},
        "lapsing": {
            "all": [_field("days_since_last_order", "gte", 45), {"not": {"segment": "fading"}}]
        },
        "coffee_vip": {"all": [{"segment": "vip"}, {"segment": "coffee_buyers"}]},
    }


_AFTER_PURCHASE = {
    # category: (days until the follow-up, whether the shop sees it as a consumable)
    "coffee": ("25d", True),
    "tea": ("30d", True),
    "accessories": ("60d", True),
    "mugs": ("14d", False),
    "grinders": ("21d", False),
}
_CROSS_SELL = {
    "coffee": "grinders",
    "tea": "mugs",
    "mugs": "tea",
    "grinders": "coffee",
    "accessories": "coffee",
}


def _category_flows(cat: str) -> Doc:
    """Four flows per category: after a purchase, a cross-sell, a browse reminder, a wishlist."""
    days, consumable = _AFTER_PURCHASE[cat]
    bought_here = {"event": "purchase", "where": {"items.category": cat}}
    after: Doc = {"trigger": bought_here}
    if consumable:  # a reorder reminder: the next order of the same category answers it
        after |= {
            "exit_on": [bought_here],
            "filters": [_field("p_alive", "gte", 0.2), CONSENT],
            "holdout": 0.1,
            "steps": [
                _wait(days),
                _send(f"replenish_{cat}", priority=50, include=["recommendations"]),
            ],
        }
    else:  # a care mail per order of a durable good
        after |= {
            "per": "order_id",
            "exit_on": [{"event": "refund"}],
            "steps": [_wait(days), _send(f"care_{cat}", include=["order"], data={"category": cat})],
        }
    other = _CROSS_SELL[cat]
    cross = {
        "trigger": bought_here,
        "re_entry": "30d",
        "filters": [CONSENT, {"not": {"bought": {"category": other, "within": "365d"}}}],
        "exit_on": [{"event": "purchase", "where": {"items.category": other}}],
        "steps": [
            _wait("3d"),
            _branch(
                {"segment": "vip"},
                [_send(f"cross_{cat}_{other}_vip", data={"discount_percent": TIER_DISCOUNT})],
                [_send(f"cross_{cat}_{other}", include=["recommendations"])],
            ),
        ],
    }
    browse = {
        "trigger": {"event": "browse", "where": {"category": cat}},
        "on_retrigger": "ignore",
        "re_entry": "7d",
        "exit_on": [{"event": "cart", "where": {"action": "add"}}, bought_here],
        "filters": [_field("stage", "ne", "prospect"), {"segment": "reachable"}],
        "steps": [
            _wait("4h"),
            _send(f"browse_{cat}", include=["viewed_products", "recommendations"]),
        ],
    }
    wishlist = {
        "trigger": {
            "event": "custom",
            "where": {"all": [{"name": "wishlist_add"}, {"properties.category": cat}]},
        },
        "per": "properties.product_id",
        "re_entry": "14d",
        "exit_on": [bought_here],
        "filters": [CONSENT],
        "steps": [
            _wait("2d"),
            _branch(
                {"viewed": {"category": cat, "within": "7d", "min_count": 2}},
                [_send(f"wishlist_{cat}_hot", priority=60, include=["properties"])],
                [_wait("3d"), _send(f"wishlist_{cat}", include=["properties"])],
            ),
        ],
    }
    return {
        f"after_{cat}": after,
        f"cross_sell_{cat}": cross,
        f"browse_{cat}": browse,
        f"wishlist_{cat}": wishlist,
    }


def _cart_flows() -> Doc:
    added = {"event": "cart", "where": {"action": "add"}}
    purchase = {"event": "purchase"}
    return {
        "cart_series": {
            "trigger": added,
            "exit_on": [purchase],
            "steps": [
                _wait("1h"),
                _send("cart_1", include=["cart"]),
                _wait("23h"),
                _branch(
                    {"segment": "vip"},
                    [_send("cart_2_vip", data={"discount_percent": 10})],
                    [_send("cart_2", include=["cart"])],
                ),
            ],
        },
        "cart_app_push": {
            "trigger": {
                "event": "cart",
                "where": {
                    "all": [
                        {"action": "add"},
                        _field("properties.device", "in", ["ios", "android"]),
                    ]
                },
            },
            "exit_on": [purchase],
            "filters": [CONSENT],
            "steps": [_wait("30m"), _send("cart_push", channel="push", include=["cart"])],
        },
        "checkout_rescue": {
            "trigger": {"event": "cart", "where": {"action": "checkout_started"}},
            "exit_on": [purchase],
            "filters": [{"segment": "silver_plus"}],
            "steps": [_wait("2h"), _send("checkout_rescue", channel="sms", priority=65)],
        },
        "cart_coupon_reminder": {
            "trigger": {
                "event": "cart",
                "where": {"all": [{"action": "add"}, {"properties.coupon": True}]},
            },
            "exit_on": [purchase],
            "re_entry": "3d",
            "steps": [
                _wait("6h"),
                _send("coupon_reminder", include=["cart"], data={"coupon": True}),
            ],
        },
        "cart_big_ticket": {
            "trigger": {
                "event": "cart",
                "where": {"all": [{"action": "add"}, _field("unit_price", "gte", 100)]},
            },
            "exit_on": [purchase],
            "steps": [
                _wait("3h"),
                _branch(
                    {"segment": "high_value"},
                    [_send("big_ticket_call", channel="webhook", priority=80)],
                    [_send("big_ticket_mail", include=["cart"])],
                ),
            ],
        },
        "cart_removed": {
            "trigger": {"event": "cart", "where": {"action": "remove"}},
            "on_retrigger": "ignore",
            "exit_on": [added, purchase],
            "steps": [_wait("1d"), _send("cart_removed_survey", data={"survey": True})],
        },
    }


def _purchase_flows() -> Doc:
    return {
        "first_order_tips": {
            "trigger": {"event": "purchase"},
            "per": "order_id",
            "filters": [_field("orders", "eq", 1)],
            "steps": [_wait("2d"), _send("first_order_tips", include=["order"])],
        },
        "big_order_thanks": {
            "trigger": {"event": "purchase", "where": _field("total", "gte", 150)},
            "per": "order_id",
            "steps": [
                _send("big_order_thanks", channel="webhook", transactional=True, include=["order"])
            ],
        },
        "coupon_order_survey": {
            "trigger": {"event": "purchase", "where": {"properties.coupon": True}},
            "re_entry": "60d",
            "filters": [CONSENT, {"segment": "newsletter"}],
            "steps": [_wait("5d"), _send("coupon_survey", data={"survey": True})],
        },
        "app_order_rating": {
            "trigger": {
                "event": "purchase",
                "where": _field("properties.device", "in", ["ios", "android"]),
            },
            "re_entry": "90d",
            "filters": [{"segment": "recent_buyers"}],
            "steps": [_wait("1d"), _send("app_rating", channel="push")],
        },
        "bulk_order": {
            "trigger": {"event": "purchase", "where": _field("items.quantity", "gte", 3)},
            "per": "order_id",
            "filters": [
                {
                    "any": [
                        {"segment": "big_basket"},
                        {"segment": "grinder_owners"},
                        _field("predicted_clv", "gte", 200),
                    ]
                }
            ],
            "steps": [_wait("10d"), _send("bulk_restock", include=["order", "recommendations"])],
        },
        "grinder_review": {
            "trigger": {"event": "purchase", "where": {"items.category": "grinders"}},
            "per": "order_id",
            "exit_on": [{"event": "refund"}],
            "steps": [_wait("14d"), _send("grinder_review", include=["order"])],
        },
        "bestseller_fan": {
            "trigger": {"event": "purchase", "where": {"items.product_id": "p0000"}},
            "re_entry": "once",
            "holdout": 0.2,
            "steps": [_wait("7d"), _send("bestseller_club")],
        },
        "vip_points": {
            "trigger": {"event": "purchase"},
            "re_entry": "30d",
            "filters": [{"segment": "vip"}, _field("rfm.m", "gte", 4)],
            "steps": [_send("vip_points", data={"gift": TRAIT_GIFT})],
        },
    }


def _stage_flows() -> Doc:
    return {
        "lead_nurture": {
            "trigger": {"stage_enter": "lead"},
            "exit_on": [{"event": "purchase"}],
            "filters": [{"segment": "reachable"}],
            "steps": [
                _wait("2d"),
                _send("lead_tips"),
                _wait("5d"),
                _branch(
                    {"any": [{"segment": "newsletter"}, {"segment": "coffee_browsers"}]},
                    [_send("lead_offer", data={"discount_percent": 10})],
                    [_send("lead_offer_sms", channel="sms")],
                ),
            ],
        },
        "first_buyer_guide": {
            "trigger": {"stage_enter": "first_time_buyer"},
            "exit_on": [{"event": "purchase"}],
            "steps": [
                _wait("5d"),
                _send(
                    "brew_guide",
                    data={"locale_guide": {"by": "locale", "de-DE": "de", "default": "en"}},
                ),
            ],
        },
        "repeat_thanks": {
            "trigger": {"stage_enter": "repeat_customer"},
            "filters": [{"segment": "likely_active"}, {"segment": "repeat_buyers"}],
            "steps": [_send("repeat_thanks")],
        },
        "loyal_club": {
            "trigger": {"stage_enter": "loyal"},
            "steps": [
                _branch(
                    {"segment": "high_value"},
                    [_send("loyal_club_high", data={"gift": TRAIT_GIFT})],
                    [_send("loyal_club")],
                )
            ],
        },
        "at_risk_save": {
            "trigger": {"stage_enter": "at_risk"},
            "exit_on": [{"event": "purchase"}],
            "filters": [{"any": [{"segment": "lapsing"}, _field("p_alive", "gte", 0.1)]}],
            "steps": [
                _branch(
                    {"segment": "mid_or_high"},
                    [_send("save_high", data={"discount_percent": 15})],
                    [_send("save")],
                ),
                _wait("14d"),
                _send("save_last", data={"discount_percent": TIER_DISCOUNT}),
            ],
        },
        "churned_last_call": {
            "trigger": {"stage_enter": "churned"},
            "filters": [CONSENT, {"not": {"segment": "fading"}}],
            "holdout": 0.2,
            "steps": [
                _send("last_call", data={"discount_percent": {**TIER_DISCOUNT, "default": 5}})
            ],
        },
    }


def _segment_flows() -> Doc:
    return {
        "vip_welcome": {
            "trigger": {"segment_enter": "vip"},
            "steps": [_send("vip_welcome", priority=75)],
        },
        "coffee_club_invite": {
            "trigger": {"segment_enter": "coffee_buyers"},
            "re_entry": "once",
            "filters": [CONSENT],
            "steps": [_wait("1d"), _send("coffee_club")],
        },
        "gold_perks": {
            "trigger": {"segment_enter": "gold_tier"},
            "steps": [
                _wait("1h"),
                _send("gold_perks", data={"perks": ["free_shipping", "early_access"]}),
            ],
        },
        "champions_thanks": {
            "trigger": {"segment_enter": "champions"},
            "re_entry": "90d",
            "steps": [_send("champions_thanks", include=["recommendations"])],
        },
        "tea_club": {
            "trigger": {"segment_enter": "tea_lovers"},
            "filters": [{"segment": "eu"}],
            "steps": [_send("tea_club")],
        },
        "coffee_vip_gift": {
            "trigger": {"segment_enter": "coffee_vip"},
            "re_entry": "365d",
            "steps": [
                _send("coffee_vip_gift", channel="webhook", data={"gift": "single_origin_box"})
            ],
        },
    }


def _other_flows() -> Doc:
    return {
        "birthday": {
            "trigger": {"date": "traits.birthday", "at": "09:00"},
            "filters": [CONSENT],
            "steps": [_send("birthday", data={"gift": TRAIT_GIFT})],
        },
        "birthday_vip_gift": {
            "trigger": {"date": "traits.birthday", "at": "10:30"},
            "filters": [{"segment": "vip"}],
            "steps": [_send("birthday_vip", channel="webhook", priority=90)],
        },
        "newsletter_welcome": {
            "trigger": {"event": "signup", "where": {"traits.newsletter": True}},
            "re_entry": "once",
            "steps": [
                _wait("1d"),
                _send("newsletter_welcome"),
                _wait("7d"),
                _send("newsletter_best_of"),
            ],
        },
        "paid_signup_offer": {
            "trigger": {"event": "signup", "where": _field("source", "in", ["ads", "social"])},
            "re_entry": "once",
            "exit_on": [{"event": "purchase"}],
            "filters": [CONSENT],
            "steps": [_wait("3d"), _send("first_order_offer", data={"discount_percent": 10})],
        },
    }


def flows50() -> Doc:
    """The realistic playbook: 50 flows, 20 segments."""
    flows: Doc = {}
    for cat in CATEGORIES:
        flows |= _category_flows(cat)
    flows |= _cart_flows() | _purchase_flows() | _stage_flows() | _segment_flows() | _other_flows()
    return {"segments": _segments(), "flows": flows}


_NEVER_SENT = (
    "subscription_paused",
    "subscription_cancelled",
    "back_in_stock_request",
    "price_drop_watch",
    "loyalty_points_expiring",
    "quiz_completed",
    "review_submitted",
    "referral_signup",
    "gift_card_redeemed",
    "store_visit",
    "support_ticket_closed",
    "sample_requested",
    "class_booked",
    "event_rsvp",
    "survey_answered",
    "app_installed",
)
"""Custom event names the simulator never uses (it sends only ``wishlist_add``)."""


def untriggered50() -> Doc:
    """50 flows on events the benchmark's input never sends, and 5 segments they read."""
    flows: Doc = {}
    for n, name in enumerate(_NEVER_SENT):
        flows[f"on_{name}"] = {
            "trigger": {"event": "custom", "where": {"name": name}},
            "exit_on": [{"event": "purchase"}] if n % 2 else [],
            "filters": [CONSENT],
            "steps": [_wait(f"{n + 1}d"), _send(f"c_{name}", include=["properties"])],
        }
    for n in range(10):
        flows[f"refund_{n}"] = {
            "trigger": {"event": "refund", "where": _field("amount", "gte", 10 * n)},
            "per": "order_id",
            "filters": [{"segment": ("idle_vip", "idle_active", "idle_eu")[n % 3]}],
            "steps": [_wait("1d"), _send(f"refund_followup_{n}")],
        }
    actions = ("open", "click", "review", "referral")
    for n in range(12):
        action = actions[n % len(actions)]
        flows[f"engaged_{n}"] = {
            "trigger": {
                "event": "engagement",
                "where": {"all": [{"action": action}, {"campaign": f"news_{n}"}]},
            },
            "re_entry": "7d",
            "exit_on": [{"event": "purchase"}, {"event": "cart", "where": {"action": "add"}}],
            "steps": [
                _wait("2h"),
                _branch(
                    {"segment": "idle_high"}, [_send(f"engaged_{n}_high")], [_send(f"engaged_{n}")]
                ),
            ],
        }
    for n in range(6):
        flows[f"consent_{n}"] = {
            "trigger": {
                "event": "privacy",
                "where": {"all": [{"action": "consent"}, {"granted": n % 2 == 0}]},
            },
            "steps": [_send(f"consent_change_{n}", transactional=True)],
        }
    for n in range(6):
        flows[f"identified_{n}"] = {
            "trigger": {"event": "identify", "where": _field(f"traits.plan_{n}", "exists", True)},
            "re_entry": "once",
            "filters": [{"segment": "idle_eu"}, {"segment": "idle_gold"}],
            "steps": [_wait("1h"), _send(f"plan_{n}_welcome", data={"gift": TRAIT_GIFT})],
        }
    segments = {
        "idle_vip": {
            "all": [_field("revenue", "gte", 500), _field("stage", "in", ["loyal", "advocate"])]
        },
        "idle_high": {"clv_tier": "high"},
        "idle_eu": _field("country", "in", ["DE", "FR"]),
        "idle_gold": {"traits.tier": "gold"},
        "idle_active": _field("p_alive", "gte", 0.5),
    }
    return {"segments": segments, "flows": flows}


def noflows() -> Doc:
    """Every built-in flow turned off (``NAME: {enabled: false}``), nothing added."""
    return {"flows": {name: {"enabled": False} for name in default_playbook().flows}}


_HEADER = {
    "flows50.yaml": (
        "50 flows and 20 segments a coffee shop might write, for bench.core --playbook.\n"
        "Run over the simulator's extras (traits, properties, wishlist_add events)."
    ),
    "untriggered50.yaml": (
        "50 flows that no event of bench.core's input starts (refund, engagement, privacy,\n"
        "identify, custom events under names the simulator never sends): what idle flows cost."
    ),
    "noflows.yaml": (
        "Every built-in flow off: what the engine costs per event without any flow, the base\n"
        "that bench.instructions compares the default's and flows50's flows with."
    ),
}

PLAYBOOKS = {"flows50.yaml": flows50, "untriggered50.yaml": untriggered50, "noflows.yaml": noflows}
"""File name under ``bench/playbooks`` -> the function that builds it."""

DIRECTORY = Path(__file__).parent / "playbooks"


class _Dumper(yaml.SafeDumper):
    """Writes a value used twice out twice: a playbook reads better without anchors."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def render(name: str) -> str:
    """The text of one playbook file: a header, then the YAML (which reads back as built)."""
    doc = PLAYBOOKS[name]()
    body = yaml.dump(doc, Dumper=_Dumper, sort_keys=False, default_flow_style=None, width=100)
    if yaml12.load(body) != doc:  # pragma: no cover - a dumper that changed a value's type
        msg = f"{name} does not read back as written"
        raise AssertionError(msg)
    header = "".join(f"# {line}\n" for line in _HEADER[name].splitlines())
    return f"{header}# Written by `python -m bench.flows50`; edit that, not this file.\n{body}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a file is out of date")
    args = parser.parse_args(argv)
    stale = []
    for name in PLAYBOOKS:
        path = DIRECTORY / name
        text = render(name)
        if args.check:
            if not path.exists() or path.read_text("utf-8") != text:
                stale.append(str(path))
            continue
        path.parent.mkdir(exist_ok=True)
        path.write_text(text, "utf-8")
        print(f"wrote {path}")
    if stale:
        print(f"out of date (run python -m bench.flows50): {', '.join(stale)}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()

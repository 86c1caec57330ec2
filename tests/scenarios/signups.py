"""Before the first order: visitors, prospects and leads."""

from __future__ import annotations

from tests.scenarios.model import Advance, Journey, Move
from tests.scenarios.steps import (
    L,
    P,
    browse,
    day,
    engagement,
    signup,
    welcome,
)
from tests.scenarios.stories import lead


def _prospect_browses_then_signs_up() -> Journey:
    c, a = "cust-visitor-3", "anon-visitor"
    return Journey(
        "prospect_browses_then_signs_up",
        "an anonymous visitor browses (prospect), signs up 3 days later as a new lead",
        c,
        (
            browse("visitor-e1", day(0), anonymous=a, product="p-teapot"),
            browse("visitor-e2", day(0, 10, 30), anonymous=a, category="green-tea"),
            signup("visitor-e3", day(3), c, anonymous_id=a, first_name="Ada"),
            Advance(day(4)),
        ),
        (
            Move(None, P, "browse_without_signup", "visitor-e1", day(0), key=a),
            Move(None, L, "signup", "visitor-e3", day(3)),
        ),
        (welcome(day(3)),),  # an anonymous prospect's browsing is never abandoned
    )


def _known_visitor_becomes_lead() -> Journey:
    c = "cust-known-browser"
    return Journey(
        "known_visitor_becomes_lead",
        "browse without signup under a customer id (prospect), then signup: prospect -> lead",
        c,
        (
            browse("known-browser-e1", day(0), customer=c, product="p-mug"),
            signup("known-browser-e2", day(1), c),
            Advance(day(2)),
        ),
        (
            Move(None, P, "browse_without_signup", "known-browser-e1", day(0)),
            Move(P, L, "signup", "known-browser-e2", day(1)),
        ),
        (welcome(day(1)),),  # browsing before signup is not a known customer's browsing
    )


def _lead_never_buys() -> Journey:
    c, k = "cust-lead-only-3", "lead-only"
    return lead(
        "lead_never_buys",
        "a lead opens the welcome mail and never buys: no at_risk, no churn, for over a year",
        c,
        k,
        (engagement(f"{k}-e2", day(1), c, "open"), Advance(day(400))),
    )


JOURNEYS: tuple[Journey, ...] = (
    _prospect_browses_then_signs_up(),
    _known_visitor_becomes_lead(),
    _lead_never_buys(),
)

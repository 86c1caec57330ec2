"""Policies over every campaign: quiet hours, consent, erase, duplicates, holdout, caps."""

from __future__ import annotations

from tests.scenarios.model import Advance, Journey, Move
from tests.scenarios.steps import (
    F,
    L,
    R,
    at,
    at_risk,
    browse,
    browse_mail,
    cart,
    cart_mail,
    churn_prevention,
    day,
    engagement,
    nudge,
    order_mails,
    privacy,
    purchase,
    review,
    signup,
    thanks,
    welcome,
)
from tests.scenarios.stories import buyer, lead


def _quiet_hours_hold_a_late_cart_mail() -> Journey:
    c = "cust-quiet-berlin"
    k = "quiet-berlin"
    return Journey(
        "quiet_hours_hold_a_late_cart_mail",
        "Berlin customer: a cart timing out at 23:00 local is sent at 08:00 local; "
        "order_thank_you at night is not held",
        c,
        (
            signup(f"{k}-e1", at("2025-01-06T11:00:00+01:00"), c, timezone="Europe/Berlin"),
            cart(
                f"{k}-e2", at("2025-01-08T22:00:00+01:00"), c, "add", "k1", "p-kettle", 1, "40.00"
            ),
            purchase(f"{k}-e3", at("2025-01-10T23:30:00+01:00"), c, f"{k}-o1", "40.00", "p-kettle"),
            Advance(at("2025-01-18T12:00:00+00:00")),
        ),
        (
            Move(None, L, "signup", f"{k}-e1", at("2025-01-06T10:00:00+00:00")),
            Move(L, F, "first_purchase", f"{k}-e3", at("2025-01-10T22:30:00+00:00")),
        ),
        (
            welcome(at("2025-01-06T10:00:00+00:00")),
            cart_mail(
                at("2025-01-08T22:00:00+00:00"),
                [("p-kettle", 1, "40.00")],
                "40.00",
                send_after=at("2025-01-09T07:00:00+00:00"),
            ),
            thanks(at("2025-01-10T22:30:00+00:00"), f"{k}-o1"),
            review(
                at("2025-01-17T22:30:00+00:00"),
                f"{k}-o1",
                "p-kettle",
                send_after=at("2025-01-18T07:00:00+00:00"),
            ),
        ),
    )


def _quiet_hours_across_daylight_saving() -> Journey:
    c = "cust-quiet-newyork-11"
    k = "quiet-newyork"
    utc = "+00:00"
    return Journey(
        "quiet_hours_across_daylight_saving",
        "New York customer buying at 23:30 EST: timed mails wait for 08:00 local, EST then EDT",
        c,
        (
            signup(f"{k}-e1", at("2025-01-31T12:00:00-05:00"), c, timezone="America/New_York"),
            purchase(f"{k}-e2", at("2025-02-01T23:30:00-05:00"), c, f"{k}-o1", "55.00"),
            Advance(at(f"2025-04-10T12:00:00{utc}")),
        ),
        (
            Move(None, L, "signup", f"{k}-e1", at(f"2025-01-31T17:00:00{utc}")),
            Move(L, F, "first_purchase", f"{k}-e2", at(f"2025-02-02T04:30:00{utc}")),
            at_risk(F, at(f"2025-04-03T04:30:00{utc}")),
        ),
        (
            welcome(at(f"2025-01-31T17:00:00{utc}")),
            thanks(at(f"2025-02-02T04:30:00{utc}"), f"{k}-o1"),
            review(
                at(f"2025-02-09T04:30:00{utc}"),
                f"{k}-o1",
                send_after=at(f"2025-02-09T13:00:00{utc}"),  # 08:00 EST
            ),
            nudge(at(f"2025-03-04T04:30:00{utc}"), send_after=at(f"2025-03-04T13:00:00{utc}")),
            churn_prevention(
                at(f"2025-04-03T04:30:00{utc}"),
                send_after=at(f"2025-04-03T12:00:00{utc}"),  # 08:00 EDT
            ),
        ),
    )


def _no_consent_gets_only_transactional_mail() -> Journey:
    c, k = "cust-no-consent-10", "no-consent"
    return lead(
        "no_consent_gets_only_transactional_mail",
        "signup without marketing consent: stages move, only order_thank_you is sent",
        c,
        k,
        (
            cart(f"{k}-e2", day(2, 11), c, "add", "k1", "p-kettle", 1, "40.00"),
            purchase(f"{k}-e3", day(3), c, f"{k}-o1", "40.00", "p-kettle"),
            Advance(day(70, 11)),  # past the suppressed churn_prevention's window (10:00)
        ),
        (Move(L, F, "first_purchase", f"{k}-e3", day(3)), at_risk(F, day(63))),
        (thanks(day(3), f"{k}-o1"),),
        consent=False,
    )


def _consent_granted_later() -> Journey:
    c, k = "cust-consent-later-4", "consent-later"
    return lead(
        "consent_granted_later",
        "no consent at signup (no welcome), consent granted on day 5: the review request goes",
        c,
        k,
        (
            privacy(f"{k}-e2", day(5), c, "consent", granted=True),
            purchase(f"{k}-e3", day(6), c, f"{k}-o1", "30.00"),
            Advance(day(14)),
        ),
        (Move(L, F, "first_purchase", f"{k}-e3", day(6)),),
        order_mails(k, 1, 6),
        consent=False,
    )


def _unsubscribe_mid_journey() -> Journey:
    c, k = "cust-unsubscriber", "unsubscriber"
    return buyer(
        "unsubscribe_mid_journey",
        "unsubscribes after the first order: no more marketing, thank-you mails still go",
        c,
        k,
        "30.00",
        (
            engagement(f"{k}-e3", day(3), c, "unsubscribe"),
            purchase(f"{k}-e4", day(10), c, f"{k}-o2", "30.00"),
            Advance(day(75)),
        ),
        (Move(F, R, "repeat_purchase", f"{k}-e4", day(10)), at_risk(R, day(70))),
        (thanks(day(10), f"{k}-o2"),),
    )


def _duplicate_event_changes_nothing() -> Journey:
    c, k = "cust-duplicate-5", "duplicate"
    return buyer(
        "duplicate_event_changes_nothing",
        "a purchase delivered twice, and its order again under a new event id: counted once",
        c,
        k,
        "30.00",
        (
            purchase(f"{k}-e2", day(1), c, f"{k}-o1", "30.00"),  # the first order, again
            purchase(f"{k}-e3", day(1, 10, 5), c, f"{k}-o1", "30.00"),
            purchase(f"{k}-e4", day(5), c, f"{k}-o2", "30.00"),
            Advance(day(13)),
        ),
        (Move(F, R, "repeat_purchase", f"{k}-e4", day(5)),),
        (thanks(day(5), f"{k}-o2"), review(day(8), f"{k}-o1"), review(day(12), f"{k}-o2")),
    )


def _erase_stops_everything() -> Journey:
    c, k = "cust-eraser-3", "eraser"
    return buyer(
        "erase_stops_everything",
        "erase with a cart, a review, a nudge and at_risk pending: nothing more, ever",
        c,
        k,
        "30.00",
        (
            cart(f"{k}-e3", day(2, 11), c, "add", "k1", "p-kettle", 1, "40.00"),
            privacy(f"{k}-e4", day(2, 11, 30), c, "erase"),
            Advance(day(200)),
        ),
    )


def _holdout_customer_is_marked() -> Journey:
    c, k = "cust-held-out-46", "held-out"  # in welcome's 10% holdout bucket, in no other campaign's
    return buyer(
        "holdout_customer_is_marked",
        "a customer in welcome's holdout: the trigger is still emitted, with holdout=true",
        c,
        k,
        "30.00",
        (Advance(day(9)),),
        sends=(review(day(8), f"{k}-o1"),),
        holdout=True,
    )


# The frequency caps (docs/campaigns.md, Policies): at most 1 marketing message per 24 h
# and 3 per 7 days, and the higher-priority campaign wins. In both journeys below the
# capped mail has no higher priority than any mail already sent, so every reading agrees.


def _frequency_cap_one_per_day() -> Journey:
    c, k = "cust-cap-daily-2", "cap-daily"
    return lead(
        "frequency_cap_one_per_day",
        "browse 1 h after the welcome: browse_abandonment (priority 55 < welcome's 70) is capped",
        c,
        k,
        (browse(f"{k}-e2", day(0, 11), customer=c, product="p-teapot"), Advance(day(1, 9))),
    )


def _frequency_cap_three_per_week() -> Journey:
    c, k = "cust-cap-weekly-4", "cap-weekly"
    return lead(
        "frequency_cap_three_per_week",
        "four marketing mails a day apart within one week: the fourth (lowest priority) is capped",
        c,
        k,
        (
            cart(f"{k}-e2", day(1, 12), c, "add", "k1", "p-kettle", 1, "40.00"),
            browse(f"{k}-e3", day(2, 15), customer=c, product="p-teapot"),
            browse(f"{k}-e4", day(3, 19), customer=c, product="p-mug"),
            Advance(day(4)),
        ),
        sends=(
            cart_mail(day(1, 13), [("p-kettle", 1, "40.00")], "40.00"),
            browse_mail(day(2, 17), ["p-teapot"]),
        ),
    )


JOURNEYS: tuple[Journey, ...] = (
    _quiet_hours_hold_a_late_cart_mail(),
    _quiet_hours_across_daylight_saving(),
    _no_consent_gets_only_transactional_mail(),
    _consent_granted_later(),
    _unsubscribe_mid_journey(),
    _duplicate_event_changes_nothing(),
    _erase_stops_everything(),
    _holdout_customer_is_marked(),
    _frequency_cap_one_per_day(),
    _frequency_cap_three_per_week(),
)

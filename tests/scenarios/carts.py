"""Carts and browsing: abandonment mails, and what cancels them."""

from __future__ import annotations

from datetime import timedelta

from tests.scenarios.model import Advance, Journey, Move
from tests.scenarios.steps import (
    F,
    L,
    P,
    as_guest,
    browse,
    browse_mail,
    cart,
    cart_mail,
    day,
    login,
    purchase,
    thanks,
)
from tests.scenarios.stories import lead


def _cart_abandoned_after_an_hour() -> Journey:
    c, k = "cust-cart-abandoner-4", "cart-abandoner"
    return lead(
        "cart_abandoned_after_an_hour",
        "two items added, no purchase: cart_abandonment exactly 1 h later with items and value",
        c,
        k,
        (
            cart(f"{k}-e2", day(2, 11), c, "add", "k1", "p-kettle", 1, "40.00"),
            cart(f"{k}-e3", day(2, 11), c, "add", "k1", "p-filter", 2, "5.50"),
            Advance(day(3)),
        ),
        sends=(
            cart_mail(day(2, 12), [("p-kettle", 1, "40.00"), ("p-filter", 2, "5.50")], "51.00"),
        ),
    )


def _cart_saved(minutes: int, name: str, about: str, customer: str, key: str) -> Journey:
    """A kettle put in the cart at 11:00 on day 2 and bought ``minutes`` later, within
    the hour's wait or at its very end: no cart mail, only the order's thank-you."""
    paid = day(2, 11) + timedelta(minutes=minutes)
    return lead(
        name,
        about,
        customer,
        key,
        (
            cart(f"{key}-e2", day(2, 11), customer, "add", "k1", "p-kettle", 1, "40.00"),
            purchase(f"{key}-e3", paid, customer, f"{key}-o1", "40.00", "p-kettle"),
            Advance(day(3)),
        ),
        (Move(L, F, "first_purchase", f"{key}-e3", paid),),
        (thanks(paid, f"{key}-o1"),),
    )


def _checkout_restarts_the_wait() -> Journey:
    c, k = "cust-checkout-restart-4", "checkout-restart"
    return lead(
        "checkout_restarts_the_wait",
        "add, add, remove one, checkout: the mail comes 1 h after checkout with what is left",
        c,
        k,
        (
            cart(f"{k}-e2", day(2, 11), c, "add", "k1", "p-cup", 2, "10.00"),
            cart(f"{k}-e3", day(2, 11, 20), c, "add", "k1", "p-pot", 1, "25.00"),
            cart(f"{k}-e4", day(2, 11, 30), c, "remove", "k1", "p-cup", 1, "10.00"),
            cart(f"{k}-e5", day(2, 11, 50), c, "checkout_started", "k1"),
            Advance(day(3)),
        ),
        sends=(cart_mail(day(2, 12, 50), [("p-cup", 1, "10.00"), ("p-pot", 1, "25.00")], "35.00"),),
    )


def _browse_abandoned(
    name: str,
    what: str,
    key: str,
    views: tuple[tuple[int, str | None, str | None], ...],
    products: list[str],
) -> Journey:
    """A lead who browses (minute after 14:00 on day 2, product, category) and never
    adds to a cart: browse_abandonment 2 h after the first view, with ``products``."""
    c, k = f"cust-{key}-3", key
    browses = tuple(
        browse(f"{k}-e{n}", day(2, 14, minute), customer=c, product=product, category=category)
        for n, (minute, product, category) in enumerate(views, start=2)
    )
    return lead(
        name, what, c, k, (*browses, Advance(day(3))), sends=(browse_mail(day(2, 16), products),)
    )


def _browse_then_cart_sends_cart_mail_only() -> Journey:
    c, k = "cust-browse-to-cart-13", "browse-to-cart"
    return lead(
        "browse_then_cart_sends_cart_mail_only",
        "a cart add within 2 h cancels browse_abandonment; the cart is abandoned instead",
        c,
        k,
        (
            browse(f"{k}-e2", day(2, 14), customer=c, product="p-teapot"),
            cart(f"{k}-e3", day(2, 15), c, "add", "k1", "p-teapot", 1, "30.00"),
            Advance(day(3)),
        ),
        sends=(cart_mail(day(2, 16), [("p-teapot", 1, "30.00")], "30.00"),),
    )


def _guest_cart_carried_over_at_login() -> Journey:
    """A lead shops as a guest two days after signing up: a kettle in the cart at 11:00,
    then a login (identify with the guest's id) at 11:20. The cart becomes the
    customer's, so the cart mail goes at 12:00 with the kettle, addressed to them."""
    c, a, k = "cust-guest-cart-7", "anon-guest-cart-7", "guest-cart"
    guest = as_guest(cart(f"{k}-e2", day(2, 11), c, "add", "k1", "p-kettle", 1, "40.00"), a)
    return lead(
        "guest_cart_carried_over_at_login",
        "a guest's cart, then a login that merges the guest: cart_abandonment 1 h after the "
        "add, to the customer, with the guest's items",
        c,
        k,
        (guest, login(f"{k}-e3", day(2, 11, 20), c, a), Advance(day(3))),
        (Move(None, P, "cart_without_signup", f"{k}-e2", day(2, 11), key=a),),
        (cart_mail(day(2, 12), [("p-kettle", 1, "40.00")], "40.00"),),
    )


JOURNEYS: tuple[Journey, ...] = (
    _cart_abandoned_after_an_hour(),
    _cart_saved(
        59,
        "cart_saved_at_59_minutes",
        "cart add, purchase 59 min later: no cart mail",
        "cust-cart-saver-2",
        "cart-saver",
    ),
    _cart_saved(
        60,
        "cart_saved_at_exactly_one_hour",
        "purchase exactly 1 h after the cart add: still no cart mail (timers fire strictly before)",
        "cust-cart-exact-4",
        "cart-exact",
    ),
    _checkout_restarts_the_wait(),
    _browse_abandoned(
        "browse_abandoned_after_two_hours",
        "a known customer browses, no cart: browse_abandonment 2 h after the first view, "
        "with the products viewed (a category page is no product)",
        "browse-known",
        ((0, "p-teapot", None), (30, None, "green-tea"), (60, "p-teapot", None)),
        ["p-teapot"],
    ),
    _browse_abandoned(
        "category_browse_abandoned_without_products",
        "a known customer views only a category page: browse_abandonment 2 h later, "
        "its products empty",
        "browse-category",
        ((0, None, "green-tea"),),
        [],
    ),
    _browse_then_cart_sends_cart_mail_only(),
    _guest_cart_carried_over_at_login(),
)

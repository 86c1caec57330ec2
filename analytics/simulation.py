"""A synthetic shop: a seeded, reproducible stream of realistic customer events.

Used by ``lifecycle simulate`` and ``lifecycle dev``, by the tests that check
the Kafka path against the backtest, and by the benchmarks. The same seed and
sizes always give the same events, byte for byte.

Personas, in the shares a small web shop sees: visitors who only browse,
sign-ups who never buy, one-time buyers, repeat buyers, and loyal regulars
who later lapse; about 60% of sign-ups give marketing consent.

With ``extras``, the events also carry what a shop's own flows read: ``traits``
on signup (a birthday, a tier), ``properties`` on carts and purchases, and
``wishlist_add`` custom events after some views. Those come from a second
random stream per customer, so every other event is the same, byte for byte,
with or without them.

With ``abandoned``, signed-up customers also have sessions that end without a
purchase, days after they signed up: a few views, and now and then a product
added to a cart, then nothing. Without them every signed-in view leads to a cart
and every cart but a lead's first to an order within the hour, so browse and cart
abandonment would never send. They come from a third stream per customer, so
the other events are the same with or without them too.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from lifecycle.policy import in_holdout
from schemas.records import Campaign

__all__ = ["Catalog", "Effect", "ShopSimulation", "campaign_trial", "simulate"]

SIM_START = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)

_ZONES = ["Europe/Berlin", "Europe/London", "America/New_York", "America/Los_Angeles", "Asia/Tokyo"]
_LOCALES = {"DE": "de-DE", "GB": "en-GB", "US": "en-US", "FR": "fr-FR", "JP": "ja-JP"}
_NAMES = ["Ada", "Ben", "Chloe", "Dev", "Emma", "Farid", "Greta", "Hiro", "Ines", "Jonas"]
_CATEGORIES = ["coffee", "tea", "mugs", "grinders", "accessories"]


@dataclass(frozen=True, slots=True)
class Product:
    product_id: str
    category: str
    price: Decimal


class Catalog:
    def __init__(self, rng: random.Random, size: int = 60) -> None:
        self.products = [
            Product(
                product_id=f"p{n:04d}",
                category=_CATEGORIES[n % len(_CATEGORIES)],
                price=Decimal(rng.randrange(399, 14999)).scaleb(-2),
            )
            for n in range(size)
        ]
        # A few products sell far more often than the rest, as in any shop.
        self.weights = [1.0 / (rank + 1) for rank in range(size)]

    def pick(self, rng: random.Random) -> Product:
        return rng.choices(self.products, weights=self.weights)[0]


@dataclass(frozen=True, slots=True)
class Effect:
    """A known campaign effect: the ground truth the lift report is tested against.

    Customers who get the welcome mail (consent given, not held out) place one
    extra order within the attribution window with probability ``extra_purchase``.
    The welcome campaign is the one whose decision the simulator can predict
    exactly: it is decided at signup, and holdout is a hash of (campaign,
    customer) (``lifecycle.policy.in_holdout``), so ``holdout`` must be the
    playbook's holdout share for welcome.
    """

    extra_purchase: float
    holdout: float = 0.10
    window: timedelta = timedelta(days=7)

    def treated(self, customer_id: str, consent: bool) -> bool:
        return consent and not in_holdout(Campaign.WELCOME, customer_id, self.holdout)

    def when(self, rng: random.Random, signup: datetime) -> datetime:
        """A moment inside the window the signup opens, leaving the checkout's minutes."""
        return signup + timedelta(minutes=1) + (self.window - timedelta(hours=2)) * rng.random()


class ShopSimulation:
    """Builds each customer's story, then merges all stories in event-time order."""

    def __init__(
        self,
        customers: int,
        *,
        seed: int = 7,
        start: datetime = SIM_START,
        days: float = 365.0,
        duplicate_rate: float = 0.0,
        effect: Effect | None = None,
        extras: bool = False,
        abandoned: bool = False,
    ) -> None:
        self.customers = customers
        self.extras = extras
        self.abandoned = abandoned
        self.effect = effect
        self.seed = seed
        self.start = start
        self.span = timedelta(days=days)
        self.duplicate_rate = duplicate_rate
        self.catalog = Catalog(random.Random(seed))

    def events(self) -> Iterator[dict[str, Any]]:
        stories = (self._story(n) for n in range(self.customers))
        for _, _, event in heapq.merge(*stories, key=lambda item: (item[0], item[1])):
            yield event

    def _story(self, n: int) -> Iterator[tuple[datetime, int, dict[str, Any]]]:
        rng = random.Random(f"{self.seed}:{n}")
        extra = random.Random(f"{self.seed}:{n}:x") if self.extras else None
        writer = _StoryWriter(rng, self.catalog, n, f"{self.seed}-{n}", extra)
        t = self.start + self.span * rng.random() * 0.5
        persona = rng.choices(
            ["browser", "lead", "one_time", "repeat", "loyal"], weights=[30, 20, 25, 15, 10]
        )[0]
        anonymous_id = f"anon-{self.seed}-{n}"
        for _ in range(rng.randint(1, 4)):
            t = writer.browse(t, anonymous_id=anonymous_id)
        if persona == "browser":
            return self._finish(writer, rng)
        customer_id = f"cust-{self.seed}-{n}"
        signed_up = t
        t = writer.signup(t, customer_id, anonymous_id)
        if self.effect is not None:
            consent = bool(writer.events[-1]["marketing_consent"])
            lucky = rng.random() < self.effect.extra_purchase
            if lucky and self.effect.treated(customer_id, consent):
                writer.buy(self.effect.when(rng, signed_up), customer_id)
        purchases = {"lead": 0, "one_time": 1, "repeat": rng.randint(2, 3), "loyal": 5}[persona]
        if persona == "lead":
            t = writer.browse(t, customer_id=customer_id)
            writer.cart(t, customer_id, rng.random() < 0.5)
        for _ in range(purchases):
            t = writer.browse(t, customer_id=customer_id)
            t = writer.buy(t, customer_id)
            t += timedelta(days=rng.expovariate(1 / 30))
            if t > self.start + self.span:
                break
        if self.abandoned:
            left = random.Random(f"{self.seed}:{n}:a")
            writer.leave(left, customer_id, signed_up, self.start + self.span)
        return self._finish(writer, rng)

    def _finish(
        self, writer: _StoryWriter, rng: random.Random
    ) -> Iterator[tuple[datetime, int, dict[str, Any]]]:
        events = writer.events
        if self.duplicate_rate and events:
            for event in list(events):
                if rng.random() < self.duplicate_rate:
                    events.append(dict(event))  # a redelivery: same event_id, same body
        if writer.extra is not None:  # after the draws above, which they must not shift
            for event in list(writer.extra_events):
                if self.duplicate_rate and writer.extra.random() < self.duplicate_rate:
                    writer.extra_events.append(dict(event))
            events.extend(writer.extra_events)
        events.extend(writer.left_events)  # drawn from their own stream: nothing shifts
        events.sort(key=lambda e: e["occurred_at"])
        return (
            (datetime.fromisoformat(e["occurred_at"]), writer.number, e)
            for e in events
            if datetime.fromisoformat(e["occurred_at"]) <= self.start + self.span
        )


class _StoryWriter:
    def __init__(
        self,
        rng: random.Random,
        catalog: Catalog,
        number: int,
        tag: str,
        extra: random.Random | None = None,
    ) -> None:
        self.tag = tag  # seed and customer number: ids unique across runs with other seeds
        self.rng = rng
        self.extra = extra
        """The second stream, for the extras only (None: no extras)."""
        self.extra_events: list[dict[str, Any]] = []
        self.left_events: list[dict[str, Any]] = []
        """Sessions that end without a purchase (``ShopSimulation.abandoned``)."""
        self.catalog = catalog
        self.number = number
        self.events: list[dict[str, Any]] = []
        self.viewed: list[Product] = []

    def _emit(self, t: datetime, body: dict[str, Any]) -> datetime:
        body["event_id"] = f"ev-{self.tag}-{len(self.events)}"
        body["occurred_at"] = _stamp(t)
        self.events.append(body)
        return t + timedelta(minutes=self.rng.uniform(1, 40))

    def _wishlist(self, t: datetime, ids: dict[str, Any], product: Product) -> None:
        """Now and then a view is followed by a ``wishlist_add``, off the main stream."""
        extra = self.extra
        if extra is None or extra.random() >= 0.15:
            return
        at = t + timedelta(seconds=extra.randint(5, 600))
        self.extra_events.append(
            {
                "type": "custom",
                **ids,
                "name": "wishlist_add",
                "properties": {
                    "product_id": product.product_id,
                    "category": product.category,
                    "price": float(product.price),
                },
                "event_id": f"ev-{self.tag}-x{len(self.extra_events)}",
                "occurred_at": _stamp(at),
            }
        )

    def _properties(self, body: dict[str, Any]) -> dict[str, Any]:
        extra = self.extra
        if extra is not None:
            body["properties"] = {
                "device": extra.choice(["web", "ios", "android"]),
                "coupon": extra.random() < 0.2,
            }
        return body

    def browse(
        self, t: datetime, *, anonymous_id: str | None = None, customer_id: str | None = None
    ) -> datetime:
        product = self.catalog.pick(self.rng)
        self.viewed.append(product)
        ids = {"anonymous_id": anonymous_id} if anonymous_id else {"customer_id": customer_id}
        self._wishlist(t, ids, product)
        return self._emit(t, _view(ids, product))

    def leave(self, left: random.Random, customer_id: str, since: datetime, end: datetime) -> None:
        """Up to two sessions of ``customer_id`` between two days after ``since`` and
        ``end``: one to three views, then, half the time, the last one added to a cart,
        and no order. Every draw is ``left``'s, so the story's own events stay as they are."""
        first = since + timedelta(days=2)
        if first >= end:
            return
        for _ in range(left.choice([0, 1, 1, 2])):
            t = first + (end - first) * left.random()
            for _ in range(left.randint(1, 3)):
                product = self.catalog.pick(left)
                t = self._left(left, t, _view({"customer_id": customer_id}, product))
            if left.random() < 0.5:
                body = _cart_add(customer_id, f"cart-{self.tag}-a{len(self.left_events)}", product)
                if self.extra is not None:  # carts carry properties with the extras
                    body["properties"] = {
                        "device": left.choice(["web", "ios", "android"]),
                        "coupon": left.random() < 0.2,
                    }
                self._left(left, t, body)

    def _left(self, left: random.Random, t: datetime, body: dict[str, Any]) -> datetime:
        body["event_id"] = f"ev-{self.tag}-a{len(self.left_events)}"
        body["occurred_at"] = _stamp(t)
        self.left_events.append(body)
        return t + timedelta(minutes=left.uniform(1, 40))

    def signup(
        self,
        t: datetime,
        customer_id: str,
        anonymous_id: str | None,
        consent: bool | None = None,
    ) -> datetime:
        rng = self.rng
        country = rng.choice(list(_LOCALES))
        body = {
            "type": "signup",
            "customer_id": customer_id,
            **({"anonymous_id": anonymous_id} if anonymous_id else {}),  # merged in
            "email": f"{customer_id}@mail.example",
            "first_name": rng.choice(_NAMES),
            "country": country,
            "locale": _LOCALES[country],
            "timezone": rng.choice(_ZONES),
            "source": rng.choice(["organic", "ads", "referral", "social"]),
            "marketing_consent": rng.random() < 0.6 if consent is None else consent,
        }
        extra = self.extra
        if extra is not None:
            born = date(1950, 1, 1) + timedelta(days=extra.randrange(365 * 55))
            body["traits"] = {
                "birthday": born.isoformat(),
                "tier": extra.choice(["bronze", "silver", "gold"]),
                "newsletter": extra.random() < 0.5,
            }
        return self._emit(t, body)

    def cart(self, t: datetime, customer_id: str, checkout: bool) -> datetime:
        product = self.viewed[-1] if self.viewed else self.catalog.pick(self.rng)
        t = self._emit(
            t,
            self._properties(
                _cart_add(customer_id, f"cart-{self.tag}-{len(self.events)}", product)
            ),
        )
        if checkout:
            t = self._emit(
                t,
                {
                    "type": "cart",
                    "customer_id": customer_id,
                    "action": "checkout_started",
                    "cart_id": f"cart-{self.tag}-{len(self.events) - 1}",
                },
            )
        return t

    def buy(self, t: datetime, customer_id: str, *, with_cart: bool = True) -> datetime:
        rng = self.rng
        chosen = [self.viewed[-1]] if self.viewed else []
        chosen += [self.catalog.pick(rng) for _ in range(rng.randint(0, 2))]
        unique = list({p.product_id: p for p in chosen}.values())
        quantities = [rng.randint(1, 3) for _ in unique]
        items = [
            {
                "product_id": p.product_id,
                "category": p.category,
                "quantity": q,
                "unit_price": str(p.price),
            }
            for p, q in zip(unique, quantities, strict=True)
        ]
        total = sum((p.price * q for p, q in zip(unique, quantities, strict=True)), Decimal(0))
        if with_cart:
            t = self.cart(t, customer_id, checkout=True)
        return self._emit(
            t,
            self._properties(
                {
                    "type": "purchase",
                    "customer_id": customer_id,
                    "order_id": f"ord-{self.tag}-{len(self.events)}",
                    "total": str(total),
                    "currency": "EUR",
                    "items": items,
                }
            ),
        )


def _stamp(t: datetime) -> str:
    """An event's ``occurred_at``: whole seconds, UTC as ``Z``."""
    return t.replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _view(ids: dict[str, Any], product: Product) -> dict[str, Any]:
    return {
        "type": "browse",
        **ids,
        "product_id": product.product_id,
        "category": product.category,
        "url": f"https://shop.example/p/{product.product_id}",
    }


def _cart_add(customer_id: str, cart_id: str, product: Product) -> dict[str, Any]:
    return {
        "type": "cart",
        "customer_id": customer_id,
        "action": "add",
        "cart_id": cart_id,
        "product_id": product.product_id,
        "quantity": 1,
        "unit_price": str(product.price),
        "currency": "EUR",
    }


def simulate(
    customers: int,
    *,
    seed: int = 7,
    days: float = 365.0,
    duplicate_rate: float = 0.0,
    effect: Effect | None = None,
    extras: bool = False,
    abandoned: bool = False,
) -> Iterator[dict[str, Any]]:
    """Events of ``customers`` simulated customers over ``days``, in event-time order;
    with ``extras``, traits, properties and custom events too, and with ``abandoned``,
    sessions that end without a purchase (the other events unchanged by either)."""
    return ShopSimulation(
        customers,
        seed=seed,
        days=days,
        duplicate_rate=duplicate_rate,
        effect=effect,
        extras=extras,
        abandoned=abandoned,
    ).events()


def campaign_trial(
    customers: int, *, seed: int, base_purchase: float, effect: Effect, days: float = 28.0
) -> Iterator[dict[str, Any]]:
    """A lean experiment on the welcome campaign, a few events per customer.

    Every customer signs up with consent; within the attribution window each
    orders with probability ``base_purchase`` (holdout or not), and treated
    ones place ``effect``'s extra order on top. So the true difference in the
    welcome conversion rate is ``effect.extra_purchase * (1 - base_purchase)``.
    """
    catalog = Catalog(random.Random(seed))
    start = SIM_START

    def story(n: int) -> Iterator[tuple[datetime, int, dict[str, Any]]]:
        rng = random.Random(f"trial:{seed}:{n}")
        writer = _StoryWriter(rng, catalog, n, f"t{seed}-{n}")
        customer_id = f"trial-{seed}-{n}"
        writer.viewed.append(catalog.pick(rng))  # what the orders are built around
        signed_up = start + timedelta(days=days) * rng.random()
        writer.signup(signed_up, customer_id, None, consent=True)
        if rng.random() < base_purchase:
            writer.buy(effect.when(rng, signed_up), customer_id, with_cart=False)
        if rng.random() < effect.extra_purchase and effect.treated(customer_id, True):
            writer.buy(effect.when(rng, signed_up), customer_id, with_cart=False)
        writer.events.sort(key=lambda e: e["occurred_at"])
        return ((datetime.fromisoformat(e["occurred_at"]), n, e) for e in writer.events)

    stories = (story(n) for n in range(customers))
    for _, _, event in heapq.merge(*stories, key=lambda item: (item[0], item[1])):
        yield event

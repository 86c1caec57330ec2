"""A send step: the payload it carries and the trigger it hands the core.

The payload is the greeting, then each ``include`` (the cart, the run's order,
the products viewed since the run started, recommendations, a referral code,
the trigger event's properties; each field at the top level, where no earlier
include put it, and the cart and the order also whole under their own names),
then the step's ``data``, a ``Picker`` choosing
its value by a field of the record. Whether it goes out (consent, quiet hours,
caps) is the core's to decide (``Effects.send``): this module hands it the send
and the way to build its payload, which the core calls only for a trigger that
goes out.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from lifecycle.flows.conditions import Ctx, choice_key, record_value
from lifecycle.flows.effects import Effects, step_ctx
from lifecycle.flows.model import Picker, SendSpec
from lifecycle.flows.program import CompiledFlow
from lifecycle.flows.runs import Run
from lifecycle.ids import stable_id
from lifecycle.state import RunLine, RunOrder, trusted

__all__ = ["order_of", "send_step"]


_last_order: tuple[Any, RunOrder] | None = None
"""The purchase ``order_of`` last read and its order: every flow a purchase starts
keeps the same one (frozen, so the runs share it), made once."""


def order_of(event: Any) -> RunOrder:
    """A purchase event's order as a run keeps it, for a later send that includes it."""
    global _last_order  # noqa: PLW0603 - a one-entry cache, held with its event
    last = _last_order
    if last is not None and last[0] is event:
        return last[1]
    items = tuple(
        trusted(
            RunLine,
            product_id=i.product_id,
            quantity=i.quantity,
            unit_price=i.unit_price,
            category=i.category,
        )
        for i in event.items
    )
    order = trusted(
        RunOrder,
        order_id=event.order_id,
        total=event.total,
        currency=event.currency,
        items=items,
        products=tuple(i.product_id for i in items),
    )
    _last_order = (event, order)
    return order


def send_step(
    fx: Effects, cf: CompiledFlow, run: Run, path: str, spec: SendSpec, event: Any
) -> None:
    """Hand the core the send at ``path``: its trigger id, its holdout, and how to build
    its payload, which the core builds only for a trigger the policies and caps let
    through (a suppression carries none)."""
    send = cf.sends[path]
    customer = fx.state.customer_id
    fx.send(
        send,
        trigger_id=stable_id("trigger", customer, cf.name, run.run_id, path),
        holdout=run.holdout and not send.transactional,
        payload=lambda: _payload(fx, cf, run, spec, event),
    )


def _payload(fx: Effects, cf: CompiledFlow, run: Run, spec: SendSpec, event: Any) -> dict[str, Any]:
    """The greeting, each include, then the data. Everything it reads is a fact the
    cause's handler set before any flow ran, so it is the same whenever the cause
    builds it."""
    payload = fx.greeting()
    if spec.include:
        order = _run_order(run, event) if _ORDERED & set(spec.include) else None
        for include in spec.include:
            part = _include(fx, cf, run, spec, include, event, order)
            for key, value in part.items():  # an earlier include's field is not overwritten
                payload.setdefault(key, value)
    if spec.data:
        ctx: Ctx | None = None
        for name, value in spec.data.items():
            if isinstance(value, Picker):
                ctx = ctx or step_ctx(fx)
                picked = _pick(value, ctx)
                if picked is not _NONE:
                    payload[name] = picked
            else:
                payload[name] = value
    return payload


_NONE = object()
_NO_MONEY = Decimal("0.00")
"""An empty cart's value, written as money is."""


def _pick(picker: Picker, ctx: Ctx) -> Any:
    choice = choice_key(record_value(picker.by, ctx))
    if choice is not None and choice in picker.values:
        return picker.values[choice]
    return picker.default if picker.has_default else _NONE


def _order_payload(order: RunOrder) -> dict[str, Any]:
    out: dict[str, Any] = {"order_id": order.order_id}
    if order.total is not None:
        out["total"] = str(order.total)
        out["currency"] = order.currency
        out["items"] = [_order_line(i) for i in order.items]
    out["products"] = list(order.products)
    return out


def _order_line(line: RunLine) -> dict[str, Any]:
    out: dict[str, Any] = {
        "product_id": line.product_id,
        "quantity": line.quantity,
        "unit_price": str(line.unit_price),
    }
    if line.category is not None:
        out["category"] = line.category
    return out


def _run_order(run: Run, event: Any) -> RunOrder | None:
    if event is not None and getattr(event, "type", None) == "purchase":
        return order_of(event)
    return run.order


def _viewed(fx: Effects, cf: CompiledFlow, run: Run) -> list[str]:
    since = run.started_at
    views = [v.product for v in reversed(fx.state.views) if v.at >= since]
    return views[: cf.max_products]


_ORDERED = frozenset({"order", "recommendations"})
"""The includes that read the run's order."""


def _include(
    fx: Effects,
    cf: CompiledFlow,
    run: Run,
    spec: SendSpec,
    include: str,
    event: Any,
    order: RunOrder | None,
) -> dict[str, Any]:
    """One include's payload fields. The cart and the order are also whole under their own
    names (``items`` and ``currency`` of each would otherwise be one field), the views as
    ``viewed_products`` and as ``products``, the key of the order's products, so one
    template serves a browse and an order."""
    state = fx.state
    if include == "cart":
        lines = state.cart
        value = sum((line.unit_price * line.quantity for line in lines.values()), _NO_MONEY)
        cart = {
            "cart_id": state.cart_id,
            "items": [
                {"product_id": p, "quantity": line.quantity, "unit_price": str(line.unit_price)}
                for p, line in lines.items()
            ],
            "value": str(value),
            "currency": next((line.currency for line in lines.values()), None),
        }
        return {"cart": cart, **cart}
    if include == "order":
        if order is None:
            return {}
        whole = _order_payload(order)
        return {"order": whole, **whole}
    if include == "viewed_products":
        viewed = _viewed(fx, cf, run)
        return {"viewed_products": viewed, "products": list(viewed)}
    if include == "recommendations":
        if order is not None:
            seeds = list(order.products)
        elif "viewed_products" in spec.include:
            seeds = _viewed(fx, cf, run)
        else:
            seeds = list(state.bought)
        return {"recommendations": fx.recommend(seeds)}
    if include == "referral_code":
        return {"referral_code": stable_id("referral", state.customer_id)[:10].upper()}
    if include == "properties":
        given = getattr(event, "properties", None) if event is not None else run.properties
        return {"properties": dict(given or {})}
    return {}

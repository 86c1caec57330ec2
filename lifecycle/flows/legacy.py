"""Records an older version wrote: the campaign fields a record held before flows
existed become the built-in flows' runs.

Adopted on the record's first touch, with the wake-up times it had, so a mail in
flight on the upgrade is neither lost nor sent twice.
"""

from __future__ import annotations

from datetime import datetime

from lifecycle.flows.model import Wait
from lifecycle.flows.program import program
from lifecycle.flows.runs import run_key
from lifecycle.ids import stable_id
from lifecycle.playbook import Playbook
from lifecycle.policy import in_holdout
from lifecycle.state import CustomerState, FlowRun, RunOrder, ViewMark
from schemas.records import Campaign, Stage

__all__ = ["adopt_legacy"]


def adopt_legacy(state: CustomerState, playbook: Playbook) -> None:
    """Turn a pre-flows record's campaign fields into the built-in flows' runs, with
    the same wake-up times, so a mail in flight is neither lost nor sent twice."""
    legacy = state.legacy
    state.legacy = None
    if legacy is None:
        return
    prog = program(playbook)
    customer = state.customer_id

    def adopt(name: str, value: str, started: datetime, order: RunOrder | None = None) -> None:
        cf = prog.flows.get(name)
        if cf is None:
            return
        first = cf.steps.get("0")
        if not isinstance(first, Wait):
            return
        state.runs[run_key(name, value)] = FlowRun(
            flow=name,
            key=value,
            run_id=stable_id("run", customer, name, value, "legacy"),
            started_at=started,
            step="0",
            wake_at=started + first.wait,
            holdout=cf.holdout > 0 and in_holdout(name, customer, cf.holdout),
            order=order,
        )

    if legacy.cart_touched_at is not None and state.cart:
        adopt(Campaign.CART_ABANDONMENT.value, "", legacy.cart_touched_at)
    if legacy.browse_started_at is not None and legacy.browsed:
        for product in legacy.browsed:
            state.views.append(ViewMark(product=product, at=legacy.browse_started_at))
        adopt(Campaign.BROWSE_ABANDONMENT.value, "", legacy.browse_started_at)
    for order_id, review in legacy.pending_reviews.items():
        order = RunOrder(
            order_id=order_id, total=None, currency=None, items=(), products=tuple(review.products)
        )
        adopt(Campaign.REVIEW_REQUEST.value, order_id, review.at, order)
    if (
        state.stage is Stage.FIRST_TIME_BUYER
        and not legacy.nudged
        and state.first_order_at is not None
    ):
        adopt(Campaign.SECOND_PURCHASE_NUDGE.value, "", state.first_order_at)
    if state.signed_up_at is not None:
        welcome = prog.flows.get(Campaign.WELCOME.value)
        if welcome is not None and welcome.flow.re_entry != "always":
            state.entered[Campaign.WELCOME.value] = state.signed_up_at

"""The worker's HTTP endpoints besides /metrics: health, readiness, customer lookup.

``/health`` answers while the process serves requests (a liveness probe);
``/ready`` only once this worker has partitions, their tables are recovered
and it is not rebalancing (a readiness probe). ``/customers/{id}`` is served
by the worker that owns the key (Faust's table routing forwards the request),
behind a bearer token when ``LIFECYCLE_API_TOKEN`` is set. Personal fields
are in the response, for the people allowed to ask, and never in a log line.
"""

from __future__ import annotations

import hmac
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from faust.web import View

from lifecycle.playbook import Playbook
from lifecycle.scoring import rfm_segment, snapshot
from lifecycle.state import CustomerState
from schemas.codec import dumps, to_jsonable

if TYPE_CHECKING:
    from agents.lifecycle import LifecycleProcessor

__all__ = ["serve"]

_DASHBOARD = Path(__file__).with_name("dashboard.html")


def ready(app: Any, processor: LifecycleProcessor) -> tuple[bool, str]:
    """Whether this worker can serve its partitions now, and why not if it cannot."""
    if app.rebalancing:
        return False, "rebalancing"
    if getattr(app, "in_recovery", False) or not app.tables.recovery.completed.is_set():
        return False, "recovering tables"
    if not app.consumer.assignment():
        return False, "no partitions assigned"
    if processor.timers_stale:
        return False, "timer heaps not rebuilt yet"
    if not processor.broker_reachable:
        return False, "broker unreachable"
    return True, "ready"


def customer_view(state: CustomerState, playbook: Playbook, now: datetime) -> dict[str, Any]:
    """The record, with its scores as of ``now`` and its deadlines in order."""
    scores = snapshot(state, now, playbook.scores)
    record = to_jsonable(state)
    return {
        "customer_id": state.customer_id,
        "stage": record["stage"],
        "scores": {**to_jsonable(scores), "segment": rfm_segment(scores.rfm)},
        "pending_timers": [
            {"timer": name, "due": record["timers"][name]}
            for name, _ in sorted(state.timers.items(), key=lambda item: item[1])
        ],
        "recent_transitions": record["history"],
        "record": record,
    }


def _authorised(request: Any, token: str | None) -> bool:
    if not token:
        return True
    given = request.headers.get("Authorization", "")
    return hmac.compare_digest(given.encode(), f"Bearer {token}".encode())


def serve(app: Any, processor: LifecycleProcessor) -> None:
    settings = processor.settings
    table = processor.table

    class Health(View):
        async def get(self, request: Any) -> Any:
            return self.json({"status": "ok"})

    class Ready(View):
        async def get(self, request: Any) -> Any:
            ok, why = ready(app, processor)
            return self.json({"ready": ok, "reason": why}, status=200 if ok else 503)

    class Customer(View):
        async def get(self, request: Any, customer_id: str) -> Any:
            token = settings.api_token.get_secret_value() if settings.api_token else None
            if not _authorised(request, token):
                return self.json({"error": "unauthorized"}, status=401)
            return await routed(self, request, customer_id=customer_id)

    async def lookup(view: Any, request: Any, customer_id: str) -> Any:
        state = processor.load(customer_id.encode())
        if state is None:
            return view.json({"error": "no such customer"}, status=404)
        body = customer_view(state, processor.playbook, datetime.now(UTC))
        return view.bytes(dumps(body), content_type="application/json")

    # Faust forwards the request to the worker owning the key, or calls ``lookup`` here.
    routed: Any = app.table_route(table=table, match_info="customer_id")(lookup)

    page = _DASHBOARD.read_text(encoding="utf-8")  # read once, served on every visit

    class Dashboard(View):
        async def get(self, request: Any) -> Any:
            return self.html(page)

    class DashboardData(View):
        async def get(self, request: Any) -> Any:
            body = {
                **processor.metrics.summary(),
                "worker": f"{settings.web_host}:{settings.web_port}",
                "at": time.time(),
            }
            return self.json(body)

    # Faust mounts a plain production index at "/": the dashboard takes its place.
    app.web.production_blueprints = []
    app.page("/", name="dashboard")(Dashboard)
    app.page("/dashboard.json", name="dashboard-data")(DashboardData)
    app.page("/health", name="health")(Health)
    app.page("/ready", name="ready")(Ready)
    app.page("/customers/{customer_id}", name="customer")(Customer)

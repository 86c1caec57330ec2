"""The worker's HTTP endpoints besides /metrics: health, readiness, customer lookup,
dashboard, and the bearer token in front of them.

``/health`` answers while the process serves requests (a liveness probe);
``/ready`` only once this worker has partitions, their tables are recovered,
it knows where each partition resumes and it is not rebalancing (a readiness
probe): a message handed over earlier would wait. ``/customers/{id}`` is served
by the worker that owns the key (Faust's table routing forwards the request,
headers included). Personal fields are in the response, for the people
allowed to ask, and never in a log line. ``/dashboard.json`` is this worker's
figures; ``/cluster.json`` (what the dashboard polls) is every worker's and their
sum, gathered by the worker asked (``agents/peers.py``).

With ``LIFECYCLE_API_TOKEN`` set, every path but the two probes needs
``Authorization: Bearer <token>``: deny by default, so an endpoint added later
(or one Faust mounts) is guarded without anyone remembering to. Orchestrators
probe without secrets, and the probes say nothing about customers. A browser
cannot send that header on a navigation, so ``/`` answers 401 with the
dashboard page itself, which holds no data: it asks for the token (or takes it
from the URL fragment, which never reaches a server) and sends it on its fetches.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import logging
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web
from faust.web import View

from agents import peers
from agents.cluster_summary import merge
from lifecycle.clock import reading_time
from lifecycle.playbook import Playbook
from lifecycle.scoring import rfm_segment, snapshot
from lifecycle.state import CustomerState
from schemas.codec import dumps, to_jsonable

if TYPE_CHECKING:
    from agents.lifecycle import LifecycleProcessor

__all__ = ["OPEN_PATHS", "authorised", "exposure_warning", "page_headers", "serve"]

log = logging.getLogger(__name__)

_DASHBOARD = Path(__file__).with_name("dashboard.html")

_DAY = timedelta(days=1)

OPEN_PATHS = frozenset({"/health", "/ready"})
"""The only paths answered without the token: liveness and readiness probes."""


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
    if not processor.resumed:
        return False, "resume points not read yet"
    if not processor.broker_reachable:
        return False, "broker unreachable"
    return True, "ready"


def customer_view(state: CustomerState, playbook: Playbook, now: datetime) -> dict[str, Any]:
    """The record, with its scores as of ``now`` (``scores_at``) and its deadlines in order."""
    scores = snapshot(state, now, playbook.scores)
    record = to_jsonable(state)
    since = None if state.last_order_at is None else now - state.last_order_at
    return {
        "customer_id": state.customer_id,
        "stage": record["stage"],
        "scores_at": now.isoformat(),
        "scores": {
            **to_jsonable(scores),
            "segment": rfm_segment(scores.rfm),
            "days_since_last_order": None if since is None else round(since / _DAY, 2),
        },
        "pending_timers": [
            {"timer": name, "due": record["timers"][name]}
            for name, _ in sorted(state.timers.items(), key=lambda item: item[1])
        ],
        "recent_transitions": record["history"],
        "record": record,
    }


def authorised(header: str, token: str) -> bool:
    """Whether an Authorization header carries ``token`` (the scheme is case-insensitive,
    RFC 9110); compared in constant time, so timing tells nothing about the token."""
    scheme, _, given = header.strip().partition(" ")
    matches = hmac.compare_digest(given.strip().encode(), token.encode())
    return scheme.lower() == "bearer" and matches


def exposure_warning(host: str, token_set: bool) -> str | None:
    """What to warn about when the API is open to more than this machine."""
    if token_set or _loopback(host):
        return None
    return (
        f"LIFECYCLE_API_TOKEN is not set and the web server binds {host or 'every address'}: "
        "customer records, the dashboard and /metrics are open to anyone who can reach it. "
        "Set LIFECYCLE_API_TOKEN, or bind LIFECYCLE_WEB_HOST=127.0.0.1."
    )


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name, or "" (every address): reachable from elsewhere


def page_headers(page: str) -> dict[str, str]:
    """Headers of the dashboard page: only its own inline script may run, so a script
    injected some other way cannot read the token the page keeps in sessionStorage."""
    script = re.search(r"<script>(.*?)</script>", page, re.DOTALL)
    assert script is not None, "the dashboard page has one inline script"
    digest = base64.b64encode(hashlib.sha256(script.group(1).encode()).digest()).decode()
    policy = (
        f"default-src 'none'; script-src 'sha256-{digest}'; style-src 'unsafe-inline'; "
        "connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'"
    )
    return {
        "Content-Security-Policy": policy,
        "Cache-Control": "no-store",
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
    }


def _guard(app: Any, token: str, page: str, headers: dict[str, str]) -> None:
    """Put the token in front of every path but ``OPEN_PATHS`` (an aiohttp middleware,
    so it also covers what Faust mounts itself)."""
    challenge = {"WWW-Authenticate": 'Bearer realm="lifecycle"'}

    @web.middleware
    async def require_token(request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path in OPEN_PATHS or authorised(
            request.headers.get("Authorization", ""), token
        ):
            response: web.StreamResponse = await handler(request)
            return response
        if request.path == "/":
            return web.Response(
                status=401, text=page, content_type="text/html", headers={**headers, **challenge}
            )
        return web.json_response({"error": "unauthorized"}, status=401, headers=challenge)

    app.web.web_app.middlewares.append(require_token)


def serve(app: Any, processor: LifecycleProcessor, table: Any) -> None:
    """The worker's views; ``table`` (the customers table) routes ``/customers/{id}``."""
    settings = processor.settings

    class Health(View):
        async def get(self, request: Any) -> Any:
            return self.json({"status": "ok"})

    class Ready(View):
        async def get(self, request: Any) -> Any:
            ok, why = ready(app, processor)
            return self.json({"ready": ok, "reason": why}, status=200 if ok else 503)

    class Customer(View):
        async def get(self, request: Any, customer_id: str) -> Any:
            return await routed(self, request, customer_id=customer_id)

    async def lookup(view: Any, request: Any, customer_id: str) -> Any:
        state = processor.load(customer_id.encode())
        if state is None:
            return view.json({"error": "no such customer"}, status=404)
        key = customer_id.encode()
        now = reading_time(
            settings.clock, processor.clock_of(key), state.last_event_at, datetime.now(UTC)
        )
        body = customer_view(state, processor.playbook, now)
        return view.bytes(dumps(body), content_type="application/json")

    # Faust forwards the request to the worker owning the key, or calls ``lookup`` here.
    routed: Any = app.table_route(table=table, match_info="customer_id")(lookup)

    page = _DASHBOARD.read_text(encoding="utf-8")  # read once, served on every visit
    headers = page_headers(page)

    class Dashboard(View):
        async def get(self, request: Any) -> Any:
            return self.html(page, headers=headers)

    def own_summary() -> dict[str, Any]:
        return {
            **processor.metrics.summary(),
            "worker": f"{settings.web_host}:{settings.web_port}",
            "at": time.time(),
        }

    class DashboardData(View):
        async def get(self, request: Any) -> Any:
            return self.json(own_summary())

    token = None if settings.api_token is None else settings.api_token.get_secret_value()

    class ClusterData(View):
        """Every worker's figures and their sum: what the dashboard shows."""

        async def get(self, request: Any) -> Any:
            answers = await peers.gather(app, own_summary(), token)
            return self.json(merge(answers, answers[0].worker, time.time()))

    # Faust mounts a plain production index at "/": the dashboard takes its place.
    app.web.production_blueprints = []
    app.page("/", name="dashboard")(Dashboard)
    app.page("/dashboard.json", name="dashboard-data")(DashboardData)
    app.page("/cluster.json", name="cluster-data")(ClusterData)
    app.page("/health", name="health")(Health)
    app.page("/ready", name="ready")(Ready)
    app.page("/customers/{customer_id}", name="customer")(Customer)

    if token is not None:
        _guard(app, token, page, headers)
    warning = exposure_warning(settings.web_host, settings.api_token is not None)
    if warning is not None:

        async def warn_exposed() -> None:
            log.warning(warning)

        app.task(warn_exposed)  # at start, once Faust's logging is set up

"""The other workers of the group, as the dashboard reaches them: their addresses from
Faust's partition assignor, and their ``/dashboard.json`` fetched over HTTP.

Faust's assignor learns each member's advertised web address (its canonical URL,
``LIFECYCLE_WEB_HOST``:``LIFECYCLE_WEB_PORT``) at every rebalance; it is how
``/customers/{id}`` reaches the worker that owns a key, and here how the worker
serving the dashboard reaches every member. Each peer gets ``PEER_TIMEOUT``
seconds; one that does not answer in time (stopped, overloaded, unreachable)
comes back as an ``Answer`` with the reason, so the page shows it as missing.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from agents.cluster_summary import Answer

__all__ = ["PEER_TIMEOUT", "gather", "members"]

PEER_TIMEOUT = 2.0
"""Seconds a peer has to answer before the dashboard shows it as missing (the page
polls every 2 s)."""


def _address(url: Any) -> str:
    return str(url).rstrip("/")


def members(app: Any) -> list[str]:
    """Every group member's web address as of the last rebalance, this worker's first."""
    own = _address(app.conf.canonical_url)
    assignor = app.assignor
    known = {*assignor.tables_metadata(), *assignor.external_topics_metadata()}
    return [own, *sorted({_address(url) for url in known} - {own})]


async def _fetch(session: Any, url: str, headers: dict[str, str]) -> Answer:
    timeout = aiohttp.ClientTimeout(total=PEER_TIMEOUT)
    try:
        async with session.get(f"{url}/dashboard.json", headers=headers, timeout=timeout) as reply:
            if reply.status != 200:
                return Answer(url, None, f"HTTP {reply.status}")
            summary: dict[str, Any] = await reply.json()
            return Answer(url, summary)
    except TimeoutError:
        return Answer(url, None, f"no answer in {PEER_TIMEOUT:g} s")
    except Exception as exc:  # any failure of one peer shows it missing,
        # it never fails the page (a reset connection, a reply that is not JSON, ...)
        return Answer(url, None, f"unreachable ({type(exc).__name__})")


async def gather(app: Any, own: dict[str, Any], token: str | None) -> list[Answer]:
    """This worker's summary and every other member's, asked at once, in ``members``
    order. ``token`` is the API token the peers expect (the group shares one)."""
    addresses = members(app)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    others = [_fetch(app.http_client, url, headers) for url in addresses[1:]]
    return [Answer(addresses[0], own), *await asyncio.gather(*others)]

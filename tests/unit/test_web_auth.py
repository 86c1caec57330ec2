"""The bearer-token check and the exposure warning, without a server."""

from __future__ import annotations

import base64
import hashlib
import re

import pytest

from agents.web import _DASHBOARD, authorised, exposure_warning, page_headers

TOKEN = "t0k-en"  # not a secret: a fixture value


@pytest.mark.parametrize(
    ("header", "ok"),
    [
        (f"Bearer {TOKEN}", True),
        (f"bearer {TOKEN}", True),
        (f"BEARER  {TOKEN} ", True),
        ("", False),
        ("Bearer", False),
        ("Bearer ", False),
        (f"Basic {TOKEN}", False),
        (f"Bearer {TOKEN}x", False),
        (f"Bearer {TOKEN[:-1]}", False),
        (TOKEN, False),
    ],
)
def test_bearer_header(header: str, ok: bool) -> None:
    assert authorised(header, TOKEN) is ok


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.53", "::1", "localhost"])
def test_no_warning_on_loopback(host: str) -> None:
    assert exposure_warning(host, token_set=False) is None


@pytest.mark.parametrize("host", ["0.0.0.0", "", "::", "10.1.2.3", "worker-1"])  # noqa: S104
def test_warning_when_reachable_without_a_token(host: str) -> None:
    warning = exposure_warning(host, token_set=False)
    assert warning is not None
    assert "LIFECYCLE_API_TOKEN is not set" in warning
    assert exposure_warning(host, token_set=True) is None


def test_page_policy_allows_exactly_the_page_script() -> None:
    page = _DASHBOARD.read_text(encoding="utf-8")
    (script,) = re.findall(r"<script>(.*?)</script>", page, re.DOTALL)
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    policy = page_headers(page)["Content-Security-Policy"]
    assert f"script-src 'sha256-{digest}';" in policy
    assert "unsafe-inline" not in policy.split("script-src", 1)[1].split(";", 1)[0]
    assert "frame-ancestors 'none'" in policy
    assert (
        page_headers(page.replace("refresh();", "refresh(); "))["Content-Security-Policy"] != policy
    )

"""The dashboard in a real headless Chromium, behind the API token: its numbers are the
metrics' numbers, and the token reaches it from the URL fragment or the page's form."""

from __future__ import annotations

import secrets
import shutil
import time
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright
from pydantic import SecretStr

from lifecycle.simulation import simulate
from tests.integration.engine import (
    OUTPUTS,
    ROOT,
    Samples,
    Worker,
    backtest,
    collect,
    create_topics,
    publish,
    publish_raw,
    scrape,
    unique_settings,
    value,
    wait_for,
)

SCREENSHOT = ROOT / "test-artifacts" / "dashboard.png"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Headless and quiet: this machine's network is closed, so no background traffic.
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def test_dashboard_shows_the_metrics(kafka_bootstrap: str, tmp_path: Path) -> None:
    assert Path(CHROMIUM).exists(), "Chromium is missing: `make test` installs Debian's chromium"
    token = secrets.token_urlsafe(24)
    settings = unique_settings(kafka_bootstrap, tmp_path).model_copy(
        update={"lag_interval": 1.0, "api_token": SecretStr(token)}
    )
    create_topics(settings)
    events = list(simulate(120, seed=9))
    runner, expected = backtest(settings, events)
    assert publish(settings, events) == len(events)
    publish_raw(settings, [(settings.topic("cart"), b"k", b"{broken")])
    worker = Worker(settings, tmp_path / "worker.log").start()
    try:
        collect(settings, OUTPUTS, expected=len(expected))
        metrics: Samples = wait_for(
            lambda: (
                (m := scrape(settings))
                and value(m, "kafka_consumergroup_lag_sum", consumergroup=settings.app_id) == 0
                and m
            )
        )
        assert metrics
        time.sleep(1.5)  # one more lag measurement: the page and the scrape agree
        metrics = scrape(settings)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            url = f"http://{settings.web_host}:{settings.web_port}/"
            log_in_with_the_form(browser, url, token)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(f"{url}#token={token}")
            wait_until_rendered(page)
            assert page.url == url  # the fragment is wiped at once
            assert page.is_hidden("#login")
            SCREENSHOT.parent.mkdir(exist_ok=True)
            page.screenshot(path=str(SCREENSHOT), full_page=True)
            stages = {
                row.get_attribute("id").removeprefix("stage-"): int(
                    row.locator("td").nth(1).inner_text()
                )  # type: ignore[union-attr]
                for row in page.locator("#funnel tbody tr").all()
            }
            campaigns = {
                row.get_attribute("id").removeprefix("campaign-"): [  # type: ignore[union-attr]
                    float(row.locator("td").nth(i).inner_text()) for i in (1, 2, 3)
                ]
                for row in page.locator("#campaigns tbody tr").all()
            }
            lift = {
                row.get_attribute("id").removeprefix("lift-"): [  # type: ignore[union-attr]
                    row.locator("td").nth(i).inner_text() for i in (1, 2, 3)
                ]
                for row in page.locator("#lift tbody tr").all()
            }
            dead_letters = int(page.inner_text("#dead-letters"))
            lag_total = float(page.inner_text("#lag-total"))
            transitions = float(page.inner_text("#transitions"))
            browser.close()
    finally:
        worker.stop()
    assert SCREENSHOT.stat().st_size > 10_000
    for stage, count in stages.items():
        assert count == value(metrics, "lifecycle_customers", stage=stage), stage
    assert sum(stages.values()) == len(runner.states)
    for campaign, (sent, held, suppressed) in campaigns.items():
        samples = {
            labels: v
            for (name, labels), v in metrics.items()
            if name == "lifecycle_triggers_total" and ("campaign", campaign) in labels
        }
        got = [
            sum(v for labels, v in samples.items() if ("outcome", outcome) in labels)
            for outcome in ("emitted", "held_out", "suppressed")
        ]
        assert [sent, held, suppressed] == got, campaign
    assert set(campaigns) == set(runner.summary.triggers_by_campaign) | {
        k.split(":")[0] for k in runner.summary.suppressed
    }
    # Lift per campaign: each group's closed windows, as the counters have them.
    closed = {
        (dict(labels)["campaign"], dict(labels)["group"], dict(labels)["converted"]): v
        for (name, labels), v in metrics.items()
        if name == "lifecycle_attributed_triggers_total"
    }
    assert lift
    assert set(lift) == {campaign for campaign, _, _ in closed}
    for campaign, (treated, holdout, difference) in lift.items():
        for text, group in ((treated, "treated"), (holdout, "holdout")):
            n = closed.get((campaign, group, "true"), 0) + closed.get((campaign, group, "false"), 0)
            assert text.endswith(f" of {int(n)}"), (campaign, group, text)
        assert difference == "holdout too small" or " pp [" in difference, difference
    assert dead_letters == 1
    assert lag_total == 0
    assert transitions == runner.summary.transitions


def wait_until_rendered(page: Page) -> None:
    # A locator, not wait_for_function: the page's CSP forbids the eval that one needs.
    expect(page.locator("#updated")).not_to_have_text("never", timeout=30_000)


def log_in_with_the_form(browser: Browser, url: str, token: str) -> None:
    """A fresh tab with no token: the page asks, refuses a wrong one, takes the right one."""
    page = browser.new_page()
    page.goto(url)
    page.wait_for_selector("#login", state="visible")
    assert page.inner_text("#updated") == "never"
    page.fill("#token", "not-the-token")
    page.click("#login button")
    expect(page.locator("#login-message")).to_have_text("that token was refused")
    assert page.inner_text("#updated") == "never"
    page.fill("#token", token)
    page.click("#login button")
    wait_until_rendered(page)
    assert page.is_hidden("#login")
    assert int(page.inner_text("#transitions")) > 0
    page.close()


@pytest.fixture(autouse=True)
def _name_the_screenshot(request: pytest.FixtureRequest) -> None:
    request.node.user_properties.append(("screenshot", str(SCREENSHOT)))

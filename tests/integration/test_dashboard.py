"""The dashboard in a real headless Chromium, behind the API token, with two workers:
its numbers are both workers' metrics, summed and side by side; nothing is cut off or
overlaps at 1280 and 1920 px; a worker that stops answering shows as missing; the token
reaches the page from the URL fragment or the page's form."""

from __future__ import annotations

import os
import secrets
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright
from pydantic import SecretStr

from analytics.simulation import simulate
from harness.engine import (
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
    wait_ready,
)
from streams.broker import find_free_port
from streams.settings import Settings

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


def test_dashboard_shows_every_workers_metrics(kafka_bootstrap: str, tmp_path: Path) -> None:
    assert Path(CHROMIUM).exists(), "Chromium is missing: `make test` installs Debian's chromium"
    token = secrets.token_urlsafe(24)
    first = unique_settings(kafka_bootstrap, tmp_path).model_copy(
        update={"lag_interval": 1.0, "api_token": SecretStr(token)}
    )
    second = first.model_copy(
        update={"web_port": find_free_port(1), "data_dir": tmp_path / "second"}
    )
    create_topics(first)
    events = list(simulate(120, seed=9))
    runner, expected = backtest(first, events)
    workers = [
        Worker(first, tmp_path / "first.log").start(),
        Worker(second, tmp_path / "second.log").start(),
    ]
    try:
        # Both own partitions before any input, so no rebalance re-counts an event.
        assert wait_for(lambda: all(wait_ready(s)["status"] == 200 for s in (first, second)))
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            url = f"http://{first.web_host}:{first.web_port}/"
            pages = {}
            for width, height in WIDTHS:  # open while the events flow: the sparklines draw them
                page = browser.new_page(viewport={"width": width, "height": height})
                page.goto(f"{url}#token={token}")
                wait_until_rendered(page)
                assert page.url == url  # the fragment is wiped at once
                assert page.is_hidden("#login")
                expect(page.locator("#answered")).to_have_text("2 of 2")
                pages[width] = page
            # Apart from Playwright's event loop: the publisher and reader run their own.
            with ThreadPoolExecutor(1) as thread:
                thread.submit(feed, first, events, len(expected)).result()
            assert wait_for(lambda: all(lag_is_zero(s) for s in (first, second)))
            time.sleep(1.5)  # one more lag measurement: the page and the scrapes agree
            metrics = [scrape(s) for s in (first, second)]
            for width, page in pages.items():
                transitions = str(runner.summary.transitions)
                expect(page.locator("#transitions")).to_have_text(transitions, timeout=30_000)
                expect(page.locator("#answered")).to_have_text("2 of 2")
                highest = page.locator("#spark-throughput title").text_content() or ""
                assert float(highest.rsplit(" ", 1)[1]) > 0, highest  # the flow was drawn
                for worker in (first, second):
                    trend = f'#workers tr[data-worker="{address(worker)}"] svg polyline'
                    assert page.locator(trend).count() == 1
                assert layout_problems(page) == [], width
                page.screenshot(path=str(screenshot(width)), full_page=True)
            page = pages[1280]
            shown = read_dashboard(page)
            rows = [worker_row(page, s) for s in (first, second)]
            log_in_with_the_form(browser, url, token)
            # A worker that stops answering is shown as missing, not dropped.
            workers[1].pause()
            try:
                missing = page.locator(f'#workers tr[data-worker="{address(second)}"]')
                expect(missing).to_contain_text("missing: no answer in 2 s", timeout=30_000)
                expect(page.locator("#answered")).to_have_text("1 of 2")
                assert layout_problems(page) == []
            finally:
                workers[1].resume()
            expect(page.locator("#answered")).to_have_text("2 of 2", timeout=30_000)
            browser.close()
        for worker in workers:
            worker.assert_alive()
    finally:
        for worker in workers:
            worker.stop()
    for width, _ in WIDTHS:
        assert screenshot(width).stat().st_size > 10_000
    for row, samples in zip(rows, metrics, strict=True):
        assert row["status"] == "ok"
        assert row["customers"] == total(samples, "lifecycle_customers")
        assert row["customers"] > 0  # each worker holds some of the customers
        assert row["events accepted"] == total(
            samples, "lifecycle_events_total", outcome="accepted"
        )
        assert row["transitions"] == total(samples, "lifecycle_transitions_total")
        assert row["suppressed"] == total(samples, "lifecycle_triggers_total", outcome="suppressed")
    for stage, count in shown["stages"].items():
        assert count == sum(value(m, "lifecycle_customers", stage=stage) for m in metrics), stage
    assert sum(shown["stages"].values()) == len(runner.states)
    for campaign, (sent, held, suppressed) in shown["campaigns"].items():
        got = [
            sum(total(m, "lifecycle_triggers_total", campaign=campaign, outcome=o) for m in metrics)
            for o in ("emitted", "held_out", "suppressed")
        ]
        assert [sent, held, suppressed] == got, campaign
    assert set(shown["campaigns"]) == set(runner.summary.triggers_by_campaign) | {
        k.split(":")[0] for k in runner.summary.suppressed
    }
    assert any(suppressed for _, _, suppressed in shown["campaigns"].values())
    # Lift per campaign: each group's closed windows, as both workers' counters have them.
    closed: dict[tuple[str, str, str], float] = {}
    for m in metrics:
        for (name, labels), v in m.items():
            if name == "lifecycle_attributed_triggers_total":
                key = (dict(labels)["campaign"], dict(labels)["group"], dict(labels)["converted"])
                closed[key] = closed.get(key, 0) + v
    assert shown["lift"]
    assert set(shown["lift"]) == {campaign for campaign, _, _ in closed}
    for campaign, (treated, holdout, difference) in shown["lift"].items():
        for text, group in ((treated, "treated"), (holdout, "holdout")):
            n = closed.get((campaign, group, "true"), 0) + closed.get((campaign, group, "false"), 0)
            assert text.endswith(f" of {int(n)}"), (campaign, group, text)
        lift_text = " ".join(difference.split())  # the interval is on a line of its own
        assert lift_text == "holdout too small" or " pp [" in lift_text, lift_text

    # Per flow: the table is the backtest's own (both workers' counters summed).
    def reasons(counts: dict[str, int]) -> str:
        return ", ".join(f"{reason} {n}" for reason, n in counts.items()) or "-"

    flows = runner.summary.flows.as_dict()
    assert shown["flows"] == {
        name: [
            str(f["entered"]),
            reasons(f["exited"]),
            str(f["sent"]),
            str(f["held_out"]),
            reasons(f["suppressed"]),
            reasons(f["skipped"]),
        ]
        for name, f in flows.items()
    }
    assert any(f["sent"] for f in flows.values())
    lifted = {
        dict(labels)["flow"]
        for m in metrics
        for (name, labels), _ in m.items()
        if name == "lifecycle_flow_attributed_total"
    }
    assert set(shown["flow_lift"]) == lifted
    assert shown["dead_letters"] == 1
    assert shown["lag_total"] == 0
    assert shown["lag_topics"] == len(first.inbound_topics) + 1  # and the merge topic
    assert shown["transitions"] == runner.summary.transitions


WIDTHS = ((1280, 900), (1920, 1080))
EVENTS_PER_SECOND = 150.0
"""Paced so the pages poll a few times while the workers take the events in."""
SCREENSHOTS = Path(os.environ.get("LIFECYCLE_SCREENSHOTS") or ROOT / "test-artifacts")
"""Where the dashboard's screenshots go (dashboard-1280.png, dashboard-1920.png)."""


def screenshot(width: int) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS / f"dashboard-{width}.png"


def feed(settings: Settings, events: list[dict[str, Any]], outputs: int) -> None:
    """Publish ``events`` paced and one broken message, and wait for every output."""
    assert publish(settings, events, rate=EVENTS_PER_SECOND) == len(events)
    publish_raw(settings, [(settings.topic("cart"), b"k", b"{broken")])
    collect(settings, OUTPUTS, expected=outputs)


def address(settings: Settings) -> str:
    return f"{settings.web_host}:{settings.web_port}"


def lag_is_zero(settings: Settings) -> bool:
    samples = scrape(settings)
    return ("kafka_consumergroup_lag_sum", (("consumergroup", settings.app_id),)) in samples and (
        value(samples, "kafka_consumergroup_lag_sum", consumergroup=settings.app_id) == 0
    )


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(v for (n, have), v in samples.items() if n == name and wanted <= set(have))


def worker_row(page: Page, settings: Settings) -> dict[str, Any]:
    """A worker's line in the workers table, by column heading."""
    headings = [th.inner_text() for th in page.locator("#workers thead th").all()]
    cells = page.locator(f'#workers tr[data-worker="{address(settings)}"] td').all()
    row: dict[str, Any] = {}
    for heading, cell in zip(headings, cells, strict=True):
        text = cell.inner_text()
        row[heading] = float(text) if text.replace(".", "", 1).isdigit() else text
    return row


def read_dashboard(page: Page) -> dict[str, Any]:
    def rows(table: str) -> dict[str, list[str]]:
        return {
            row.get_attribute("id").split("-", 1)[1]: [  # type: ignore[union-attr]
                td.inner_text() for td in row.locator("td").all()[1:]
            ]
            for row in page.locator(f"#{table} tbody tr").all()
        }

    return {
        "stages": {stage: int(cells[0]) for stage, cells in rows("funnel").items()},
        "campaigns": {
            name: [float(cells[i]) for i in range(3)] for name, cells in rows("campaigns").items()
        },
        "lift": {name: [cells[i] for i in range(3)] for name, cells in rows("lift").items()},
        "flows": rows("flows"),
        "flow_lift": {name: cells[:3] for name, cells in rows("flow-lift").items()},
        "dead_letters": int(page.inner_text("#dead-letters")),
        "lag_total": float(page.inner_text("#lag-total")),
        "lag_topics": page.locator("#lag tbody tr").count(),
        "transitions": float(page.inner_text("#transitions")),
    }


# What the page must not do at any width: an element whose content is wider than its box
# (cut off, or spilling over its neighbour), a card overlapping another, a cell outside its
# card, or the page scrolling sideways. Every element is checked, only the sparklines'
# insides are left out (SVG shapes have no scroll box).
LAYOUT_CHECK = """() => {
  const problems = [];
  const describe = (el) => el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") +
    (el.className && typeof el.className === "string" ? "." + el.className : "") +
    " '" + (el.textContent || "").trim().slice(0, 40) + "'";
  for (const el of document.querySelectorAll("body *")) {
    if (el.closest("svg") || el.tagName === "SCRIPT" || el.closest("[hidden]")) continue;
    const style = getComputedStyle(el);
    if (style.display === "none" || ["auto", "scroll"].includes(style.overflowX)) continue;
    if (el.clientWidth > 0 && el.scrollWidth > el.clientWidth + 1) {
      problems.push(`${describe(el)}: content ${el.scrollWidth}px wide in ${el.clientWidth}px`);
    }
  }
  if (document.documentElement.scrollWidth > window.innerWidth) {
    problems.push(`page ${document.documentElement.scrollWidth}px wide in ${window.innerWidth}px`);
  }
  const cards = [...document.querySelectorAll("section")];
  cards.forEach((a, i) => cards.slice(i + 1).forEach((b) => {
    const r = a.getBoundingClientRect(), s = b.getBoundingClientRect();
    const apart = r.right <= s.left + 1 || s.right <= r.left + 1 ||
                  r.bottom <= s.top + 1 || s.bottom <= r.top + 1;
    if (!apart) {
      problems.push(`${describe(a)} overlaps ${describe(b)}`);
    }
  }));
  for (const el of document.querySelectorAll("section td, section th, section svg, section div")) {
    const r = el.getBoundingClientRect(), card = el.closest("section").getBoundingClientRect();
    if (r.left < card.left - 0.5 || r.right > card.right + 0.5 || r.bottom > card.bottom + 0.5) {
      problems.push(`${describe(el)} outside its card`);
    }
  }
  return problems;
}"""


def layout_problems(page: Page) -> list[str]:
    problems: list[str] = page.evaluate(LAYOUT_CHECK)
    return problems


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
def _name_the_screenshots(request: pytest.FixtureRequest) -> None:
    for width, _ in WIDTHS:
        request.node.user_properties.append((f"screenshot-{width}", str(screenshot(width))))

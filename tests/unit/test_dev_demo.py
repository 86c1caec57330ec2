"""``lifecycle dev`` runs the new flows: the demo playbook, and a shop with the extras
they read (no broker: what the command hands its worker and its shop)."""

from __future__ import annotations

import itertools
import os
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.dev import demo_playbook, playbook_of, shop_events, worker_env
from cli.main import main
from lifecycle.backtest import Backtest
from lifecycle.flows import yaml12
from lifecycle.playbook import default_playbook, parse_playbook
from schemas.codec import dumps
from streams.producer import partitioner
from tests.scenarios import recipes


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("LIFECYCLE_"):
            monkeypatch.delenv(name)


def test_the_worker_gets_the_demo_playbook_unless_one_is_named(tmp_path: Path) -> None:
    env = worker_env({"PATH": "/bin"}, "127.0.0.1:9092", tmp_path / "worker")
    assert env["LIFECYCLE_PLAYBOOK"] == str(demo_playbook())
    assert demo_playbook() == recipes.DEMO_PLAYBOOK  # the packaged file the README quotes
    assert env["LIFECYCLE_CLOCK"] == "event"
    assert env["LIFECYCLE_BROKER"] == "127.0.0.1:9092"
    assert env["LIFECYCLE_DATA_DIR"] == str(tmp_path / "worker")
    assert env["PATH"] == "/bin"
    own = {"LIFECYCLE_PLAYBOOK": "/shop/playbook.yaml", "LIFECYCLE_CLOCK": "wall"}
    env = worker_env(own, "127.0.0.1:9092", tmp_path)
    assert env["LIFECYCLE_PLAYBOOK"] == "/shop/playbook.yaml"
    assert env["LIFECYCLE_CLOCK"] == "wall"
    assert playbook_of({"LIFECYCLE_PLAYBOOK": ""}) == demo_playbook()


def test_the_shop_sends_what_the_demo_flows_read() -> None:
    events = list(itertools.islice(shop_events(200, seed=3), 20000))
    kinds = Counter(e["type"] for e in events)
    wishes = [e for e in events if e["type"] == "custom"]
    assert wishes
    assert {e["name"] for e in wishes} == {"wishlist_add"}
    assert all("product_id" in e["properties"] for e in wishes)
    signups = [e for e in events if e["type"] == "signup"]
    assert signups
    assert all("birthday" in e["traits"] for e in signups)
    categories = {i["category"] for e in events if e["type"] == "purchase" for i in e["items"]}
    assert "coffee" in categories
    assert kinds["cart"] > 0
    assert any("properties" in e for e in events if e["type"] == "cart")


def test_the_demo_playbook_runs_every_recipe_a_wishlist_reminder_and_a_lapsed_note() -> None:
    demo = yaml12.load(demo_playbook().read_text(encoding="utf-8"))
    assert list(demo["flows"]) == [
        "replenish_coffee",
        "cart_abandonment",
        "cart_series",
        "birthday",
        "wishlist_reminder",
        "we_miss_you",
    ]
    trigger = demo["flows"]["wishlist_reminder"]["trigger"]
    assert trigger == {"event": "custom", "where": {"name": "wishlist_add"}}
    assert demo["flows"]["we_miss_you"]["trigger"] == {"segment_enter": "lapsed"}


def test_the_demo_playbook_is_valid() -> None:
    book = parse_playbook(demo_playbook().read_text(encoding="utf-8"), "demo")
    own = {"replenish_coffee", "cart_series", "birthday", "wishlist_reminder", "we_miss_you"}
    assert own <= set(book.flows)


def test_dev_refuses_a_bad_playbook_before_starting_anything(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("flows:\n  x: {trigger: {event: purchse}, steps: [{wait: 1d}]}\n")
    env = {"LIFECYCLE_PLAYBOOK": str(bad), "LIFECYCLE_KAFKA_DIR": str(tmp_path / "kafka")}
    result = CliRunner().invoke(main, ["dev", "--duration", "1"], env=env)
    assert result.exit_code == 1
    [line] = [x for x in result.output.splitlines() if x.startswith("error: ")]
    assert line.startswith(f"error: invalid playbook {bad}: flows.x.trigger.event: unknown event")
    assert not (tmp_path / "kafka").exists()


def test_dev_help_names_the_demo_playbook() -> None:
    result = CliRunner().invoke(main, ["dev", "--help"])
    assert result.exit_code == 0
    assert "demo playbook" in result.output
    assert "LIFECYCLE_PLAYBOOK" in result.output


def test_the_demo_shop_sends_browse_and_cart_abandonment() -> None:
    """The demo's shop leaves sessions without an order, so the built-in abandonment
    flows send in `lifecycle dev`, not only the ones a purchase starts."""
    lines = [dumps(e) for e in shop_events(400, seed=3)]
    backtest = Backtest(default_playbook(), partitioner(6))
    for _ in backtest.run(lines):
        pass
    sent = backtest.summary.triggers_by_campaign
    assert sent["browse_abandonment"] > 10
    assert sent["cart_abandonment"] > 10

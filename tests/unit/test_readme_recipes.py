"""The README's flow recipes: read from README.md, the same as the demo playbook's,
and each run as a journey with exact outputs (tests/scenarios/recipes.py)."""

from __future__ import annotations

import pytest

from lifecycle.flows import yaml12
from lifecycle.playbook import Playbook, parse_playbook
from tests.scenarios import recipes
from tests.scenarios.model import Journey
from tests.scenarios.run import assert_exact

JOURNEYS = recipes.journeys()


def test_the_readme_has_three_recipes() -> None:
    blocks = recipes.readme_recipes()
    assert len(blocks) == 3
    replenishment, cart_series, birthday = (yaml12.load(b) for b in blocks)
    assert list(replenishment["flows"]) == ["replenish_coffee"]
    assert list(cart_series["flows"]) == ["cart_abandonment", "cart_series"]
    assert cart_series["flows"]["cart_abandonment"] == {"enabled": False}
    assert list(birthday["flows"]) == ["birthday"]


def test_the_demo_playbook_holds_the_recipes_a_wishlist_reminder_and_a_lapsed_note() -> None:
    demo = yaml12.load(recipes.DEMO_PLAYBOOK.read_text(encoding="utf-8"))
    named: dict[str, set[str]] = {"segments": set(), "flows": set()}
    for block in recipes.readme_recipes():
        for part, entries in yaml12.load(block).items():
            for name, definition in entries.items():
                assert demo[part][name] == definition, f"{part}.{name}"
                named[part].add(name)
    assert set(demo["segments"]) == named["segments"] | {"lapsed"}
    assert set(demo["flows"]) == named["flows"] | {"wishlist_reminder", "we_miss_you"}


def test_every_recipe_and_the_demo_playbook_are_valid_playbooks() -> None:
    for n, block in enumerate(recipes.readme_recipes()):
        parse_playbook(block, f"README recipe {n + 1}")
    book = parse_playbook(recipes.DEMO_PLAYBOOK.read_text(encoding="utf-8"), "demo")
    assert not book.flows["cart_abandonment"].enabled


@pytest.mark.parametrize("journey", JOURNEYS, ids=[j.name for j in JOURNEYS])
def test_recipe_journey_gives_exactly_the_expected_outputs(
    journey: Journey, playbook: Playbook
) -> None:
    assert_exact(journey, playbook)

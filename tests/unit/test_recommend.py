"""Recommendations: co-purchase counts, owned items excluded, popularity fallback."""

from __future__ import annotations

from lifecycle.core import apply
from lifecycle.playbook import default_playbook
from lifecycle.recommend import POPULAR, MemoryPairs, RecommendationRules, Recommender
from schemas.events import EventAdapter

RULES = RecommendationRules(count=3)


def shop(*orders: list[str], rules: RecommendationRules = RULES) -> Recommender:
    recommender = Recommender(MemoryPairs(), rules)
    for products in orders:
        recommender.record(products)
    return recommender


def test_most_often_bought_together_first() -> None:
    recs = shop(["tea", "pot"], ["tea", "cup"], ["tea", "pot"], ["tea", "pot", "cup", "tin"])
    assert recs.recommend(["tea"], owned=[]) == ["pot", "cup", "tin"]


def test_never_what_the_customer_owns_or_is_looking_at() -> None:
    recs = shop(["tea", "pot"], ["tea", "cup"], ["pot", "cup"])
    assert recs.recommend(["tea"], owned=["pot"]) == ["cup"]
    assert "tea" not in recs.recommend(["tea", "pot"], owned=[])


def test_new_items_fall_back_to_the_most_popular() -> None:
    recs = shop(["tea", "pot"], ["tea"], ["tea"], ["cup"])
    assert recs.recommend(["brand-new"], owned=["cup"]) == ["tea", "pot"]


def test_seeds_add_up_their_neighbours() -> None:
    recs = shop(["a", "x"], ["b", "y"], ["b", "y"], ["a", "y"])
    assert recs.recommend(["a", "b"], owned=[])[0] == "y"  # 1 with a + 2 with b


def test_neighbours_and_popularity_are_bounded() -> None:
    rules = RecommendationRules(count=2, neighbours_kept=2, popular_kept=3)
    store = MemoryPairs()
    recs = Recommender(store, rules)
    recs.record(["a", "b", "c", "d", "e"])
    recs.record(["a", "b"])
    assert store.data["a"] == {"b": 2, "c": 1}  # most frequent kept, ties by id
    assert len(store.data[POPULAR]) == 3


def test_order_thank_you_recommends_from_the_partitions_counts() -> None:
    recs = shop(["tea", "pot"], ["tea", "pot"], ["tea", "cup"])
    body = {
        "event_id": "e1",
        "type": "purchase",
        "occurred_at": "2026-03-01T10:00:00Z",
        "customer_id": "c1",
        "order_id": "o1",
        "total": "10.00",
        "currency": "EUR",
        "items": [{"product_id": "tea", "quantity": 1, "unit_price": "10.00"}],
    }
    outcome = apply(None, EventAdapter.validate_python(body), default_playbook(), recs)
    [thanks] = outcome.triggers
    assert thanks.payload["recommendations"] == ["pot", "cup"]
    assert outcome.orders == [["tea"]]  # for the caller to count once the record is stored
    assert outcome.state is not None
    assert outcome.state.bought == ["tea"]

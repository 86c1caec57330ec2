"""Recommendations: item-to-item co-purchase counts, with a popularity fallback.

Counts are kept per partition, in the partition's own table: every order a
partition applies adds to its counts, in the same serial order as its
events, so the counts (and every recommendation) are a function of the
input alone, identical in the backtest and on Kafka, with no cross-partition
hop. Each partition holds a sample of the shop's customers (a quarter of
them with 4 partitions), which is plenty for the products that matter.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, MutableMapping
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["MemoryPairs", "PairStore", "RecommendationRules", "Recommender"]

POPULAR = "\x00popular"
"""The store key of the partition's product popularity counts (not a product id)."""


class RecommendationRules(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    count: int = Field(default=4, ge=0, le=50)
    neighbours_kept: int = Field(default=50, ge=1, le=10_000)
    """Co-purchased products remembered per product: the most frequent ones."""
    popular_kept: int = Field(default=200, ge=1, le=100_000)
    owned_kept: int = Field(default=100, ge=1, le=10_000)
    """Products remembered per customer as bought, so they are not recommended."""


class PairStore(Protocol):
    """Counts by product: for a product, how often each other product was bought with it."""

    def get(self, product: str) -> dict[str, int] | None: ...

    def put(self, product: str, counts: dict[str, int]) -> None: ...


class MemoryPairs:
    """A ``PairStore`` in a dict: the backtest's, and the tests'."""

    def __init__(self, data: MutableMapping[str, dict[str, int]] | None = None) -> None:
        self.data: MutableMapping[str, dict[str, int]] = {} if data is None else data

    def get(self, product: str) -> dict[str, int] | None:
        return self.data.get(product)

    def put(self, product: str, counts: dict[str, int]) -> None:
        self.data[product] = counts


def _rank(item: tuple[str, int]) -> tuple[int, str]:
    """Most counted first, ties by product id: the same order on every run."""
    return -item[1], item[0]


def _top(counts: dict[str, int], keep: int) -> dict[str, int]:
    if len(counts) <= keep:
        return counts
    return dict(heapq.nsmallest(keep, counts.items(), key=_rank))


class Recommender:
    def __init__(self, store: PairStore, rules: RecommendationRules) -> None:
        self.store = store
        self.rules = rules

    def recommend(self, seeds: Iterable[str], owned: Iterable[str]) -> list[str]:
        """The products most often bought with ``seeds``, never ``owned`` or a seed;
        topped up with the partition's most popular products."""
        seeds = list(dict.fromkeys(seeds))
        skip = set(owned) | set(seeds)
        scores: dict[str, int] = {}
        for seed in seeds:
            for other, count in (self.store.get(seed) or {}).items():
                if other not in skip:
                    scores[other] = scores.get(other, 0) + count
        count = self.rules.count
        picks = [p for p, _ in heapq.nsmallest(count, scores.items(), key=_rank)]
        if len(picks) < count:
            # Of the leaders only seeds, owned products and picks are passed over, so
            # the top-up never reads past the first ``count + len(skip)``: only they
            # are ranked.
            popular = self.store.get(POPULAR) or {}
            leaders = heapq.nsmallest(count + len(skip), popular.items(), key=_rank)
            for product, _ in leaders:
                if len(picks) == count:
                    break
                if product not in skip and product not in picks:
                    picks.append(product)
        return picks

    def record(self, products: Iterable[str]) -> None:
        """Count one order: each pair of its distinct products, and each product's sales."""
        bought = sorted(set(products))
        for product in bought:
            others = [p for p in bought if p != product]
            if not others:
                continue
            counts = dict(self.store.get(product) or {})
            for other in others:
                counts[other] = counts.get(other, 0) + 1
            self.store.put(product, _top(counts, self.rules.neighbours_kept))
        if bought:
            popular = dict(self.store.get(POPULAR) or {})
            for product in bought:
                popular[product] = popular.get(product, 0) + 1
            self.store.put(POPULAR, _top(popular, self.rules.popular_kept))

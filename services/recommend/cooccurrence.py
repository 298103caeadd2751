"""Item-to-item co-occurrence from baskets: "bought together" (pure, no I/O).

A basket is the set of items of one purchase (or one view session, weighted lower). Every
unordered pair in a basket adds the basket's weight to the pair's count, every item adds it to
its own count. Similarity is the cosine of the two items' basket vectors,

    sim(a, b) = c(a, b) / sqrt(n(a) * n(b)),

so a best-seller that lands in every basket does not dominate every list: its large n(b)
divides its pair counts down. A shrinkage term `c / (c + shrink)` lowers pairs seen only once
or twice. Counts only ever grow by `add_basket` (incremental: a new pair is servable at once);
a full rebuild is a fresh `CoOccurrence` fed every basket again.

`basket_deltas` is the same arithmetic as increments, for a store that keeps the counts in
tables (the recommend service adds them with additive upserts).
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

__all__ = [
    "MAX_BASKET",
    "PURCHASE_WEIGHT",
    "VIEW_WEIGHT",
    "CoOccurrence",
    "Related",
    "basket_deltas",
    "join_deltas",
    "recommend_from",
]

PURCHASE_WEIGHT = 1.0
# A view says less than a purchase.
VIEW_WEIGHT = 0.25
# Pairs grow quadratically with a basket; the few huge (wholesale) baskets are cut to the first
# MAX_BASKET distinct skus in sorted order, deterministically.
MAX_BASKET = 60


@dataclass(frozen=True, slots=True)
class Related:
    sku: str
    score: float
    # The seed item this one was found through ("because you bought X").
    because_sku: str


def _distinct(items: Iterable[str]) -> list[str]:
    return sorted({s for s in items if s})[:MAX_BASKET]


def basket_deltas(
    items: Iterable[str], weight: float = PURCHASE_WEIGHT
) -> tuple[dict[str, float], dict[tuple[str, str], float]]:
    """What one basket adds: per-item counts and per-pair counts (pair key (a, b) with a < b)."""
    skus = _distinct(items)
    item_deltas = {s: weight for s in skus}
    pair_deltas: dict[tuple[str, str], float] = {}
    for i, a in enumerate(skus):
        for b in skus[i + 1 :]:
            pair_deltas[(a, b)] = weight
    return item_deltas, pair_deltas


@dataclass
class CoOccurrence:
    shrink: float = 1.0
    item_counts: dict[str, float] = field(default_factory=dict)
    # Symmetric: pairs[a][b] == pairs[b][a].
    pairs: dict[str, dict[str, float]] = field(default_factory=dict)

    def add_basket(self, items: Iterable[str], weight: float = PURCHASE_WEIGHT) -> None:
        item_deltas, pair_deltas = basket_deltas(items, weight)
        self.add_counts(item_deltas, pair_deltas)

    def add_counts(
        self, item_deltas: Mapping[str, float], pair_deltas: Mapping[tuple[str, str], float]
    ) -> None:
        for sku, w in item_deltas.items():
            self.item_counts[sku] = self.item_counts.get(sku, 0.0) + w
        for (a, b), w in pair_deltas.items():
            row_a = self.pairs.setdefault(a, {})
            row_a[b] = row_a.get(b, 0.0) + w
            row_b = self.pairs.setdefault(b, {})
            row_b[a] = row_b.get(a, 0.0) + w

    def similarity(self, a: str, b: str) -> float:
        c = self.pairs.get(a, {}).get(b, 0.0)
        return self._score(c, a, b)

    def _score(self, c: float, a: str, b: str) -> float:
        if c <= 0:
            return 0.0
        na, nb = self.item_counts.get(a, 0.0), self.item_counts.get(b, 0.0)
        if na <= 0 or nb <= 0:
            return 0.0
        return c / math.sqrt(na * nb) * (c / (c + self.shrink))

    def similar(self, sku: str, limit: int, exclude: Iterable[str] = ()) -> list[Related]:
        """The items most often bought with `sku`, best first (ties by sku)."""
        return self.recommend({sku: 1.0}, limit, exclude)

    def neighbours(self, sku: str, limit: int | None = None) -> list[tuple[str, float]]:
        """`sku`'s related items and their similarity, best first (ties by sku); the best
        `limit` of them (all when None). A serving process keeps these lists per item
        (`recommend_from` sums them), so a request does not score every pair again."""
        # (-score, other): plain tuples compare in C, no key function per item
        scored = [(-self._score(c, sku, o), o) for o, c in self.pairs.get(sku, {}).items()]
        positive = [x for x in scored if x[0] < 0]
        ranked = sorted(positive) if limit is None else heapq.nsmallest(max(0, limit), positive)
        return [(other, -negated) for negated, other in ranked]

    def recommend(
        self, seeds: Mapping[str, float], limit: int, exclude: Iterable[str] = ()
    ) -> list[Related]:
        """Items related to the weighted seed items (a cart, a history): the weighted sum of
        their similarities; the reason is the seed contributing most. Seeds are never returned."""
        return recommend_from({s: self.neighbours(s) for s in seeds}, seeds, limit, exclude)


def recommend_from(
    neighbours: Mapping[str, Sequence[tuple[str, float]]],
    seeds: Mapping[str, float],
    limit: int,
    exclude: Iterable[str] = (),
) -> list[Related]:
    """`CoOccurrence.recommend` over each seed's (related item, similarity) list: the weighted
    sum of the similarities, best first (ties by sku); the reason is the seed contributing
    most (the first in sku order on a tie). Seeds and `exclude` are never returned."""
    skip = set(exclude) | set(seeds)
    totals: dict[str, float] = {}
    best: dict[str, tuple[float, str]] = {}
    for seed in sorted(seeds):
        w = seeds[seed]
        if w <= 0:
            continue
        for other, similarity in neighbours.get(seed, ()):
            if other in skip:
                continue
            part = w * similarity
            if part <= 0:
                continue
            totals[other] = totals.get(other, 0.0) + part
            held = best.get(other)
            if held is None or part > held[0]:
                best[other] = (part, seed)
    # (score desc, sku): plain tuples compare in C, no key function per item
    ranked = heapq.nsmallest(max(0, limit), ((-score, sku) for sku, score in totals.items()))
    return [Related(sku, -negated, best[sku][1]) for negated, sku in ranked]


def join_deltas(
    sku: str, basket: Iterable[str], weight: float = VIEW_WEIGHT
) -> tuple[dict[str, float], dict[tuple[str, str], float]]:
    """What adding `sku` to an existing basket adds (a view joining the customer's current
    view session): the new item's count and its pairs with the basket's items. Nothing when
    the item is already in the basket."""
    others = _distinct(basket)
    if not sku or sku in others:
        return {}, {}
    others = others[: MAX_BASKET - 1]
    return {sku: weight}, {(min(sku, o), max(sku, o)): weight for o in others}

"""The showcase mix (pure, no I/O): strategies' candidate lists -> one shelf.

1. Each strategy's candidates are normalised (divided by that strategy's best score, so every
   strategy's best is 1.0) and multiplied by the strategy's weight; an item's blended score is
   the sum over the strategies that propose it. Its reason is the strategy contributing most
   (ties: the lower strategy number), with that candidate's because_sku / because_segment_id.
2. Filters drop items: not in the catalogue, rule-excluded, unavailable (only_available;
   the service also never serves an unavailable item whatever the filter says), outside
   `categories`, purchased (exclude_purchased), in the cart (exclude_in_cart).
3. Boost rules multiply blended scores.
4. Ranking by (-score, sku): deterministic for the same inputs.
5. Diversity: at most `max_per_category` items of one category (0 = no cap); items over the
   cap wait and only fill places nothing else can.
6. Fallback chain: when the shelf is still short, the fallback strategies, in order, fill it;
   their items rank below everything before them (scores scaled under the lowest so far).
7. Pins: a pinned sku (that passes the filters) is placed at its position (0-based), pins in
   position order; its score is the score of the place it takes.
Every sku appears at most once.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum

__all__ = ["Candidate", "ItemInfo", "MixSpec", "Mixed", "Rules", "Strategy", "mix"]


class Strategy(IntEnum):
    """Numbered as backcrm.recommend.v1.Strategy."""

    UNSPECIFIED = 0
    PERSONAL = 1
    BOUGHT_TOGETHER = 2
    SIMILAR_ITEMS = 3
    POPULAR_IN_SEGMENT = 4
    POPULAR = 5
    NEW = 6


@dataclass(frozen=True, slots=True)
class Candidate:
    sku: str
    score: float
    because_sku: str = ""
    because_segment_id: str = ""


@dataclass(frozen=True, slots=True)
class ItemInfo:
    sku: str
    category: str = ""
    available: bool = True


@dataclass(frozen=True, slots=True)
class Rules:
    # sku -> 0-based position on the shelf.
    pins: Mapping[str, int] = field(default_factory=dict)
    # sku -> score multiplier (> 0).
    boosts: Mapping[str, float] = field(default_factory=dict)
    excludes: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class MixSpec:
    weights: Mapping[Strategy, float]
    categories: frozenset[str] = frozenset()
    exclude_purchased: bool = False
    only_available: bool = True
    exclude_in_cart: bool = False
    max_per_category: int = 0
    fallback: tuple[Strategy, ...] = (Strategy.POPULAR, Strategy.NEW)
    rules: Rules = field(default_factory=Rules)


@dataclass(frozen=True, slots=True)
class Mixed:
    sku: str
    score: float
    strategy: Strategy
    because_sku: str = ""
    because_segment_id: str = ""
    pinned: bool = False


def _eligible(
    sku: str,
    spec: MixSpec,
    items: Mapping[str, ItemInfo],
    purchased: Collection[str],
    cart: Collection[str],
) -> bool:
    info = items.get(sku)
    if info is None or sku in spec.rules.excludes:
        return False
    if spec.only_available and not info.available:
        return False
    if spec.categories and info.category not in spec.categories:
        return False
    if spec.exclude_purchased and sku in purchased:
        return False
    return not (spec.exclude_in_cart and sku in cart)


def _blend(
    candidates: Mapping[Strategy, Sequence[Candidate]],
    weights: Mapping[Strategy, float],
    ok: Mapping[str, bool],
) -> dict[str, Mixed]:
    totals: dict[str, float] = {}
    best: dict[str, tuple[float, Strategy, Candidate]] = {}
    for strategy in sorted(weights):
        weight = weights[strategy]
        listed = [c for c in candidates.get(strategy, ()) if c.score > 0 and ok.get(c.sku)]
        if weight <= 0 or not listed:
            continue
        top = max(c.score for c in listed)
        seen: set[str] = set()
        for c in listed:
            if c.sku in seen:
                continue
            seen.add(c.sku)
            part = weight * c.score / top
            totals[c.sku] = totals.get(c.sku, 0.0) + part
            held = best.get(c.sku)
            if held is None or part > held[0]:
                best[c.sku] = (part, strategy, c)
    return {
        sku: Mixed(
            sku, total, best[sku][1], best[sku][2].because_sku, best[sku][2].because_segment_id
        )
        for sku, total in totals.items()
    }


def _with_score(m: Mixed, score: float) -> Mixed:
    return Mixed(m.sku, score, m.strategy, m.because_sku, m.because_segment_id, m.pinned)


def mix(
    candidates: Mapping[Strategy, Sequence[Candidate]],
    spec: MixSpec,
    items: Mapping[str, ItemInfo],
    limit: int,
    purchased: Collection[str] = (),
    cart: Collection[str] = (),
) -> list[Mixed]:
    if limit <= 0:
        return []
    all_skus = {c.sku for cs in candidates.values() for c in cs} | set(spec.rules.pins)
    ok = {s: _eligible(s, spec, items, purchased, cart) for s in all_skus}

    def ranked(blended: dict[str, Mixed]) -> list[Mixed]:
        boosted = [
            _with_score(m, m.score * spec.rules.boosts.get(m.sku, 1.0))
            if m.sku in spec.rules.boosts
            else m
            for m in blended.values()
        ]
        return sorted(boosted, key=lambda m: (-m.score, m.sku))

    chosen: list[Mixed] = []
    taken: set[str] = set()
    per_category: dict[str, int] = {}
    waiting: list[Mixed] = []
    slots = limit - len([s for s in spec.rules.pins if ok.get(s)])

    def take(pool: list[Mixed]) -> None:
        for m in pool:
            if len(chosen) >= slots:
                return
            if m.sku in taken or m.sku in spec.rules.pins:
                continue
            category = items[m.sku].category
            if spec.max_per_category and per_category.get(category, 0) >= spec.max_per_category:
                waiting.append(m)
                continue
            per_category[category] = per_category.get(category, 0) + 1
            chosen.append(m)
            taken.add(m.sku)

    take(ranked(_blend(candidates, spec.weights, ok)))
    for strategy in spec.fallback:
        if len(chosen) >= slots:
            break
        level = ranked(_blend(candidates, {strategy: 1.0}, ok))
        if not level:
            continue
        floor = 0.5 * min((m.score for m in chosen), default=2.0)
        take([_with_score(m, floor * m.score / level[0].score) for m in level])
    for m in waiting:
        if len(chosen) >= slots:
            break
        if m.sku not in taken:
            chosen.append(m)
            taken.add(m.sku)

    shelf = list(chosen)
    for sku, position in sorted(
        ((s, p) for s, p in spec.rules.pins.items() if ok.get(s)), key=lambda sp: (sp[1], sp[0])
    ):
        at = max(0, min(position, len(shelf)))
        score = shelf[at].score if at < len(shelf) else (shelf[-1].score if shelf else 1.0)
        shelf.insert(at, Mixed(sku, score, Strategy.UNSPECIFIED, pinned=True))
    return shelf[:limit]

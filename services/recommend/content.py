"""Similar items by content (pure, no I/O): the same category, shared tags and attributes.

Each item is a set of features ("c:<category>", "t:<tag>", "a:<key>=<value>"); similarity is
the cosine of two feature sets, |F ∩ G| / sqrt(|F| |G|), with the category counting twice
(it is the strongest signal a catalogue has). An inverted index (feature -> skus) keeps a
query to the items sharing a feature with the seeds.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

__all__ = ["ContentIndex", "features"]

CATEGORY_WEIGHT = 2.0


def features(category: str, tags: Iterable[str], attributes: Mapping[str, str]) -> dict[str, float]:
    out: dict[str, float] = {}
    if category:
        out[f"c:{category}"] = CATEGORY_WEIGHT
    for tag in tags:
        if tag:
            out[f"t:{tag}"] = 1.0
    for key, value in attributes.items():
        out[f"a:{key}={value}"] = 1.0
    return out


@dataclass
class ContentIndex:
    by_sku: dict[str, dict[str, float]] = field(default_factory=dict)
    by_feature: dict[str, set[str]] = field(default_factory=dict)

    def add(self, sku: str, feats: Mapping[str, float]) -> None:
        self.by_sku[sku] = dict(feats)
        for f in feats:
            self.by_feature.setdefault(f, set()).add(sku)

    def _norm(self, feats: Mapping[str, float]) -> float:
        return math.sqrt(sum(w * w for w in feats.values()))

    def similar(
        self, seeds: Mapping[str, float], limit: int, exclude: Iterable[str] = ()
    ) -> list[tuple[str, float, str]]:
        """(sku, score, because_sku) of the items most like the weighted seeds, best first
        (ties by sku); never a seed or an excluded sku."""
        skip = set(exclude) | set(seeds)
        totals: dict[str, float] = {}
        best: dict[str, tuple[float, str]] = {}
        for seed in sorted(seeds):
            mine = self.by_sku.get(seed)
            weight = seeds[seed]
            if not mine or weight <= 0:
                continue
            norm = self._norm(mine)
            others = {o for f in mine for o in self.by_feature.get(f, ())} - skip
            for other in others:
                theirs = self.by_sku[other]
                dot = sum(w * theirs[f] for f, w in mine.items() if f in theirs)
                part = weight * dot / (norm * self._norm(theirs))
                if part <= 0:
                    continue
                totals[other] = totals.get(other, 0.0) + part
                held = best.get(other)
                if held is None or part > held[0]:
                    best[other] = (part, seed)
        ranked = sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))[: max(0, limit)]
        return [(sku, score, best[sku][1]) for sku, score in ranked]

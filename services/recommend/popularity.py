"""Popular and new items (pure, no I/O).

Popularity is counted in UTC day buckets, overall (segment "") and per segment: a purchase of
a customer in segments S adds its weight to (day, sku) of "" and of every segment in S. The
score of a sku over a recent window of WINDOW_DAYS days is the sum of its buckets, each halved
every HALF_LIFE_DAYS of age, so recent purchases weigh more and old best-sellers fade out.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

__all__ = [
    "DAY",
    "HALF_LIFE_DAYS",
    "OVERALL",
    "WINDOW_DAYS",
    "PopularityCounter",
    "day_of",
    "decay",
    "newest",
    "top_from_buckets",
]

DAY = 86400
WINDOW_DAYS = 30
HALF_LIFE_DAYS = 7.0
OVERALL = ""


def day_of(epoch_seconds: float) -> int:
    return int(epoch_seconds // DAY)


def decay(age_days: int, half_life_days: float = HALF_LIFE_DAYS) -> float:
    return float(0.5 ** (max(0, age_days) / half_life_days))


def top_from_buckets(
    buckets: Iterable[tuple[str, int, float]],
    today: int,
    limit: int,
    window_days: int = WINDOW_DAYS,
    half_life_days: float = HALF_LIFE_DAYS,
) -> list[tuple[str, float]]:
    """(sku, day, weight) buckets -> the top `limit` (sku, score), best first, ties by sku.
    Buckets outside (today - window_days, today] are ignored."""
    scores: dict[str, float] = {}
    for sku, day, weight in buckets:
        age = today - day
        if 0 <= age < window_days and weight > 0:
            scores[sku] = scores.get(sku, 0.0) + weight * decay(age, half_life_days)
    return sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[: max(0, limit)]


@dataclass
class PopularityCounter:
    window_days: int = WINDOW_DAYS
    half_life_days: float = HALF_LIFE_DAYS
    # segment -> (sku, day) -> weight
    buckets: dict[str, dict[tuple[str, int], float]] = field(default_factory=dict)

    def add(self, sku: str, day: int, weight: float = 1.0, segments: Iterable[str] = ()) -> None:
        for segment in {OVERALL, *segments}:
            counts = self.buckets.setdefault(segment, {})
            counts[(sku, day)] = counts.get((sku, day), 0.0) + weight

    def top(self, today: int, limit: int, segment: str = OVERALL) -> list[tuple[str, float]]:
        counts = self.buckets.get(segment, {})
        return top_from_buckets(
            ((sku, day, w) for (sku, day), w in counts.items()),
            today,
            limit,
            self.window_days,
            self.half_life_days,
        )


def newest(items: Iterable[tuple[str, datetime]], limit: int) -> list[tuple[str, float]]:
    """(sku, released_at) -> the `limit` newest as (sku, score), score 1.0 for the newest and
    falling by rank (1 / (1 + rank)); ties by sku."""
    ranked = sorted(items, key=lambda kv: (-kv[1].timestamp(), kv[0]))[: max(0, limit)]
    return [(sku, 1.0 / (1 + rank)) for rank, (sku, _) in enumerate(ranked)]

"""RFM scores: recency, frequency and monetary 1-5 by quintiles of the current population.

Over the customers who bought at least once (the others score 0):
- recency = whole days since the last purchase, as of `now`; frequency = orders; monetary =
  net revenue;
- the cut points of a metric are its values at the 20th, 40th, 60th and 80th percentiles
  (nearest rank: the value at position ceil(p x n) in ascending order);
- frequency and monetary score 1 + the number of cut points strictly below the value;
  recency scores 5 - the number of cut points strictly below the days (recent is good);
  so equal values always get equal scores.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["RfmResult", "cut_points", "score_population"]

DAY = 86_400.0
PERCENTILES = (0.2, 0.4, 0.6, 0.8)


def cut_points(values: Sequence[float]) -> list[float]:
    ordered = sorted(values)
    if not ordered:
        return []
    return [ordered[max(0, math.ceil(p * len(ordered)) - 1)] for p in PERCENTILES]


def _below(cuts: Sequence[float], value: float) -> int:
    return sum(1 for cut in cuts if cut < value)


@dataclass(frozen=True)
class RfmResult:
    scores: list[tuple[str, int, int, int]]  # (customer, R, F, M)
    recency_cuts: list[float]
    frequency_cuts: list[float]
    monetary_cuts: list[float]


def score_population(rows: Sequence[tuple[str, float, int, float]], now: float) -> RfmResult:
    """rows: (customer, last purchase time, orders, revenue) of customers who bought."""
    days = [math.floor(max(0.0, now - last) / DAY) for _, last, _, _ in rows]
    r_cuts = cut_points(days)
    f_cuts = cut_points([float(orders) for _, _, orders, _ in rows])
    m_cuts = cut_points([revenue for _, _, _, revenue in rows])
    scores = [
        (
            customer,
            5 - _below(r_cuts, d),
            1 + _below(f_cuts, float(orders)),
            1 + _below(m_cuts, revenue),
        )
        for (customer, _, orders, revenue), d in zip(rows, days, strict=True)
    ]
    return RfmResult(scores, r_cuts, f_cuts, m_cuts)

"""Pacing: a daily budget spread over the day in proportion to the traffic expected in each
hour, instead of spent in the first hours.

Traffic is what SelectAds sees: each process counts its requests per UTC (day, hour) in
memory and adds them to `ads_traffic` every few seconds (an additive upsert, so processes
never overwrite each other). The expected share of each hour is the average of that hour over
the last `HISTORY_DAYS` complete days that had traffic; until there is such a day, the shares
are even (1/24 each).

By a moment `t` of the day, a campaign may have used `ceil(daily * expected share of the day
up to t)` impressions (the current hour counted pro rata). That allowance is the daily limit
the counters check a reservation against (settled today + live reservations < allowance), so
pacing never lets more through than the daily budget, and what an hour does not use is
available later in the day.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable

from services.ads.domain import DAY

__all__ = ["HISTORY_DAYS", "TrafficProfile", "allowance", "shares_of"]

HISTORY_DAYS = 7
HOUR = 3600.0
EVEN = tuple([1.0 / 24] * 24)


def shares_of(history: Iterable[tuple[int, int, int]], today: int) -> tuple[float, ...]:
    """Expected share of each UTC hour from (day, hour, requests) rows: the per-hour average
    over the complete days (before `today`, within HISTORY_DAYS) that had traffic."""
    per_day: dict[int, list[int]] = {}
    for day, hour, requests in history:
        if today - HISTORY_DAYS <= day < today and 0 <= hour < 24 and requests > 0:
            per_day.setdefault(day, [0] * 24)[hour] += requests
    if not per_day:
        return EVEN
    totals = [sum(counts[h] for counts in per_day.values()) for h in range(24)]
    whole = sum(totals)
    return tuple(t / whole for t in totals) if whole else EVEN


def allowance(daily: int, shares: tuple[float, ...], now: float) -> int:
    """How many of the day's `daily` impressions may be used by `now` (at least 1)."""
    into_day = now % DAY
    hour = int(into_day // HOUR)
    share = sum(shares[:hour]) + shares[hour] * ((into_day - hour * HOUR) / HOUR)
    return max(1, min(daily, math.ceil(daily * share - 1e-9)))


class TrafficProfile:
    """This process's view: the shares (reloaded from storage) and the requests it has seen
    since its last flush."""

    def __init__(self) -> None:
        self.shares: tuple[float, ...] = EVEN
        self.unflushed: Counter[tuple[int, int]] = Counter()

    def seen(self, now: float) -> None:
        self.unflushed[(int(now // DAY), int((now % DAY) // HOUR))] += 1

    def take(self) -> dict[tuple[int, int], int]:
        counts, self.unflushed = dict(self.unflushed), Counter()
        return counts

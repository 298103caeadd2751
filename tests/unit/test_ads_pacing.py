"""Pacing: the hourly shares learned from traffic, the allowance by a moment of the day, and a
simulated day with uneven traffic (docs/ads.md shows its table: `python -m
tests.unit.test_ads_pacing`)."""

from __future__ import annotations

import asyncio
import random

from backcrm.common.v1 import common_pb2

from services.ads import handlers as h
from services.ads.catalog import CampaignCache
from services.ads.domain import DAY, Campaign, Creative
from services.ads.pacing import EVEN, allowance, shares_of
from services.ads.tokens import Signer, dev_keys
from services.ads.translate import context_in
from tests.unit.ads_fakes import FakeAdsStore, FakeAdsUnitOfWork, FakeCounters, FakeSignals
from tests.unit.fakes import FakeClock

DAY0 = 20_000  # a UTC day number
# Requests per hour of a day: quiet nights, a lunch bump, an evening peak.
SHAPE = (2, 1, 1, 1, 1, 2, 4, 8, 10, 10, 9, 9, 12, 10, 9, 9, 10, 14, 20, 24, 22, 16, 8, 4)


def test_shares_are_even_without_history_and_follow_it_with_history() -> None:
    assert shares_of([], DAY0) == EVEN
    assert shares_of([(DAY0, 5, 100)], DAY0) == EVEN  # today is not history yet
    shares = shares_of([(DAY0 - 1, h, n) for h, n in enumerate(SHAPE)], DAY0)
    assert abs(sum(shares) - 1) < 1e-9
    assert shares[19] == 24 / sum(SHAPE) and shares[1] == 1 / sum(SHAPE)
    older = shares_of([(DAY0 - 8, 3, 50)], DAY0)  # past the history window
    assert older == EVEN


def test_the_allowance_grows_with_the_expected_traffic_and_never_passes_the_budget() -> None:
    start = DAY0 * DAY
    assert allowance(240, EVEN, start) == 1  # at least one, at midnight
    assert allowance(240, EVEN, start + 6 * 3600) == 60
    assert allowance(240, EVEN, start + 6.5 * 3600) == 65
    assert allowance(240, EVEN, start + DAY - 1) == 240
    shares = shares_of([(DAY0 - 1, h, n) for h, n in enumerate(SHAPE)], DAY0)
    by_noon = allowance(240, shares, start + 12 * 3600)
    assert by_noon == -(-240 * sum(SHAPE[:12]) // sum(SHAPE))  # ceil
    assert by_noon < 120  # the busy half of this day is the afternoon and evening


def simulate_day(history: bool, daily: int = 120, scale: int = 3) -> list[tuple[int, int]]:
    """A day of SelectAds + impressions at SHAPE * scale requests per hour, spread evenly
    within each hour, for one campaign with `daily` impressions; with or without the previous
    day's traffic (same shape) as history. Returns (requests, impressions) per hour."""
    store, counters = FakeAdsStore(), FakeCounters()
    clock = FakeClock(DAY0 * DAY)

    def uow() -> FakeAdsUnitOfWork:
        return FakeAdsUnitOfWork(store)

    deps = h.AdsDeps(
        uow=uow,
        clock=clock,
        signals=FakeSignals(),
        counters=counters,
        cache=CampaignCache(uow),
        signer=Signer(dev_keys("sim"), "dev"),
        rng=random.Random(1),
    )

    async def run() -> list[tuple[int, int]]:
        if history:
            async with uow() as u:
                await u.add_traffic({(DAY0 - 1, h_): n * scale for h_, n in enumerate(SHAPE)})
                await u.commit()
        await h.keep_traffic(deps)
        campaign = Campaign(
            "",
            "Paced",
            creatives=(Creative("", "Hi"),),
            daily_impressions=daily,
        )
        await h.create_campaign(deps, campaign)
        table = []
        for hour, n in enumerate(SHAPE):
            shown = 0
            for i in range(n * scale):
                clock.set(DAY0 * DAY + hour * 3600 + (i + 0.5) * 3600 / (n * scale))
                context = context_in(
                    common_pb2.Context(placement="home", channel=common_pb2.CHANNEL_WEB), clock()
                )
                picked = await h.select_ads(deps, "", context, 1, explain=False)
                for slot in picked.slots:
                    recorded = await h.record_interaction(deps, slot.token, "IMPRESSION", None)
                    shown += recorded.counted and not recorded.over_limit
            table.append((n * scale, shown))
        return table

    return asyncio.run(run())


def test_a_simulated_day_spreads_the_daily_budget_like_the_traffic() -> None:
    table = simulate_day(history=True)
    total_requests = sum(r for r, _ in table)
    assert sum(s for _, s in table) == 120  # spent, and not more
    for hour, (requests, shown) in enumerate(table):
        expected = 120 * requests / total_requests
        assert abs(shown - expected) <= 2, (hour, shown, expected)


def test_without_history_the_day_is_paced_evenly() -> None:
    """Even shares: by the end of each hour at most (hour + 1) / 24 of the budget is used; an
    hour too quiet to use its share leaves it to the next ones."""
    table = simulate_day(history=False)
    assert sum(s for _, s in table) == 120
    used = 0
    for hour, (requests, shown) in enumerate(table):
        used += shown
        assert shown <= requests
        assert used <= 5 * (hour + 1), (hour, used)
    assert sum(s for _, s in table[:6]) < 30  # quiet night hours cannot spend their share


if __name__ == "__main__":
    paced, even = simulate_day(history=True), simulate_day(history=False)
    print("| hour (UTC) | requests | impressions, learned shares | impressions, even |")
    print("|---|---|---|---|")
    for hour, ((requests, shown), (_, flat)) in enumerate(zip(paced, even, strict=True)):
        print(f"| {hour:02d} | {requests} | {shown} | {flat} |")
    print(
        f"| total | {sum(r for r, _ in paced)} | {sum(s for _, s in paced)} | "
        f"{sum(s for _, s in even)} |"
    )

"""The ads service for real (SQLite and PostgreSQL + Redis): campaign changes reaching every
process, budgets and caps that never overshoot, interactions counted once.

Two AdsApp instances on one database play two ads processes: on PostgreSQL + Redis they share
the Redis bus and counters; on the embedded default each has its own in-process bus (so the
version check is what tells the second one), and the SQL counters. Races start their calls
together (asyncio.gather with a random few milliseconds of stagger) and run many trials;
after each, invariants are checked, never times.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from backcrm.common.v1 import common_pb2
from backcrm.profile.v1.profile_service_pb2 import ProfileDeleted, ProfilesMerged
from sqlalchemy import func, select

from libs.errors import CacheUnavailable
from libs.runtime import Peers, Resources
from libs.topics import PROFILE_DELETED, PROFILE_MERGED
from services.ads import handlers as h
from services.ads.app import AdsApp
from services.ads.counters import RedisCounters
from services.ads.domain import Campaign, Creative
from services.ads.models import CatalogRow, InteractionRow, TrafficRow
from services.ads.pacing import EVEN, allowance
from services.ads.translate import context_in
from tests.support import Backend, eventually, soon

pytestmark = pytest.mark.integration


def uid() -> str:
    return uuid.uuid4().hex[:12]


@dataclass
class World:
    apps: list[AdsApp]
    resources: Resources

    def deps(self, i: int) -> h.AdsDeps:
        return self.apps[i % len(self.apps)].deps

    async def campaign(self, **changes: object) -> Campaign:
        """A campaign on a placement of its own ("<campaign id>.top" under "p<id>.*"), so
        the campaigns of earlier tests never compete with it."""
        fields: dict[str, object] = {
            "campaign_id": "",
            "name": "Spring",
            "brand": "acme",
            "creatives": (Creative("", "Hello", placements=(f"p{uid()}.*",)),),
            **changes,
        }
        return await h.create_campaign(self.deps(0), Campaign(**fields))  # type: ignore[arg-type]

    async def select(
        self, i: int, customer: str, campaign: Campaign, explain: bool = False
    ) -> h.Selection:
        deps = self.deps(i)
        placement = campaign.creatives[0].placements[0].replace("*", "top")
        context = context_in(
            common_pb2.Context(placement=placement, channel=common_pb2.CHANNEL_WEB), deps.clock()
        )
        return await h.select_ads(deps, customer, context, 5, explain=explain)

    async def serves(self, i: int, campaign: Campaign) -> bool:
        selection = await self.select(i, "", campaign)
        return campaign.campaign_id in {s.campaign.campaign_id for s in selection.slots}

    async def cap_history(self, campaign_id: str, customer_id: str) -> int | None:
        """The customer's holds on the campaign's cap in Redis (None without Redis: the SQL
        counters' history moves in the same transaction as the rows)."""
        settings = self.resources.settings
        if not settings.redis_url:
            return None
        from redis.asyncio import Redis

        redis = Redis.from_url(settings.redis_url)
        try:
            return int(
                await redis.zcard(f"{settings.redis_prefix}ads:c:{campaign_id}:f:{customer_id}")
            )
        finally:
            await redis.aclose()

    async def rows(self, campaign_id: str, **where: object) -> int:
        async with self.resources.sessions() as s:
            query = select(func.count()).where(InteractionRow.campaign_id == campaign_id)
            for column, value in where.items():
                query = query.where(getattr(InteractionRow, column) == value)
            return int(await s.scalar(query) or 0)


async def _world(backend: Backend, replicas: int, **overrides: object) -> AsyncIterator[World]:
    settings = backend.settings.model_copy(update=overrides)
    opened = [Resources.open(settings) for _ in range(replicas)]
    peers = [Peers(r.settings, "token", lambda: "127.0.0.1:1") for r in opened]
    apps = [AdsApp.build(r, p) for r, p in zip(opened, peers, strict=True)]
    for app in apps:
        await app.start()
    try:
        yield World(apps, opened[0])
    finally:
        for app in apps:
            await app.stop()
        for p in peers:
            await p.close()
        for r in opened:
            await r.close()


@pytest.fixture
async def two(backend: Backend) -> AsyncIterator[World]:
    """Two ads processes on one database, in every backend (on the embedded default only one
    of them writes: it is one process by design, SQLite has no row locks across engines)."""
    async for world in _world(backend, 2):
        yield world


@pytest.fixture(params=["lapsing", "held", "sql-lapsing", "sql-held"])
async def racing(backend: Backend, request: pytest.FixtureRequest) -> AsyncIterator[World]:
    """Two processes on PostgreSQL (the embedded default is one process by design).
    "lapsing": reservations lapse after 50 ms, so races mix live and lapsed ones; "held":
    they outlive the test. "sql-*": on PostgreSQL without Redis, so the SQL counters (the
    embedded default's) are raced across two processes too."""
    overrides: dict[str, object] = {
        "ads_reservation_seconds": 0.05 if request.param.endswith("lapsing") else 30.0
    }
    if request.param.startswith("sql"):  # postgres only (tests/integration/conftest.py)
        overrides["redis_url"] = ""
    async for world in _world(backend, 2 if backend.name == "postgres" else 1, **overrides):
        yield world


async def test_a_paused_campaign_stops_serving_in_every_process(two: World) -> None:
    for _ in range(3):
        c = await two.campaign()
        await eventually(lambda c=c: two.serves(1, c), "the other process to serve it")
        await h.set_status(two.deps(0), c.campaign_id, "PAUSED")
        assert not await two.serves(0, c)  # the process that paused it: at once

        async def stopped(c: Campaign = c) -> bool:
            return not await two.serves(1, c)

        await eventually(stopped, "the other process to stop serving it")
        await h.set_status(two.deps(1), c.campaign_id, "ACTIVE")
        await eventually(lambda c=c: two.serves(0, c), "the first process to serve it again")


async def test_concurrent_updates_of_different_fields_both_stick(racing: World) -> None:
    for _ in range(5):
        campaign = await racing.campaign()
        await asyncio.gather(
            soon(h.update_campaign(racing.deps(0), campaign.campaign_id, {"name": "Renamed"})),
            soon(h.update_campaign(racing.deps(1), campaign.campaign_id, {"priority": 7})),
        )
        got = await h.get_campaign(racing.deps(0), campaign.campaign_id)
        assert (got.name, got.priority) == ("Renamed", 7)


async def test_budgets_and_caps_never_overshoot_under_concurrent_selection(
    racing: World,
) -> None:
    """Many selections in both processes at once, most followed by their impression (some
    after the reservation lapsed, some twice), never more impressions than the budget or a
    customer's cap."""
    for trial in range(4):
        total, cap = 7, 2
        campaign = await racing.campaign(
            total_impressions=total, cap_impressions=cap, cap_period=3600.0
        )
        cid = campaign.campaign_id
        customers = [uid() for _ in range(5)]

        async def one(
            i: int, campaign: Campaign = campaign, cid: str = cid, customers: list[str] = customers
        ) -> int:
            customer = customers[i % len(customers)]
            selection = await soon(racing.select(i, customer, campaign))
            counted = 0
            for slot in selection.slots:
                if slot.campaign.campaign_id != cid or i % 7 == 0:
                    continue  # selected, never shown: its reservation lapses
                if i % 5 == 0:
                    await asyncio.sleep(0.08)  # shown after the reservation lapsed
                for _ in range(1 + (i % 3 == 0)):  # some impressions are retried
                    recorded = await h.record_interaction(
                        racing.deps(i + 1), slot.token, "IMPRESSION", None
                    )
                    counted += recorded.counted and not recorded.over_limit
            return counted

        results = await asyncio.gather(*(one(i) for i in range(60)))
        billable = await racing.rows(cid, type="IMPRESSION", billable=True)
        assert sum(results) == billable
        assert billable <= total, f"trial {trial}: {billable} impressions, budget {total}"
        for customer in customers:
            shown = await racing.rows(cid, type="IMPRESSION", billable=True, customer_id=customer)
            assert shown <= cap, f"trial {trial}: {shown} impressions, cap {cap}"
        _, stats = await h.campaign_stats(racing.deps(0), cid)
        assert stats.impressions == billable


async def test_a_budget_is_spent_exactly_when_every_selection_is_shown(racing: World) -> None:
    """With every selection shown at once, the budget is used to the last impression: the
    reservations do not leak room."""
    for _ in range(3):
        campaign = await racing.campaign(total_impressions=10)
        cid = campaign.campaign_id

        async def one(i: int, campaign: Campaign = campaign, cid: str = cid) -> None:
            selection = await soon(racing.select(i, uid(), campaign))
            for slot in selection.slots:
                if slot.campaign.campaign_id == cid:
                    await h.record_interaction(racing.deps(i), slot.token, "IMPRESSION", None)

        await asyncio.gather(*(one(i) for i in range(30)))
        while await racing.rows(cid, type="IMPRESSION", billable=True) < 10:
            await one(0)  # what lapsed meanwhile comes back
        assert await racing.rows(cid, type="IMPRESSION", billable=True) == 10
        # spent: the campaign has ENDED, and no process serves it
        assert (await h.get_campaign(racing.deps(0), cid)).status == "ENDED"

        async def gone(c: Campaign = campaign) -> bool:
            return not await racing.serves(0, c) and not await racing.serves(1, c)

        await eventually(gone, "every process to stop serving the spent campaign")


async def test_concurrent_retries_of_one_interaction_count_once(racing: World) -> None:
    campaign = await racing.campaign(total_impressions=100)
    for _ in range(5):
        (slot,) = (await racing.select(0, uid(), campaign)).slots
        results = await asyncio.gather(
            *(
                soon(h.record_interaction(racing.deps(i), slot.token, kind, None))
                for i in range(20)
                for kind in ("IMPRESSION", "CLICK")
            )
        )
        assert sum(r.counted for r in results) == 2
    assert await racing.rows(campaign.campaign_id, type="CLICK") == 5


async def test_profile_deleted_forgets_the_customer_but_not_the_counts(two: World) -> None:
    campaign = await two.campaign(total_impressions=50, cap_impressions=1, cap_period=3600.0)
    who = uid()
    (slot,) = (await two.select(0, who, campaign)).slots
    assert (await h.record_interaction(two.deps(0), slot.token, "IMPRESSION", None)).counted
    assert (await h.record_interaction(two.deps(0), slot.token, "CLICK", None)).counted
    capped = await two.select(0, who, campaign, explain=True)
    assert [e.reason for e in capped.excluded if e.campaign_id == campaign.campaign_id] == [
        "FREQUENCY_CAP"
    ]
    bus = two.apps[0].bus
    await bus.publish(PROFILE_DELETED.name, [PROFILE_DELETED.pack(ProfileDeleted(customer_id=who))])

    async def forgotten() -> bool:
        return await two.rows(campaign.campaign_id, customer_id=who) == 0

    await eventually(forgotten, "the customer's interactions to be anonymised")

    async def no_cap_history() -> bool:  # in Redis it goes after the rows
        return not await two.cap_history(campaign.campaign_id, who)

    await eventually(no_cap_history, "the cap history to go")
    assert await two.rows(campaign.campaign_id) == 2  # the counts stay
    _, stats = await h.campaign_stats(two.deps(0), campaign.campaign_id)
    assert (stats.impressions, stats.clicks, stats.reach) == (1, 1, 0)
    assert len((await two.select(0, who, campaign)).slots) == 1  # no cap history left
    # a token handed out before the erasure, used after it, records anonymously
    late = await h.record_interaction(two.deps(0), slot.token, "CONVERSION", None)
    assert late.counted
    assert await two.rows(campaign.campaign_id, customer_id=who) == 0
    assert await two.rows(campaign.campaign_id, type="CONVERSION") == 1


async def test_a_paced_daily_budget_never_overshoots_its_allowance(racing: World) -> None:
    """No traffic history: even pacing. Whatever the time of day the test runs at, the
    impressions never pass the allowance due by the end of the test, nor the daily budget.
    (An impression whose reservation lapsed is checked against the daily budget only: pacing
    decides what is selected, the budget what is counted.)"""
    for _ in range(3):
        campaign = await racing.campaign(daily_impressions=48)

        async def one(i: int, campaign: Campaign = campaign) -> int:
            selection = await soon(racing.select(i, uid(), campaign))
            counted = 0
            for slot in selection.slots:
                recorded = await h.record_interaction(
                    racing.deps(i + 1), slot.token, "IMPRESSION", None
                )
                counted += recorded.counted and not recorded.over_limit
            return counted

        results = await asyncio.gather(*(one(i) for i in range(40)))
        billable = await racing.rows(campaign.campaign_id, type="IMPRESSION", billable=True)
        assert sum(results) == billable
        lapsing = racing.deps(0).reservation_seconds < 1
        assert 1 <= billable <= (48 if lapsing else allowance(48, EVEN, time.time()))
        paced = await racing.select(0, uid(), campaign, explain=True)
        if billable < 48:
            reasons = [e.reason for e in paced.excluded if e.campaign_id == campaign.campaign_id]
            assert reasons in (["PACING"], [])  # [] : the allowance grew meanwhile


async def test_traffic_from_every_process_adds_up(two: World) -> None:
    campaign = await two.campaign()
    for app in two.apps:  # the test flushes, not the every-5-s loop
        for task in app.tasks:
            if task.get_name() == "ads-traffic":
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await h.keep_traffic(app.deps)  # what was seen so far is stored

    async def stored() -> int:
        async with two.resources.sessions() as s:
            return int(await s.scalar(select(func.sum(TrafficRow.requests))) or 0)

    before = await stored()
    await asyncio.gather(*(soon(two.select(i, "", campaign)) for i in range(40)))
    await asyncio.gather(*(h.keep_traffic(app.deps) for app in two.apps))
    assert await stored() - before == 40


async def test_an_erasure_wins_over_interactions_recorded_meanwhile(racing: World) -> None:
    campaign = await racing.campaign()
    for _ in range(5):
        who = uid()
        slots = [(await racing.select(i, who, campaign)).slots[0] for i in range(10)]
        await asyncio.gather(
            *(
                soon(h.record_interaction(racing.deps(i), s.token, "IMPRESSION", None))
                for i, s in enumerate(slots)
            ),
            soon(h.erase_customer(racing.deps(1), who, [campaign.campaign_id])),
        )
        assert await racing.rows(campaign.campaign_id, customer_id=who) == 0
    assert await racing.rows(campaign.campaign_id, type="IMPRESSION") == 50


async def test_an_unreachable_redis_fails_closed_for_limited_campaigns_only() -> None:
    counters = RedisCounters("redis://127.0.0.1:1/0", "t:")
    campaign = Campaign("c", "x", total_impressions=5)
    try:
        with pytest.raises(CacheUnavailable):
            await counters.reserve(campaign, "u", "s1", time.time(), 60.0, 0)
        with pytest.raises(CacheUnavailable):
            await counters.settle(campaign, "u", "s1", time.time(), time.time())
    finally:
        await counters.close()


async def test_profile_merged_moves_the_cap_history_to_the_target(two: World) -> None:
    campaign = await two.campaign(cap_impressions=2, cap_period=3600.0, total_impressions=100)
    cookie, known = uid(), uid()
    for who in (cookie, known):
        (slot,) = (await two.select(0, who, campaign)).slots
        assert (await h.record_interaction(two.deps(0), slot.token, "IMPRESSION", None)).counted
    # each has one of its two impressions; merged, the customer has both
    merged = ProfilesMerged(source_customer_id=cookie, target_customer_id=known)
    await two.apps[0].bus.publish(PROFILE_MERGED.name, [PROFILE_MERGED.pack(merged)])

    async def moved() -> bool:
        return await two.rows(campaign.campaign_id, customer_id=cookie) == 0

    await eventually(moved, "the cookie's interactions to move to the customer")

    async def cap_moved() -> bool:  # in Redis it moves after the rows
        cid = campaign.campaign_id
        return await two.cap_history(cid, known) in (None, 2) and not await two.cap_history(
            cid, cookie
        )

    await eventually(cap_moved, "the cap history to move")
    assert await two.rows(campaign.campaign_id, customer_id=known) == 2
    capped = await two.select(1, known, campaign, explain=True)
    assert [e.reason for e in capped.excluded if e.campaign_id == campaign.campaign_id] == [
        "FREQUENCY_CAP"
    ]
    _, stats = await h.campaign_stats(two.deps(0), campaign.campaign_id)
    assert (stats.impressions, stats.reach) == (2, 1)


async def test_concurrent_pauses_change_and_publish_once(racing: World) -> None:
    for _ in range(5):
        campaign = await racing.campaign()
        async with racing.resources.sessions() as s:
            before = await s.scalar(select(CatalogRow.version))
        paused = await asyncio.gather(
            *(soon(h.set_status(racing.deps(i), campaign.campaign_id, "PAUSED")) for i in range(10))
        )
        assert {c.status for c in paused} == {"PAUSED"}
        assert len({c.updated_at for c in paused}) == 1  # one change; the others found it
        async with racing.resources.sessions() as s:
            after = await s.scalar(select(CatalogRow.version))
        assert after == before + 1  # one CampaignChanged in the outbox with it

"""SQLAlchemy adapters of the ads ports (SQLite and PostgreSQL).

`SqlAdsUnitOfWork`: campaigns (a write locks the campaign row, SELECT ... FOR UPDATE), the
catalogue version row every campaign change bumps in its transaction, and interactions,
claimed once per (token, type) with INSERT ... ON CONFLICT DO NOTHING.

`SqlCounters`: budgets and caps for the embedded default (and any deployment without Redis).
Each decision is one transaction that first locks the campaign's row, so decisions on one
campaign take turns across processes and the count it checks is the count it adds to.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, cast

from sqlalchemy import Table, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from libs.db import OutboxMessage, SqlUnitOfWork
from libs.retry import retry_conflicts
from services.ads.domain import ENDED, Campaign, day_of
from services.ads.models import (
    AdsOutboxRow,
    CampaignRow,
    CatalogRow,
    CustomerGuardRow,
    InteractionRow,
    SlotRow,
    TrafficRow,
)
from services.ads.ports import BUDGET, CAP, DAILY, AdsUnitOfWork, Counters, Interaction, Stats

__all__ = ["SqlAdsUnitOfWork", "SqlCounters"]

ATTEMPTS = 8

CAMPAIGNS = cast(Table, CampaignRow.__table__)
CATALOG = cast(Table, CatalogRow.__table__)
SLOTS = cast(Table, SlotRow.__table__)
INTERACTIONS = cast(Table, InteractionRow.__table__)
TRAFFIC = cast(Table, TrafficRow.__table__)
GUARDS = cast(Table, CustomerGuardRow.__table__)
_CAMPAIGN_COLUMNS = (
    CAMPAIGNS.c.campaign_id,
    CAMPAIGNS.c.data,
    CAMPAIGNS.c.status,
    CAMPAIGNS.c.created_at,
    CAMPAIGNS.c.updated_at,
)


def _campaign(row: Any) -> Campaign:
    return Campaign.from_json(row[0], row[1], row[2], row[3], row[4])


def _columns(c: Campaign) -> dict[str, Any]:
    return {
        "status": c.status,
        "brand": c.brand,
        "end_time": c.end_time,
        "updated_at": c.updated_at,
        "data": c.to_json(),
    }


class SqlAdsUnitOfWork(SqlUnitOfWork, AdsUnitOfWork):
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        encode_change: Callable[[Campaign, str, float], OutboxMessage],
        encode_interaction: Callable[[Interaction], OutboxMessage],
        after_commit: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(sessions, AdsOutboxRow, after_commit)
        self._encode_change = encode_change
        self._encode_interaction = encode_interaction

    # campaigns

    async def campaign(self, campaign_id: str, *, for_update: bool = False) -> Campaign | None:
        query = select(*_CAMPAIGN_COLUMNS).where(CAMPAIGNS.c.campaign_id == campaign_id)
        if for_update:
            query = query.with_for_update()
        row = (await self.s.execute(query)).first()
        return _campaign(row) if row is not None else None

    async def add_campaign(self, campaign: Campaign) -> None:
        await self.s.execute(
            self._insert(CAMPAIGNS),
            {
                "campaign_id": campaign.campaign_id,
                "created_at": campaign.created_at,
                **_columns(campaign),
            },
        )

    async def save_campaign(self, campaign: Campaign) -> None:
        await self.s.execute(
            update(CAMPAIGNS)
            .where(CAMPAIGNS.c.campaign_id == campaign.campaign_id)
            .values(**_columns(campaign))
        )

    async def announce(self, campaign: Campaign, status: str, at: float) -> None:
        await self.s.execute(
            update(CATALOG).where(CATALOG.c.id == 1).values(version=CATALOG.c.version + 1)
        )
        await self.write_outbox([self._encode_change(campaign, status, at)])

    async def list_campaigns(
        self,
        status: str,
        brand: str,
        now: float,
        after: tuple[float, str] | None,
        limit: int,
    ) -> list[Campaign]:
        query = select(*_CAMPAIGN_COLUMNS)
        ended = or_(CAMPAIGNS.c.status == ENDED, CAMPAIGNS.c.end_time <= now)
        if status == ENDED:
            query = query.where(ended)
        elif status:
            query = query.where(
                CAMPAIGNS.c.status == status,
                or_(CAMPAIGNS.c.end_time.is_(None), CAMPAIGNS.c.end_time > now),
            )
        if brand:
            query = query.where(CAMPAIGNS.c.brand == brand)
        if after is not None:
            at, cid = after
            query = query.where(
                or_(
                    CAMPAIGNS.c.created_at < at,
                    (CAMPAIGNS.c.created_at == at) & (CAMPAIGNS.c.campaign_id < cid),
                )
            )
        query = query.order_by(CAMPAIGNS.c.created_at.desc(), CAMPAIGNS.c.campaign_id.desc())
        return [_campaign(row) for row in await self.s.execute(query.limit(limit))]

    async def catalog_version(self) -> int:
        return int(await self.s.scalar(select(CATALOG.c.version).where(CATALOG.c.id == 1)) or 0)

    async def servable_campaigns(self) -> list[Campaign]:
        rows = await self.s.execute(select(*_CAMPAIGN_COLUMNS).where(CAMPAIGNS.c.status != ENDED))
        return [_campaign(row) for row in rows]

    # interactions

    async def record(self, interaction: Interaction) -> bool:
        inserted = await self.s.execute(
            self._insert(INTERACTIONS)
            .values(
                token_id=interaction.token_id,
                type=interaction.type,
                campaign_id=interaction.campaign_id,
                creative_id=interaction.creative_id,
                customer_id=interaction.customer_id,
                placement=interaction.placement,
                channel=interaction.channel,
                occurred_at=interaction.occurred_at,
                day=interaction.day,
                billable=interaction.billable,
            )
            .on_conflict_do_nothing()
            .returning(INTERACTIONS.c.token_id)
        )
        if inserted.first() is None:
            return False
        await self.write_outbox([self._encode_interaction(interaction)])
        return True

    async def recorded(self, token_id: str, kind: str) -> Interaction | None:
        t = INTERACTIONS.c
        row = (
            await self.s.execute(
                select(
                    t.token_id,
                    t.type,
                    t.campaign_id,
                    t.creative_id,
                    t.customer_id,
                    t.placement,
                    t.channel,
                    t.occurred_at,
                    t.day,
                    t.billable,
                ).where(t.token_id == token_id, t.type == kind)
            )
        ).first()
        return Interaction(**row._mapping) if row is not None else None

    async def note_reward(self, token_id: str, kind: str, outcome: str) -> None:
        t = INTERACTIONS.c
        await self.s.execute(
            update(INTERACTIONS)
            .where(t.token_id == token_id, t.type == kind, t.reward.is_(None))
            .values(reward=outcome[:200])
        )

    async def reward_noted(self, token_id: str, kind: str) -> str | None:
        t = INTERACTIONS.c
        return cast(
            "str | None",
            await self.s.scalar(select(t.reward).where(t.token_id == token_id, t.type == kind)),
        )

    async def stats(self, campaign_id: str, today: int) -> Stats:
        t = INTERACTIONS.c
        counted = or_(t.type != "IMPRESSION", t.billable.is_(True))
        out = Stats()
        rows = await self.s.execute(
            select(t.creative_id, t.type, func.count())
            .where(t.campaign_id == campaign_id, counted)
            .group_by(t.creative_id, t.type)
        )
        for creative_id, kind, n in rows:
            per = out.creatives.setdefault(creative_id, [0, 0, 0])
            index = ("IMPRESSION", "CLICK", "CONVERSION").index(kind)
            per[index] += n
        by_day = await self.s.execute(
            select(t.day, t.type, func.count())
            .where(t.campaign_id == campaign_id, counted)
            .group_by(t.day, t.type)
        )
        for day, kind, n in by_day:
            per = out.days.setdefault(int(day), [0, 0, 0])
            per[("IMPRESSION", "CLICK", "CONVERSION").index(kind)] += n
        out.impressions = sum(v[0] for v in out.creatives.values())
        out.clicks = sum(v[1] for v in out.creatives.values())
        out.conversions = sum(v[2] for v in out.creatives.values())
        impressions = (t.campaign_id == campaign_id, t.type == "IMPRESSION", counted)
        out.reach = int(
            await self.s.scalar(
                select(func.count(func.distinct(t.customer_id))).where(
                    *impressions, t.customer_id != ""
                )
            )
            or 0
        )
        out.impressions_today = int(
            await self.s.scalar(select(func.count()).where(*impressions, t.day == today)) or 0
        )
        return out

    async def add_traffic(self, counts: dict[tuple[int, int], int]) -> None:
        if not counts:
            return
        insert = self._insert(TRAFFIC)
        statement = insert.on_conflict_do_update(
            index_elements=[TRAFFIC.c.day, TRAFFIC.c.hour],
            set_={"requests": TRAFFIC.c.requests + insert.excluded.requests},
        )
        for (day, hour), n in sorted(counts.items()):  # key order: no deadlocks
            await self.s.execute(statement.values(day=day, hour=hour, requests=n))

    async def traffic_since(self, day: int) -> list[tuple[int, int, int]]:
        rows = await self.s.execute(
            select(TRAFFIC.c.day, TRAFFIC.c.hour, TRAFFIC.c.requests).where(TRAFFIC.c.day >= day)
        )
        return [(int(d), int(h), int(n)) for d, h, n in rows]

    async def _guard(self, customer_id: str, *, exclusive: bool) -> float | None:
        """Creates the guard row if needed, locks it, and returns its erased_at."""
        await self.s.execute(
            self._insert(GUARDS)
            .values(customer_id=customer_id, erased_at=None)
            .on_conflict_do_nothing()
        )
        query = select(GUARDS.c.erased_at).where(GUARDS.c.customer_id == customer_id)
        return await self.s.scalar(query.with_for_update(read=not exclusive))

    async def campaigns_of(self, customer_id: str) -> set[str]:
        found: set[str] = set()
        for table in (INTERACTIONS, SLOTS):
            rows = await self.s.scalars(
                select(table.c.campaign_id).where(table.c.customer_id == customer_id).distinct()
            )
            found.update(rows)
        return found

    async def merge_customer(self, source: str, target: str) -> None:
        for table in (INTERACTIONS, SLOTS):
            await self.s.execute(
                update(table).where(table.c.customer_id == source).values(customer_id=target)
            )

    async def guard_customer(self, customer_id: str) -> bool:
        return await self._guard(customer_id, exclusive=False) is None

    async def erase_customer(self, customer_id: str, at: float) -> None:
        erased_at = await self._guard(customer_id, exclusive=True)
        await self.s.execute(
            update(GUARDS)
            .where(GUARDS.c.customer_id == customer_id)
            .values(erased_at=erased_at or at)
        )
        # Anonymised, not deleted: the campaign's counts (and the budget spent) stay true,
        # and nothing names the customer any more (its cap history is gone with the name).
        for table in (INTERACTIONS, SLOTS):
            await self.s.execute(
                update(table).where(table.c.customer_id == customer_id).values(customer_id="")
            )


class SqlCounters(Counters):
    """Counters in `ads_slots`: a live reservation is an unsettled row not yet expired; a
    settled row is an impression counted in its `settled_day`."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def _room(
        self, s: AsyncSession, c: Campaign, customer_id: str, now: float, daily: int
    ) -> str:
        t = SLOTS.c
        live = (t.settled_day.is_not(None)) | (t.expires_at > now)
        if c.total_impressions or daily:
            rows = await s.execute(
                select(t.settled_day, func.count())
                .where(t.campaign_id == c.campaign_id, live)
                .group_by(t.settled_day)
            )
            counts = {day: n for day, n in rows}
            pending = counts.pop(None, 0)
            if c.total_impressions and sum(counts.values()) + pending >= c.total_impressions:
                return BUDGET
            if daily and counts.get(day_of(now), 0) + pending >= daily:
                return DAILY
        if c.cap_impressions and customer_id:
            held = await s.scalar(
                select(func.count()).where(
                    t.campaign_id == c.campaign_id,
                    t.customer_id == customer_id,
                    t.created_at > now - c.cap_period,
                    live,
                )
            )
            if (held or 0) >= c.cap_impressions:
                return CAP
        return ""

    async def _lock(self, s: AsyncSession, campaign_id: str) -> None:
        # Decisions on one campaign take turns (the campaign row is their lock).
        await s.execute(
            select(CAMPAIGNS.c.campaign_id)
            .where(CAMPAIGNS.c.campaign_id == campaign_id)
            .with_for_update()
        )

    def _work(self) -> SqlUnitOfWork:
        # The base unit of work: its session, and lost races raised as Conflict.
        return SqlUnitOfWork(self._sessions, AdsOutboxRow)

    async def reserve(
        self,
        campaign: Campaign,
        customer_id: str,
        slot_id: str,
        now: float,
        ttl: float,
        daily_limit: int,
    ) -> str:
        async def attempt() -> str:
            async with self._work() as work:
                s = work.s
                await self._lock(s, campaign.campaign_id)
                verdict = await self._room(s, campaign, customer_id, now, daily_limit)
                if not verdict:
                    await s.execute(
                        SLOTS.insert().values(
                            slot_id=slot_id,
                            campaign_id=campaign.campaign_id,
                            customer_id=customer_id,
                            created_at=now,
                            expires_at=now + ttl,
                            settled_day=None,
                        )
                    )
                    await work.commit()
                return verdict

        return await retry_conflicts(attempt, attempts=ATTEMPTS)

    async def settle(
        self, campaign: Campaign, customer_id: str, slot_id: str, selected_at: float, now: float
    ) -> int | None:
        async def attempt() -> int | None:
            async with self._work() as work:
                s = work.s
                await self._lock(s, campaign.campaign_id)
                row = (
                    await s.execute(
                        select(SLOTS.c.expires_at, SLOTS.c.settled_day).where(
                            SLOTS.c.slot_id == slot_id
                        )
                    )
                ).first()
                if row is not None and row.settled_day is not None:
                    return int(row.settled_day)  # settled before: the same answer
                if row is not None and row.expires_at > now:
                    await s.execute(
                        update(SLOTS)
                        .where(SLOTS.c.slot_id == slot_id)
                        .values(settled_day=day_of(selected_at))
                    )
                    await work.commit()
                    return day_of(selected_at)
                if row is not None:  # lapsed: it needs room again, as a new hold
                    await s.execute(delete(SLOTS).where(SLOTS.c.slot_id == slot_id))
                if not campaign.limited:
                    await work.commit()
                    return day_of(now)
                if await self._room(s, campaign, customer_id, now, campaign.daily_impressions):
                    await work.commit()
                    return None
                await s.execute(
                    SLOTS.insert().values(
                        slot_id=slot_id,
                        campaign_id=campaign.campaign_id,
                        customer_id=customer_id,
                        created_at=now,
                        expires_at=now,
                        settled_day=day_of(now),
                    )
                )
                await work.commit()
                return day_of(now)

        return await retry_conflicts(attempt, attempts=ATTEMPTS)

    async def spent(self, campaign: Campaign) -> int:
        async with self._work() as work:
            counted = await work.s.scalar(
                select(func.count()).where(
                    SLOTS.c.campaign_id == campaign.campaign_id, SLOTS.c.settled_day.is_not(None)
                )
            )
        return int(counted or 0)

    async def release_lapsed(self, now: float) -> int:
        async with self._work() as work:
            gone = await work.s.execute(
                delete(SLOTS).where(SLOTS.c.settled_day.is_(None), SLOTS.c.expires_at <= now)
            )
            await work.commit()
        return int(getattr(gone, "rowcount", 0) or 0)

    async def erase_customer(self, customer_id: str, campaign_ids: Sequence[str]) -> None:
        return None  # the slots are anonymised with the interactions (SqlAdsUnitOfWork)

    async def merge_customer(self, source: str, target: str, campaign_ids: Sequence[str]) -> None:
        return None  # the slots move with the interactions (SqlAdsUnitOfWork)

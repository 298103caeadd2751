"""In-memory adapters of the ads ports, for unit tests: no I/O.

`FakeAdsUnitOfWork` has the semantics of `services.ads.repository.SqlAdsUnitOfWork` that the
handlers rely on: units of work take turns, each works on a private copy of the shared store
that replaces it on commit, and (token, type) is claimed once. `FakeCounters` keeps the rules
of the shared counters (settled + live reservations under every limit; a lapsed reservation
needs room again; a slot settles once).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from libs.errors import Conflict, Unavailable
from services.ads.domain import ENDED, Campaign, day_of
from services.ads.ports import (
    BUDGET,
    CAP,
    DAILY,
    AdsUnitOfWork,
    Counters,
    CustomerInterests,
    Interaction,
    RewardRefused,
    Rewards,
    SegmentDirectory,
    Stats,
)
from tests.unit.fake_store import FakeStore, FakeUnitOfWork
from tests.unit.signal_fakes import FakeSignals

__all__ = [
    "FakeAdsStore",
    "FakeAdsUnitOfWork",
    "FakeCounters",
    "FakeInterests",
    "FakeRewards",
    "FakeSegments",
    "FakeSignals",
]


@dataclass
class _State:
    campaigns: dict[str, Campaign] = field(default_factory=dict)
    version: int = 0
    interactions: dict[tuple[str, str], Interaction] = field(default_factory=dict)
    published: list[str] = field(default_factory=list)  # "<campaign id>:<status>" / token ids
    traffic: dict[tuple[int, int], int] = field(default_factory=dict)
    erased: set[str] = field(default_factory=set)
    rewards: dict[tuple[str, str], str] = field(default_factory=dict)  # (token, type) -> outcome


@dataclass
class FakeAdsStore(FakeStore[_State]):
    state: _State = field(default_factory=_State)


class FakeAdsUnitOfWork(FakeUnitOfWork[_State], AdsUnitOfWork):
    async def campaign(self, campaign_id: str, *, for_update: bool = False) -> Campaign | None:
        return self._s.campaigns.get(campaign_id)

    async def add_campaign(self, campaign: Campaign) -> None:
        if campaign.campaign_id in self._s.campaigns:
            raise Conflict(campaign.campaign_id)
        self._s.campaigns[campaign.campaign_id] = campaign

    async def save_campaign(self, campaign: Campaign) -> None:
        self._s.campaigns[campaign.campaign_id] = campaign

    async def announce(self, campaign: Campaign, status: str, at: float) -> None:
        self._s.version += 1
        self._s.published.append(f"{campaign.campaign_id}:{status}")

    async def list_campaigns(
        self, status: str, brand: str, now: float, after: tuple[float, str] | None, limit: int
    ) -> list[Campaign]:
        rows = sorted(
            self._s.campaigns.values(), key=lambda c: (c.created_at, c.campaign_id), reverse=True
        )
        out = [
            c
            for c in rows
            if (not status or c.status_at(now) == status)
            and (not brand or c.brand == brand)
            and (after is None or (c.created_at, c.campaign_id) < after)
        ]
        return out[:limit]

    async def catalog_version(self) -> int:
        return self._s.version

    async def servable_campaigns(self) -> list[Campaign]:
        return [c for c in self._s.campaigns.values() if c.status != ENDED]

    async def record(self, interaction: Interaction) -> bool:
        key = (interaction.token_id, interaction.type)
        if key in self._s.interactions:
            return False
        self._s.interactions[key] = interaction
        self._s.published.append(f"{interaction.token_id}:{interaction.type}")
        return True

    async def note_reward(self, token_id: str, kind: str, outcome: str) -> None:
        if (token_id, kind) in self._s.interactions:
            self._s.rewards.setdefault((token_id, kind), outcome)

    async def reward_noted(self, token_id: str, kind: str) -> str | None:
        return self._s.rewards.get((token_id, kind))

    async def recorded(self, token_id: str, kind: str) -> Interaction | None:
        return self._s.interactions.get((token_id, kind))

    async def stats(self, campaign_id: str, today: int) -> Stats:
        out = Stats()
        reached: set[str] = set()
        for i in self._s.interactions.values():
            if i.campaign_id != campaign_id or (i.type == "IMPRESSION" and not i.billable):
                continue
            per = out.creatives.setdefault(i.creative_id, [0, 0, 0])
            per[("IMPRESSION", "CLICK", "CONVERSION").index(i.type)] += 1
            day = out.days.setdefault(i.day, [0, 0, 0])
            day[("IMPRESSION", "CLICK", "CONVERSION").index(i.type)] += 1
            if i.type == "IMPRESSION":
                out.impressions += 1
                out.impressions_today += i.day == today
                if i.customer_id:
                    reached.add(i.customer_id)
            elif i.type == "CLICK":
                out.clicks += 1
            else:
                out.conversions += 1
        out.reach = len(reached)
        return out

    async def add_traffic(self, counts: dict[tuple[int, int], int]) -> None:
        for key, n in counts.items():
            self._s.traffic[key] = self._s.traffic.get(key, 0) + n

    async def traffic_since(self, day: int) -> list[tuple[int, int, int]]:
        return [(d, h, n) for (d, h), n in self._s.traffic.items() if d >= day]

    async def campaigns_of(self, customer_id: str) -> set[str]:
        return {
            i.campaign_id for i in self._s.interactions.values() if i.customer_id == customer_id
        }

    async def merge_customer(self, source: str, target: str) -> None:
        self._s.interactions = {
            k: replace(i, customer_id=target) if i.customer_id == source else i
            for k, i in self._s.interactions.items()
        }

    async def guard_customer(self, customer_id: str) -> bool:
        return customer_id not in self._s.erased

    async def erase_customer(self, customer_id: str, at: float) -> None:
        self._s.erased.add(customer_id)
        self._s.interactions = {
            k: replace(i, customer_id="") if i.customer_id == customer_id else i
            for k, i in self._s.interactions.items()
        }


@dataclass
class FakeInterests(CustomerInterests):
    """Profile's interests by customer; `down`: answers None, as the adapter does when
    profile fails."""

    by_customer: dict[str, dict[str, float]] = field(default_factory=dict)
    down: bool = False

    async def interests(self, customer_id: str, timeout: float) -> dict[str, float] | None:
        return None if self.down else self.by_customer.get(customer_id, {})


@dataclass
class FakeRewards(Rewards):
    """Bonus's RewardPoints: credits enrolled (program, customer) accounts once per key (a
    repeated key answers the first transaction); `down` raises Unavailable."""

    enrolled: set[tuple[str, str]] = field(default_factory=set)
    down: bool = False
    credits: dict[str, tuple[str, str, int]] = field(default_factory=dict)  # key -> credit
    calls: int = 0

    async def reward(
        self, program_id: str, customer_id: str, points: int, reason: str, key: str
    ) -> str:
        self.calls += 1
        if self.down:
            raise Unavailable("bonus RewardPoints: UNAVAILABLE")
        if (program_id, customer_id) not in self.enrolled:
            raise RewardRefused("NOT_FOUND ACCOUNT_NOT_FOUND")
        self.credits.setdefault(key, (program_id, customer_id, points))
        return f"tx-{key}"

    def balance(self, program_id: str, customer_id: str) -> int:
        return sum(p for (g, c, p) in self.credits.values() if (g, c) == (program_id, customer_id))


@dataclass
class FakeSegments(SegmentDirectory):
    """Segment ids segmentation knows (None: every id); `down` answers None."""

    known: set[str] | None = None
    down: bool = False

    async def unknown(self, segment_ids: Sequence[str], timeout: float) -> set[str] | None:
        if self.down:
            return None
        return set() if self.known is None else set(segment_ids) - self.known


@dataclass
class _Slot:
    campaign_id: str
    customer_id: str
    created_at: float
    expires_at: float
    day: int | None = None  # settled in


@dataclass
class FakeCounters(Counters):
    slots: dict[str, _Slot] = field(default_factory=dict)
    answers: dict[str, int | None] = field(default_factory=dict)
    down: bool = False
    calls: int = 0

    def _room(self, c: Campaign, customer_id: str, now: float, daily: int) -> str:
        mine = [
            s
            for s in self.slots.values()
            if s.campaign_id == c.campaign_id and (s.day is not None or s.expires_at > now)
        ]
        pending = sum(1 for s in mine if s.day is None)
        settled = [s for s in mine if s.day is not None]
        if c.total_impressions and len(settled) + pending >= c.total_impressions:
            return BUDGET
        today = sum(1 for s in settled if s.day == day_of(now))
        if daily and today + pending >= daily:
            return DAILY
        if c.cap_impressions and customer_id:
            held = [
                s
                for s in mine
                if s.customer_id == customer_id and s.created_at > now - c.cap_period
            ]
            if len(held) >= c.cap_impressions:
                return CAP
        return ""

    async def reserve(
        self,
        campaign: Campaign,
        customer_id: str,
        slot_id: str,
        now: float,
        ttl: float,
        daily_limit: int,
    ) -> str:
        self.calls += 1
        if self.down:
            from libs.errors import CacheUnavailable

            raise CacheUnavailable("counters down")
        verdict = self._room(campaign, customer_id, now, daily_limit)
        if not verdict:
            self.slots[slot_id] = _Slot(campaign.campaign_id, customer_id, now, now + ttl)
        return verdict

    async def settle(
        self, campaign: Campaign, customer_id: str, slot_id: str, selected_at: float, now: float
    ) -> int | None:
        if slot_id in self.answers:
            return self.answers[slot_id]
        slot = self.slots.get(slot_id)
        answer: int | None
        if slot is not None and slot.expires_at > now:
            slot.day = answer = day_of(selected_at)
        else:
            self.slots.pop(slot_id, None)
            if self._room(campaign, customer_id, now, campaign.daily_impressions):
                answer = None
            else:
                answer = day_of(now)
                self.slots[slot_id] = _Slot(campaign.campaign_id, customer_id, now, now, answer)
        self.answers[slot_id] = answer
        return answer

    async def spent(self, campaign: Campaign) -> int:
        return sum(
            1
            for s in self.slots.values()
            if s.campaign_id == campaign.campaign_id and s.day is not None
        )

    async def release_lapsed(self, now: float) -> int:
        lapsed = [k for k, s in self.slots.items() if s.day is None and s.expires_at <= now]
        for key in lapsed:
            del self.slots[key]
        return len(lapsed)

    async def merge_customer(self, source: str, target: str, campaign_ids: Sequence[str]) -> None:
        for slot in self.slots.values():
            if slot.customer_id == source:
                slot.customer_id = target

    async def erase_customer(self, customer_id: str, campaign_ids: Sequence[str]) -> None:
        for slot in self.slots.values():
            if slot.customer_id == customer_id:
                slot.customer_id = ""

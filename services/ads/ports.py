"""What the ads handlers need: one unit of work (a transaction) at a time, and the shared
counters that hold budgets and frequency caps across processes.

SQL adapters: `services.ads.repository` (`SqlAdsUnitOfWork`, and `SqlCounters` for the
embedded default); Redis: `services.ads.counters.RedisCounters`; in-memory fakes:
tests/unit/ads_fakes.py.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass, field

from libs.ports import UnitOfWork
from libs.signals import CustomerSignals  # re-exported: the port ads asks segmentation by
from services.ads.domain import Campaign

__all__ = [
    "AdsUnitOfWork",
    "AnySegment",
    "Counters",
    "CustomerInterests",
    "CustomerSignals",
    "Interaction",
    "NoInterests",
    "NoRewards",
    "RewardRefused",
    "Rewards",
    "SegmentDirectory",
    "Stats",
]

# What `Counters.reserve` answers when there is no room.
BUDGET, DAILY, CAP = "BUDGET", "DAILY", "CAP"


@dataclass(frozen=True)
class Interaction:
    token_id: str
    type: str  # IMPRESSION, CLICK, CONVERSION
    campaign_id: str
    creative_id: str
    customer_id: str
    placement: str
    channel: int
    occurred_at: float
    day: int  # the UTC day it counts in
    billable: bool = True
    # the campaign's reward for it, when it earns one: (bonus program id, points)
    reward: tuple[str, int] | None = None


@dataclass
class Stats:
    impressions: int = 0
    clicks: int = 0
    conversions: int = 0
    reach: int = 0
    impressions_today: int = 0
    # creative id -> [impressions, clicks, conversions]
    creatives: dict[str, list[int]] = field(default_factory=dict)
    # UTC day number -> [impressions, clicks, conversions]
    days: dict[int, list[int]] = field(default_factory=dict)


class AdsUnitOfWork(UnitOfWork):
    # campaigns
    @abc.abstractmethod
    async def campaign(self, campaign_id: str, *, for_update: bool = False) -> Campaign | None: ...

    @abc.abstractmethod
    async def add_campaign(self, campaign: Campaign) -> None: ...

    @abc.abstractmethod
    async def save_campaign(self, campaign: Campaign) -> None: ...

    @abc.abstractmethod
    async def announce(self, campaign: Campaign, status: str, at: float) -> None:
        """Bumps the catalogue version and publishes CampaignChanged (outbox), in this
        transaction."""

    @abc.abstractmethod
    async def list_campaigns(
        self,
        status: str,
        brand: str,
        now: float,
        after: tuple[float, str] | None,
        limit: int,
    ) -> list[Campaign]:
        """Newest first; `status` "" for all (ENDED includes those past end_time);
        strictly after the (created_at, campaign_id) position when given."""

    @abc.abstractmethod
    async def catalog_version(self) -> int: ...

    @abc.abstractmethod
    async def servable_campaigns(self) -> list[Campaign]:
        """Every campaign not stored as ENDED (the cache filters the rest per request)."""

    # interactions
    @abc.abstractmethod
    async def record(self, interaction: Interaction) -> bool:
        """Inserts it unless its (token, type) is recorded already (True when inserted), and
        publishes InteractionRecorded (outbox) when it was."""

    @abc.abstractmethod
    async def recorded(self, token_id: str, kind: str) -> Interaction | None:
        """The interaction recorded for (token, type), if any."""

    @abc.abstractmethod
    async def note_reward(self, token_id: str, kind: str, outcome: str) -> None:
        """Records what became of the interaction's reward (the first answer stays)."""

    @abc.abstractmethod
    async def reward_noted(self, token_id: str, kind: str) -> str | None:
        """What became of the interaction's reward; None: not answered yet (or none)."""

    @abc.abstractmethod
    async def stats(self, campaign_id: str, today: int) -> Stats: ...

    @abc.abstractmethod
    async def add_traffic(self, counts: dict[tuple[int, int], int]) -> None:
        """Adds (day, hour) -> requests to the traffic history (additively)."""

    @abc.abstractmethod
    async def traffic_since(self, day: int) -> list[tuple[int, int, int]]:
        """(day, hour, requests) from `day` on."""

    @abc.abstractmethod
    async def campaigns_of(self, customer_id: str) -> set[str]:
        """The campaigns the customer has interactions or slots in."""

    @abc.abstractmethod
    async def merge_customer(self, source: str, target: str) -> None:
        """Moves the source customer's interactions and slots to the target (reach and caps
        follow the merged profile)."""

    @abc.abstractmethod
    async def guard_customer(self, customer_id: str) -> bool:
        """Holds the customer's guard (shared) until commit; False when it was erased."""

    @abc.abstractmethod
    async def erase_customer(self, customer_id: str, at: float) -> None:
        """Holds the customer's guard exclusively, marks it erased, and anonymises its
        interactions and slots (the counts stay, the name goes)."""


class CustomerInterests(abc.ABC):
    """The customer's interest in categories (profile's `interests`, category -> score), within
    a deadline; None when profile is slow or down (weights are then the campaigns' own)."""

    @abc.abstractmethod
    async def interests(self, customer_id: str, timeout: float) -> dict[str, float] | None: ...


class SegmentDirectory(abc.ABC):
    """Which segment ids name no segment (segmentation's GetSegment), within a deadline;
    None when segmentation does not answer (the ids are then taken as they are)."""

    @abc.abstractmethod
    async def unknown(self, segment_ids: Sequence[str], timeout: float) -> set[str] | None: ...


class RewardRefused(Exception):
    """The bonus service refused a reward for good (not enrolled, erased, no such program):
    retrying cannot help. `reason` is its reason code."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Rewards(abc.ABC):
    """Credits a reward's points to the customer's bonus account, idempotent by `key` (a
    repeated key returns the first credit). Returns the transaction id; raises
    `libs.errors.Unavailable` while the bonus service cannot answer (retry) and
    `RewardRefused` when it refuses (do not)."""

    @abc.abstractmethod
    async def reward(
        self, program_id: str, customer_id: str, points: int, reason: str, key: str
    ) -> str: ...


class NoRewards(Rewards):
    """No bonus service: every reward is refused (and recorded as such)."""

    async def reward(
        self, program_id: str, customer_id: str, points: int, reason: str, key: str
    ) -> str:
        raise RewardRefused("NO_BONUS_SERVICE")


class AnySegment(SegmentDirectory):
    async def unknown(self, segment_ids: Sequence[str], timeout: float) -> set[str] | None:
        return set()


class NoInterests(CustomerInterests):
    async def interests(self, customer_id: str, timeout: float) -> dict[str, float] | None:
        return {}


class Counters(abc.ABC):
    """Budgets and frequency caps, shared by every ads process and atomic.

    A selection of a limited campaign reserves one impression (`reserve`) until
    `now + ttl`; the impression settles it (`settle`); a reservation never settled lapses
    and its room returns. A reservation is admitted only when settled impressions plus live
    reservations stay under every limit, so settled impressions never exceed a limit."""

    @abc.abstractmethod
    async def reserve(
        self,
        campaign: Campaign,
        customer_id: str,
        slot_id: str,
        now: float,
        ttl: float,
        daily_limit: int,
    ) -> str:
        """ "" when reserved; BUDGET (total), DAILY (`daily_limit`: the daily budget, or its
        paced allowance so far today) or CAP when there is no room."""

    @abc.abstractmethod
    async def settle(
        self, campaign: Campaign, customer_id: str, slot_id: str, selected_at: float, now: float
    ) -> int | None:
        """Counts the impression of a selection, once per slot (a repeat answers the first
        answer): the UTC day it counts in (the selection's for a live reservation), or None
        when its reservation had lapsed (or was never made) and there is no room now."""

    @abc.abstractmethod
    async def spent(self, campaign: Campaign) -> int:
        """Impressions counted against the campaign's total budget."""

    @abc.abstractmethod
    async def release_lapsed(self, now: float) -> int:
        """Drops lapsed reservations (where they are not dropped as they are met)."""

    @abc.abstractmethod
    async def erase_customer(self, customer_id: str, campaign_ids: Sequence[str]) -> None:
        """Forgets the customer's frequency-cap history."""

    @abc.abstractmethod
    async def merge_customer(self, source: str, target: str, campaign_ids: Sequence[str]) -> None:
        """Moves the source customer's frequency-cap history to the target."""

    async def close(self) -> None:
        return None

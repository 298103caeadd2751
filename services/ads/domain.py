"""Ads domain: campaigns, eligibility by status/schedule/placement, ranking. Pure: no I/O.

A campaign is stored whole as JSON (`to_json`/`from_json`), like bonus's programs. Its
targeting condition is kept as the serialized `Condition` the caller sent (validated then) and
parsed once per process, when the campaign cache loads it.
"""

from __future__ import annotations

import base64
import math
import random
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

__all__ = [
    "ACTIVE",
    "DAY",
    "ENDED",
    "PAUSED",
    "Campaign",
    "Creative",
    "day_of",
    "new_id",
    "placement_matches",
    "rank",
    "weight_for",
]

ACTIVE, PAUSED, ENDED = "ACTIVE", "PAUSED", "ENDED"
DAY = 86_400.0


def new_id() -> str:
    return uuid.uuid4().hex


def day_of(at: float) -> int:
    """The UTC calendar day (days since the epoch) daily budgets are counted in."""
    return int(at // DAY)


@dataclass(frozen=True)
class Creative:
    creative_id: str
    title: str
    body: str = ""
    image_url: str = ""
    click_url: str = ""
    placements: tuple[str, ...] = ()

    def fits(self, placement: str) -> bool:
        return not self.placements or any(placement_matches(p, placement) for p in self.placements)


def placement_matches(pattern: str, placement: str) -> bool:
    """Exact, or a trailing ".*" matches every placement under the prefix ("home.*" matches
    "home.top" and "home.top.left", not "home" or "homepage")."""
    if pattern.endswith(".*"):
        return placement.startswith(pattern[:-1])
    return pattern == placement


@dataclass(frozen=True)
class Campaign:
    campaign_id: str
    name: str
    brand: str = ""
    creatives: tuple[Creative, ...] = ()
    include_segment_ids: tuple[str, ...] = ()
    exclude_segment_ids: tuple[str, ...] = ()
    context: bytes = b""  # a serialized segmentation Condition; b"": always true
    start_time: float | None = None
    end_time: float | None = None
    priority: int = 0
    weight: int = 1
    total_impressions: int = 0  # 0: unlimited
    daily_impressions: int = 0
    cap_impressions: int = 0  # per customer per cap_period seconds; 0: no cap
    cap_period: float = 0.0
    status: str = ACTIVE  # as stored: ACTIVE, PAUSED or ENDED
    created_at: float = 0.0
    updated_at: float = 0.0
    # what the campaign is about: the customer's interest in them raises its weight
    categories: tuple[str, ...] = ()
    # the ad-loyalty reward: points of a bonus program per counted interaction of one type
    reward_program_id: str = ""  # "": no reward
    reward_points: int = 0
    reward_type: str = ""  # CLICK or CONVERSION

    # --- state

    def status_at(self, now: float) -> str:
        """ENDED once end_time has passed (final), otherwise the stored status."""
        if self.status == ENDED or (self.end_time is not None and now >= self.end_time):
            return ENDED
        return self.status

    def in_schedule(self, now: float) -> bool:
        return (self.start_time is None or now >= self.start_time) and (
            self.end_time is None or now < self.end_time
        )

    @property
    def limited(self) -> bool:
        """Whether selecting it must reserve room (a budget or a frequency cap)."""
        return bool(self.total_impressions or self.daily_impressions or self.cap_impressions)

    def reward_for(self, kind: str) -> tuple[str, int] | None:
        """(program id, points) when a counted interaction of this kind earns a reward."""
        if self.reward_program_id and self.reward_points > 0 and self.reward_type == kind:
            return self.reward_program_id, self.reward_points
        return None

    @property
    def targeted(self) -> bool:
        """Needs to know who the customer is (segments); the context condition is separate."""
        return bool(self.include_segment_ids or self.exclude_segment_ids)

    def creative_for(self, placement: str, rng: random.Random) -> Creative | None:
        fitting = [c for c in self.creatives if c.fits(placement)]
        return rng.choice(fitting) if fitting else None

    # --- storage

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("campaign_id", "status", "created_at", "updated_at"):
            data.pop(key)
        data["context"] = base64.b64encode(self.context).decode()
        return data

    @classmethod
    def from_json(
        cls, campaign_id: str, data: dict[str, Any], status: str, created: float, updated: float
    ) -> Campaign:
        values = dict(data)
        values["creatives"] = tuple(
            Creative(**{**c, "placements": tuple(c.get("placements", ()))})
            for c in values.get("creatives", ())
        )
        for key in ("include_segment_ids", "exclude_segment_ids", "categories"):
            values[key] = tuple(values.get(key, ()))
        values["context"] = base64.b64decode(values.get("context", ""))
        return cls(
            campaign_id=campaign_id,
            status=status,
            created_at=created,
            updated_at=updated,
            **values,
        )


MAX_INTEREST_BOOST = 10.0


def weight_for(c: Campaign, interests: Mapping[str, float]) -> float:
    """The campaign's weight times (1 + the customer's interest in its categories), the
    boost at most MAX_INTEREST_BOOST: interests are profile's scores (a product view 1, a
    purchase 5, halving every 30 days)."""
    interest = sum(max(interests.get(category, 0.0), 0.0) for category in c.categories)
    boost = 1.0 + interest if math.isfinite(interest) else MAX_INTEREST_BOOST
    return max(c.weight, 1) * min(boost, MAX_INTEREST_BOOST)


def rank(
    campaigns: Sequence[Campaign], rng: random.Random, interests: Mapping[str, float]
) -> list[Campaign]:
    """Priority first (higher wins: e.g. sponsorship 200 > standard 100 > house 0); within a
    priority a weighted random order (Efraimidis-Spirakis keys u^(1/weight)), so over many
    requests each campaign leads in proportion to its weight (`weight_for`)."""

    def key(c: Campaign) -> tuple[int, float]:
        u = rng.random() or 1e-12
        return (-c.priority, -math.pow(u, 1.0 / weight_for(c, interests)))

    return sorted(campaigns, key=key)

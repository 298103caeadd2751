"""The process's campaign cache: SelectAds reads campaigns from memory, never from storage.

Every campaign change bumps a version row in its transaction and publishes CampaignChanged
on `ads.campaigns` (outbox). Each process tails that topic (a fan-out tail: every process
sees every change) and reloads at once; a background check compares the version row at most
every `max_age` seconds (0.5 s) as a safety net for changes published while the tail was down.
A reload reads the version first and the campaigns after it, so a change committed in
between is picked up by the next check rather than lost.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from backcrm.segmentation.v1 import condition_pb2

from services.ads.domain import Campaign
from services.ads.ports import AdsUnitOfWork
from services.segmentation.conditions import ContextCond, Group, Node, parse_condition
from services.segmentation.conditions.ast import walk

__all__ = ["CampaignCache", "Live"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Live:
    """A campaign as selection needs it: its targeting condition parsed once."""

    campaign: Campaign
    condition: condition_pb2.Condition | None = None  # None: no context condition
    node: Node | None = None
    # Whether the condition reads the request only (evaluated here) or also the customer
    # (asked of segmentation, EvaluateConditions).
    context_only: bool = True


def live(campaign: Campaign) -> Live:
    if not campaign.context:
        return Live(campaign)
    condition = condition_pb2.Condition.FromString(campaign.context)
    node = parse_condition(condition, "campaign.targeting.context")
    only = all(isinstance(n, Group | ContextCond) for n in walk(node))
    return Live(campaign, condition, node, only)


class CampaignCache:
    def __init__(self, uow: Callable[[], AdsUnitOfWork]) -> None:
        self._uow = uow
        self._lock = asyncio.Lock()
        self.version = -1
        self.campaigns: dict[str, Live] = {}

    @property
    def loaded(self) -> bool:
        return self.version >= 0

    async def current(self) -> dict[str, Live]:
        """The campaigns as of the last load (loading them on first use)."""
        if not self.loaded:
            await self.refresh()
        return self.campaigns

    async def refresh(self) -> bool:
        """Reloads when the stored version moved; True when it did."""
        async with self._lock:
            async with self._uow() as uow:
                version = await uow.catalog_version()
                if version == self.version:
                    return False
                campaigns = await uow.servable_campaigns()
            fresh: dict[str, Live] = {}
            for campaign in campaigns:
                try:
                    fresh[campaign.campaign_id] = live(campaign)
                except Exception:  # stored valid; never let one campaign stop the rest
                    log.exception("campaign %s cannot be served", campaign.campaign_id)
            self.campaigns, self.version = fresh, version
            return True

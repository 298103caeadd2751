"""The process's catalogue cache: items and showcases in memory, never read per request.

Every item or showcase change bumps a version row in its transaction and publishes
ItemsUpserted on `recommend.items` / ShowcaseChanged on `recommend.showcases` (outbox). Each
process tails both topics (fan-out tails: every process sees every change) and reloads at
once; a background check compares the version row every `recommend_catalog_check_seconds`
(0.5 s) as a safety net for changes published while a tail was down. A reload reads the
version first and the rows after it, so a change committed in between is picked up by the
next check rather than lost (as ads' campaign cache does).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from services.recommend.content import ContentIndex, features
from services.recommend.domain import Item, Showcase
from services.recommend.mix import ItemInfo
from services.recommend.ports import RecommendUnitOfWork

__all__ = ["Catalogue", "CatalogueCache"]


@dataclass
class Catalogue:
    """One loaded state of the catalogue, with what serving derives from it."""

    version: int = -1
    items: dict[str, Item] = field(default_factory=dict)
    showcases: dict[str, Showcase] = field(default_factory=dict)
    info: dict[str, ItemInfo] = field(default_factory=dict)
    content: ContentIndex = field(default_factory=ContentIndex)
    # available items, newest first (released_at desc, sku)
    newest: list[Item] = field(default_factory=list)

    @classmethod
    def of(cls, version: int, items: list[Item], showcases: list[Showcase]) -> Catalogue:
        content = ContentIndex()
        for item in items:
            content.add(item.sku, features(item.category, item.tags, item.attributes))
        newest = sorted(
            (i for i in items if i.available), key=lambda i: (-(i.released_at or 0.0), i.sku)
        )
        return cls(
            version=version,
            items={i.sku: i for i in items},
            showcases={s.showcase_id: s for s in showcases},
            info={i.sku: ItemInfo(i.sku, i.category, i.available) for i in items},
            content=content,
            newest=newest,
        )


class CatalogueCache:
    def __init__(self, uow: Callable[[], RecommendUnitOfWork]) -> None:
        self._uow = uow
        self._lock = asyncio.Lock()
        self.state = Catalogue()

    async def current(self) -> Catalogue:
        """The catalogue as of the last load (loading it on first use)."""
        if self.state.version < 0:
            await self.refresh()
        return self.state

    async def refresh(self) -> bool:
        """Reloads when the stored version moved; True when it did."""
        async with self._lock:
            async with self._uow() as uow:
                version = await uow.catalog_version()
                if version == self.state.version:
                    return False
                items = await uow.all_items()
                showcases = await uow.all_showcases()
            self.state = Catalogue.of(version, items, showcases)
            return True

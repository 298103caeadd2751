"""The process-wide resources one or several services share: database, cache, bus."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from libs.bus import make_bus
from libs.bus.port import EventBus
from libs.cache import make_cache
from libs.cache.port import Cache
from libs.config import Settings
from libs.db import make_engine, make_sessionmaker, ping

__all__ = ["Resources"]


@dataclass
class Resources:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    cache: Cache
    bus: EventBus

    @classmethod
    def open(cls, settings: Settings) -> Resources:
        engine = make_engine(settings.database_url)
        return cls(
            settings=settings,
            engine=engine,
            sessions=make_sessionmaker(engine),
            cache=make_cache(settings),
            bus=make_bus(settings),
        )

    async def storage_ready(self) -> bool:
        return await ping(self.engine)

    async def close(self) -> None:
        await self.bus.close()
        await self.cache.close()
        await self.engine.dispose()

    @staticmethod
    def clock() -> float:
        return time.time()

    def describe(self) -> dict[str, Any]:
        return {
            "database": self.engine.url.render_as_string(hide_password=True),
            "cache_and_bus": "redis" if self.settings.redis_url else "in-process",
        }

"""The cache port and the factory that picks its adapter from the settings."""

from __future__ import annotations

from libs.cache.memory import InProcessCache
from libs.cache.port import Cache
from libs.config import Settings

__all__ = ["Cache", "InProcessCache", "make_cache"]


def make_cache(settings: Settings) -> Cache:
    """Redis when REDIS_URL is set, else the bounded in-process LRU."""
    if settings.embedded_bus:
        return InProcessCache(settings.cache_max_entries)
    # Imported here so the embedded mode never loads the Redis client.
    from libs.cache.redis_cache import RedisCache

    return RedisCache(settings.redis_url, prefix=settings.redis_prefix + "cache:")

"""The cache port: bytes by key with a TTL. Redis in production, a bounded LRU in-process.

Entries are invalidated by the changes that make them stale; the TTL is only a backstop.
An unreachable backend raises `libs.errors.CacheUnavailable`; callers fall back to storage.

A read-through fill races the writes: a reader that read storage before a write committed
must not cache what it read after the write's invalidation. So `invalidate` also bumps the
key's generation, a reader takes the generations before it reads storage, and `set_many_if`
stores each entry only while its generation is still the one taken (atomically).
"""

from __future__ import annotations

import abc
from collections.abc import Sequence

from libs.errors import CacheUnavailable

__all__ = ["Cache", "generation_key", "taken_generations"]

# Taken when the generations could not be read: it matches no generation, so nothing is filled.
UNKNOWN_GENERATION = b"unknown"


def generation_key(key: str) -> str:
    return f"gen:{key}"


class Cache(abc.ABC):
    @abc.abstractmethod
    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]: ...

    async def get(self, key: str) -> bytes | None:
        return (await self.get_many([key]))[0]

    @abc.abstractmethod
    async def set_many(self, items: Sequence[tuple[str, bytes]], ttl_seconds: int) -> None: ...

    async def set(self, key: str, value: bytes, ttl_seconds: int) -> None:
        await self.set_many([(key, value)], ttl_seconds)

    @abc.abstractmethod
    async def delete(self, keys: Sequence[str]) -> None: ...

    @abc.abstractmethod
    async def invalidate(self, keys: Sequence[str], generation_ttl_seconds: int) -> None:
        """Delete the entries and bump their generations (kept that long)."""

    async def generations(self, keys: Sequence[str]) -> list[bytes | None]:
        """The keys' generations now (None: never invalidated, or long ago)."""
        return await self.get_many([generation_key(k) for k in keys])

    @abc.abstractmethod
    async def set_many_if(
        self, items: Sequence[tuple[str, bytes, bytes | None]], ttl_seconds: int
    ) -> None:
        """(key, value, generation): set each entry only if the key's generation is still
        that one (taken with `generations` before the value was read from storage)."""

    @abc.abstractmethod
    async def ping(self) -> bool: ...

    @abc.abstractmethod
    async def close(self) -> None: ...


async def taken_generations(cache: Cache, keys: Sequence[str]) -> list[bytes | None]:
    """The keys' generations, taken before storage is read for a fill (`set_many_if`); with
    the cache unreachable, ones that match none, so nothing read now is filled later."""
    if not keys:
        return []
    try:
        return await cache.generations(keys)
    except CacheUnavailable:
        return [UNKNOWN_GENERATION] * len(keys)

"""The cache port: bytes by key with a TTL. Redis in production, a bounded LRU in-process.

Entries are invalidated by the changes that make them stale; the TTL is only a backstop.
An unreachable backend raises `libs.errors.CacheUnavailable`; callers fall back to storage.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence

__all__ = ["Cache"]


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
    async def ping(self) -> bool: ...

    @abc.abstractmethod
    async def close(self) -> None: ...

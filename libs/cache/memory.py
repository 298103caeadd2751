"""The in-process cache: a bounded LRU with a TTL per entry, for the embedded mode.

Single event loop, no awaits inside the operations, so no lock is needed.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Sequence

from libs.cache.port import Cache, generation_key

__all__ = ["InProcessCache"]


class InProcessCache(Cache):
    def __init__(
        self, max_entries: int = 100_000, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be positive")
        self._max_entries = max_entries
        # Monotonic by default: a wall-clock jump must not expire or revive entries.
        self._clock = clock
        # key -> (expires_at, value); order is least recently used first.
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        now = self._clock()
        values: list[bytes | None] = []
        for key in keys:
            entry = self._entries.get(key)
            if entry is None:
                values.append(None)
            elif entry[0] <= now:
                del self._entries[key]
                values.append(None)
            else:
                self._entries.move_to_end(key)
                values.append(entry[1])
        return values

    async def set_many(self, items: Sequence[tuple[str, bytes]], ttl_seconds: int) -> None:
        if ttl_seconds <= 0:
            raise ValueError("ttl_seconds must be positive")
        expires_at = self._clock() + ttl_seconds
        for key, value in items:
            self._entries[key] = (expires_at, value)
            self._entries.move_to_end(key)
        # Expired entries are not swept: they are the least recently used, so they go first.
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)

    async def delete(self, keys: Sequence[str]) -> None:
        for key in keys:
            self._entries.pop(key, None)

    async def invalidate(self, keys: Sequence[str], generation_ttl_seconds: int) -> None:
        generations = await self.generations(keys)
        await self.delete(keys)
        await self.set_many(
            [
                (generation_key(k), b"%d" % (int(g or 0) + 1))
                for k, g in zip(keys, generations, strict=True)
            ],
            generation_ttl_seconds,
        )

    async def set_many_if(
        self, items: Sequence[tuple[str, bytes, bytes | None]], ttl_seconds: int
    ) -> None:
        # these awaits never suspend: the check and the set are atomic on the one loop
        now = await self.generations([key for key, _, _ in items])
        await self.set_many(
            [(key, value) for (key, value, seen), g in zip(items, now, strict=True) if g == seen],
            ttl_seconds,
        )

    async def ping(self) -> bool:
        return True

    async def close(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)

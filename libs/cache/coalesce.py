"""Concurrent reads of one event-loop turn share one round trip (the DataLoader pattern).

A redis-py command costs far more CPU in the client (pool checkout, observability hooks,
packing, a timeout scope, parsing) than Redis spends on it: at 16 reads in flight that is
most of a cached `GetProfile`. So `get_many` calls made in the same loop turn are queued and
fetched together by one call of `fetch` (one `MGET`), each caller getting its own slice.

Read-after-write holds: a read is sent to Redis only after it was asked for (its batch is
fetched on a later loop turn), so it sees every write that completed before it was asked.

`aiodataloader` does the same per key, but binds its queue to the loop it is built on (the
cache is built before the loop starts and outlives test loops), caches results forever by
default and costs a future per key plus a gather per call; this is the small part we need.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

__all__ = ["Coalescer"]

V = TypeVar("V")
Fetch = Callable[[list[str]], Awaitable[list[V]]]


class Coalescer(Generic[V]):
    """`await get_many(keys)` → `fetch`'s values for `keys`, fetched together with the calls
    that came while the previous fetch was out. An exception of `fetch` reaches every caller
    of that batch."""

    def __init__(self, fetch: Fetch[V], wrap_error: Callable[[Exception], Exception]) -> None:
        self._fetch = fetch
        # a fresh exception per caller: one instance raised in many tasks shares a traceback
        self._wrap_error = wrap_error
        self._queue: list[tuple[Sequence[str], asyncio.Future[list[V]]]] = []
        self._drain: asyncio.Task[None] | None = None  # a reference: the loop keeps weak ones

    async def get_many(self, keys: Sequence[str]) -> list[V]:
        loop = asyncio.get_running_loop()
        if self._drain is not None and self._drain.get_loop() is not loop:
            # left unfinished by a loop that has ended (a cache outliving a test's loop):
            # its queue would never be sent
            self._drain, self._queue = None, []
        future: asyncio.Future[list[V]] = loop.create_future()
        self._queue.append((keys, future))
        if self._drain is None or self._drain.done():
            self._drain = asyncio.ensure_future(self._drain_queue())
        return await future

    async def _drain_queue(self) -> None:
        # One fetch out at a time: the calls that arrive meanwhile go out together next.
        while self._queue:
            batch, self._queue = self._queue, []
            await self._run(batch)

    async def _run(self, batch: list[tuple[Sequence[str], asyncio.Future[list[V]]]]) -> None:
        # A caller cancelled meanwhile (its deadline) is left out; the others still read.
        batch = [(keys, future) for keys, future in batch if not future.done()]
        if not batch:
            return
        try:
            values = await self._fetch([key for keys, _ in batch for key in keys])
        except Exception as exc:
            for _, future in batch:
                if not future.done():
                    future.set_exception(self._wrap_error(exc))
            return
        except BaseException:  # cancelled (shutdown): so are the callers, queued ones too
            for _, future in batch + self._queue:
                future.cancel()
            self._queue = []
            raise
        start = 0
        for keys, future in batch:
            if not future.done():
                future.set_result(values[start : start + len(keys)])
            start += len(keys)

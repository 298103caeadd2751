"""Concurrent reads share round trips: one fetch out at a time, the reads asked meanwhile go
out together in the next one (the DataLoader pattern, batched by round trip).

A redis-py command costs far more CPU in the client (pool checkout, observability hooks,
packing, a timeout scope, a send and a wake-up) than Redis spends on it: at 16 cached
`GetProfile`s in flight that was the largest part of a call above grpc itself. Batching only
the reads of one loop turn gathered 1.03 reads per MGET, since grpc.aio starts calls one per
turn; batching by round trip gathers what arrives while one is out.

Read-after-write holds: a read is sent to Redis only after it was asked for (it waits for
the next fetch, never joins one already out), so it sees every write completed before it.
A read asked while no fetch is out is fetched at once by its own caller, without the queue's
future and task: on a server under load the calls come one at a time often enough that most
reads are such (a cached GetProfile over gRPC at 16 in flight made 1.05 reads per MGET).
A read queued behind a slow fetch waits for it: with the cache's 0.5 s socket timeout, at
most that long before its own (and storage when Redis is down).

`aiodataloader` does the per-turn kind per key, but binds its queue to the loop it is built on
(the cache is built before the loop starts and outlives test loops), caches results forever by
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
        self._fetching: asyncio.AbstractEventLoop | None = None  # a caller's own fetch is out

    async def get_many(self, keys: Sequence[str]) -> list[V]:
        loop = asyncio.get_running_loop()
        drain = self._drain
        # (a drain or fetch of a loop that has ended, e.g. a test's, will never finish)
        draining = drain is not None and not drain.done() and drain.get_loop() is loop
        if not draining and self._fetching is not loop:
            return await self._fetch_own(loop, keys)
        # the fetch out now ends with starting (or the drain running) the next
        future: asyncio.Future[list[V]] = loop.create_future()
        self._queue.append((keys, future))
        return await future

    async def _fetch_own(self, loop: asyncio.AbstractEventLoop, keys: Sequence[str]) -> list[V]:
        """Nothing is out: this caller fetches; the reads asked meanwhile go out next, together."""
        self._fetching = loop
        try:
            return await self._fetch(list(keys))
        except Exception as exc:
            error = self._wrap_error(exc)
            if error is exc:
                raise
            raise error from exc
        finally:
            self._fetching = None
            if self._queue:
                self._drain = loop.create_task(self._drain_queue())

    async def _drain_queue(self) -> None:
        # One fetch out at a time: the calls that arrive meanwhile go out together next.
        while self._queue:
            batch, self._queue = self._queue, []
            await self._run(batch)

    async def _run(self, batch: list[tuple[Sequence[str], asyncio.Future[list[V]]]]) -> None:
        # A caller cancelled meanwhile (its deadline) is left out; the others still read.
        loop = asyncio.get_running_loop()
        batch = [(k, f) for k, f in batch if not f.done() and f.get_loop() is loop]
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

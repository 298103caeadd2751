"""Shared tails: one reader per topic per process, fanned out to every watcher of the topic.

`EventBus.tail()` serves watch streams (WatchProfileChanges, WatchMembershipChanges). Giving
each watcher its own reader cost each one a blocked Redis connection (300 watchers, 95 more
connections). Here a topic is read once, by one task, whatever the number of watchers, and
each watcher gets its own bounded queue:

* a watcher that falls `buffer` messages behind is ended with RESOURCE_EXHAUSTED (reason
  WATCHER_TOO_SLOW) instead of holding the others back or growing without bound; it knows it
  missed messages and can reconnect;
* at most `max_watchers` watchers per process: one more is refused with RESOURCE_EXHAUSTED
  (reason TOO_MANY_WATCHERS);
* the reader of a topic starts with its first watcher and stops with its last one.

Messages come either from a pull `reader` (Redis: a blocking XREAD loop) or are pushed with
`deliver` by a bus that sees every publication itself (in-process).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable

from backcrm.common.v1.common_pb2 import EventEnvelope

from libs.errors import ResourceExhausted

__all__ = ["Fanout", "Watcher"]

log = logging.getLogger(__name__)

Reader = Callable[[str], AsyncIterator[EventEnvelope]]


class Watcher:
    """An async iterator over one topic's messages from its creation on."""

    def __init__(self, fanout: Fanout, topic: str, feed: _Feed, counted: bool) -> None:
        self._fanout = fanout
        self.topic = topic
        self.feed = feed
        self.counted = counted
        self._queue: deque[EventEnvelope] = deque()
        self._ready = asyncio.Event()
        self._ended = False
        self._error: ResourceExhausted | None = None

    def offer(self, envelope: EventEnvelope) -> None:
        if self._ended:
            return
        if len(self._queue) >= self._fanout.buffer:
            self._queue.clear()
            self._error = ResourceExhausted(
                f"this watch fell {self._fanout.buffer} messages behind on {self.topic} and "
                "was ended; watch again (changes since the last one received were missed)",
                reason="WATCHER_TOO_SLOW",
            )
            log.warning("a watcher of %s fell too far behind: ended", self.topic)
            self.end()
            return
        self._queue.append(envelope)
        self._ready.set()

    def end(self) -> None:
        """No more messages: the iterator stops (or raises the error that ended it)."""
        if not self._ended:
            self._ended = True
            self._fanout._detach(self)
            self._ready.set()

    def __aiter__(self) -> Watcher:
        return self

    async def __anext__(self) -> EventEnvelope:
        while not self._queue:
            if self._ended:
                if self._error is not None:
                    raise self._error
                raise StopAsyncIteration
            self._ready.clear()
            await self._ready.wait()
        return self._queue.popleft()

    async def aclose(self) -> None:
        self._queue.clear()
        self.end()


class _Feed:
    def __init__(self) -> None:
        self.watchers: set[Watcher] = set()
        self.task: asyncio.Task[None] | None = None


class Fanout:
    def __init__(self, *, max_watchers: int, buffer: int, reader: Reader | None = None) -> None:
        if max_watchers < 1 or buffer < 1:
            raise ValueError("max_watchers and buffer must be positive")
        self.max_watchers = max_watchers
        self.buffer = buffer
        self._reader = reader
        self._feeds: dict[str, _Feed] = {}
        # Every reader task not yet finished, also those cancelled when their last watcher
        # left: close() waits for them, so none outlives the connection it reads from.
        self._readers: set[asyncio.Task[None]] = set()
        self._count = 0

    def watch(self, topic: str, counted: bool = True) -> Watcher:
        """A new watcher of the topic; `counted` ones (callers' streams) are limited."""
        if counted and self._count >= self.max_watchers:
            raise ResourceExhausted(
                f"this server already serves {self.max_watchers} watch streams; "
                "retry later or against another replica",
                reason="TOO_MANY_WATCHERS",
            )
        feed = self._feeds.get(topic)
        if feed is None:
            feed = self._feeds[topic] = _Feed()
            if self._reader is not None:
                feed.task = asyncio.create_task(self._read(topic, feed), name=f"tail:{topic}")
                self._readers.add(feed.task)
                feed.task.add_done_callback(self._readers.discard)
        watcher = Watcher(self, topic, feed, counted)
        feed.watchers.add(watcher)
        self._count += counted
        return watcher

    def deliver(self, topic: str, envelope: EventEnvelope) -> None:
        """Hand a message to every watcher of the topic (never blocks)."""
        feed = self._feeds.get(topic)
        if feed is not None:
            for watcher in list(feed.watchers):
                watcher.offer(envelope)

    def _detach(self, watcher: Watcher) -> None:
        feed = watcher.feed
        if watcher not in feed.watchers:
            return
        feed.watchers.discard(watcher)
        self._count -= watcher.counted
        if not feed.watchers and self._feeds.get(watcher.topic) is feed:
            # The last watcher left: so does the reader (and its connection).
            del self._feeds[watcher.topic]
            if feed.task is not None:
                feed.task.cancel()

    async def _read(self, topic: str, feed: _Feed) -> None:
        assert self._reader is not None
        messages = self._reader(topic)
        try:
            async for envelope in messages:
                self.deliver(topic, envelope)
        except Exception:
            log.exception("the shared reader of %s failed: its watchers are ended", topic)
        finally:
            with contextlib.suppress(Exception):
                await messages.aclose()  # type: ignore[attr-defined]
            # The reader ended (the bus closed, or it failed): so do its watchers.
            for watcher in list(feed.watchers):
                watcher.end()

    async def close(self) -> None:
        for feed in list(self._feeds.values()):
            for watcher in list(feed.watchers):
                watcher.end()  # the last one of a feed cancels its reader
        readers = list(self._readers)
        for task in readers:
            task.cancel()
        await asyncio.gather(*readers, return_exceptions=True)

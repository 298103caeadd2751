"""The in-process event bus: the embedded single-process default.

It mirrors the Redis Streams semantics so the same handlers and tests run on both:

* a topic is a bounded log (the oldest messages are dropped past `max_len`, like
  `XADD MAXLEN`); a group that falls that far behind loses the dropped messages;
* a consumer group has one cursor; each message goes to one of its consumers and is
  acknowledged when the handler returns; a new group starts at the end of the topic;
* a handler that raises gets the message again after an exponential backoff; after
  `max_deliveries` failed deliveries the message goes to the topic `<topic>.dead`
  (itself an ordinary topic: tail it or subscribe to it) and an error is logged;
* a stopped subscription hands its unacknowledged message back to the group at once:
  in one process we know the consumer is gone, so there is nothing to wait for;
* `tail()` fans out to every live iterator through a bounded queue. A slow tail drops its
  oldest messages rather than blocking publishers: tails are for watching, not for work
  that must not be lost (that is what groups are for).

Nothing survives the process: that is the price of the embedded mode.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from backcrm.common.v1.common_pb2 import EventEnvelope

from libs.bus.envelope import traced_batch_handler, traced_handler
from libs.bus.port import BatchHandler, EventBus, Handler, Subscription

__all__ = ["InProcessBus"]

logger = logging.getLogger(__name__)

DEAD_SUFFIX = ".dead"


@dataclass
class _Delivery:
    seq: int
    envelope: EventEnvelope
    deliveries: int = 0


@dataclass
class _Group:
    # Sequence number of the next log entry this group has not handed out yet.
    cursor: int
    # Messages handed back for redelivery (failed after backoff, or left by a stopped
    # consumer), served before new ones.
    ready: deque[_Delivery] = field(default_factory=deque)


class _Topic:
    def __init__(self, max_len: int) -> None:
        self.log: deque[tuple[int, EventEnvelope]] = deque(maxlen=max_len)
        self.next_seq = 0
        self.groups: dict[str, _Group] = {}
        # Weak, so a tail its owner dropped without closing does not keep receiving.
        self.tails: weakref.WeakSet[_Tail] = weakref.WeakSet()
        self._changed = asyncio.Event()

    def append(self, envelope: EventEnvelope) -> None:
        self.log.append((self.next_seq, envelope))
        self.next_seq += 1
        for tail in self.tails:
            tail.offer(envelope)
        self.notify()

    def notify(self) -> None:
        # Wake every waiting consumer, then arm a fresh event for the next wait.
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait(self) -> None:
        await self._changed.wait()

    def take(self, group: _Group) -> _Delivery | None:
        if group.ready:
            return group.ready.popleft()
        if not self.log or group.cursor >= self.next_seq:
            return None
        first_seq = self.log[0][0]
        # Entries below the oldest kept one were trimmed: the group skips them.
        group.cursor = max(group.cursor, first_seq)
        seq, envelope = self.log[group.cursor - first_seq]
        group.cursor += 1
        return _Delivery(seq, envelope)


class _Tail:
    """An async iterator over one topic's messages from its creation on."""

    def __init__(self, topic: _Topic, buffer: int) -> None:
        self._topic = topic
        self._queue: asyncio.Queue[EventEnvelope | None] = asyncio.Queue(maxsize=buffer)
        self._closed = False
        self.dropped = 0
        topic.tails.add(self)

    def offer(self, envelope: EventEnvelope | None) -> None:
        if self._queue.full():
            self._queue.get_nowait()
            self.dropped += 1
            if self.dropped == 1:
                logger.warning("a tail is too slow: dropping its oldest messages")
        self._queue.put_nowait(envelope)

    def __aiter__(self) -> _Tail:
        return self

    async def __anext__(self) -> EventEnvelope:
        if self._closed:
            raise StopAsyncIteration
        envelope = await self._queue.get()
        if envelope is None:
            self._closed = True
            raise StopAsyncIteration
        return envelope

    async def aclose(self) -> None:
        self.close()

    def close(self) -> None:
        if not self._closed:
            self._topic.tails.discard(self)
            self.offer(None)


class _InProcessSubscription(Subscription):
    def __init__(self, task: asyncio.Task[None], bus: InProcessBus) -> None:
        self._task = task
        self._bus = bus

    async def stop(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._bus._subscriptions.discard(self)


class InProcessBus(EventBus):
    def __init__(
        self,
        *,
        max_len: int = 100_000,
        max_deliveries: int = 10,
        retry_backoff_seconds: float = 0.1,
        max_retry_backoff_seconds: float = 5.0,
        tail_buffer: int = 10_000,
    ) -> None:
        if max_len < 1 or max_deliveries < 1 or tail_buffer < 1:
            raise ValueError("max_len, max_deliveries and tail_buffer must be positive")
        self._max_len = max_len
        self._max_deliveries = max_deliveries
        self._backoff = retry_backoff_seconds
        self._max_backoff = max_retry_backoff_seconds
        self._tail_buffer = tail_buffer
        self._topics: dict[str, _Topic] = {}
        self._subscriptions: set[_InProcessSubscription] = set()
        self._timers: set[asyncio.TimerHandle] = set()
        self._closed = False

    def _topic(self, name: str) -> _Topic:
        topic = self._topics.get(name)
        if topic is None:
            topic = self._topics[name] = _Topic(self._max_len)
        return topic

    async def publish(self, topic: str, envelopes: Sequence[EventEnvelope]) -> None:
        log = self._topic(topic)
        for envelope in envelopes:
            log.append(envelope)

    async def subscribe(
        self, topic: str, group: str, consumer: str, handler: Handler
    ) -> Subscription:
        handler = traced_handler(handler, topic)
        log = self._topic(topic)
        state = log.groups.get(group)
        if state is None:
            state = log.groups[group] = _Group(cursor=log.next_seq)
        task = asyncio.create_task(
            self._consume(topic, log, state, handler), name=f"bus:{topic}:{group}:{consumer}"
        )
        subscription = _InProcessSubscription(task, self)
        self._subscriptions.add(subscription)
        return subscription

    async def subscribe_batch(
        self, topic: str, group: str, consumer: str, handler: BatchHandler, max_batch: int = 100
    ) -> Subscription:
        handler = traced_batch_handler(handler, topic)
        log = self._topic(topic)
        state = log.groups.get(group)
        if state is None:
            state = log.groups[group] = _Group(cursor=log.next_seq)
        task = asyncio.create_task(
            self._consume_batches(topic, log, state, handler, max_batch),
            name=f"bus:{topic}:{group}:{consumer}",
        )
        subscription = _InProcessSubscription(task, self)
        self._subscriptions.add(subscription)
        return subscription

    async def _consume_batches(
        self, name: str, topic: _Topic, group: _Group, handler: BatchHandler, max_batch: int
    ) -> None:
        while True:
            batch: list[_Delivery] = []
            while len(batch) < max_batch:
                delivery = topic.take(group)
                if delivery is None:
                    break
                delivery.deliveries += 1
                batch.append(delivery)
            if not batch:
                await topic.wait()
                continue
            try:
                await handler([d.envelope for d in batch])
                continue
            except asyncio.CancelledError:
                group.ready.extendleft(reversed(batch))
                topic.notify()
                raise
            except Exception:
                if len(batch) == 1:
                    self._failed(name, topic, group, batch[0])
                    continue
            # One by one: the messages that fail alone are retried alone.
            for delivery in batch:
                try:
                    await handler([delivery.envelope])
                except asyncio.CancelledError:
                    group.ready.appendleft(delivery)
                    topic.notify()
                    raise
                except Exception:
                    self._failed(name, topic, group, delivery)

    async def _consume(self, name: str, topic: _Topic, group: _Group, handler: Handler) -> None:
        while True:
            delivery = topic.take(group)
            if delivery is None:
                await topic.wait()
                continue
            delivery.deliveries += 1
            try:
                await handler(delivery.envelope)
            except asyncio.CancelledError:
                # The consumer is stopping: another consumer of the group takes over.
                group.ready.appendleft(delivery)
                topic.notify()
                raise
            except Exception:
                self._failed(name, topic, group, delivery)

    def _failed(self, name: str, topic: _Topic, group: _Group, delivery: _Delivery) -> None:
        event_id = delivery.envelope.event_id
        if delivery.deliveries >= self._max_deliveries:
            logger.exception(
                "event %s on %s failed %d times: moved to %s%s",
                event_id,
                name,
                delivery.deliveries,
                name,
                DEAD_SUFFIX,
            )
            self._topic(name + DEAD_SUFFIX).append(delivery.envelope)
            return
        logger.warning("event %s on %s failed; retrying", event_id, name, exc_info=True)
        delay = min(self._backoff * 2 ** (delivery.deliveries - 1), self._max_backoff)

        def redeliver() -> None:
            self._timers.discard(timer)
            group.ready.append(delivery)
            topic.notify()

        timer = asyncio.get_running_loop().call_later(delay, redeliver)
        self._timers.add(timer)

    def tail(self, topic: str) -> _Tail:
        return _Tail(self._topic(topic), self._tail_buffer)

    async def ping(self) -> bool:
        return not self._closed

    async def close(self) -> None:
        self._closed = True
        for subscription in list(self._subscriptions):
            await subscription.stop()
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        for log in self._topics.values():
            for tail in list(log.tails):
                tail.close()

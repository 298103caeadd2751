"""The in-process event bus: the embedded single-process default.

It mirrors the Redis Streams semantics so the same handlers and tests run on both:

* a topic is a log that keeps every message some consumer group still needs (not yet
  handed out, or handed out and not acknowledged) and nothing else: nothing but a group can
  read an old message. Past `max_len` needed messages, `publish` raises BusUnavailable
  (the outbox keeps its rows and retries) rather than dropping what a lagging group has not
  read; messages older than `retention_seconds` are dropped even when a group lags, with an
  error naming the count (erased customers' data must not linger);
* a consumer group has one cursor; each message goes to one of its consumers and is
  acknowledged when the handler returns; a new group starts at the end of the topic;
* a handler that raises gets the message again after an exponential backoff; after
  `max_deliveries` failed deliveries the message goes to the topic `<topic>.dead` (tail it
  to see dead letters: they live in this process only) and an error is logged. A handler
  that fails because a dependency is down (`libs.errors.is_transient`) is retried in place
  without counting a delivery;
* a stopped subscription hands its unacknowledged messages back to the group at once:
  in one process we know the consumer is gone, so there is nothing to wait for;
* `tail()` is served by a shared fan-out (`libs.bus.fanout`).

Nothing survives the process, so the bus is not `durable`: producers keep their outbox rows
until `unacknowledged` says every group has the message.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from backcrm.common.v1.common_pb2 import EventEnvelope

from libs.bus.envelope import traced_batch_handler, traced_handler
from libs.bus.fanout import Fanout, Watcher
from libs.bus.port import BatchHandler, EventBus, Handler, Subscription
from libs.errors import BusUnavailable
from libs.retry import retry_transient

__all__ = ["InProcessBus"]

logger = logging.getLogger(__name__)

DEAD_SUFFIX = ".dead"


@dataclass
class _Entry:
    seq: int
    envelope: EventEnvelope
    at: float  # time.monotonic() of the publication


@dataclass
class _Delivery:
    seq: int
    envelope: EventEnvelope
    deliveries: int = 0


@dataclass
class _Group:
    name: str
    # Sequence number of the next log entry this group has not handed out yet.
    cursor: int
    # Messages handed back for redelivery (failed after backoff, or left by a stopped
    # consumer), served before new ones.
    ready: deque[_Delivery] = field(default_factory=deque)
    # Handed out and not acknowledged yet (with a handler, waiting for a retry, or ready):
    # the log keeps them.
    unacked: dict[int, _Delivery] = field(default_factory=dict)

    def needs_from(self) -> int:
        """The oldest sequence number this group still needs."""
        return min(self.unacked, default=self.cursor)


class _Topic:
    def __init__(self, name: str, retention_seconds: float) -> None:
        self.name = name
        self._retention = retention_seconds
        self.log: deque[_Entry] = deque()
        # event id -> sequence number of its newest entry still in the log
        self.index: dict[str, int] = {}
        self.next_seq = 0
        self.groups: dict[str, _Group] = {}
        self._changed = asyncio.Event()

    def first_seq(self) -> int:
        return self.log[0].seq if self.log else self.next_seq

    def needed_from(self) -> int:
        return min((g.needs_from() for g in self.groups.values()), default=self.next_seq)

    def slowest(self) -> _Group | None:
        return min(self.groups.values(), key=_Group.needs_from, default=None)

    def append(self, envelope: EventEnvelope) -> None:
        self.log.append(_Entry(self.next_seq, envelope, time.monotonic()))
        self.index[envelope.event_id] = self.next_seq
        self.next_seq += 1
        self.trim()
        self.notify()

    def trim(self) -> None:
        """Drop what no group needs, and anything older than the retention period."""
        needed = self.needed_from()
        while self.log and self.log[0].seq < needed:
            self._pop()
        expired = 0
        horizon = time.monotonic() - self._retention
        while self.log and self.log[0].at < horizon:
            self._pop()
            expired += 1
        if expired:
            first = self.first_seq()
            for group in self.groups.values():
                group.cursor = max(group.cursor, first)
                for seq in [s for s in group.unacked if s < first]:
                    del group.unacked[seq]
            logger.error(
                "%s: dropped %d messages older than the retention period that a consumer "
                "group had not processed",
                self.name,
                expired,
            )

    def _pop(self) -> None:
        entry = self.log.popleft()
        if self.index.get(entry.envelope.event_id) == entry.seq:
            del self.index[entry.envelope.event_id]

    def notify(self) -> None:
        # Wake every waiting consumer, then arm a fresh event for the next wait.
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait(self) -> None:
        await self._changed.wait()

    def take(self, group: _Group) -> _Delivery | None:
        first = self.first_seq()
        while group.ready:
            delivery = group.ready.popleft()
            if delivery.seq >= first:  # else dropped by the retention meanwhile
                return delivery
        group.cursor = max(group.cursor, first)
        if group.cursor >= self.next_seq:
            return None
        entry = self.log[group.cursor - first]
        group.cursor += 1
        delivery = group.unacked[entry.seq] = _Delivery(entry.seq, entry.envelope)
        return delivery

    def acked(self, group: _Group, deliveries: Iterable[_Delivery]) -> None:
        for delivery in deliveries:
            group.unacked.pop(delivery.seq, None)
        self.trim()


class _InProcessSubscription(Subscription):
    def __init__(
        self, task: asyncio.Task[None], bus: InProcessBus, topic: _Topic, group: _Group
    ) -> None:
        self._task = task
        self._bus = bus
        self.topic = topic
        self.group = group

    def idle(self) -> bool:
        return not self.group.unacked and self.group.cursor >= self.topic.next_seq

    async def stop(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._bus._subscriptions.discard(self)


class InProcessBus(EventBus):
    durable = False

    def __init__(
        self,
        *,
        max_len: int = 100_000,
        max_deliveries: int = 10,
        retry_backoff_seconds: float = 0.1,
        max_retry_backoff_seconds: float = 5.0,
        retention_seconds: float = 7 * 86_400.0,
        max_watchers: int = 1_000,
        watch_buffer: int = 1_000,
    ) -> None:
        if max_len < 1 or max_deliveries < 1 or retention_seconds <= 0:
            raise ValueError("max_len, max_deliveries and retention_seconds must be positive")
        self._max_len = max_len
        self._max_deliveries = max_deliveries
        self._backoff = retry_backoff_seconds
        self._max_backoff = max_retry_backoff_seconds
        self._retention = retention_seconds
        self._watchers = Fanout(max_watchers=max_watchers, buffer=watch_buffer)
        self._topics: dict[str, _Topic] = {}
        self._subscriptions: set[_InProcessSubscription] = set()
        self._timers: set[asyncio.TimerHandle] = set()
        self._closed = False

    def _topic(self, name: str) -> _Topic:
        topic = self._topics.get(name)
        if topic is None:
            topic = self._topics[name] = _Topic(name, self._retention)
        return topic

    async def publish(self, topic: str, envelopes: Sequence[EventEnvelope]) -> None:
        log = self._topic(topic)
        log.trim()
        if len(log.log) + len(envelopes) > self._max_len:
            slowest = log.slowest()
            lag = log.next_seq - slowest.needs_from() if slowest else 0
            logger.error(
                "%s holds %d messages a consumer group still needs (group %s is %d behind); "
                "refusing more until it catches up",
                topic,
                len(log.log),
                slowest.name if slowest else "?",
                lag,
            )
            raise BusUnavailable(f"{topic} is full: group {slowest and slowest.name} lags")
        for envelope in envelopes:
            self._append(log, envelope)

    def _append(self, log: _Topic, envelope: EventEnvelope) -> None:
        log.append(envelope)
        self._watchers.deliver(log.name, envelope)

    def unacknowledged(self, topic: str, event_ids: Iterable[str]) -> set[str]:
        log = self._topics.get(topic)
        if log is None:
            return set()
        needed = log.needed_from()
        return {e for e in event_ids if log.index.get(e, -1) >= needed}

    async def consumers_idle(self) -> bool:
        return all(subscription.idle() for subscription in self._subscriptions)

    def _group(self, log: _Topic, group: str) -> _Group:
        state = log.groups.get(group)
        if state is None:
            state = log.groups[group] = _Group(group, cursor=log.next_seq)
        return state

    async def subscribe(
        self, topic: str, group: str, consumer: str, handler: Handler
    ) -> Subscription:
        handler = traced_handler(handler, topic)
        log = self._topic(topic)
        state = self._group(log, group)
        task = asyncio.create_task(
            self._consume(log, state, handler), name=f"bus:{topic}:{group}:{consumer}"
        )
        subscription = _InProcessSubscription(task, self, log, state)
        self._subscriptions.add(subscription)
        return subscription

    async def subscribe_batch(
        self, topic: str, group: str, consumer: str, handler: BatchHandler, max_batch: int = 100
    ) -> Subscription:
        handler = traced_batch_handler(handler, topic)
        log = self._topic(topic)
        state = self._group(log, group)
        task = asyncio.create_task(
            self._consume_batches(log, state, handler, max_batch),
            name=f"bus:{topic}:{group}:{consumer}",
        )
        subscription = _InProcessSubscription(task, self, log, state)
        self._subscriptions.add(subscription)
        return subscription

    async def _handled(self, handler: BatchHandler | Handler, message: object, what: str) -> None:
        """Run a handler, waiting out infrastructure failures (they are no delivery attempt)."""
        await retry_transient(
            functools.partial(handler, message),  # type: ignore[arg-type]
            what,
            self._backoff,
            self._max_backoff,
        )

    async def _consume_batches(
        self, topic: _Topic, group: _Group, handler: BatchHandler, max_batch: int
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
                await self._handled(
                    handler, [d.envelope for d in batch], f"batch of {len(batch)} on {topic.name}"
                )
            except asyncio.CancelledError:
                self._hand_back(topic, group, batch)
                raise
            except Exception:
                if len(batch) == 1:
                    self._failed(topic, group, batch[0])
                    continue
            else:
                topic.acked(group, batch)
                continue
            # One by one: the messages that fail alone are retried alone.
            for i, delivery in enumerate(batch):
                try:
                    await self._handled(
                        handler, [delivery.envelope], f"event {delivery.envelope.event_id}"
                    )
                except asyncio.CancelledError:
                    self._hand_back(topic, group, batch[i:])
                    raise
                except Exception:
                    self._failed(topic, group, delivery)
                else:
                    topic.acked(group, [delivery])

    async def _consume(self, topic: _Topic, group: _Group, handler: Handler) -> None:
        while True:
            delivery = topic.take(group)
            if delivery is None:
                await topic.wait()
                continue
            delivery.deliveries += 1
            try:
                await self._handled(
                    handler, delivery.envelope, f"event {delivery.envelope.event_id}"
                )
            except asyncio.CancelledError:
                self._hand_back(topic, group, [delivery])
                raise
            except Exception:
                self._failed(topic, group, delivery)
            else:
                topic.acked(group, [delivery])

    @staticmethod
    def _hand_back(topic: _Topic, group: _Group, deliveries: list[_Delivery]) -> None:
        # The consumer is stopping: another consumer of the group takes over.
        group.ready.extendleft(reversed(deliveries))
        topic.notify()

    def _failed(self, topic: _Topic, group: _Group, delivery: _Delivery) -> None:
        event_id = delivery.envelope.event_id
        name = topic.name
        if delivery.deliveries >= self._max_deliveries:
            logger.exception(
                "event %s on %s failed %d times: moved to %s%s",
                event_id,
                name,
                delivery.deliveries,
                name,
                DEAD_SUFFIX,
            )
            self._append(self._topic(name + DEAD_SUFFIX), delivery.envelope)
            topic.acked(group, [delivery])
            return
        logger.warning("event %s on %s failed; retrying", event_id, name, exc_info=True)
        delay = min(self._backoff * 2 ** (delivery.deliveries - 1), self._max_backoff)

        def redeliver() -> None:
            self._timers.discard(timer)
            group.ready.append(delivery)
            topic.notify()

        timer = asyncio.get_running_loop().call_later(delay, redeliver)
        self._timers.add(timer)

    def tail(self, topic: str, *, internal: bool = False) -> Watcher:
        return self._watchers.watch(topic, counted=not internal)

    async def ping(self) -> bool:
        return not self._closed

    async def close(self) -> None:
        self._closed = True
        for subscription in list(self._subscriptions):
            await subscription.stop()
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        await self._watchers.close()

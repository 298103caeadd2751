"""The event bus port: topics of protobuf envelopes, at-least-once delivery to consumer groups.

Two adapters implement it: Redis Streams (production) and in-process (embedded default).
Every consumer must be idempotent: a message is redelivered when its handler raised or its
consumer died before acknowledging it.

What counts as a delivery attempt: a handler that raises an infrastructure error (a database,
cache or bus that cannot be reached, see `libs.errors.is_transient`) is retried in place with an
exponential backoff, and that does not count towards the dead-letter limit; any other
exception does.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence

from backcrm.common.v1.common_pb2 import EventEnvelope

__all__ = ["BatchHandler", "EventBus", "Handler", "Subscription"]

Handler = Callable[[EventEnvelope], Awaitable[None]]
# Takes several messages at once (one transaction for many): when it raises, the messages are
# handed to it again one by one, so a poison message is isolated and retried on its own.
BatchHandler = Callable[[Sequence[EventEnvelope]], Awaitable[None]]


class Subscription(abc.ABC):
    @abc.abstractmethod
    async def stop(self) -> None:
        """Stop consuming; messages not yet acknowledged stay pending for redelivery."""


class EventBus(abc.ABC):
    # Whether a published message outlives this process. Redis keeps it (for every consumer
    # group, across restarts); the in-process bus loses whatever its groups have not
    # acknowledged when the process ends, so a producer keeps its own copy (the outbox row)
    # until `unacknowledged` says nobody needs it any more.
    durable: bool = True

    @abc.abstractmethod
    async def publish(self, topic: str, envelopes: Sequence[EventEnvelope]) -> None:
        """Append envelopes to a topic, in order. Raises libs.errors.BusUnavailable."""

    async def publish_serialized(self, topic: str, payloads: Sequence[bytes]) -> None:
        """`publish` of envelopes already serialized (the outbox's rows): a bus that stores
        bytes appends them as they are, without parsing and serializing each again."""
        await self.publish(topic, [EventEnvelope.FromString(p) for p in payloads])

    def unacknowledged(self, topic: str, event_ids: Iterable[str]) -> set[str]:
        """The ids, among these published ones, that a consumer group of the topic still needs.

        Empty on a durable bus: once `publish` has returned, the backend holds the messages
        for every group. On a non-durable one, a message is needed until every group that
        exists on the topic has acknowledged (or dead-lettered) it.
        """
        return set()

    @abc.abstractmethod
    async def consumers_idle(self) -> bool:
        """Whether every consumer subscribed through this bus has handled (acknowledged or
        dead-lettered) every message published to its topic so far: none waits, none is in a
        handler or held for a retry. What a caller polls to know that what was published has
        been consumed, instead of sleeping."""

    @abc.abstractmethod
    async def subscribe(
        self, topic: str, group: str, consumer: str, handler: Handler
    ) -> Subscription:
        """Consume a topic as a member of a consumer group, in a background task.

        Each message goes to one consumer of the group and is acknowledged after the handler
        returns; when it raises, the message stays pending and is delivered again (after
        `reclaim_idle_ms`, also to another consumer when its first consumer died).
        A new group starts at the end of the topic.
        """

    @abc.abstractmethod
    async def subscribe_batch(
        self, topic: str, group: str, consumer: str, handler: BatchHandler, max_batch: int = 100
    ) -> Subscription:
        """Like subscribe, but hands over up to `max_batch` messages that are ready at once."""

    @abc.abstractmethod
    def tail(self, topic: str, *, internal: bool = False) -> AsyncIterator[EventEnvelope]:
        """Every message published to the topic from now on (fan-out, no group, no acks).

        All the tails of a topic in one process share one reader (`libs.bus.fanout`). Raises
        ResourceExhausted past the process's limit of concurrent tails (the callers' watch
        streams; an `internal` tail, the process's own listener, is not counted); a tail that
        falls too far behind ends with ResourceExhausted rather than slowing the others down.
        """

    @abc.abstractmethod
    async def ping(self) -> bool:
        """True when the backend answers."""

    @abc.abstractmethod
    async def close(self) -> None: ...

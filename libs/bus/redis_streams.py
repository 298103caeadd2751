"""The Redis Streams event bus: the production adapter.

Layout: topic `t` is the stream `<prefix>t`; each entry has one field `e`, the serialized
EventEnvelope. Streams are trimmed approximately (`XADD MAXLEN ~`), which is cheap and keeps
at least `max_len` entries.

Consumers use consumer groups (`XREADGROUP >`, `XACK` after the handler returns). An entry
whose handler raised, or whose consumer died, stays in the group's pending list; every
consumer periodically runs `XAUTOCLAIM` for entries idle longer than `reclaim_idle_ms` and
handles them again. So:

* redelivery after a failure waits `reclaim_idle_ms` (30 s by default);
* a live consumer keeps the entries it holds (read in a batch, or being handled) fresh
  with a heartbeat (`XCLAIM ... JUSTID` of the entries it still owns, every third of
  `reclaim_idle_ms`), so only the entries of a consumer that stopped running go idle and
  get reclaimed, however long a batch takes. A process whose event loop is blocked longer
  than `reclaim_idle_ms` does look dead: its entries may be handled twice, which
  idempotent handlers (the contract, at-least-once) absorb;
* an entry claimed more than `max_deliveries` times is copied to the stream
  `<prefix><topic>.dead` (same `e` field, plus its original id and group) and
  acknowledged, with an error in the log.

The background loops never die of a Redis outage: they log, back off exponentially up to
5 s and try again. `publish` raises BusUnavailable instead, so the outbox retries.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

from backcrm.common.v1.common_pb2 import EventEnvelope
from google.protobuf.message import DecodeError
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ReadOnlyError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from libs.bus.envelope import traced_batch_handler, traced_handler
from libs.bus.port import BatchHandler, BusUnavailable, EventBus, Handler, Subscription
from libs.redis_client import connect

__all__ = ["RedisStreamsBus"]

logger = logging.getLogger(__name__)

FIELD = b"e"
DEAD_SUFFIX = ".dead"

# Refreshes the idle time of the listed entries still owned by this consumer, atomically,
# so it can never take back an entry another consumer has just reclaimed. XCLAIM with
# JUSTID leaves the delivery counter alone.
HEARTBEAT = """
local kept = 0
for i = 3, #ARGV do
  local pending = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1)
  if pending[1] and pending[1][2] == ARGV[2] then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'JUSTID')
    kept = kept + 1
  end
end
return kept
"""

# Errors that mean "Redis is not there right now" rather than "this request is wrong":
# connection failures and timeouts, and a replica that became read-only during a failover.
TRANSIENT_ERRORS = (RedisConnectionError, RedisTimeoutError, ReadOnlyError, OSError)


class _Backoff:
    """Exponential sleep between attempts against an unreachable Redis, reset on success."""

    def __init__(self, first: float = 0.1, cap: float = 5.0) -> None:
        self._first = first
        self._cap = cap
        self._next = first

    async def sleep(self) -> None:
        await asyncio.sleep(self._next)
        self._next = min(self._next * 2, self._cap)

    def reset(self) -> None:
        self._next = self._first


class _RedisSubscription(Subscription):
    def __init__(self, bus: RedisStreamsBus) -> None:
        self._bus = bus
        self.task: asyncio.Task[None] | None = None
        # Checked by the loop as well as cancelling it: on Python 3.11 a cancellation that
        # races a socket timeout inside the client can surface as a TimeoutError, which the
        # loop would otherwise take for an outage and retry forever.
        self.stopping = False

    async def stop(self) -> None:
        # Cancelling mid-handler is what a crash looks like to Redis: the entry stays
        # pending and another consumer reclaims it after reclaim_idle_ms.
        self.stopping = True
        if self.task is None:
            return
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
        self._bus._subscriptions.discard(self)


class RedisStreamsBus(EventBus):
    def __init__(
        self,
        url: str,
        *,
        prefix: str = "backcrm:",
        max_len: int = 1_000_000,
        reclaim_idle_ms: int = 30_000,
        max_deliveries: int = 10,
        block_ms: int = 1_000,
        batch_size: int = 100,
        socket_timeout: float = 5.0,
        connect_timeout: float = 2.0,
    ) -> None:
        if socket_timeout * 1000 <= block_ms:
            # Otherwise every idle XREADGROUP BLOCK would end in a client-side timeout.
            raise ValueError("socket_timeout must be longer than block_ms")
        if min(max_len, reclaim_idle_ms, max_deliveries, block_ms, batch_size) < 1:
            raise ValueError("sizes and durations must be positive")
        self._redis: Redis = connect(
            url, socket_timeout=socket_timeout, connect_timeout=connect_timeout
        )
        self._prefix = prefix
        self._max_len = max_len
        self._reclaim_idle_ms = reclaim_idle_ms
        # Look for abandoned entries twice per idle period, so one waits at most 1.5x.
        self._reclaim_every = max(reclaim_idle_ms / 2000, 0.05)
        self._max_deliveries = max_deliveries
        # Never block longer than the reclaim period, or reclaiming would wait for traffic.
        self._block_ms = max(min(block_ms, int(self._reclaim_every * 1000)), 1)
        self._batch = batch_size
        self._heartbeat_every = reclaim_idle_ms / 3000
        self._heartbeat_script = self._redis.register_script(HEARTBEAT)
        self._subscriptions: set[_RedisSubscription] = set()
        self._closed = False

    def _key(self, topic: str) -> str:
        return self._prefix + topic

    async def publish(self, topic: str, envelopes: Sequence[EventEnvelope]) -> None:
        if not envelopes:
            return
        key = self._key(topic)
        try:
            # transaction=False: one round trip, in order, without MULTI's blocking.
            async with self._redis.pipeline(transaction=False) as pipe:
                for envelope in envelopes:
                    pipe.xadd(key, {FIELD: envelope.SerializeToString()}, maxlen=self._max_len)
                await pipe.execute()
        except TRANSIENT_ERRORS as exc:
            raise BusUnavailable(f"cannot publish to {key}: {exc}") from exc

    async def subscribe(
        self, topic: str, group: str, consumer: str, handler: Handler
    ) -> Subscription:
        return await self._subscribe(topic, group, consumer, traced_handler(handler, topic), None)

    async def subscribe_batch(
        self, topic: str, group: str, consumer: str, handler: BatchHandler, max_batch: int = 100
    ) -> Subscription:
        batch = traced_batch_handler(handler, topic)

        async def single(envelope: EventEnvelope) -> None:
            await batch([envelope])

        return await self._subscribe(topic, group, consumer, single, batch)

    async def _subscribe(
        self,
        topic: str,
        group: str,
        consumer: str,
        handler: Handler,
        batch: BatchHandler | None,
    ) -> Subscription:
        key = self._key(topic)
        created = False
        try:
            # Created here, not in the task, so messages published once subscribe() has
            # returned are this group's for sure.
            await self._create_group(key, group, "$")
            created = True
        except TRANSIENT_ERRORS:
            logger.warning("Redis unreachable: consumer group %s on %s created later", group, key)
        subscription = _RedisSubscription(self)
        subscription.task = asyncio.create_task(
            self._consume(key, group, consumer, handler, created, subscription, batch),
            name=f"bus:{key}:{group}:{consumer}",
        )
        self._subscriptions.add(subscription)
        return subscription

    async def _create_group(self, key: str, group: str, start: str) -> None:
        try:
            await self._redis.xgroup_create(key, group, id=start, mkstream=True)
        except ResponseError as exc:
            if not str(exc).startswith("BUSYGROUP"):
                raise

    async def _consume(
        self,
        key: str,
        group: str,
        consumer: str,
        handler: Handler,
        created: bool,
        subscription: _RedisSubscription,
        batch: BatchHandler | None = None,
    ) -> None:
        # Entries read or claimed by this consumer and not yet done with: the heartbeat's.
        held: set[bytes] = set()
        heartbeat = asyncio.create_task(self._heartbeat(key, group, consumer, held))
        try:
            await self._consume_loop(
                key, group, consumer, handler, created, held, subscription, batch
            )
        finally:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat

    async def _heartbeat(self, key: str, group: str, consumer: str, held: set[bytes]) -> None:
        while True:
            await asyncio.sleep(self._heartbeat_every)
            if not held:
                continue
            try:
                await self._heartbeat_script(keys=[key], args=[group, consumer, *held])
            except TRANSIENT_ERRORS as exc:
                # The consume loop reports the outage; the next beat tries again.
                logger.debug("heartbeat on %s failed: %s", key, exc)

    async def _consume_loop(
        self,
        key: str,
        group: str,
        consumer: str,
        handler: Handler,
        created: bool,
        held: set[bytes],
        subscription: _RedisSubscription,
        batch_handler: BatchHandler | None = None,
    ) -> None:
        backoff = _Backoff()
        reclaim_cursor = "0-0"
        next_reclaim = 0.0
        while not subscription.stopping:
            held.clear()  # whatever an error interrupted is left to the reclaim
            try:
                if not created:
                    await self._create_group(key, group, "$")
                    created = True
                if time.monotonic() >= next_reclaim:
                    reclaim_cursor = await self._reclaim(
                        key, group, consumer, handler, reclaim_cursor, held
                    )
                    next_reclaim = time.monotonic() + self._reclaim_every
                response: Any = await self._redis.xreadgroup(
                    group, consumer, {key: ">"}, count=self._batch, block=self._block_ms
                )
                backoff.reset()
                batch = [entry for _stream, entries in response or [] for entry in entries]
                held.update(entry_id for entry_id, _fields in batch)
                if (
                    batch_handler is not None
                    and len(batch) > 1
                    and await self._handle_batch(key, group, batch_handler, batch)
                ):
                    held.clear()
                    continue
                for entry_id, fields in batch:
                    await self._handle(key, group, handler, entry_id, fields)
                    held.discard(entry_id)
            except ResponseError as exc:
                if not str(exc).startswith("NOGROUP"):
                    logger.exception("Redis refused a command on %s; retrying", key)
                    await backoff.sleep()
                    continue
                # The stream was deleted (or Redis restarted empty): recreate the group
                # from the start of the new stream so nothing published since is skipped.
                logger.warning("consumer group %s on %s vanished; recreating it", group, key)
                with contextlib.suppress(*TRANSIENT_ERRORS):
                    await self._create_group(key, group, "0")
            except TRANSIENT_ERRORS as exc:
                logger.warning("Redis unreachable while consuming %s: %s", key, exc)
                await backoff.sleep()
            except Exception:
                # Anything else is a bug, but a dead consumer task would fail silently.
                logger.exception("consumer of %s in group %s failed; retrying", key, group)
                await backoff.sleep()

    async def _reclaim(
        self,
        key: str,
        group: str,
        consumer: str,
        handler: Handler,
        cursor: str,
        held: set[bytes],
    ) -> str:
        """Take over entries idle past reclaim_idle_ms; return the cursor for next time."""
        reply: list[Any] = await self._redis.xautoclaim(
            key, group, consumer, self._reclaim_idle_ms, start_id=cursor, count=self._batch
        )
        next_cursor = _text(reply[0])
        # Entries trimmed from the stream while pending come back as None fields (or in a
        # third element, from Redis 7); Redis already dropped them from the pending list.
        claimed = [(entry_id, fields) for entry_id, fields in reply[1] if fields]
        if not claimed:
            return next_cursor
        # XAUTOCLAIM counted this claim as a delivery; read the counts of our new entries.
        async with self._redis.pipeline(transaction=False) as pipe:
            for entry_id, _fields in claimed:
                pipe.xpending_range(key, group, entry_id, entry_id, 1, consumername=consumer)
            pending: list[list[dict[str, Any]]] = await pipe.execute()
        owned = [(entry, info[0]) for entry, info in zip(claimed, pending, strict=True) if info]
        held.update(entry_id for (entry_id, _fields), _info in owned)
        for (entry_id, fields), info in owned:
            deliveries = int(info["times_delivered"])
            if deliveries > self._max_deliveries:
                await self._dead_letter(key, group, entry_id, fields, f"{deliveries - 1} failures")
            else:
                await self._handle(key, group, handler, entry_id, fields)
            held.discard(entry_id)
        return next_cursor

    async def _handle(
        self,
        key: str,
        group: str,
        handler: Handler,
        entry_id: bytes | str,
        fields: dict[bytes, bytes],
    ) -> None:
        envelope = EventEnvelope()
        try:
            envelope.ParseFromString(fields[FIELD])
        except (KeyError, DecodeError):
            # Retrying cannot fix a malformed entry: straight to the dead-letter stream.
            await self._dead_letter(key, group, entry_id, fields, "not an EventEnvelope")
            return
        try:
            await handler(envelope)
        except Exception:
            # Left pending: reclaimed and retried after reclaim_idle_ms.
            logger.warning(
                "handler failed on event %s from %s (entry %s); it will be retried",
                envelope.event_id,
                key,
                _text(entry_id),
                exc_info=True,
            )
            return
        await self._redis.xack(key, group, entry_id)

    async def _handle_batch(
        self,
        key: str,
        group: str,
        handler: BatchHandler,
        batch: list[tuple[bytes, dict[bytes, bytes]]],
    ) -> bool:
        """All entries in one call, acknowledged together; False to go one by one instead."""
        envelopes = []
        for _entry_id, fields in batch:
            envelope = EventEnvelope()
            try:
                envelope.ParseFromString(fields[FIELD])
            except (KeyError, DecodeError):
                return False  # the one-by-one path dead-letters it
            envelopes.append(envelope)
        try:
            await handler(envelopes)
        except Exception:
            logger.warning("batch of %d from %s failed; handling one by one", len(batch), key)
            return False
        await self._redis.xack(key, group, *[entry_id for entry_id, _fields in batch])
        return True

    async def _dead_letter(
        self,
        key: str,
        group: str,
        entry_id: bytes | str,
        fields: dict[bytes, bytes],
        reason: str,
    ) -> None:
        logger.error(
            "entry %s of %s in group %s moved to %s%s: %s",
            _text(entry_id),
            key,
            group,
            key,
            DEAD_SUFFIX,
            reason,
        )
        dead: dict[bytes, bytes | str] = {
            FIELD: fields.get(FIELD, b""),
            b"id": entry_id,
            b"group": group,
            b"reason": reason,
        }
        # MULTI: the copy and the acknowledgement happen together or not at all.
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.xadd(key + DEAD_SUFFIX, dead, maxlen=self._max_len)  # type: ignore[arg-type]
            pipe.xack(key, group, entry_id)
            await pipe.execute()

    async def tail(self, topic: str) -> AsyncIterator[EventEnvelope]:
        """Entries from the first iteration step on (Redis decides what "now" is)."""
        key = self._key(topic)
        last_id = "$"
        backoff = _Backoff()
        while not self._closed:
            try:
                response: Any = await self._redis.xread(
                    {key: last_id}, count=self._batch, block=self._block_ms
                )
            except TRANSIENT_ERRORS as exc:
                if self._closed:
                    return
                logger.warning("Redis unreachable while tailing %s: %s", key, exc)
                await backoff.sleep()
                continue
            backoff.reset()
            for _stream, entries in response or []:
                for entry_id, fields in entries:
                    last_id = _text(entry_id)
                    envelope = EventEnvelope()
                    try:
                        envelope.ParseFromString(fields[FIELD])
                    except (KeyError, DecodeError):
                        logger.warning("skipping malformed entry %s of %s", last_id, key)
                        continue
                    yield envelope

    async def ping(self) -> bool:
        try:
            return bool(await self._redis.ping())
        except TRANSIENT_ERRORS:
            return False

    async def close(self) -> None:
        self._closed = True
        for subscription in list(self._subscriptions):
            await subscription.stop()
        await self._redis.aclose()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value

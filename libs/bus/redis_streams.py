"""The Redis Streams event bus: the production adapter.

Layout: topic `t` is the stream `<prefix>t`; each entry has one field `e`, the serialized
EventEnvelope.

Consumers use consumer groups (`XREADGROUP >`, `XACK` after the handler returns). An entry
whose handler raised, or whose consumer died, stays in the group's pending list; every
consumer periodically runs `XAUTOCLAIM` for entries idle longer than `reclaim_idle_ms` and
handles them again, in batches until none is left. So:

* redelivery after a failure waits `reclaim_idle_ms` (30 s by default);
* a handler that fails because a dependency is down (`libs.errors.is_transient`: the database,
  the cache, the bus) is retried in place with an exponential backoff, as long as the outage
  lasts, and that is not a delivery attempt;
* a live consumer keeps the entries it holds (read in a batch, or being handled) fresh
  with a heartbeat (`XCLAIM ... JUSTID` of the entries it still owns, every third of
  `reclaim_idle_ms`), so only the entries of a consumer that stopped running go idle and
  get reclaimed, however long a batch takes. A process whose event loop is blocked longer
  than `reclaim_idle_ms` does look dead: its entries may be handled twice, which
  idempotent handlers (the contract, at-least-once) absorb. A consumer stopped gracefully
  marks what it held idle, so the next reclaim (its successor's, after a restart) takes it
  at once;
* an entry claimed more than `max_deliveries` times is copied to the stream
  `<prefix><topic>.dead` (same `e` field, plus its original id and group) and
  acknowledged, with an error in the log. `replay_dead` (`backcrm bus replay-dead`) puts
  dead letters back on their topic.

Retention (never on XADD; every `trim_seconds`, by every process, for the streams it uses):

1. entries every consumer group has acknowledged go: `XTRIM MINID` at the oldest entry some
   group still needs (its oldest pending entry, or the one after its last-delivered id);
   a stream without groups (a dead-letter stream, a topic only watched) keeps its entries;
2. entries older than `retention_seconds` (7 days) go even when a group lags, so erased
   customers' data does not linger; dropping entries a group had not processed is an error
   in the log, with the count, and counted in the `backcrm.bus.dropped` metric;
3. a stream past 80 % of `max_len` raises an alarm (error log, `backcrm.bus.alarms`); past
   `max_len` its oldest entries are dropped to protect Redis memory, logged and counted the
   same way. With groups keeping up that never happens: the cap is a safety net.

The background loops never die of a Redis outage: they log, back off exponentially up to
5 s and try again. `publish` raises BusUnavailable instead, so the outbox retries.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from backcrm.common.v1.common_pb2 import EventEnvelope
from google.protobuf.message import DecodeError
from opentelemetry import metrics
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ReadOnlyError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from libs.bus.envelope import traced_batch_handler, traced_handler
from libs.bus.fanout import Fanout, Watcher
from libs.bus.port import BatchHandler, EventBus, Handler, Subscription
from libs.errors import BusUnavailable
from libs.redis_client import connect
from libs.retry import Backoff, retry_transient

__all__ = ["RedisStreamsBus", "Replayed"]

logger = logging.getLogger(__name__)

FIELD = b"e"
DEAD_SUFFIX = ".dead"
# A stream this full (of its max_len) raises the alarm: its slowest group is far behind.
ALARM_RATIO = 0.8

_meter = metrics.get_meter("backcrm.bus")
dropped_counter = _meter.create_counter(
    "backcrm.bus.dropped",
    unit="{entry}",
    description="stream entries a consumer group had not processed, dropped by retention or cap",
)
alarm_counter = _meter.create_counter(
    "backcrm.bus.alarms",
    unit="{alarm}",
    description="trim passes that found a stream near its length cap",
)

# Sets the idle time (ARGV[3], ms) of the listed entries still owned by this consumer,
# atomically, so it can never take back an entry another consumer has just reclaimed: 0 keeps
# them ours (the heartbeat), reclaim_idle_ms hands them over at once (a graceful stop).
# XCLAIM with JUSTID leaves the delivery counter alone.
HEARTBEAT = """
local kept = 0
for i = 4, #ARGV do
  local pending = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1)
  if pending[1] and pending[1][2] == ARGV[2] then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'IDLE', ARGV[3], 'JUSTID')
    kept = kept + 1
  end
end
return kept
"""

# KEYS: the stream; ARGV: the field, then each entry's payload. One command however many
# entries: redis-py packs each command and parses each reply in Python, which cost five times
# the CPU of this for a relay's batch of 100 as a pipeline of XADDs. One key, so a cluster
# takes it as it is. No MAXLEN: trimming is the trimmer's, by what the groups still need.
PUBLISH = """
for i = 2, #ARGV do
  redis.call('XADD', KEYS[1], '*', ARGV[1], ARGV[i])
end
"""

# Errors that mean "Redis is not there right now" rather than "this request is wrong":
# connection failures and timeouts, and a replica that became read-only during a failover.
TRANSIENT_ERRORS = (RedisConnectionError, RedisTimeoutError, ReadOnlyError, OSError)


class _RedisSubscription(Subscription):
    def __init__(self, bus: RedisStreamsBus, key: str, group: str) -> None:
        self._bus = bus
        self.key = key
        self.group = group
        self.task: asyncio.Task[None] | None = None
        # Checked by the loop as well as cancelling it: on Python 3.11 a cancellation that
        # races a socket timeout inside the client can surface as a TimeoutError, which the
        # loop would otherwise take for an outage and retry forever.
        self.stopping = False

    async def stop(self) -> None:
        # Cancelling mid-handler leaves the entry pending, as a crash would; the consume
        # task then marks what it held idle, so another consumer reclaims it at once.
        self.stopping = True
        if self.task is None:
            return
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
        self._bus._subscriptions.discard(self)


@dataclass(frozen=True)
class Replayed:
    """What `replay_dead` did: entries put back on the topic, and unreadable ones left."""

    replayed: int
    unreadable: int


class RedisStreamsBus(EventBus):
    def __init__(
        self,
        url: str,
        *,
        prefix: str = "backcrm:",
        max_len: int = 1_000_000,
        retention_seconds: float = 7 * 86_400.0,
        trim_seconds: float = 30.0,
        reclaim_idle_ms: int = 30_000,
        max_deliveries: int = 10,
        block_ms: int = 1_000,
        batch_size: int = 100,
        socket_timeout: float = 5.0,
        connect_timeout: float = 2.0,
        max_watchers: int = 1_000,
        watch_buffer: int = 1_000,
    ) -> None:
        if socket_timeout * 1000 <= block_ms:
            # Otherwise every idle XREADGROUP BLOCK would end in a client-side timeout.
            raise ValueError("socket_timeout must be longer than block_ms")
        if min(max_len, reclaim_idle_ms, max_deliveries, block_ms, batch_size) < 1:
            raise ValueError("sizes and durations must be positive")
        if retention_seconds <= 0 or trim_seconds <= 0:
            raise ValueError("retention_seconds and trim_seconds must be positive")
        self._redis: Redis = connect(
            url, socket_timeout=socket_timeout, connect_timeout=connect_timeout
        )
        self._prefix = prefix
        self._max_len = max_len
        self._retention_ms = int(retention_seconds * 1000)
        self._trim_every = trim_seconds
        self._reclaim_idle_ms = reclaim_idle_ms
        # Look for abandoned entries twice per idle period, so one waits at most 1.5x.
        self._reclaim_every = max(reclaim_idle_ms / 2000, 0.05)
        self._max_deliveries = max_deliveries
        # Never block longer than the reclaim period, or reclaiming would wait for traffic.
        self._block_ms = max(min(block_ms, int(self._reclaim_every * 1000)), 1)
        self._batch = batch_size
        self._heartbeat_every = reclaim_idle_ms / 3000
        self._heartbeat_script = self._redis.register_script(HEARTBEAT)
        self._publish_script = self._redis.register_script(PUBLISH)
        self._subscriptions: set[_RedisSubscription] = set()
        # Every stream this process writes or reads: the trimmer's work list.
        self._streams: set[str] = set()
        self._trimmer: asyncio.Task[None] | None = None
        # One XREAD per watched topic, whatever the number of watchers.
        self._watchers = Fanout(max_watchers=max_watchers, buffer=watch_buffer, reader=self._read)
        self._closed = False

    def _key(self, topic: str) -> str:
        return self._prefix + topic

    def _uses(self, key: str) -> None:
        """Adds a stream to the trimmer's list (and starts the trimmer, in a running loop)."""
        self._streams.add(key)
        if self._trimmer is None and not self._closed:
            self._trimmer = asyncio.create_task(self._trim_forever(), name="bus:trim")

    async def publish(self, topic: str, envelopes: Sequence[EventEnvelope]) -> None:
        await self.publish_serialized(topic, [e.SerializeToString() for e in envelopes])

    async def publish_serialized(self, topic: str, payloads: Sequence[bytes]) -> None:
        if not payloads:
            return
        key = self._key(topic)
        self._uses(key)
        try:
            await self._publish_script(keys=[key], args=[FIELD, *payloads])
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
        self._uses(key)
        created = False
        try:
            # Created here, not in the task, so messages published once subscribe() has
            # returned are this group's for sure.
            await self._create_group(key, group, "$")
            created = True
        except TRANSIENT_ERRORS:
            logger.warning("Redis unreachable: consumer group %s on %s created later", group, key)
        subscription = _RedisSubscription(self, key, group)
        subscription.task = asyncio.create_task(
            self._consume(key, group, consumer, handler, created, subscription, batch),
            name=f"bus:{key}:{group}:{consumer}",
        )
        self._subscriptions.add(subscription)
        return subscription

    async def consumers_idle(self) -> bool:
        try:
            for subscription in list(self._subscriptions):
                if not await self._group_idle(subscription.key, subscription.group):
                    return False
        except TRANSIENT_ERRORS as exc:
            raise BusUnavailable(f"cannot read the consumer groups: {exc}") from exc
        return True

    async def _group_idle(self, key: str, group: str) -> bool:
        """Nothing pending in the group, and the last entry of the stream delivered to it."""
        try:
            stream: dict[str, Any] = await self._redis.xinfo_stream(key)
            groups: list[dict[str, Any]] = await self._redis.xinfo_groups(key)
        except ResponseError:
            return False  # no stream yet: the group is still to be created (Redis was down)
        state = next((g for g in groups if _text(g["name"]) == group), None)
        return (
            state is not None
            and not state["pending"]
            and _parse_id(state["last-delivered-id"]) >= _parse_id(stream["last-generated-id"])
        )

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
            if subscription.stopping:
                try:
                    await self._hand_over(key, group, consumer)
                except Exception as exc:  # best effort: the reclaim takes them later anyway
                    logger.warning("cannot hand over the entries pending on %s: %s", key, exc)

    async def _hand_over(self, key: str, group: str, consumer: str) -> None:
        """A graceful stop: what this consumer still has pending (being handled, or read by
        an XREADGROUP the stop interrupted) becomes reclaimable at once, not after
        reclaim_idle_ms (a crash still waits for it)."""
        pending: list[dict[str, Any]] = await self._redis.xpending_range(
            key, group, "-", "+", 10_000, consumername=consumer
        )
        if pending:
            ids = [p["message_id"] for p in pending]
            await self._heartbeat_script(
                keys=[key], args=[group, consumer, self._reclaim_idle_ms, *ids]
            )

    async def _heartbeat(self, key: str, group: str, consumer: str, held: set[bytes]) -> None:
        while True:
            await asyncio.sleep(self._heartbeat_every)
            if not held:
                continue
            try:
                await self._heartbeat_script(keys=[key], args=[group, consumer, 0, *held])
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
        backoff = Backoff()
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
        """Take over entries idle past reclaim_idle_ms, batch after batch while there are any.

        Returns the cursor for next time: where the scan of the pending list stopped.
        """
        while True:
            reply: list[Any] = await self._redis.xautoclaim(
                key, group, consumer, self._reclaim_idle_ms, start_id=cursor, count=self._batch
            )
            cursor = _text(reply[0])
            # Entries trimmed from the stream while pending come back as None fields (or in
            # a third element, from Redis 7); Redis already dropped them from the pending list.
            claimed = [(entry_id, fields) for entry_id, fields in reply[1] if fields]
            await self._handle_claimed(key, group, consumer, handler, claimed, held)
            deleted = reply[2] if len(reply) > 2 else []
            # An empty answer means nothing idle in this stretch of the pending list; "0-0"
            # that the scan reached its end. Either way, the rest waits for the next period.
            if not (reply[1] or deleted) or cursor == "0-0":
                return cursor

    async def _handle_claimed(
        self,
        key: str,
        group: str,
        consumer: str,
        handler: Handler,
        claimed: list[tuple[bytes, dict[bytes, bytes]]],
        held: set[bytes],
    ) -> None:
        if not claimed:
            return
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
            # An outage of a dependency is waited out here, holding the entry (the heartbeat
            # keeps it ours): it is not a delivery attempt.
            await retry_transient(
                functools.partial(handler, envelope), f"event {envelope.event_id} from {key}"
            )
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
            await retry_transient(
                functools.partial(handler, envelopes), f"batch of {len(batch)} from {key}"
            )
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
        self._uses(key + DEAD_SUFFIX)
        # MULTI: the copy and the acknowledgement happen together or not at all.
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.xadd(key + DEAD_SUFFIX, dead)  # type: ignore[arg-type]
            pipe.xack(key, group, entry_id)
            await pipe.execute()

    async def replay_dead(self, topic: str, limit: int | None = None) -> Replayed:
        """Put dead letters back on their topic, oldest first, up to `limit` of them.

        Each batch is re-published and removed from `<topic>.dead` in one MULTI, so an entry
        is never lost nor left in both. A replayed entry is a new entry of the topic: every
        group of the topic gets it (consumers are idempotent). Entries that were dead-lettered
        for not being an EventEnvelope stay where they are.
        """
        key = self._key(topic)
        dead = key + DEAD_SUFFIX
        replayed = unreadable = 0
        start = "-"
        while limit is None or replayed < limit:
            count = self._batch if limit is None else min(self._batch, limit - replayed)
            entries: Any = await self._redis.xrange(dead, min=start, count=count)
            if not entries:
                break
            start = "(" + _text(entries[-1][0])
            readable = [(i, f[FIELD]) for i, f in entries if _is_envelope(f.get(FIELD, b""))]
            unreadable += len(entries) - len(readable)
            if not readable:
                continue
            async with self._redis.pipeline(transaction=True) as pipe:
                for entry_id, payload in readable:
                    pipe.xadd(key, {FIELD: payload})
                    pipe.xdel(dead, entry_id)
                await pipe.execute()
            replayed += len(readable)
            logger.info("replayed %d dead letters of %s", len(readable), key)
        return Replayed(replayed, unreadable)

    async def trim(self) -> None:
        """One retention pass over every stream this process uses (see the module doc)."""
        for key in sorted(self._streams):
            await self._trim(key)

    async def _trim_forever(self) -> None:
        backoff = Backoff()
        await self._check_persistence()
        while not self._closed:
            await asyncio.sleep(self._trim_every)
            try:
                await self.trim()
                backoff.reset()
            except TRANSIENT_ERRORS as exc:
                logger.warning("Redis unreachable while trimming streams: %s", exc)
                await backoff.sleep()
            except Exception:
                logger.exception("trimming streams failed; trying again later")

    async def _check_persistence(self) -> None:
        # The outbox deletes its rows once XADD returns: from then on, only Redis's
        # persistence keeps the events through a Redis restart.
        try:
            info: dict[str, Any] = await self._redis.info("persistence")
        except Exception as exc:  # managed services may refuse INFO: not worth failing
            logger.debug("cannot read Redis persistence settings: %s", exc)
            return
        if not info.get("aof_enabled"):
            logger.warning(
                "Redis runs without AOF (appendonly no): a Redis restart loses the events "
                "published since its last snapshot; see docs/deploy.md"
            )

    async def _trim(self, key: str) -> None:
        try:
            groups: list[dict[str, Any]] = await self._redis.xinfo_groups(key)
        except ResponseError:
            return  # no such stream (yet, or any more)
        needed: tuple[int, int] | None = None
        for group in groups:
            bound = _successor(_parse_id(group["last-delivered-id"]))
            if group["pending"]:
                summary = await self._redis.xpending(key, group["name"])
                if summary["min"] is not None:
                    bound = min(bound, _parse_id(summary["min"]))
            needed = bound if needed is None else min(needed, bound)
        if needed is not None:
            # Everything before the oldest entry some group still needs is acknowledged.
            await self._redis.xtrim(key, minid=_format_id(needed), approximate=False)
        # Erasure outlives no one: past the retention period entries go, lagging group or not.
        seconds, micros = await self._redis.time()
        horizon = (max(seconds * 1000 + micros // 1000 - self._retention_ms, 0), 0)
        expired = await self._redis.xtrim(key, minid=_format_id(horizon), approximate=False)
        self._dropped(key, groups, expired, "older than the retention period")
        length = await self._redis.xlen(key)
        if length >= self._max_len * ALARM_RATIO:
            alarm_counter.add(1, {"stream": key})
            logger.error(
                "%s holds %d entries (cap %d; past it the oldest are dropped); consumer "
                "groups and their lag: %s",
                key,
                length,
                self._max_len,
                ", ".join(f"{_text(g['name'])}={g.get('lag')}" for g in groups) or "none",
            )
        if length > self._max_len:
            capped = await self._redis.xtrim(key, maxlen=self._max_len, approximate=False)
            self._dropped(key, groups, capped, f"past the cap of {self._max_len} entries")

    @staticmethod
    def _dropped(key: str, groups: list[dict[str, Any]], count: int, why: str) -> None:
        if not count:
            return
        if not groups:
            # Nobody consumes this stream (dead letters, a watched-only topic): expected.
            logger.info("%s: %d entries %s removed", key, count, why)
            return
        # What the group trim left is needed by some group: these were never processed.
        dropped_counter.add(count, {"stream": key})
        logger.error(
            "%s: dropped %d entries %s that a consumer group had not processed (groups: %s)",
            key,
            count,
            why,
            ", ".join(_text(g["name"]) for g in groups),
        )

    def tail(self, topic: str, *, internal: bool = False) -> Watcher:
        return self._watchers.watch(topic, counted=not internal)

    async def _read(self, topic: str) -> AsyncIterator[EventEnvelope]:
        """The shared reader of a watched topic: entries from its first XREAD on."""
        key = self._key(topic)
        last_id = "$"
        backoff = Backoff()
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
        await self._watchers.close()
        if self._trimmer is not None:
            self._trimmer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._trimmer
        await self._redis.aclose()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _parse_id(value: bytes | str) -> tuple[int, int]:
    ms, _, seq = _text(value).partition("-")
    return int(ms), int(seq or 0)


def _format_id(entry_id: tuple[int, int]) -> str:
    return f"{entry_id[0]}-{entry_id[1]}"


def _successor(entry_id: tuple[int, int]) -> tuple[int, int]:
    return entry_id[0], entry_id[1] + 1


def _is_envelope(payload: bytes) -> bool:
    try:
        EventEnvelope.FromString(payload)
    except DecodeError:
        return False
    return bool(payload)

"""The event bus contract, run unchanged on the in-process bus and on real Redis Streams.

Deliveries are awaited with `tests.support.eventually` (generous timeouts): a slow machine
makes a test slower, never red.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import pytest
import redis.asyncio as aioredis
from backcrm.common.v1.common_pb2 import EventEnvelope, Identity, IdentityType
from google.protobuf.timestamp_pb2 import Timestamp
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from libs.bus import (
    EventBus,
    InProcessBus,
    extracted_context,
    make_bus,
    new_envelope,
    unpack,
)
from libs.bus.redis_streams import RedisStreamsBus
from libs.config import Settings
from libs.errors import BusUnavailable, ResourceExhausted
from tests.support import eventually

pytestmark = pytest.mark.integration

DEADLINE = 10.0

BusFactory = Callable[..., EventBus]


def event(value: str) -> EventEnvelope:
    return new_envelope(
        Identity(type=IdentityType.IDENTITY_TYPE_EMAIL, value=value), producer="test"
    )


def values(envelopes: list[EventEnvelope]) -> list[str]:
    return [unpack(e, Identity).value for e in envelopes]


@pytest.fixture(params=["memory", "redis"])
async def new_bus(request: pytest.FixtureRequest) -> AsyncIterator[BusFactory]:
    """Builds buses of the parametrised kind; Redis ones share a fresh random key prefix."""
    buses: list[EventBus] = []
    prefix = f"test:{uuid.uuid4().hex}:"
    url = request.getfixturevalue("redis_url") if request.param == "redis" else ""

    def build(**options: Any) -> EventBus:
        bus: EventBus
        if request.param == "memory":
            bus = InProcessBus(retry_backoff_seconds=0.05, **options)
        else:
            options.setdefault("reclaim_idle_ms", 200)
            bus = RedisStreamsBus(url, prefix=prefix, **options)
        buses.append(bus)
        return bus

    yield build
    for bus in buses:
        await bus.close()
    if url:
        client = aioredis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        try:
            keys = [key async for key in client.scan_iter(match=prefix + "*")]
            if keys:
                await client.delete(*keys)
        finally:
            await client.aclose()


def collector(into: list[EventEnvelope]) -> Callable[[EventEnvelope], Awaitable[None]]:
    async def handler(envelope: EventEnvelope) -> None:
        into.append(envelope)

    return handler


async def synced_tail(bus: EventBus, topic: str) -> AsyncIterator[EventEnvelope]:
    """A tail that is known to be reading: probe messages are published until one arrives.

    "From now on" is when the tail's first read reaches the backend, which the port cannot
    report; this makes the tests independent of it. Probes are filtered out.
    """
    tail = bus.tail(topic)
    first = asyncio.ensure_future(anext(tail))

    async def reading() -> bool:
        await bus.publish(topic, [event("probe")])
        done, _ = await asyncio.wait({first}, timeout=0.2)
        return bool(done)

    try:
        await eventually(reading, "the tail to start", interval=0)
    finally:
        if not first.done():
            first.cancel()

    async def without_probes() -> AsyncIterator[EventEnvelope]:
        try:
            async for envelope in tail:
                if unpack(envelope, Identity).value != "probe":
                    yield envelope
        finally:
            await tail.aclose()  # type: ignore[attr-defined]

    return without_probes()


async def test_each_group_gets_every_message_once(new_bus: BusFactory) -> None:
    bus = new_bus()
    published = [event(f"m{i}") for i in range(20)]
    got: dict[str, list[EventEnvelope]] = {"billing": [], "search": []}
    for group, into in got.items():
        await bus.subscribe("orders", group, "c1", collector(into))

    await bus.publish("orders", published[:10])
    await bus.publish("orders", published[10:])

    for group, into in got.items():
        await eventually(lambda into=into: len(into) >= 20, f"group {group}")
    # Past the reclaim period nothing comes twice: every message was acknowledged.
    await asyncio.sleep(0.5)
    for into in got.values():
        assert values(into) == values(published)  # in order, each once


async def test_group_starts_at_the_end_of_the_topic(new_bus: BusFactory) -> None:
    bus = new_bus()
    await bus.publish("orders", [event("old")])
    got: list[EventEnvelope] = []
    await bus.subscribe("orders", "late", "c1", collector(got))
    await bus.publish("orders", [event("new")])

    await eventually(lambda: len(got) >= 1, "the new message")
    await asyncio.sleep(0.3)
    assert values(got) == ["new"]


async def test_consumers_of_a_group_split_messages(new_bus: BusFactory) -> None:
    bus = new_bus()
    got: dict[str, list[EventEnvelope]] = {"c1": [], "c2": []}

    def slow_collector(into: list[EventEnvelope]) -> Callable[[EventEnvelope], Awaitable[None]]:
        async def handler(envelope: EventEnvelope) -> None:
            into.append(envelope)
            await asyncio.sleep(0.005)  # give the other consumer a turn

        return handler

    for consumer, into in got.items():
        await bus.subscribe("orders", "workers", consumer, slow_collector(into))
    published = [event(f"m{i}") for i in range(50)]
    await bus.publish("orders", published)

    await eventually(lambda: len(got["c1"]) + len(got["c2"]) >= 50, "all messages")
    await asyncio.sleep(0.5)
    seen = values(got["c1"]) + values(got["c2"])
    assert sorted(seen) == sorted(values(published))  # none lost, none twice


async def test_a_failed_message_is_delivered_again(new_bus: BusFactory) -> None:
    bus = new_bus()
    attempts: list[str] = []

    async def flaky(envelope: EventEnvelope) -> None:
        attempts.append(envelope.event_id)
        if len(attempts) < 3:
            raise RuntimeError("downstream hiccup")

    await bus.subscribe("orders", "g", "c1", flaky)
    sent = event("m")
    await bus.publish("orders", [sent])

    await eventually(lambda: len(attempts) >= 3, "two redeliveries")
    await asyncio.sleep(0.5)
    assert attempts == [sent.event_id] * 3  # and none after the success


async def test_a_message_failing_every_time_goes_to_the_dead_topic(new_bus: BusFactory) -> None:
    bus = new_bus(max_deliveries=3)
    dead = await synced_tail(bus, "orders.dead")
    attempts: list[str] = []

    async def broken(envelope: EventEnvelope) -> None:
        attempts.append(envelope.event_id)
        raise RuntimeError("never works")

    await bus.subscribe("orders", "g", "c1", broken)
    sent = event("poison")
    await bus.publish("orders", [sent])

    buried = await asyncio.wait_for(anext(dead), DEADLINE)
    assert buried.event_id == sent.event_id
    await asyncio.sleep(0.5)
    assert attempts == [sent.event_id] * 3
    await dead.aclose()  # type: ignore[attr-defined]


async def test_a_crashed_consumers_message_goes_to_another(new_bus: BusFactory) -> None:
    bus = new_bus()
    first: list[EventEnvelope] = []

    async def stuck(envelope: EventEnvelope) -> None:
        first.append(envelope)
        await asyncio.Event().wait()  # never acknowledges

    crashing = await bus.subscribe("orders", "g", "c1", stuck)
    sent = event("m")
    await bus.publish("orders", [sent])
    await eventually(lambda: len(first) == 1, "the first consumer")

    second: list[EventEnvelope] = []
    await bus.subscribe("orders", "g", "c2", collector(second))
    await crashing.stop()

    await eventually(lambda: len(second) >= 1, "the message to move to the live consumer")
    assert [e.event_id for e in second] == [sent.event_id]


async def test_tail_sees_only_messages_published_after_it_started(new_bus: BusFactory) -> None:
    bus = new_bus()
    await bus.publish("orders", [event("before")])
    tail = await synced_tail(bus, "orders")

    await bus.publish("orders", [event("after1"), event("after2")])
    got = [await asyncio.wait_for(anext(tail), DEADLINE) for _ in range(2)]
    assert values(got) == ["after1", "after2"]
    await tail.aclose()  # type: ignore[attr-defined]


async def test_envelope_round_trip_carries_type_producer_payload_and_trace(
    new_bus: BusFactory,
) -> None:
    bus = new_bus()
    got: list[EventEnvelope] = []
    await bus.subscribe("orders", "g", "c1", collector(got))
    # A local provider: the global one stays untouched for other tests.
    provider = TracerProvider(shutdown_on_exit=False)
    try:
        with provider.get_tracer("test").start_as_current_span("publish") as span:
            sent = new_envelope(
                Identity(type=IdentityType.IDENTITY_TYPE_PHONE, value="+447700900123"),
                producer="profile",
                event_id="evt-1",
            )
        await bus.publish("orders", [sent])
        await eventually(lambda: len(got) == 1, "the message")
    finally:
        provider.shutdown()

    received = got[0]
    assert received.event_id == "evt-1"
    assert received.type == "backcrm.common.v1.Identity"
    assert received.producer == "profile"
    assert received.occurred_at == sent.occurred_at
    assert unpack(received, Identity) == Identity(
        type=IdentityType.IDENTITY_TYPE_PHONE, value="+447700900123"
    )
    with pytest.raises(ValueError):
        unpack(received, Timestamp)
    parent = trace.get_current_span(extracted_context(received)).get_span_context()
    assert parent.trace_id == span.get_span_context().trace_id
    assert parent.span_id == span.get_span_context().span_id
    assert parent.is_remote


async def test_ping(new_bus: BusFactory) -> None:
    assert await new_bus().ping()


async def test_unreachable_redis_fails_fast_and_loudly() -> None:
    bus = RedisStreamsBus("redis://127.0.0.1:1/0", connect_timeout=1.0)
    try:
        assert await bus.ping() is False
        with pytest.raises(BusUnavailable):
            await bus.publish("orders", [event("m")])
    finally:
        await bus.close()


async def test_make_bus_picks_the_adapter_from_the_settings(redis_url: str) -> None:
    embedded = make_bus(Settings(REDIS_URL=""))
    production = make_bus(Settings(REDIS_URL=redis_url))
    try:
        assert isinstance(embedded, InProcessBus)
        assert isinstance(production, RedisStreamsBus)
    finally:
        await embedded.close()
        await production.close()


async def test_batches_arrive_together_and_each_message_once(new_bus: BusFactory) -> None:
    bus = new_bus()
    calls: list[list[str]] = []

    async def handler(envelopes: Sequence[EventEnvelope]) -> None:
        calls.append(values(list(envelopes)))

    # Published before the consumer reads, so they are ready together.
    await bus.subscribe_batch("orders", "batcher", "c1", handler, max_batch=50)
    await bus.publish("orders", [event(f"m{i}") for i in range(30)])
    await eventually(lambda: sum(len(c) for c in calls) >= 30, "all messages")
    await asyncio.sleep(0.5)
    assert [v for c in calls for v in c] == [f"m{i}" for i in range(30)]
    assert max(len(c) for c in calls) > 1  # some arrived as one batch


async def test_a_poison_message_in_a_batch_is_isolated(new_bus: BusFactory) -> None:
    bus = new_bus()
    done: list[str] = []
    attempts: dict[str, int] = {}

    async def handler(envelopes: Sequence[EventEnvelope]) -> None:
        names = values(list(envelopes))
        for name in names:
            attempts[name] = attempts.get(name, 0) + 1
        if "bad" in names and len(names) > 1:
            raise RuntimeError("one of them is bad")
        if names == ["bad"] and attempts["bad"] < 3:
            raise RuntimeError("still bad")
        done.extend(names)

    await bus.subscribe_batch("orders", "isolating", "c1", handler, max_batch=10)
    await bus.publish("orders", [event("a"), event("bad"), event("b")])
    await eventually(lambda: sorted(done) == ["a", "b", "bad"], "every message handled")
    assert attempts["bad"] >= 3  # retried on its own until it passed


# --- infrastructure failures are not delivery attempts -----------------------------------


@pytest.mark.parametrize("batched", [False, True], ids=["single", "batch"])
async def test_an_outage_of_a_dependency_sends_nothing_to_the_dead_topic(
    new_bus: BusFactory, batched: bool
) -> None:
    """50 events during a database outage: all handled once it ends, none dead-lettered."""
    bus = new_bus(max_deliveries=3)
    dead = await synced_tail(bus, "orders.dead")
    buried = asyncio.ensure_future(anext(dead))
    attempts: dict[str, int] = {}
    handled: list[str] = []
    down = True

    async def handle(envelope: EventEnvelope) -> None:
        nonlocal down
        if down:
            attempts[envelope.event_id] = attempts.get(envelope.event_id, 0) + 1
            # The outage outlasts max_deliveries attempts at one message, then ends.
            if attempts[envelope.event_id] > 4:
                down = False
            raise ConnectionRefusedError("database unreachable")
        handled.append(envelope.event_id)

    async def handle_batch(envelopes: Sequence[EventEnvelope]) -> None:
        for envelope in envelopes:
            await handle(envelope)

    if batched:
        await bus.subscribe_batch("orders", "g", "c1", handle_batch)
    else:
        await bus.subscribe("orders", "g", "c1", handle)
    sent = [event(f"m{i}") for i in range(50)]
    await bus.publish("orders", sent)

    await eventually(lambda: buried.done() or len(set(handled)) == 50, "every event handled")
    assert not buried.done(), "an event went to the dead topic during the outage"
    assert set(handled) == {e.event_id for e in sent}
    buried.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await buried
    await dead.aclose()  # type: ignore[attr-defined]


# --- shared tails --------------------------------------------------------------------------


def _our_local_ports() -> set[int]:
    """Local TCP ports of this process's sockets (Linux /proc): its Redis connections."""
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/self/fd/{fd}")
            if target.startswith("socket:["):
                inodes.add(target[len("socket:[") : -1])
    ports = set()
    for table in ("/proc/self/net/tcp", "/proc/self/net/tcp6"):
        with open(table) as lines:
            next(lines)
            for line in lines:
                fields = line.split()
                if fields[9] in inodes:
                    ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


async def _our_redis_clients(url: str) -> int:
    """How many of the clients in Redis's CLIENT LIST are connections of this process."""
    client = aioredis.Redis.from_url(url)
    try:
        listed = await client.client_list()
        ports = _our_local_ports()
        return sum(1 for c in listed if int(c["addr"].rsplit(":", 1)[1]) in ports)
    finally:
        await client.aclose()


async def test_300_watchers_share_one_reader(
    new_bus: BusFactory, request: pytest.FixtureRequest
) -> None:
    bus = new_bus()
    redis = "redis" in request.node.callspec.id
    url = request.getfixturevalue("redis_url") if redis else ""
    await bus.ping()  # the bus's own first connection is not a watcher's
    before = await _our_redis_clients(url) if redis else 0

    tails = [bus.tail("orders") for _ in range(300)]
    firsts = [asyncio.ensure_future(anext(t)) for t in tails]

    async def every_watcher_reading() -> bool:
        await bus.publish("orders", [event("probe")])
        await asyncio.wait(firsts, timeout=0.2)
        return all(f.done() for f in firsts)

    await eventually(every_watcher_reading, "the watchers to start", interval=0)
    if redis:
        assert await _our_redis_clients(url) - before <= 3

    await bus.publish("orders", [event("hello")])

    async def first_real(tail: AsyncIterator[EventEnvelope]) -> str:
        async for envelope in tail:
            if unpack(envelope, Identity).value != "probe":
                return unpack(envelope, Identity).value
        return "ended"

    got = await asyncio.wait_for(asyncio.gather(*(first_real(t) for t in tails)), DEADLINE)
    assert got == ["hello"] * 300
    for tail in tails:
        await tail.aclose()  # type: ignore[attr-defined]


async def test_a_slow_watcher_is_ended_and_the_others_carry_on(new_bus: BusFactory) -> None:
    bus = new_bus(watch_buffer=10)
    fast = await synced_tail(bus, "orders")
    slow = bus.tail("orders")  # never read while the messages arrive

    got: list[EventEnvelope] = []
    for burst in range(4):  # bursts the fast watcher keeps up with; 20 pile up in the slow one
        await bus.publish("orders", [event(f"m{burst * 5 + i}") for i in range(5)])
        got += [await asyncio.wait_for(anext(fast), DEADLINE) for _ in range(5)]
    assert values(got) == [f"m{i}" for i in range(20)]
    with pytest.raises(ResourceExhausted) as ended:
        await asyncio.wait_for(anext(slow), DEADLINE)
    assert ended.value.reason == "WATCHER_TOO_SLOW"
    await fast.aclose()  # type: ignore[attr-defined]


async def test_watchers_beyond_the_limit_are_refused(new_bus: BusFactory) -> None:
    bus = new_bus(max_watchers=2)
    first, second = bus.tail("orders"), bus.tail("customers")
    with pytest.raises(ResourceExhausted) as refused:
        bus.tail("orders")
    assert refused.value.reason == "TOO_MANY_WATCHERS"
    await first.aclose()  # type: ignore[attr-defined]
    third = await synced_tail(bus, "orders")  # a freed place is taken again
    await bus.publish("orders", [event("m")])
    assert values([await asyncio.wait_for(anext(third), DEADLINE)]) == ["m"]
    await third.aclose()  # type: ignore[attr-defined]
    await second.aclose()  # type: ignore[attr-defined]


# --- the in-process log keeps what a group needs --------------------------------------------


async def test_in_process_bus_refuses_to_drop_what_a_lagging_group_needs() -> None:
    bus = InProcessBus(max_len=100)
    gate = asyncio.Event()
    got: list[str] = []

    async def lagging(envelope: EventEnvelope) -> None:
        await gate.wait()
        got.append(unpack(envelope, Identity).value)

    try:
        await bus.subscribe("orders", "slow", "c1", lagging)
        first = [event(f"m{i}") for i in range(100)]
        await bus.publish("orders", first)
        with pytest.raises(BusUnavailable):  # full: refused, not silently dropped
            await bus.publish("orders", [event("m100")])
        assert bus.unacknowledged("orders", [e.event_id for e in first]) == {
            e.event_id for e in first
        }

        gate.set()
        await eventually(lambda: len(got) == 100, "the lagging group to catch up")
        assert bus.unacknowledged("orders", [e.event_id for e in first]) == set()
        await bus.publish("orders", [event("m100")])
        await eventually(lambda: len(got) == 101, "the next message")
        assert got == [f"m{i}" for i in range(101)]
    finally:
        await bus.close()


async def test_in_process_bus_drops_messages_past_the_retention_loudly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bus = InProcessBus(retention_seconds=0.2)
    gate = asyncio.Event()

    async def lagging(_envelope: EventEnvelope) -> None:
        await gate.wait()

    try:
        await bus.subscribe("orders", "slow", "c1", lagging)
        old = event("erased@example.com")
        await bus.publish("orders", [old])

        async def dropped() -> bool:
            if not bus.unacknowledged("orders", [old.event_id]):
                return True
            await bus.publish("orders", [event("tick")])  # each publish trims
            return False

        await eventually(dropped, "the old message to be dropped")
        assert any(
            r.levelname == "ERROR" and "older than the retention period" in r.getMessage()
            for r in caplog.records
        )
    finally:
        gate.set()
        await bus.close()


# --- Redis retention ----------------------------------------------------------------------


@pytest.fixture
async def redis_bus(redis_url: str) -> AsyncIterator[tuple[BusFactory, aioredis.Redis, str]]:
    """Redis buses on a fresh prefix, a raw client, and the prefix."""
    prefix = f"test:{uuid.uuid4().hex}:"
    buses: list[RedisStreamsBus] = []
    raw = aioredis.Redis.from_url(redis_url)

    def build(**options: Any) -> RedisStreamsBus:
        options.setdefault("reclaim_idle_ms", 200)
        bus = RedisStreamsBus(redis_url, prefix=prefix, **options)
        buses.append(bus)
        return bus

    try:
        yield build, raw, prefix
    finally:
        for bus in buses:
            await bus.close()
        keys = [key async for key in raw.scan_iter(match=prefix + "*")]
        if keys:
            await raw.delete(*keys)
        await raw.aclose()


async def test_streams_are_trimmed_by_the_slowest_group(
    redis_bus: tuple[BusFactory, aioredis.Redis, str],
) -> None:
    build, raw, prefix = redis_bus
    bus = build()
    key = prefix + "orders"
    fast: list[str] = []
    slow: list[str] = []
    gate = asyncio.Event()

    async def take_fast(envelopes: Sequence[EventEnvelope]) -> None:
        fast.extend(e.event_id for e in envelopes)

    async def take_slow(envelopes: Sequence[EventEnvelope]) -> None:
        await gate.wait()
        slow.extend(e.event_id for e in envelopes)

    await bus.subscribe_batch("orders", "fast", "c1", take_fast)
    await bus.subscribe_batch("orders", "slow", "c1", take_slow)
    sent = [event(f"m{i}") for i in range(10_000)]
    for start in range(0, len(sent), 1_000):
        await bus.publish("orders", sent[start : start + 1_000])
    await eventually(lambda: len(fast) == 10_000, "the fast group")

    await bus.trim()  # type: ignore[attr-defined]
    assert await raw.xlen(key) == 10_000  # all still needed by the lagging group

    gate.set()
    await eventually(lambda: len(slow) == 10_000, "the slow group to catch up")
    assert sorted(slow) == sorted(e.event_id for e in sent)
    await bus.trim()  # type: ignore[attr-defined]
    assert await raw.xlen(key) == 0  # every group acknowledged everything


async def test_entries_past_the_retention_go_even_unread_and_loudly(
    redis_bus: tuple[BusFactory, aioredis.Redis, str], caplog: pytest.LogCaptureFixture
) -> None:
    build, raw, prefix = redis_bus
    bus = build()
    key = prefix + "orders"
    await raw.xgroup_create(key, "lagging", id="0", mkstream=True)
    seconds, _ = await raw.time()
    eight_days_ago = (seconds - 8 * 86_400) * 1000
    old = event("erased@example.com")
    await raw.xadd(key, {b"e": old.SerializeToString()}, id=f"{eight_days_ago}-0")
    await bus.publish("orders", [event("recent1"), event("recent2")])

    await bus.trim()  # type: ignore[attr-defined]

    kept = [EventEnvelope.FromString(f[b"e"]) for _id, f in await raw.xrange(key)]
    assert values(kept) == ["recent1", "recent2"]
    assert any(
        r.levelname == "ERROR" and "dropped 1 entries older than the retention" in r.getMessage()
        for r in caplog.records
    )


async def test_a_stream_near_its_cap_raises_the_alarm_and_drops_only_past_it_loudly(
    redis_bus: tuple[BusFactory, aioredis.Redis, str], caplog: pytest.LogCaptureFixture
) -> None:
    build, raw, prefix = redis_bus
    bus = build(max_len=100)
    key = prefix + "orders"
    await raw.xgroup_create(key, "lagging", id="$", mkstream=True)

    await bus.publish("orders", [event(f"m{i}") for i in range(90)])
    await bus.trim()  # type: ignore[attr-defined]
    assert await raw.xlen(key) == 90  # nothing dropped below the cap...
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert any("holds 90 entries (cap 100" in m for m in errors)  # ...but the alarm is up

    await bus.publish("orders", [event(f"m{i}") for i in range(90, 120)])
    await bus.trim()  # type: ignore[attr-defined]
    assert await raw.xlen(key) == 100
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert any("dropped 20 entries past the cap of 100" in m for m in errors)


# --- Redis reclaim -------------------------------------------------------------------------


async def test_one_reclaim_pass_takes_every_idle_entry(
    redis_bus: tuple[BusFactory, aioredis.Redis, str],
) -> None:
    """1,000 entries left by a dead consumer are all handled before anything newer."""
    build, raw, prefix = redis_bus
    bus = build(reclaim_idle_ms=200)
    key = prefix + "orders"
    await raw.xgroup_create(key, "g", id="$", mkstream=True)
    await bus.publish("orders", [event(f"old{i}") for i in range(1_000)])
    # A consumer reads them all and dies without acknowledging.
    await raw.xreadgroup("g", "dead", {key: ">"}, count=1_000)
    await bus.publish("orders", [event("new")])

    async def idle_enough() -> bool:
        oldest = await raw.xpending_range(key, "g", "-", "+", 1)
        return bool(oldest) and oldest[0]["time_since_delivered"] > 300

    await eventually(idle_enough, "the dead consumer's entries to idle past the reclaim time")

    got: list[str] = []
    await bus.subscribe("orders", "g", "live", collector_of_values(got))
    await eventually(lambda: "new" in got, "the new entry")
    # The reclaim runs before each read: all the idle entries came first.
    assert sorted(got[: got.index("new")]) == sorted(f"old{i}" for i in range(1_000))


def collector_of_values(into: list[str]) -> Callable[[EventEnvelope], Awaitable[None]]:
    async def handler(envelope: EventEnvelope) -> None:
        into.append(unpack(envelope, Identity).value)

    return handler

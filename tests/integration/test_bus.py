"""The event bus contract, run unchanged on the in-process bus and on real Redis Streams.

Deliveries are awaited by polling with generous deadlines: a slow machine makes a test
slower, never red.
"""

from __future__ import annotations

import asyncio
import time
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
    BusUnavailable,
    EventBus,
    InProcessBus,
    extracted_context,
    make_bus,
    new_envelope,
    unpack,
)
from libs.bus.redis_streams import RedisStreamsBus
from libs.config import Settings

pytestmark = pytest.mark.integration

DEADLINE = 10.0

BusFactory = Callable[..., EventBus]


async def eventually(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


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
    deadline = time.monotonic() + DEADLINE
    while True:
        await bus.publish(topic, [event("probe")])
        done, _ = await asyncio.wait({first}, timeout=0.2)
        if done:
            break
        if time.monotonic() > deadline:
            first.cancel()
            pytest.fail("tail never started")

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

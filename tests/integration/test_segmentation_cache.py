"""Segmentation's cached memberships follow the committed ones across replicas.

Two segmentation processes on one database and one Redis: changes of one customer are applied
by either, both keep filling the cache from their reads (`Engine.memberships`), and a change
written through by one races the fills and write-throughs of the other. Once the writes are
done, every replica's answer must be what storage holds, and an erased customer must be in no
segment, whichever replica wrote last (libs/cache/port.py: generations). Before the
generations, a read that read storage before a commit could cache the old memberships after
the commit's write-through, for the fill's TTL.

On the embedded default the two apps share its resources (one process), as elsewhere. The
first replica's cache writes are held back 30 ms (`LateFills`: a busy event loop or a GC pause
does the same), longer than the other takes to commit a change or an erasure.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
import uuid
from collections.abc import AsyncIterator, Sequence

import pytest
from backcrm.segmentation.v1 import condition_pb2 as c
from google.protobuf import struct_pb2

from libs.cache.port import Cache
from libs.runtime import Peers, Resources
from services.segmentation.app import SegmentationApp
from services.segmentation.conditions import decode_condition
from services.segmentation.engine import ProfileUpdate
from services.segmentation.facts import CustomerFacts
from services.segmentation.handlers import create_segment, reload_catalog
from tests.support import Backend

pytestmark = pytest.mark.integration

TRIALS = 40
READERS = 3


class LateFills(Cache):
    """The real cache, with every write that stores an entry held back."""

    def __init__(self, cache: Cache, seconds: float) -> None:
        self._cache = cache
        self._seconds = seconds

    async def _late(self) -> None:
        await asyncio.sleep(self._seconds)

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        return await self._cache.get_many(keys)

    async def set_many(self, items: Sequence[tuple[str, bytes]], ttl_seconds: int) -> None:
        await self._late()
        await self._cache.set_many(items, ttl_seconds)

    async def set_many_if(
        self, items: Sequence[tuple[str, bytes, bytes | None]], ttl_seconds: int
    ) -> None:
        await self._late()
        await self._cache.set_many_if(items, ttl_seconds)

    async def delete(self, keys: Sequence[str]) -> None:
        await self._cache.delete(keys)

    async def invalidate(self, keys: Sequence[str], generation_ttl_seconds: int) -> None:
        await self._cache.invalidate(keys, generation_ttl_seconds)

    async def ping(self) -> bool:
        return await self._cache.ping()

    async def close(self) -> None:
        await self._cache.close()


@pytest.fixture
async def replicas(backend: Backend) -> AsyncIterator[tuple[SegmentationApp, SegmentationApp]]:
    opened = [Resources.open(backend.settings)]
    if backend.name == "postgres":
        opened.append(Resources.open(backend.settings))
    # No request here names a customer by identity: no peer is ever called.
    apps = [
        SegmentationApp.build(
            dataclasses.replace(r, cache=LateFills(r.cache, late)),
            Peers(r.settings, "", lambda: "127.0.0.1:1"),
        )
        for r, late in ((opened[0], 0.03), (opened[-1], 0.0))
    ]
    try:
        for app in apps:
            await reload_catalog(app.deps)
        yield apps[0], apps[1]
    finally:
        for resources in opened:
            await resources.close()


async def engaged_segment(a: SegmentationApp, b: SegmentationApp) -> str:
    condition = c.Condition(
        property=c.PropertyCondition(
            path="engagement_score", op=c.OPERATOR_GT, value=struct_pb2.Value(number_value=50)
        )
    )
    body = condition.SerializeToString()
    record = await create_segment(
        a.deps, f"engaged-{uuid.uuid4().hex[:8]}", "", body, decode_condition(body)
    )
    await asyncio.gather(*a.deps.builds.running.values())
    await reload_catalog(b.deps)
    return record.segment_id


def change(customer_id: str, version: int, score: float) -> ProfileUpdate:
    now = time.time()
    facts = CustomerFacts(
        customer_id=customer_id,
        version=version,
        created_at=now - 86_400,
        last_activity_at=now,
        engagement_score=score,
    )
    return ProfileUpdate(customer_id, ("engagement_score",), (), facts, (), "test")


async def stored(app: SegmentationApp, customer_id: str, segment: str) -> list[str]:
    async with app.deps.store() as store:
        found = await store.memberships_of_many([customer_id])
    return [s for s in found.get(customer_id, ()) if s == segment]


async def answered(app: SegmentationApp, customer_id: str, segment: str) -> list[str]:
    """The replica's answer (cache first), of this test's segment (the module shares a store)."""
    return [s for s in await app.deps.engine.memberships(customer_id) if s == segment]


@contextlib.asynccontextmanager
async def reading(apps: tuple[SegmentationApp, ...], customer_id: str) -> AsyncIterator[None]:
    """Keep every replica filling its cache with the customer's memberships meanwhile."""
    stop = asyncio.Event()

    async def keep_reading(app: SegmentationApp) -> None:
        while not stop.is_set():
            await app.deps.engine.memberships(customer_id)
            await asyncio.sleep(0)

    tasks = [asyncio.ensure_future(keep_reading(app)) for app in apps for _ in range(READERS)]
    try:
        yield
    finally:
        stop.set()
        await asyncio.gather(*tasks)


async def test_concurrent_changes_on_two_replicas_leave_no_stale_cached_memberships(
    replicas: tuple[SegmentationApp, SegmentationApp],
) -> None:
    a, b = replicas
    segment = await engaged_segment(a, b)
    customer = f"cache-{uuid.uuid4().hex[:10]}"
    await a.deps.engine.on_profile_changes([change(customer, 1, 0.0)])
    for trial in range(TRIALS):
        version = 2 + 2 * trial
        # the newer snapshot decides; which one is newer alternates between the replicas
        low, high = (0.0, 90.0) if trial % 2 else (90.0, 0.0)
        async with reading((a, b), customer):
            await asyncio.gather(
                a.deps.engine.on_profile_changes([change(customer, version, low)]),
                b.deps.engine.on_profile_changes([change(customer, version + 1, high)]),
            )
        expected = [segment] if high > 50 else []
        assert await stored(a, customer, segment) == expected, trial
        for app in (a, b):
            assert await answered(app, customer, segment) == expected, trial


async def test_an_erasure_racing_a_change_on_the_other_replica_leaves_nothing_cached(
    replicas: tuple[SegmentationApp, SegmentationApp],
) -> None:
    a, b = replicas
    segment = await engaged_segment(a, b)
    for trial in range(TRIALS):
        customer = f"erase-{uuid.uuid4().hex[:10]}"
        await a.deps.engine.on_profile_changes([change(customer, 1, 0.0)])
        assert await answered(a, customer, segment) == []
        # the change makes the customer enter (written through), the erasure takes it out
        async with reading((a, b), customer):
            await asyncio.gather(
                a.deps.engine.on_profile_changes([change(customer, 2, 95.0)]),
                b.deps.engine.on_profile_deleted(customer),
            )
        assert await stored(a, customer, segment) == [], trial
        for app in (a, b):
            assert await answered(app, customer, segment) == [], trial

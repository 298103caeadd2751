"""The cache contract, run unchanged on the in-process LRU and on real Redis."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from libs.cache import Cache, InProcessCache, make_cache
from libs.cache.redis_cache import RedisCache
from libs.config import Settings
from libs.errors import CacheUnavailable
from tests.support import eventually

pytestmark = pytest.mark.integration


@pytest.fixture(params=["memory", "redis"])
async def cache(request: pytest.FixtureRequest) -> AsyncIterator[Cache]:
    if request.param == "memory":
        memory = InProcessCache(max_entries=100)
        yield memory
        await memory.close()
        return
    url: str = request.getfixturevalue("redis_url")
    prefix = f"test:{uuid.uuid4().hex}:"
    redis_cache = RedisCache(url, prefix=prefix)
    yield redis_cache
    await redis_cache.close()
    client = aioredis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
    try:
        keys = [key async for key in client.scan_iter(match=prefix + "*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


async def test_set_get_get_many_delete(cache: Cache) -> None:
    assert await cache.get("a") is None
    await cache.set("a", b"1", ttl_seconds=60)
    await cache.set_many([("b", b"2"), ("c", b"\x00\xff")], ttl_seconds=60)

    assert await cache.get("a") == b"1"
    assert await cache.get_many(["c", "missing", "b"]) == [b"\x00\xff", None, b"2"]
    assert await cache.get_many([]) == []

    await cache.set("a", b"one", ttl_seconds=60)
    assert await cache.get("a") == b"one"

    await cache.delete(["a", "b", "missing"])
    assert await cache.get_many(["a", "b", "c"]) == [None, None, b"\x00\xff"]
    assert await cache.ping()


async def test_entries_expire_after_their_ttl(cache: Cache) -> None:
    await cache.set("short", b"x", ttl_seconds=1)
    await cache.set("long", b"y", ttl_seconds=60)
    assert await cache.get("short") == b"x"

    async def expired() -> bool:
        return await cache.get("short") is None

    await eventually(expired, "the entry to expire", interval=0.1)
    assert await cache.get("long") == b"y"


async def test_ttl_must_be_positive(cache: Cache) -> None:
    with pytest.raises(ValueError):
        await cache.set("a", b"1", ttl_seconds=0)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_lru_expiry_follows_the_injected_clock() -> None:
    clock = FakeClock()
    cache = InProcessCache(10, clock=clock)
    await cache.set("a", b"1", ttl_seconds=5)
    clock.now += 4.9
    assert await cache.get("a") == b"1"
    clock.now += 0.2
    assert await cache.get("a") is None
    assert len(cache) == 0


async def test_lru_evicts_the_least_recently_used() -> None:
    cache = InProcessCache(3)
    await cache.set_many([("a", b"1"), ("b", b"2"), ("c", b"3")], ttl_seconds=60)
    assert await cache.get("a") == b"1"  # now "b" is the least recently used

    await cache.set("d", b"4", ttl_seconds=60)

    assert await cache.get_many(["a", "b", "c", "d"]) == [b"1", None, b"3", b"4"]
    assert len(cache) == 3


async def test_unreachable_redis_raises_cache_unavailable_quickly() -> None:
    cache = RedisCache("redis://127.0.0.1:1/0")
    started = time.monotonic()
    try:
        with pytest.raises(CacheUnavailable):
            await cache.get("a")
        with pytest.raises(CacheUnavailable):
            await cache.set("a", b"1", ttl_seconds=60)
        with pytest.raises(CacheUnavailable):
            await cache.delete(["a"])
        assert await cache.ping() is False
    finally:
        await cache.close()
    # Generous: the point is "no long retry loop", not a latency figure.
    assert time.monotonic() - started < 10


async def test_make_cache_picks_the_adapter_from_the_settings(redis_url: str) -> None:
    embedded = make_cache(Settings(REDIS_URL=""))
    production = make_cache(Settings(REDIS_URL=redis_url))
    try:
        assert isinstance(embedded, InProcessCache)
        assert isinstance(production, RedisCache)
    finally:
        await embedded.close()
        await production.close()


async def test_concurrent_reads_each_get_their_own_values(cache: Cache) -> None:
    await cache.set_many([(f"k{i}", f"v{i}".encode()) for i in range(40)], ttl_seconds=60)
    asks = [[f"k{i}", "missing", f"k{(i * 7) % 40}"] for i in range(40)] + [[]]

    answers = await asyncio.gather(*(cache.get_many(keys) for keys in asks))

    wanted = [[f"v{i}".encode(), None, f"v{(i * 7) % 40}".encode()] for i in range(40)]
    assert answers == [*wanted, []]


async def _connections_named(redis_url: str, name: str) -> int:
    client = aioredis.Redis.from_url(redis_url, socket_timeout=5, socket_connect_timeout=5)
    try:
        return sum(1 for c in await client.client_list() if c.get("name") == name)
    finally:
        await client.aclose()


async def test_concurrent_reads_share_one_round_trip(redis_url: str) -> None:
    """16 reads in flight are one MGET on one connection, not 16 commands on 16 pooled
    connections: redis-py's client costs far more CPU per command than Redis does."""
    name = f"test-{uuid.uuid4().hex[:12]}"
    prefix = f"test:{uuid.uuid4().hex}:"
    cache = RedisCache(redis_url, prefix=prefix, client_name=name)
    try:
        await cache.set_many([(f"k{i}", b"%d" % i) for i in range(16)], ttl_seconds=60)
        for _ in range(5):
            answers = await asyncio.gather(*(cache.get_many([f"k{i}"]) for i in range(16)))
            assert answers == [[b"%d" % i] for i in range(16)]
        assert await _connections_named(redis_url, name) == 1
    finally:
        await cache.close()


async def test_reads_go_on_after_the_server_closes_their_connection(redis_url: str) -> None:
    """The coalesced reads keep one connection: one the server closed (a restart, an idle
    timeout, CLIENT KILL) is replaced on the spot, not reported as an outage."""
    name = f"test-{uuid.uuid4().hex[:12]}"
    cache = RedisCache(redis_url, prefix=f"test:{uuid.uuid4().hex}:", client_name=name)
    admin = aioredis.Redis.from_url(redis_url, socket_timeout=5, socket_connect_timeout=5)
    try:
        await cache.set("a", b"1", ttl_seconds=60)
        assert await cache.get("a") == b"1"
        for _ in range(3):
            killed = [c for c in await admin.client_list() if c.get("name") == name]
            assert killed
            for client in killed:
                await admin.client_kill_filter(_id=client["id"])
            assert await cache.get_many(["a", "b"]) == [b"1", None]
    finally:
        await admin.aclose()
        await cache.close()


async def test_a_failed_round_trip_fails_every_read_of_it() -> None:
    cache = RedisCache("redis://127.0.0.1:1/0")
    try:
        outcomes = await asyncio.gather(
            *(cache.get_many([f"k{i}"]) for i in range(8)), return_exceptions=True
        )
        assert all(isinstance(o, CacheUnavailable) for o in outcomes), outcomes
        assert len({id(o) for o in outcomes}) == len(outcomes)  # one error each
    finally:
        await cache.close()


async def test_a_cancelled_read_leaves_the_others_their_answers(cache: Cache) -> None:
    await cache.set_many([("a", b"1"), ("b", b"2")], ttl_seconds=60)
    first = asyncio.ensure_future(cache.get_many(["a"]))
    gone = asyncio.ensure_future(cache.get_many(["missing"]))
    last = asyncio.ensure_future(cache.get_many(["b"]))
    await asyncio.sleep(0)  # all three asked
    gone.cancel()

    assert await first == [b"1"]
    assert await last == [b"2"]
    assert await cache.get_many(["b", "a"]) == [b"2", b"1"]


async def test_a_read_sees_every_write_completed_before_it_even_with_reads_out(
    cache: Cache,
) -> None:
    """Reads already out (a batch in flight) do not let a later read return what was there
    before a write that completed before it was asked for."""
    for round_no in range(20):
        earlier = [asyncio.ensure_future(cache.get_many(["a"])) for _ in range(5)]  # reads out
        await asyncio.sleep(0)
        await cache.set_many([("a", str(round_no).encode())], ttl_seconds=60)
        assert await cache.get_many(["a"]) == [str(round_no).encode()]
        await asyncio.gather(*earlier)


async def test_a_fill_lands_only_if_no_invalidation_came_since_its_read(cache: Cache) -> None:
    """The read-through race: a reader takes the generation, reads storage, a write commits
    and invalidates, then the reader fills — that fill must not land (it holds the old
    state); a fill whose generation is still current does."""
    await cache.set("p", b"v1", ttl_seconds=60)
    [taken] = await cache.generations(["p"])  # a reader missed, about to read storage
    await cache.invalidate(["p"], generation_ttl_seconds=60)  # a write committed meanwhile
    assert await cache.get("p") is None

    await cache.set_many_if([("p", b"v1-stale", taken)], ttl_seconds=60)
    assert await cache.get("p") is None

    [now] = await cache.generations(["p"])
    assert now != taken
    await cache.set_many_if([("p", b"v2", now), ("q", b"q1", None)], ttl_seconds=60)
    assert await cache.get_many(["p", "q"]) == [b"v2", b"q1"]
    await cache.invalidate(["p", "q"], generation_ttl_seconds=60)
    assert await cache.get_many(["p", "q"]) == [None, None]

"""The Redis cache: plain string keys under a prefix, `SET EX` for the TTL.

Every Redis failure surfaces as CacheUnavailable, raised within the short socket timeouts,
so a caller can always fall back to storage and a Redis outage never fails a request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import cast

from redis.asyncio.connection import AbstractConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from libs.cache.coalesce import Coalescer
from libs.cache.port import Cache, generation_key
from libs.errors import CacheUnavailable
from libs.redis_client import connect

__all__ = ["RedisCache"]


# KEYS: key, its generation key, …; ARGV: value, the generation taken ("" for none), …, ttl
_SET_IF = """
for i = 1, #KEYS, 2 do
  if (redis.call('GET', KEYS[i + 1]) or '') == ARGV[i + 1] then
    redis.call('SET', KEYS[i], ARGV[i], 'EX', ARGV[#ARGV])
  end
end
"""


# KEYS: key, its generation key, …; ARGV: the generations' ttl. One command for any number of
# keys: redis-py packs and parses each command in Python, which cost more than Redis's work
# when this was a pipeline of DEL, INCR and EXPIRE per key.
_INVALIDATE = """
for i = 1, #KEYS, 2 do
  redis.call('DEL', KEYS[i])
  redis.call('INCR', KEYS[i + 1])
  redis.call('EXPIRE', KEYS[i + 1], ARGV[1])
end
"""


class RedisCache(Cache):
    def __init__(
        self,
        url: str,
        *,
        prefix: str = "backcrm:cache:",
        socket_timeout: float = 0.5,
        connect_timeout: float = 0.5,
        client_name: str = "backcrm-cache",
    ) -> None:
        self._redis = connect(
            url,
            socket_timeout=socket_timeout,
            connect_timeout=connect_timeout,
            client_name=client_name,
        )
        self._prefix = prefix
        # concurrent reads share one MGET (libs/cache/coalesce.py says why), on a connection
        # of their own (`_mget` says why)
        self._reads = Coalescer[bytes | None](self._mget, _unavailable)
        self._read_connection: AbstractConnection | None = None
        self._read_loop: asyncio.AbstractEventLoop | None = None
        self._set_if = self._redis.register_script(_SET_IF)
        self._invalidate = self._redis.register_script(_INVALIDATE)

    def _key(self, key: str) -> str:
        return self._prefix + key

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        if not keys:
            return []
        return await self._reads.get_many(keys)

    async def _mget(self, keys: list[str]) -> list[bytes | None]:
        # The coalescer has one fetch out at a time, so the reads keep one connection of the
        # pool and talk to it directly: the client's per-command path (pool checkout and
        # release under a lock, retry wrapper, observability hooks) cost more CPU than the
        # rest of a cached GetProfile's MGET (MGET of 4 keys in a loop: 33-40 against 55-63
        # µs). As the client does, one immediate retry, for a connection the server closed
        # meanwhile: redis-py disconnected it on the error and it reconnects on the retry.
        command = ("MGET", *(self._key(k) for k in keys))
        try:
            return await self._read(command)
        except (RedisConnectionError, RedisTimeoutError):
            return await self._read(command)

    async def _read(self, command: tuple[str, ...]) -> list[bytes | None]:
        loop, connection = asyncio.get_running_loop(), self._read_connection
        if connection is None or self._read_loop is not loop:
            # (a connection's streams belong to the loop it was made on: a test's may end)
            pool = self._redis.connection_pool
            if connection is not None:
                await pool.release(connection)
            connection = await pool.get_connection()  # type: ignore[no-untyped-call]
            self._read_connection, self._read_loop = connection, loop
        await connection.send_packed_command(connection.pack_command(*command))
        # The client does not decode responses, so values are bytes (or None when missing).
        return cast("list[bytes | None]", await connection.read_response())

    async def set_many(self, items: Sequence[tuple[str, bytes]], ttl_seconds: int) -> None:
        if ttl_seconds <= 0:
            raise ValueError("ttl_seconds must be positive")
        if not items:
            return
        try:
            # No MULTI: each entry stands alone, one round trip is all we want.
            async with self._redis.pipeline(transaction=False) as pipe:
                for key, value in items:
                    pipe.set(self._key(key), value, ex=ttl_seconds)
                await pipe.execute()
        except RedisError as exc:
            raise CacheUnavailable(str(exc)) from exc

    async def delete(self, keys: Sequence[str]) -> None:
        if not keys:
            return
        try:
            await self._redis.delete(*[self._key(k) for k in keys])
        except RedisError as exc:
            raise CacheUnavailable(str(exc)) from exc

    async def invalidate(self, keys: Sequence[str], generation_ttl_seconds: int) -> None:
        if not keys:
            return
        names = [k for key in keys for k in (self._key(key), self._key(generation_key(key)))]
        try:
            await self._invalidate(keys=names, args=[generation_ttl_seconds])
        except RedisError as exc:
            raise CacheUnavailable(str(exc)) from exc

    async def set_many_if(
        self, items: Sequence[tuple[str, bytes, bytes | None]], ttl_seconds: int
    ) -> None:
        if ttl_seconds <= 0:
            raise ValueError("ttl_seconds must be positive")
        if not items:
            return
        keys = [k for key, _, _ in items for k in (self._key(key), self._key(generation_key(key)))]
        args = [a for _, value, seen in items for a in (value, seen or b"")]
        try:
            await self._set_if(keys=keys, args=[*args, ttl_seconds])
        except RedisError as exc:
            raise CacheUnavailable(str(exc)) from exc

    async def ping(self) -> bool:
        try:
            return bool(await self._redis.ping())
        except RedisError:
            return False

    async def close(self) -> None:
        await self._redis.aclose()


def _unavailable(exc: Exception) -> Exception:
    # Not only connection errors: whatever Redis says, storage still has the answer.
    if isinstance(exc, RedisError):
        error = CacheUnavailable(str(exc))
        error.__cause__ = exc
        return error
    return exc

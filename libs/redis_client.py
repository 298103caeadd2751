"""Build the process's redis.asyncio clients: one pool each, short timeouts, owned and closed.

The bus and the cache each get their own client because they need opposite socket
timeouts: the bus blocks in XREADGROUP/XREAD for a second at a time, so its read timeout
must be longer than that; the cache must fail in well under a request deadline so callers
fall back to storage.
"""

from __future__ import annotations

from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

__all__ = ["connect"]


def connect(
    url: str, *, socket_timeout: float, connect_timeout: float, client_name: str | None = None
) -> Redis:
    """A client that owns its pool: `await client.aclose()` closes every connection, named
    `client_name` in Redis's CLIENT LIST."""
    pool = ConnectionPool.from_url(
        url,
        client_name=client_name,
        socket_timeout=socket_timeout,
        socket_connect_timeout=connect_timeout,
        # One immediate retry covers a pooled connection the server closed meanwhile (a
        # restart, an idle timeout); longer outages are the callers' business, so they fail
        # fast instead of stalling in the client's default exponential retries.
        retry=Retry(NoBackoff(), 1),
        health_check_interval=30,
    )
    return Redis.from_pool(pool)

"""Which handler failures are the infrastructure's, not the message's, and how to wait them out.

A message whose handler failed because the database, the cache or the bus was unreachable is
not poison: counting those failures as delivery attempts sent every event of a short outage
to the dead-letter topic. Consumers retry such failures in place, with a backoff, for as long
as they last; only other exceptions count towards `max_deliveries`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from libs.bus.port import BusUnavailable
from libs.cache.port import CacheUnavailable
from libs.errors import Unavailable

__all__ = ["is_infrastructure", "retry_infrastructure"]

log = logging.getLogger(__name__)

# OSError covers ConnectionError and TimeoutError (asyncio's included). OperationalError is
# the DB-API's "the database's operation failed" (a disconnect, a lock timeout, a failover).
_INFRASTRUCTURE = (
    BusUnavailable,
    CacheUnavailable,
    Unavailable,
    OSError,
    OperationalError,
    PoolTimeout,
)


def is_infrastructure(exc: BaseException) -> bool:
    """True when a handler failed because a dependency is down, not because of its message."""
    if isinstance(exc, _INFRASTRUCTURE):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    # redis-py's connection errors are not OSErrors; matched by name so the embedded mode,
    # which never loads the Redis client, need not import it here.
    return any(
        cls.__module__ == "redis.exceptions" and cls.__name__ in ("ConnectionError", "TimeoutError")
        for cls in type(exc).__mro__
    )


async def retry_infrastructure(
    call: Callable[[], Awaitable[None]],
    what: str,
    first_backoff: float = 0.1,
    max_backoff: float = 5.0,
) -> None:
    """Await `call()`, again and again while it fails for infrastructure reasons.

    Any other exception propagates (it is the message's: it counts as a delivery attempt).
    Cancellation ends the wait: the message stays unacknowledged for redelivery.
    """
    delay = first_backoff
    while True:
        try:
            await call()
            return
        except Exception as exc:
            if not is_infrastructure(exc):
                raise
            log.warning(
                "%s: a dependency is unavailable (%s: %s); retrying in %.1fs "
                "without counting a delivery",
                what,
                type(exc).__name__,
                exc,
                delay,
            )
        await asyncio.sleep(delay)
        delay = min(delay * 2, max_backoff)

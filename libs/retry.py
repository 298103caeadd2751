"""Trying again, one way: waiting out a dependency that is down, re-running a unit of work
that lost a race.

- `Backoff`: the exponential wait (0.1 s doubling to 5 s) of a loop that runs for the life
  of the process and meets an unreachable dependency now and then (bus consumers and tails,
  stream trimming, the outbox relay); reset after each success.
- `retry_transient(call, what)`: await `call()` again, with a Backoff, for as long as it fails
  because a dependency is down (`libs.errors.is_transient`); anything else propagates. A bus
  consumer waits out an outage this way without counting a delivery attempt.
- `retry_conflicts(fn, attempts=...)`: run a unit of work again when it lost a race to a
  concurrent writer (`libs.errors.Conflict`), up to `attempts` runs; the last Conflict
  propagates and the caller decides what it means (profile answers UNAVAILABLE).

Not tenacity: the long-running loops keep one backoff across iterations of their own loop
(reset on success, different handling per exception), which a retry decorator does not model,
and what remains is these few lines.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from libs.errors import Conflict, is_transient

__all__ = ["Backoff", "retry_conflicts", "retry_transient"]

log = logging.getLogger(__name__)

T = TypeVar("T")


class Backoff:
    """Exponential sleep between attempts against an unreachable dependency, reset on success."""

    def __init__(self, first: float = 0.1, cap: float = 5.0) -> None:
        self._first = first
        self._cap = cap
        self._next = first

    @property
    def delay(self) -> float:
        """How long the next `sleep` waits, in seconds."""
        return self._next

    async def sleep(self) -> None:
        await asyncio.sleep(self._next)
        self.advance()

    def advance(self) -> None:
        """Count an attempt without sleeping (for a caller that waits on something else too)."""
        self._next = min(self._next * 2, self._cap)

    def reset(self) -> None:
        self._next = self._first


async def retry_transient(
    call: Callable[[], Awaitable[None]], what: str, first: float = 0.1, cap: float = 5.0
) -> None:
    """Await `call()`, again and again while it fails because a dependency is down.

    Any other exception propagates (for a bus handler, it is the message's: it counts as a
    delivery attempt). Cancellation ends the wait.
    """
    backoff = Backoff(first, cap)
    while True:
        try:
            await call()
            return
        except Exception as exc:
            if not is_transient(exc):
                raise
            log.warning(
                "%s: a dependency is unavailable (%s: %s); retrying in %.1fs "
                "without counting a delivery",
                what,
                type(exc).__name__,
                exc,
                backoff.delay,
            )
        await backoff.sleep()


async def retry_conflicts(
    fn: Callable[[], Awaitable[T]],
    *,
    attempts: int,
    pause: Callable[[int], float] | None = None,
) -> T:
    """`await fn()`, and again each time it raises Conflict, up to `attempts` runs in all.

    `pause(n)` is the wait in seconds after the n-th conflict (none by default); after the
    last run the Conflict propagates.
    """
    attempt = 1
    while True:
        try:
            return await fn()
        except Conflict:
            if attempt >= attempts:
                raise
            log.info("storage conflict, retrying (%d)", attempt)
        if pause is not None:
            await asyncio.sleep(pause(attempt))
        attempt += 1

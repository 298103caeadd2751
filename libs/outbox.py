"""The outbox relay: publishes what units of work committed to the outbox table, in order.

Writes never wait for the bus: an event is durable once its transaction commits, and reaches
the bus when the bus is reachable (after a Redis outage, from where it stopped). Publishing is
at-least-once; consumers drop redeliveries by envelope id. On PostgreSQL several relays (pods)
can run at once: rows are claimed with FOR UPDATE SKIP LOCKED.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from itertools import groupby
from typing import Any

from backcrm.common.v1.common_pb2 import EventEnvelope
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from libs.bus.port import BusUnavailable, EventBus
from libs.cache.port import CacheUnavailable

__all__ = ["OutboxRelay"]

# Called with the customer ids of a batch before it is published (e.g. to evict caches).
BeforePublish = Callable[[Sequence[str]], Awaitable[None]]

log = logging.getLogger(__name__)


class OutboxRelay:
    """Relays one service's outbox table: a mapped class with id, topic, payload, customer_id."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        bus: EventBus,
        table: Any,
        before_publish: BeforePublish | None = None,
        idle_seconds: float = 0.5,
        batch: int = 500,
    ) -> None:
        self._sessions, self._bus, self._table = sessions, bus, table
        self._before_publish = before_publish
        self._idle, self._batch = idle_seconds, batch
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def nudge(self) -> None:
        """Called after a commit that wrote to the outbox: publish now rather than at the poll."""
        self._wake.set()

    def start(self) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name="outbox-relay")

    async def stop(self, timeout: float = 5.0) -> None:
        """Finish the batch under way (what it published is deleted), then stop.

        Rows not yet published stay in the table for the next relay: nothing is lost.
        """
        if self._task is None:
            return
        self._stopping = True
        self._wake.set()
        _, pending = await asyncio.wait({self._task}, timeout=timeout)
        for task in pending:
            # A client library may turn a cancel into a timeout error; the flag ends the loop.
            task.cancel()
            await asyncio.wait({task}, timeout=timeout)
        self._task = None

    async def _run(self) -> None:
        backoff = 0.1
        while not self._stopping:
            try:
                published = await self.drain_once()
                backoff = 0.1
            except (BusUnavailable, CacheUnavailable, OSError) as exc:
                log.warning("outbox: %s; retrying in %.1fs", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            except Exception:
                log.exception("outbox relay failed; retrying")
                await asyncio.sleep(1.0)
                continue
            if published < self._batch and not self._stopping:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._idle)
                self._wake.clear()

    async def drain_once(self) -> int:
        """Publish one batch; returns how many events went out."""
        async with self._sessions() as session:
            table = self._table
            query = select(table).order_by(table.id).limit(self._batch)
            if session.get_bind().dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            rows = (await session.scalars(query)).all()
            if not rows:
                return 0
            if self._before_publish is not None:
                await self._before_publish(sorted({r.customer_id for r in rows}))
            for topic, group in groupby(rows, key=lambda r: r.topic):
                await self._bus.publish(topic, [EventEnvelope.FromString(r.payload) for r in group])
            core = table.__table__  # Core: no ORM bulk-delete bookkeeping
            await session.execute(delete(core).where(core.c.id.in_([r.id for r in rows])))
            await session.commit()
            return len(rows)

"""The outbox relay: publishes what units of work committed to the outbox table, in order.

Writes never wait for the bus: an event is durable once its transaction commits, and reaches
the bus when the bus is reachable (after a Redis outage, from where it stopped). Publishing is
at-least-once; consumers drop redeliveries by envelope id. On PostgreSQL several relays (pods)
can run at once: rows are claimed with FOR UPDATE SKIP LOCKED.

A row is deleted only once the bus no longer needs it: right after publishing on a durable bus
(Redis keeps the message for every consumer group), but on the in-process bus only when every
consumer group of the topic has acknowledged it (`EventBus.unacknowledged`), so a process that
stops before its consumers caught up publishes the rest again on its next start. Rows waiting
for acknowledgements are "in flight": not published twice by this relay, and bounded
(`max_in_flight`), which makes a slow consumer slow the relay down instead of filling memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from itertools import groupby
from typing import Any

from backcrm.common.v1.common_pb2 import EventEnvelope
from sqlalchemy import LargeBinary, String, delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from libs.bus.port import EventBus
from libs.db import BigId
from libs.errors import DependencyUnavailable
from libs.retry import Backoff

__all__ = ["BeforePublish", "OutboxColumns", "OutboxRelay"]

# Called with the customer ids of a batch before it is published (e.g. to evict caches).
BeforePublish = Callable[[Sequence[str]], Awaitable[None]]

log = logging.getLogger(__name__)


class OutboxColumns:
    """The columns of a service's outbox table, which `libs.db.SqlUnitOfWork.write_outbox`
    writes and the relay reads: `class XOutboxRow(OutboxColumns, Base)` with its table name."""

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    topic: Mapped[str] = mapped_column(String(64))
    payload: Mapped[bytes] = mapped_column(LargeBinary)  # a serialized EventEnvelope
    customer_id: Mapped[str] = mapped_column(String(32))  # "" when the event names none


class OutboxRelay:
    """Relays one service's outbox table (an `OutboxColumns` mapped class)."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        bus: EventBus,
        table: Any,
        before_publish: BeforePublish | None = None,
        idle_seconds: float = 0.5,
        batch: int = 500,
        max_in_flight: int = 5_000,
    ) -> None:
        self._sessions, self._bus, self._table = sessions, bus, table
        self._before_publish = before_publish
        self._idle, self._batch = idle_seconds, batch
        self._max_in_flight = max_in_flight
        # row id -> (topic, event id): published to a non-durable bus, not yet acknowledged
        # by every consumer group, so still in the table.
        self._in_flight: dict[int, tuple[str, str]] = {}
        # drain_once is also called from outside the loop (importer, tests): one at a time,
        # or two could publish and delete the same rows.
        self._draining = asyncio.Lock()
        self._wake = asyncio.Event()
        # Cleared by hold(): the relay waits until release() before it publishes anything.
        self._open = asyncio.Event()
        self._open.set()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def nudge(self) -> None:
        """Called after a commit that wrote to the outbox: publish now rather than at the poll."""
        self._wake.set()

    def hold(self) -> None:
        """Publish nothing until release(): lets a process subscribe its consumers first.

        On the in-process bus a consumer group exists only once it subscribed; a message
        published before that would count as delivered to every (no) group.
        """
        self._open.clear()

    def release(self) -> None:
        self._open.set()

    def start(self) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name="outbox-relay")

    async def stop(self, timeout: float = 5.0, drain_seconds: float = 0.0) -> None:
        """Finish the batch under way, then stop.

        Rows in flight are deleted as their consumers acknowledge them, for up to
        `drain_seconds` (keep the consumers running meanwhile); whatever is left, like the
        rows not yet published, stays in the table for the next relay: nothing is lost.
        """
        if self._task is None:
            return
        self._stopping = True
        self._wake.set()
        self._open.set()
        _, pending = await asyncio.wait({self._task}, timeout=timeout)
        for task in pending:
            # A client library may turn a cancel into a timeout error; the flag ends the loop.
            task.cancel()
            await asyncio.wait({task}, timeout=timeout)
        self._task = None
        deadline = time.monotonic() + drain_seconds
        while self._in_flight:
            try:
                await self.drain_once(publish=False)
            except Exception as exc:
                log.warning("outbox: cannot delete acknowledged rows while stopping: %s", exc)
            if not self._in_flight or time.monotonic() >= deadline:
                break
            await asyncio.sleep(min(0.05, self._idle))
        if self._in_flight:
            log.info(
                "outbox: %d published rows not yet acknowledged by every consumer stay in the "
                "table; they are published again on the next start",
                len(self._in_flight),
            )

    async def _run(self) -> None:
        await self._open.wait()
        backoff = Backoff()
        while not self._stopping:
            try:
                published = await self.drain_once()
                backoff.reset()
            except (DependencyUnavailable, OSError) as exc:
                log.warning("outbox: %s; retrying in %.1fs", exc, backoff.delay)
                await backoff.sleep()
                continue
            except Exception:
                log.exception("outbox relay failed; retrying")
                await asyncio.sleep(1.0)
                continue
            if published < self._batch and not self._stopping:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._idle)
                self._wake.clear()

    async def drain_once(self, publish: bool = True) -> int:
        """Publish one batch and delete the rows the bus no longer needs.

        Returns how many events went out (with publish=False: none, only deletes).
        """
        async with self._draining, self._sessions() as session:
            postgresql = session.get_bind().dialect.name == "postgresql"
            if publish and postgresql and self._bus.durable and not self._in_flight:
                return await self._take_and_publish(session)
            table = self._table
            done = self._acknowledged()
            rows: Sequence[Any] = ()
            core = table.__table__  # Core rows: no ORM instances for rows deleted right after
            if publish and len(self._in_flight) < self._max_in_flight:
                query = select(core.c.id, core.c.topic, core.c.payload, core.c.customer_id)
                query = query.order_by(core.c.id).limit(self._batch)
                if self._in_flight:
                    query = query.where(core.c.id.not_in(list(self._in_flight)))
                if postgresql:
                    query = query.with_for_update(skip_locked=True)
                rows = (await session.execute(query)).all()
            published: dict[int, tuple[str, str]] = {}
            if rows:
                if self._before_publish is not None:
                    await self._before_publish(sorted({r.customer_id for r in rows}))
                for topic, grouped in groupby(rows, key=lambda r: r.topic):
                    group = list(grouped)
                    if self._bus.durable:
                        # Deleted once published, nothing to track: the bytes go out as stored
                        # (no parse and re-serialization of every envelope).
                        await self._bus.publish_serialized(topic, [r.payload for r in group])
                        published.update((r.id, (topic, "")) for r in group)
                        continue
                    batch = [(r.id, EventEnvelope.FromString(r.payload)) for r in group]
                    await self._bus.publish(topic, [envelope for _, envelope in batch])
                    published.update((i, (topic, e.event_id)) for i, e in batch)
            waiting = self._unacknowledged(published)
            gone = done + [i for i in published if i not in waiting]
            if gone:
                await session.execute(delete(core).where(core.c.id.in_(gone)))
            await session.commit()
            for row_id in done:
                del self._in_flight[row_id]
            self._in_flight.update((i, published[i]) for i in waiting)
            return len(rows)

    async def _take_and_publish(self, session: AsyncSession) -> int:
        """PostgreSQL and a durable bus: the batch deleted and read back in one statement
        (DELETE … RETURNING), then published, then committed; a failure to publish rolls the
        delete back, so the rows stay for the next attempt, as with the SELECT FOR UPDATE
        and DELETE it replaces — one round trip fewer per batch."""
        core = self._table.__table__
        batch = (
            select(core.c.id)
            .order_by(core.c.id)
            .limit(self._batch)
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
        taken = delete(core).where(core.c.id.in_(batch))
        result = await session.execute(
            taken.returning(core.c.id, core.c.topic, core.c.payload, core.c.customer_id)
        )
        # RETURNING follows no order: publish in the order written (ids)
        rows = sorted(result.all(), key=lambda r: r.id)
        if rows:
            if self._before_publish is not None:
                await self._before_publish(sorted({r.customer_id for r in rows}))
            for topic, group in groupby(rows, key=lambda r: r.topic):
                await self._bus.publish_serialized(topic, [r.payload for r in group])
        await session.commit()
        return len(rows)

    def _acknowledged(self) -> list[int]:
        """In-flight rows every consumer group has acknowledged by now."""
        waiting = self._unacknowledged(self._in_flight)
        return [row_id for row_id in self._in_flight if row_id not in waiting]

    def _unacknowledged(self, rows: dict[int, tuple[str, str]]) -> set[int]:
        if self._bus.durable or not rows:
            return set()
        by_topic: dict[str, list[tuple[int, str]]] = {}
        for row_id, (topic, event_id) in rows.items():
            by_topic.setdefault(topic, []).append((row_id, event_id))
        waiting: set[int] = set()
        for topic, items in by_topic.items():
            needed = self._bus.unacknowledged(topic, [event_id for _, event_id in items])
            waiting.update(row_id for row_id, event_id in items if event_id in needed)
        return waiting

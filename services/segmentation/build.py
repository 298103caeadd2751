"""Set-wise evaluation: a condition is evaluated for every customer at once (one SQL query
over the projection, in the store).

Used to build a segment (BUILDING -> READY, with progress), to preview a condition, and to
reconcile time-dependent segments periodically (customers whose answer changes by time alone
without ever being evaluated incrementally). Builds run in the background, a few at a time
(`BuildQueue`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from libs.cache.port import Cache
from libs.errors import CacheUnavailable
from services.segmentation.conditions import Node, evaluate
from services.segmentation.definitions import CatalogHolder
from services.segmentation.engine import forget_cached
from services.segmentation.ports import SegmentationUnitOfWork
from services.segmentation.records import MembershipChange

__all__ = ["MAX_CONCURRENT_BUILDS", "BuildQueue", "Builder"]

log = logging.getLogger(__name__)
APPLY_CHUNK = 5_000
DUE_CHUNK = 500
SCHEDULE_LIMIT = 20_000
# Builds running at once. Each holds a pooled connection for its set-wise queries: creating
# many segments together must queue their builds, not exhaust the pool (a build that times
# out waiting for a connection fails and leaves its segment BUILDING until a restart).
# The default of `Settings.segment_builds`. Each build is one heavy statement in the database:
# more of them than it has cores contend (50 segments over 1,000,000 customers on 2 cores
# shared with PostgreSQL: 79 s one at a time, 50-52 s two, 65 s three, 61-69 s four).
MAX_CONCURRENT_BUILDS = 2


@dataclass
class Builder:
    store: Callable[[], SegmentationUnitOfWork]
    catalogs: CatalogHolder
    cache: Cache
    clock: Callable[[], float]

    async def _announce_ready(self, segment_id: str, was: str) -> None:
        # In a transaction of its own, not the build's: that one holds the segment's row,
        # which consumers holding the catalogue version may be waiting for (a deadlock).
        # The catalogue version moves, so every process learns the new state.
        if was != "READY":
            async with self.store() as store:
                await self.catalogs.mark_ready(store, segment_id)
                await store.commit()

    async def build(self, segment_id: str, *, announce: bool, reason: str) -> int:
        """Bring a segment's stored members in line with its condition; returns the count.

        `announce` publishes ENTERED/LEFT for the differences (a rebuild after an update, a
        reconciliation); a new segment's first build does not announce its initial members.
        """
        entry = self.catalogs.catalog.entries.get(segment_id)
        if entry is None or entry.record.kind != "BEHAVIORAL":
            return 0
        now = self.clock()
        async with self.store() as store:
            # Whoever reads or writes this segment's memberships while it is BUILDING waits
            # for this transaction (`Engine._hold_builds`): a change or an erasure consumed
            # while the statement below runs corrects its members after it commits.
            await store.lock_segments([segment_id], exclusive=True)
            await store.set_build(segment_id, state=entry.record.state, progress=0.0)
            current = await store.members(segment_id)
            if not announce and not current:
                # A first build: the database fills the members itself, no round trip per row.
                count = await store.insert_matching(segment_id, entry.node, now)
                # exact without counting them again: no one else wrote the segment's rows
                await store.refresh_count(segment_id, count)
                await store.set_build(
                    segment_id, state="READY", progress=1.0, built_at=self.clock()
                )
                await store.commit()
                await self._announce_ready(segment_id, entry.record.state)
                log.info("segment %s built: %d members", segment_id, count)
                if entry.reads.time_dependent:
                    await self._schedule_first_build(segment_id, count)
                return count
            matching = await store.matching(entry.node, now)
            await store.commit()
        changes = [
            MembershipChange(segment_id, c, "ENTERED", now, reason)
            for c in sorted(matching - current)
        ] + [
            MembershipChange(segment_id, c, "LEFT", now, reason) for c in sorted(current - matching)
        ]
        total = max(len(changes), 1)
        for start in range(0, len(changes), APPLY_CHUNK):
            chunk = changes[start : start + APPLY_CHUNK]
            async with self.store() as store:
                # A customer erased since the query ran is neither entered nor announced (its
                # erasure announced its LEFTs); the others cannot be erased until this commits.
                live = await store.projected([c.customer_id for c in chunk])
                await store.apply(
                    [c for c in chunk if c.customer_id in live], publish=announce, tolerant=True
                )
                await store.apply(
                    [c for c in chunk if c.change == "LEFT" and c.customer_id not in live],
                    publish=False,
                )
                await store.set_build(
                    segment_id,
                    state=entry.record.state,
                    progress=min(1.0, (start + len(chunk)) / total),
                )
                await store.commit()
            await self._evict([c.customer_id for c in chunk])
        async with self.store() as store:
            count = await store.refresh_count(segment_id)
            await store.set_build(segment_id, state="READY", progress=1.0, built_at=self.clock())
            await store.commit()
        await self._announce_ready(segment_id, entry.record.state)
        if entry.reads.time_dependent:
            await self._schedule_members(segment_id, sorted(matching))
        log.info("segment %s built: %d members, %d changes", segment_id, count, len(changes))
        return count

    async def _schedule_first_build(self, segment_id: str, count: int) -> None:
        """Due times for a first build's members; beyond SCHEDULE_LIMIT members their ids are
        not even read (the count is known), reconciliation covers them."""
        if count > SCHEDULE_LIMIT:
            self._log_unscheduled(segment_id, count)
            return
        async with self.store() as store:
            members = sorted(await store.members(segment_id))
        await self._schedule_members(segment_id, members)

    @staticmethod
    def _log_unscheduled(segment_id: str, count: int) -> None:
        log.info("segment %s: %d members; time-based exits by reconciliation", segment_id, count)

    async def _schedule_members(self, segment_id: str, members: Sequence[str]) -> None:
        """Members whose answer can flip by time alone get a due time (a window passing).

        Beyond SCHEDULE_LIMIT members this would be a long per-customer pass: such segments
        rely on the periodic set-wise reconciliation instead (and on due times set whenever a
        member's profile changes).
        """
        if len(members) > SCHEDULE_LIMIT:
            self._log_unscheduled(segment_id, len(members))
            return
        catalog = self.catalogs.catalog
        entry = catalog.entries.get(segment_id)
        if entry is None:
            return
        for start in range(0, len(members), DUE_CHUNK):
            chunk = members[start : start + DUE_CHUNK]
            now = self.clock()
            async with self.store() as store:
                await store.lock_customers(chunk)  # no due time outlives an erasure
                facts = await store.load_facts(chunk)
                events = await store.load_events(chunk, catalog.event_cutoffs([segment_id], now))
                memberships = await store.memberships_of_many(chunk) if entry.reads.segments else {}
                due = []
                for customer_id in chunk:
                    customer = facts.get(customer_id)
                    if customer is None:
                        continue
                    verdict = evaluate(
                        entry.node,
                        customer,
                        events.get(customer_id, []),
                        None,
                        now,
                        memberships.get(customer_id, set()).__contains__,
                    )
                    due.append((segment_id, customer_id, verdict.next_change_at))
                await store.schedule(due)
                await store.commit()

    async def reconcile(self) -> int:
        """Rebuild time-dependent segments set-wise, announcing the differences."""
        changed = 0
        for segment_id, entry in list(self.catalogs.catalog.entries.items()):
            if entry.record.state == "READY" and entry.reads.time_dependent:
                changed += await self.build(segment_id, announce=True, reason="time passed")
        return changed

    async def _evict(self, customer_ids: Sequence[str]) -> None:
        try:
            await forget_cached(self.cache, customer_ids)
        except CacheUnavailable:
            log.warning(
                "cache unavailable: %d membership entries stale until TTL", len(customer_ids)
            )

    async def preview(self, node: Node, sample_size: int) -> tuple[int, list[str]]:
        now = self.clock()
        async with self.store() as store:
            count = await store.count_matching(node, now)
            sample = await store.sample_matching(node, now, sample_size) if sample_size else []
        return count, sample


@dataclass
class BuildQueue:
    """The segments being built in the background: at most `slots` (MAX_CONCURRENT_BUILDS by
    default) at once, the others queued; a segment rebuilt or deleted meanwhile cancels its
    build."""

    builder: Builder
    running: dict[str, asyncio.Task[int]] = field(default_factory=dict)
    slots: asyncio.Semaphore = field(
        default_factory=lambda: asyncio.Semaphore(MAX_CONCURRENT_BUILDS)
    )

    def start(self, segment_id: str, *, announce: bool, reason: str) -> None:
        self.cancel(segment_id)
        task = asyncio.create_task(
            self._build(segment_id, announce=announce, reason=reason),
            name=f"build-{segment_id}",
        )
        self.running[segment_id] = task
        task.add_done_callback(lambda t: _log_build(segment_id, t))

    def cancel(self, segment_id: str) -> None:
        task = self.running.pop(segment_id, None)
        if task is not None:
            task.cancel()

    def cancel_all(self) -> None:
        for segment_id in list(self.running):
            self.cancel(segment_id)

    async def _build(self, segment_id: str, *, announce: bool, reason: str) -> int:
        async with self.slots:
            return await self.builder.build(segment_id, announce=announce, reason=reason)


def _log_build(segment_id: str, task: asyncio.Task[int]) -> None:
    if task.cancelled():
        return
    error = task.exception()
    if error is not None:
        log.error("building segment %s failed: %r", segment_id, error)

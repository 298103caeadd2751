"""Keeping memberships current: the per-customer path of "OLAP in reverse".

A profile change re-evaluates only the segments that read what changed (and the segments that
reference those); time-dependent answers are re-evaluated when they can change (the due
queue); every ENTERED/LEFT is stored and published in the same transaction. Replaying a change
is harmless: memberships are diffed against what is stored, so a duplicate delivery emits
nothing.

Changes, erasures and merges of one customer arrive on different topics, in any order. Each
unit of work locks the customers it writes (`lock_customers`) and consults their
tombstones: a change of an erased customer is dropped, a change of a customer merged away is
applied to the customer it was merged into. So erasure wins over any change delivered after
it, and a merge keeps the behaviour of both customers whatever the order of delivery. Changes
hold their customers exclusively, so consumers of one group (several processes) taking
changes of one customer at once apply them one after the other, each seeing what the other
committed: any order of delivery ends in the state of the newest snapshot and all events.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from libs.cache.port import Cache, taken_generations
from libs.errors import CacheUnavailable
from libs.retry import retry_conflicts
from services.segmentation.catalog import Catalog
from services.segmentation.conditions import EventIndex, evaluate
from services.segmentation.definitions import CatalogHolder
from services.segmentation.facts import CustomerFacts, FactEvent
from services.segmentation.ports import SegmentationUnitOfWork
from services.segmentation.records import MembershipChange

__all__ = [
    "FILL_TTL",
    "Engine",
    "ProfileUpdate",
    "cached_memberships",
    "facts_key",
    "forget_cached",
    "memberships_entry",
    "memberships_key",
]

log = logging.getLogger(__name__)
RETRIES = 5
FILL_TTL = 30
# How long an invalidation's generation is kept: far longer than any read-through fill takes
GENERATION_TTL = 600


def memberships_key(customer_id: str) -> str:
    return f"seg:m:{customer_id}"


async def forget_cached(
    cache: Cache, memberships: Iterable[str], facts: Iterable[str] = ()
) -> None:
    """Invalidate the customers' cached memberships and facts (one round trip): the entries
    go and their generations move on, so no fill that read storage before can land after."""
    keys = [memberships_key(c) for c in sorted(set(memberships))]
    keys += [facts_key(c) for c in sorted(set(facts))]
    if keys:
        await cache.invalidate(keys, GENERATION_TTL)


def _customers(changes: Iterable[MembershipChange]) -> set[str]:
    return {c.customer_id for c in changes}


def memberships_entry(catalog_version: int, segments: Iterable[str]) -> bytes:
    """A cached memberships entry, stamped with the catalogue version known before the
    memberships were read (see `cached_memberships`)."""
    return f"{catalog_version}|{','.join(sorted(segments))}".encode()


def cached_memberships(raw: bytes | None, catalog_version: int) -> frozenset[str] | None:
    """The segments of a cached entry, or None (a miss) when it is absent or was read
    before the catalogue version this process knows.

    A first build fills a new segment's members in the database (`INSERT … SELECT`), without
    touching the cached entries of a million customers; it then moves the catalogue version
    (READY). Entries read before that cannot hold the new segment, so they stop counting as
    soon as the process learns the version, instead of living out their TTL.
    """
    if raw is None:
        return None
    stamp, _, segments = raw.decode().partition("|")
    if not stamp.isdigit() or int(stamp) < catalog_version:
        return None
    return frozenset(s for s in segments.split(",") if s)


def facts_key(customer_id: str) -> str:
    """A customer's projected profile, cached for request-time evaluation (EvaluateSegments).

    Evicted when the projection changes; RFM recomputation rewrites every customer's scores
    and leaves these to expire (filled for FILL_TTL), so a request may see scores that old.
    """
    return f"seg:f:v1:{customer_id}"


@dataclass(frozen=True)
class ProfileUpdate:
    """A profile.changed event in segmentation's terms."""

    customer_id: str
    paths: tuple[str, ...]
    event_types: tuple[str, ...]
    facts: CustomerFacts | None
    events: tuple[FactEvent, ...]
    reason: str


def _redirect(update: ProfileUpdate, target: str) -> ProfileUpdate:
    """A change of a customer merged into `target`: its events belong to the target now; its
    snapshot is dropped (the target's own snapshot after the merge includes the source)."""
    return ProfileUpdate(
        customer_id=target,
        paths=(),
        event_types=update.event_types,
        facts=None,
        events=tuple(replace(e, customer_id=target) for e in update.events),
        reason=update.reason,
    )


async def _hold_builds(
    store: SegmentationUnitOfWork, catalog: Catalog, segment_ids: Iterable[str]
) -> None:
    """Wait for the first builds running on these segments (those BUILDING in `catalog`).

    A build inserts the members its statement's snapshot matched and commits them at the
    end; a change, merge or erasure consumed meanwhile could not see them. Holding the
    segments (shared) before reading memberships, it reads them after the build committed
    and corrects them: a customer erased or no longer matching does not stay a member.
    """
    building = [
        s
        for s in segment_ids
        if (entry := catalog.entries.get(s)) is not None and entry.record.state == "BUILDING"
    ]
    await store.lock_segments(building)


@dataclass
class Engine:
    store: Callable[[], SegmentationUnitOfWork]
    # Its catalogue current in a unit of work (reloaded when its version moved) also holds
    # definition changes off until the unit of work ends.
    catalogs: CatalogHolder
    cache: Cache
    clock: Callable[[], float]

    async def on_profile_changes(self, updates: Sequence[ProfileUpdate]) -> list[MembershipChange]:
        """A batch of profile changes in one transaction (a few queries, not a few per change)."""

        touched: set[str] = set()

        async def once() -> list[MembershipChange]:
            async with self.store() as store:
                customers = {u.customer_id for u in updates}
                # Exclusive: two consumers of one group may take changes of one customer at
                # once, and each evaluates what the other writes (a count of events split
                # between them): one waits, then sees the other's rows.
                catalog = await self.catalogs.current_in(store, lock=customers)
                # a statement of its own, after the locks: one statement reads what was
                # committed when it began, and an erasure waited for may commit later
                gone = await store.retired(customers)
                live: list[ProfileUpdate] = []
                for update in updates:
                    if update.customer_id not in gone:
                        live.append(update)
                        continue
                    target = gone[update.customer_id]
                    if target is not None:
                        live.append(_redirect(update, target))
                    # else: the customer was erased; the change must not bring it back
                touched.update(u.customer_id for u in live)
                # a merge's target too, for the changes of its source delivered after the merge
                # (no statement when every customer touched is locked already)
                await store.lock_customers(touched, exclusive=True)
                latest: dict[str, CustomerFacts] = {}
                events: list[FactEvent] = []
                targets: dict[str, set[str]] = {}
                reasons: dict[str, str] = {}
                reads: dict[tuple[tuple[str, ...], tuple[str, ...]], set[str]] = {}
                for update in live:
                    if update.facts is not None:
                        known = latest.get(update.customer_id)
                        if known is None or known.version < update.facts.version:
                            latest[update.customer_id] = update.facts
                    events.extend(update.events)
                    key = (update.paths, update.event_types)
                    affected = reads.get(key)
                    if affected is None:
                        affected = reads[key] = catalog.affected(*key)
                    targets.setdefault(update.customer_id, set()).update(affected)
                    reasons[update.customer_id] = update.reason
                stored = await store.store_changes(list(latest.values()), events)
                changes = await self._evaluate_many(store, catalog, targets, reasons, stored)
                await store.commit()
            return changes

        changes = await retry_conflicts(once, attempts=RETRIES)
        await self._invalidate(_customers(changes), facts=touched)
        return changes

    async def _invalidate(self, memberships: Iterable[str], facts: Iterable[str] = ()) -> None:
        """After a commit, on every write path: a read on any replica that read storage
        before the commit must not cache what it read (it would hide the change, or an
        erasure, for the fill's TTL); the next read fills from storage."""
        try:
            await forget_cached(self.cache, memberships, facts)
        except CacheUnavailable:
            # the relay invalidates the memberships again before it publishes the changes
            log.warning("cache unavailable: cached memberships and facts stale until TTL")

    async def on_profile_deleted(self, customer_id: str) -> list[MembershipChange]:
        """Erase the customer: its tombstone, then every row that names it (the membership
        log included); LEFT is published for the memberships it had."""

        async def once() -> list[MembershipChange]:
            async with self.store() as store:
                # the catalogue before the customers, in the order every unit of work takes
                catalog = await self.catalogs.current_in(store, lock=[customer_id])
                changes = await self._erase(store, catalog, customer_id, self.clock())
                await store.commit()
            return changes

        changes = await retry_conflicts(once, attempts=RETRIES)
        # its memberships are gone whether or not any changed here (a redelivery changes none)
        await self._invalidate([customer_id], facts=[customer_id])
        return changes

    async def _erase(
        self, store: SegmentationUnitOfWork, catalog: Catalog, customer_id: str, now: float
    ) -> list[MembershipChange]:
        await store.retire(customer_id, now, None)
        await _hold_builds(store, catalog, catalog.entries)
        segments = await store.forget_customer(customer_id)
        changes = [
            MembershipChange(s, customer_id, "LEFT", now, "profile deleted") for s in segments
        ]
        await store.apply(changes, log=False)
        await store.erase_log(customer_id)
        await store.bump_counts({s: -1 for s in segments})
        return changes

    async def on_profiles_merged(self, source: str, target: str) -> list[MembershipChange]:
        """The source lives on as the target: its events move there, its memberships end
        (LEFT), the target is evaluated against every segment. Redelivery changes nothing."""
        # whose cached facts go: the target may itself have been merged on, into `final`
        moved: set[str] = set()

        async def once() -> list[MembershipChange]:
            moved.clear()
            async with self.store() as store:
                # the catalogue before the customers, in the order every unit of work takes
                catalog = await self.catalogs.current_in(store, lock=[source, target])
                now = self.clock()
                final = (await store.retired([target])).get(target, target)
                if final is None:
                    # the target was erased before this merge reached us: so is the source
                    changes = await self._erase(store, catalog, source, now)
                elif final == source:
                    changes = []  # a merge back into itself: nothing to move
                else:
                    await store.lock_customers([final], exclusive=True)
                    await _hold_builds(store, catalog, catalog.entries)
                    segments = await store.forget_customer(source, keep_events=True)
                    await store.move_events(source, final)
                    moved.add(final)
                    await store.retire(source, now, final)
                    changes = [
                        MembershipChange(s, source, "LEFT", now, "profile merged") for s in segments
                    ]
                    await store.apply(changes)
                    await store.bump_counts({s: -1 for s in segments})
                    everything = catalog.affected(["*"], [])
                    changes += await self._evaluate_many(
                        store, catalog, {final: everything}, {final: "profile merged"}
                    )
                await store.commit()
            return changes

        changes = await retry_conflicts(once, attempts=RETRIES)
        await self._invalidate({source, *_customers(changes)}, facts={source, target, *moved})
        return changes

    async def run_due(self, limit: int = 500) -> int:
        """Re-evaluate the (segment, customer) pairs whose time has come; returns how many."""

        async def once() -> tuple[int, list[MembershipChange]]:
            async with self.store() as store:
                catalog = await self.catalogs.current_in(store)
                due = await store.due(self.clock(), limit)
                if not due:
                    return 0, []
                by_customer: dict[str, set[str]] = {}
                for segment_id, customer_id in due:
                    by_customer.setdefault(customer_id, set()).add(segment_id)
                changes: list[MembershipChange] = []
                for customer_id, segments in by_customer.items():
                    changes += await self._evaluate(
                        store,
                        catalog,
                        [customer_id],
                        catalog.with_dependents(segments),
                        "time passed",
                    )
                # pairs of deleted segments would come back forever: clear what is left
                gone = [(s, c, None) for s, c in due if s not in catalog.entries]
                await store.schedule(gone)
                await store.commit()
                return len(due), changes

        count, changes = await retry_conflicts(once, attempts=RETRIES)
        await self._invalidate(_customers(changes))
        return count

    async def _evaluate(
        self,
        store: SegmentationUnitOfWork,
        catalog: Catalog,
        customer_ids: Sequence[str],
        segment_ids: Iterable[str],
        reason: str,
    ) -> list[MembershipChange]:
        segments = set(segment_ids)
        return await self._evaluate_many(
            store, catalog, {c: segments for c in customer_ids}, dict.fromkeys(customer_ids, reason)
        )

    async def _evaluate_many(
        self,
        store: SegmentationUnitOfWork,
        catalog: Catalog,
        targets: dict[str, set[str]],
        reasons: dict[str, str],
        known: Mapping[str, CustomerFacts] | None = None,
    ) -> list[MembershipChange]:
        """Evaluate each customer's segments, apply and log the differences, schedule due
        times. `known`: facts as stored now of some of the customers (not read again)."""
        plans: dict[frozenset[str], list[str]] = {}  # customers of a batch share a few sets
        ordered: dict[str, list[str]] = {}
        for customer_id, segments in targets.items():
            key = frozenset(segments)
            plan = plans.get(key)
            if plan is None:
                plan = plans[key] = [
                    s
                    for s in catalog.ordered(catalog.with_dependents(key))
                    if catalog.maintained(s)
                ]
            if plan:
                ordered[customer_id] = plan
        if not ordered:
            return []
        now = self.clock()
        customer_ids = sorted(ordered)
        # Memberships of an erased customer must not be written after its erasure: hold it
        # off (and skip the customers it erased before we got here).
        await store.lock_customers(customer_ids)
        await _hold_builds(store, catalog, {s for plan in ordered.values() for s in plan})
        known = known or {}
        facts = {c: known[c] for c in customer_ids if c in known}
        facts.update(await store.load_facts([c for c in customer_ids if c not in known]))
        cutoffs = catalog.event_cutoffs({s for plan in ordered.values() for s in plan}, now)
        events = await store.load_events(customer_ids, cutoffs)
        # Most due times come out as stored (a window still ends when it ended): only the
        # others are written, instead of an upsert per time-dependent segment and customer.
        current, scheduled = await store.memberships_and_due(
            customer_ids,
            [
                (s, c)
                for c in customer_ids
                for s in ordered[c]
                if catalog.entries[s].reads.time_dependent
            ],
        )
        changes: list[MembershipChange] = []
        due: list[tuple[str, str, float | None]] = []
        deltas: dict[str, int] = {}
        for customer_id in customer_ids:
            member = set(current.get(customer_id, ()))
            customer = facts.get(customer_id)
            reason = reasons.get(customer_id, "")
            indexed = EventIndex(events.get(customer_id, ()))
            for segment_id in ordered[customer_id]:
                entry = catalog.entries[segment_id]
                if customer is None:
                    matched, next_at = False, None
                else:
                    verdict = evaluate(
                        entry.node,
                        customer,
                        indexed,
                        None,
                        now,
                        member.__contains__,
                    )
                    matched, next_at = verdict.matched, verdict.next_change_at
                if (
                    entry.reads.time_dependent
                    and scheduled.get((segment_id, customer_id)) != next_at
                ):
                    due.append((segment_id, customer_id, next_at))
                if matched and segment_id not in member:
                    member.add(segment_id)
                    changes.append(
                        MembershipChange(segment_id, customer_id, "ENTERED", now, reason)
                    )
                    deltas[segment_id] = deltas.get(segment_id, 0) + 1
                elif not matched and segment_id in member:
                    member.discard(segment_id)
                    changes.append(MembershipChange(segment_id, customer_id, "LEFT", now, reason))
                    deltas[segment_id] = deltas.get(segment_id, 0) - 1
        await store.apply(changes)
        await store.bump_counts(deltas)
        await store.schedule(due)
        return changes

    async def memberships(self, customer_id: str) -> list[str]:
        """The behavioural segments the customer is in now (cache, then storage)."""
        key = memberships_key(customer_id)
        version = self.catalogs.version
        try:
            cached = cached_memberships(await self.cache.get(key), version)
        except CacheUnavailable:
            cached = None
        if cached is not None:
            return sorted(cached)
        # before storage is read: a change committed meanwhile moves the generation on, and
        # the fill below is dropped (libs/cache/port.py)
        (generation,) = await taken_generations(self.cache, [key])
        async with self.store() as store:
            stored, _, _ = await store.customer_read(
                customer_id, memberships=True, facts=False, types=(), since=None
            )
        segments = sorted(stored or ())
        with contextlib.suppress(CacheUnavailable):
            await self.cache.set_many_if(
                [(key, memberships_entry(version, segments), generation)], FILL_TTL
            )
        return segments

"""Profile use cases: async functions over the ports (unit of work, cache, clock), and the
rule of who may write which traits.

They never import grpc or generated code: the entrypoint validates requests into the domain
types of `domain.py` (`translate.py`) and renders what comes back (`render.py`).
"""

from __future__ import annotations

import contextlib
import logging
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from libs.auth import ADMIN, Principal
from libs.cache.port import Cache, taken_generations
from libs.errors import (
    CacheUnavailable,
    Conflict,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unavailable,
)
from libs.retry import retry_conflicts
from services.profile.domain import Customer, EventIn, IdentityKey, apply_event, merge_data
from services.profile.identities import STRONG_TYPES
from services.profile.ports import (
    MergeRecord,
    ProfileChanged,
    ProfileDeleted,
    ProfilesMerged,
    ProfileUnitOfWork,
    PurchaseRecord,
    StoredEventRecord,
)

__all__ = [
    "CustomerLookup",
    "ExportCursor",
    "ExportPage",
    "ProfileDeps",
    "Rejection",
    "TrackResult",
    "cache_key",
    "check_trait_namespace",
    "delete_profile",
    "export_profile",
    "get_profile",
    "get_profiles",
    "identity_key",
    "list_purchases",
    "merge_profiles",
    "resolve",
    "set_rfm_scores",
    "set_traits",
    "track_events",
    "upsert_profile",
]

log = logging.getLogger(__name__)
RETRIES = 8


@dataclass(frozen=True)
class CustomerLookup:
    """A CustomerRef in domain form: exactly one of the two is set."""

    customer_id: str | None = None
    identity: IdentityKey | None = None


@dataclass
class ProfileDeps:
    uow: Callable[[], ProfileUnitOfWork]
    cache: Cache
    clock: Callable[[], float]
    cache_ttl: int = 300
    # what GetProfile caches: the rendered response bytes of a customer, as of `now`
    render: Callable[[Customer, list[IdentityKey], float], bytes] | None = None


def cache_key(customer_id: str) -> str:
    return f"profile:v1:{customer_id}"


@dataclass(frozen=True)
class Rejection:
    index: int
    event_id: str
    field: str
    reason: str


@dataclass
class TrackResult:
    accepted: int = 0
    duplicates: int = 0
    rejected: list[Rejection] = field(default_factory=list)
    customer_ids: list[str] = field(default_factory=list)


async def _forget_identities(deps: ProfileDeps, identities: Sequence[IdentityKey]) -> None:
    """Identities that stop naming a customer (erased, or moved by a merge)."""
    if identities:
        try:
            await deps.cache.invalidate([identity_key(k) for k in identities], deps.cache_ttl)
        except CacheUnavailable:
            log.warning("cache unavailable; %d identity entries expire by TTL", len(identities))


async def _invalidate(deps: ProfileDeps, customer_ids: Sequence[str]) -> None:
    # The outbox relay invalidates again when it publishes, so a cache that was down now
    # cannot keep a stale profile once it is back.
    if customer_ids:
        try:
            await deps.cache.invalidate([cache_key(c) for c in customer_ids], deps.cache_ttl)
        except CacheUnavailable:
            log.warning("cache unavailable; %d profiles invalidated later", len(customer_ids))


async def _retrying(fn: Callable[[], Awaitable[Any]]) -> Any:
    """Re-run a unit of work that lost a race on a unique key (e.g. two batches creating the
    same new customer), with jittered backoff; when contention persists, the caller is told
    to retry (UNAVAILABLE), never an internal error."""
    try:
        return await retry_conflicts(fn, attempts=RETRIES, pause=_jitter)
    except Conflict:
        raise Unavailable("contention on the same customers; retry", reason="CONTENTION") from None


def _jitter(attempt: int) -> float:
    # Spread the re-runs of writers that collided, so they do not collide again.
    return random.uniform(0.005, 0.02) * attempt  # noqa: S311


async def _lock(uow: ProfileUnitOfWork, customer_ids: Iterable[str]) -> dict[str, Customer]:
    """Load customers for update (in id order: concurrent writers cannot deadlock). One that
    vanished since it was resolved, deleted or merged by a concurrent call, is a lost race:
    the unit of work re-runs and resolves again (a new customer, the merge target, or NotFound).
    """
    wanted = set(customer_ids)
    customers = await uow.load(wanted, for_update=True)
    if len(customers) < len(wanted):
        raise Conflict("a customer was deleted or merged meanwhile")
    return customers


def _new_customer(now: float) -> Customer:
    return Customer(uuid.uuid4().hex, created_at=now, updated_at=now, data={}, is_new=True)


async def resolve(uow: ProfileUnitOfWork, who: CustomerLookup, field_name: str) -> str:
    """The live customer id of a reference, or NotFound."""
    if who.customer_id is not None:
        live = (await uow.live_ids([who.customer_id])).get(who.customer_id)
        if live is None:
            raise NotFound(f"customer {who.customer_id!r} not found", reason="CUSTOMER_NOT_FOUND")
        return live
    assert who.identity is not None
    owner = (await uow.owners_of([who.identity])).get(who.identity)
    if owner is None:
        raise NotFound(
            f"no customer with {who.identity[0].lower()} {who.identity[1]!r}",
            reason="CUSTOMER_NOT_FOUND",
            metadata={"field": field_name},
        )
    return owner


# ---------------------------------------------------------------- TrackEvents


async def track_events(deps: ProfileDeps, events: Sequence[EventIn | Rejection]) -> TrackResult:
    """Record a batch. Invalid events arrive as Rejections and are reported, not recorded."""
    result: TrackResult = await _retrying(lambda: _track_once(deps, events))
    await _invalidate(deps, sorted({c for c in result.customer_ids if c}))
    return result


async def _track_once(deps: ProfileDeps, items: Sequence[EventIn | Rejection]) -> TrackResult:
    """One attempt at a batch, in one unit of work: dedupe, resolve, stitch, record, fold."""
    now = deps.clock()
    result = TrackResult(customer_ids=[""] * len(items))
    result.rejected = [r for r in items if isinstance(r, Rejection)]
    valid = [(i, e) for i, e in enumerate(items) if isinstance(e, EventIn)]
    async with deps.uow() as uow:
        # One read for both: the ids already stored, and who holds the identities named (those
        # of events found to be duplicates too, which is harmless: they are only looked up).
        known, owners = await uow.known_events_and_owners(
            (e.event_id for _, e in valid), (key for _, e in valid for key in _identities(e))
        )
        fresh = _dedupe(valid, known, result)
        batch = await _resolve_customers(uow, fresh, owners, result, now)
        customers, merged = await _lock_and_stitch(uow, deps, batch, now)
        accepted = await _record(uow, batch.assigned, merged, now, result)
        changed = _fold_and_emit(uow, customers, accepted, now, result)
        await uow.save_and_commit(changed)
    result.accepted = len(accepted)
    result.rejected.sort(key=lambda r: r.index)
    return result


@dataclass
class _Resolved:
    """Where the fresh events of a batch go, and what that takes."""

    # (index in the request, event, customer id), in request order
    assigned: list[tuple[int, EventIn, str]] = field(default_factory=list)
    new: dict[str, Customer] = field(default_factory=dict)  # created for unknown identities
    links: list[tuple[IdentityKey, str]] = field(default_factory=list)  # identities to claim
    # (owner, customer) of identities seen together in one event but held by two customers
    to_merge: list[tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class _Accepted:
    index: int
    event: EventIn
    customer_id: str
    counted: bool  # whether the event's order counts (an order id is counted once)


def _identities(event: EventIn) -> tuple[IdentityKey, ...]:
    """Every identity an event names: its customer's, then those seen with it."""
    return ((event.identity,) if event.identity else ()) + event.identities


def _dedupe(
    valid: Sequence[tuple[int, EventIn]], known: set[str], result: TrackResult
) -> list[tuple[int, EventIn]]:
    """The events to record, each once: ids already stored or repeated in the batch are
    counted as duplicates."""
    fresh: list[tuple[int, EventIn]] = []
    seen: set[str] = set()
    for i, event in valid:
        if event.event_id in known or event.event_id in seen:
            result.duplicates += 1
        else:
            seen.add(event.event_id)
            fresh.append((i, event))
    return fresh


async def _resolve_customers(
    uow: ProfileUnitOfWork,
    fresh: Sequence[tuple[int, EventIn]],
    owners: dict[IdentityKey, str],
    result: TrackResult,
    now: float,
) -> _Resolved:
    """Each event's customer: the live customer of its id (an unknown id is a rejection), the
    owner of one of its identities (`owners`: as read, updated here with the claims), or a new
    customer. Identities nobody holds are claimed for the event's customer; one held by
    another customer makes a pair to stitch."""
    live = await uow.live_ids(e.customer_id for _, e in fresh if e.customer_id)
    batch = _Resolved()
    for i, event in fresh:
        if event.customer_id is not None:
            customer_id = live.get(event.customer_id)
            if customer_id is None:
                result.rejected.append(
                    Rejection(
                        i, event.event_id, f"events[{i}].customer.customer_id", "customer not found"
                    )
                )
                continue
        else:
            customer_id = owners.get(event.identity) if event.identity else None
            customer_id = customer_id or next(
                (owners[k] for k in event.identities if k in owners), None
            )
            if customer_id is None:
                customer = _new_customer(now)
                batch.new[customer.customer_id] = customer
                customer_id = customer.customer_id
        for key in _identities(event):
            owner = owners.get(key)
            if owner is None:
                owners[key] = customer_id
                batch.links.append((key, customer_id))
            elif owner != customer_id and (owner, customer_id) not in batch.to_merge:
                batch.to_merge.append((owner, customer_id))
        batch.assigned.append((i, event, customer_id))
    # A customer first seen through back-dated events (an import) existed since then.
    for _, event, customer_id in batch.assigned:
        if customer_id in batch.new:
            created = batch.new[customer_id]
            created.created_at = min(created.created_at, event.occurred_at)
    return batch


async def _lock_and_stitch(
    uow: ProfileUnitOfWork, deps: ProfileDeps, batch: _Resolved, now: float
) -> tuple[dict[str, Customer], dict[str, str]]:
    """Lock the customers the batch writes to, create the new ones with their identities, and
    stitch each anonymous customer into the known one it was seen with.

    Returns the customers by id, and where each stitched-away customer went.
    """
    # Lock every existing customer this batch writes to, in one sorted sweep, before any
    # row naming them is written: a concurrent delete or merge has either finished (the
    # row is gone, and the unit is re-run on what is there now) or waits for this commit.
    existing = {c for _, _, c in batch.assigned} | {c for pair in batch.to_merge for c in pair}
    customers = await _lock(uow, existing - batch.new.keys())
    customers.update(batch.new)
    # Identities of different customers in one event: stitch an anonymous one (no
    # email, phone, card or external id of its own) into the other. Two known people
    # are never merged implicitly: that takes MergeProfiles.
    held = await uow.identities_of({c for pair in batch.to_merge for c in pair})
    # The new customers exist before anything names them, and each owns the identity it
    # was created for: claiming it fails (and the unit re-runs) if another writer has it.
    await uow.save(batch.new.values())
    await uow.link_identities(batch.links, now)

    def named(customer_id: str) -> bool:  # a known person: email, phone, card or external id
        return any(kind in STRONG_TYPES for kind, _ in held.get(customer_id, []))

    merged: dict[str, str] = {}
    for source, target in batch.to_merge:
        source, target = merged.get(source, source), merged.get(target, target)
        if source == target:
            continue
        if named(source):
            if named(target):
                log.info("not stitching %s into %s: both are known customers", source, target)
                continue
            # The event's own customer is the anonymous one: it joins the known owner.
            source, target = target, source
        if source in batch.new:
            continue
        customers[target] = await _merge_in(
            uow, deps, target, source, "auto", "identities seen together", now, customers
        )
        del customers[source]
        merged.update({c: target for c, t in merged.items() if t == source})
        merged[source] = target
    return customers, merged


async def _record(
    uow: ProfileUnitOfWork,
    assigned: Sequence[tuple[int, EventIn, str]],
    merged: dict[str, str],
    now: float,
    result: TrackResult,
) -> list[_Accepted]:
    """Insert the events and their purchases. An event a concurrent call inserted first is a
    duplicate; an order id already counted is recorded as a purchase but not counted again."""
    stored = [StoredEventRecord(e, merged.get(c, c), now) for _, e, c in assigned]
    inserted = await uow.insert_events(stored)
    kept = [(i, e, merged.get(c, c)) for i, e, c in assigned if e.event_id in inserted]
    result.duplicates += len(assigned) - len(kept)
    orders = [e.order.order_id for _, e, _ in kept if e.order and not e.order.is_return]
    counted = await uow.counted_order_ids(orders)
    purchases: list[PurchaseRecord] = []
    accepted: list[_Accepted] = []
    for i, event, customer_id in kept:
        count_order = True
        if event.order is not None:
            order = event.order
            count_order = order.is_return or order.order_id not in counted
            if not order.is_return:
                counted.add(order.order_id)
            purchases.append(_purchase_record(event, customer_id, count_order))
        accepted.append(_Accepted(i, event, customer_id, count_order))
    await uow.insert_purchases(purchases)
    return accepted


def _fold_and_emit(
    uow: ProfileUnitOfWork,
    customers: dict[str, Customer],
    accepted: Sequence[_Accepted],
    now: float,
    result: TrackResult,
) -> list[Customer]:
    """Fold each event into its customer's profile; one ProfileChanged per changed customer,
    with the snapshot and the events behind it. Returns the changed customers, to save."""
    changes: dict[str, tuple[set[str], list[EventIn], list[str]]] = {}
    for item in accepted:
        paths, applied, types = changes.setdefault(item.customer_id, (set(), [], []))
        paths |= apply_event(customers[item.customer_id], item.event, item.counted)
        applied.append(item.event)
        types.append(item.event.type)
        result.customer_ids[item.index] = item.customer_id
    for customer_id, (paths, applied, types) in changes.items():
        customer = customers[customer_id]
        customer.version += 1
        customer.updated_at = now
        uow.emit(
            ProfileChanged(
                customer_id,
                customer.version,
                tuple(sorted(paths)),
                now,
                customer,
                event_ids=tuple(e.event_id for e in applied),
                event_types=tuple(dict.fromkeys(types)),
                events=tuple(applied),
            )
        )
    return [customers[c] for c in changes]


def _purchase_record(event: EventIn, customer_id: str, counted: bool) -> PurchaseRecord:
    assert event.order is not None
    order = event.order
    return PurchaseRecord(
        event_id=event.event_id,
        customer_id=customer_id,
        order_id=order.order_id,
        placed_at=order.placed_at,
        is_return=order.is_return,
        counted=counted,
        total_micros=order.total_micros,
        currency=order.currency,
        channel=event.channel,
        lines=[
            [line.sku, line.category, line.quantity, line.unit_price_micros, line.currency]
            for line in order.lines
        ],
    )


# ---------------------------------------------------------------- reads


async def get_profiles(
    deps: ProfileDeps, lookups: Sequence[CustomerLookup], field_name: str = "customer"
) -> list[bytes | None]:
    """Rendered profiles, None for customers not found.

    A warm read touches only the cache (identity -> id, id -> rendered profile); storage is
    read for what the cache does not hold, and what it reads is cached.
    """
    assert deps.render is not None
    idn = [identity_key(lk.identity) for lk in lookups if lk.identity is not None]
    known = dict(zip(idn, await _cached(deps, idn), strict=True))
    ids: list[str | None] = [
        lk.customer_id
        if lk.customer_id is not None
        else _text(known.get(identity_key(lk.identity)))  # type: ignore[arg-type]
        for lk in lookups
    ]
    wanted = list(dict.fromkeys(c for c in ids if c))
    found = {
        c: v
        for c, v in zip(wanted, await _cached(deps, [cache_key(c) for c in wanted]), strict=True)
        if v
    }
    unresolved = [i for i, c in enumerate(ids) if c is None or c not in found]
    if not unresolved:
        return [found[c] for c in ids]  # type: ignore[index]
    # What is read from storage is cached only if no write invalidated it meanwhile: the
    # generations are taken before the reads (libs/cache/port.py), and a fill that took
    # longer than half their lifetime is dropped (a lapsed generation would let it in).
    started = time.monotonic()
    fills: list[tuple[str, bytes, bytes | None]] = []
    taken = dict(zip(idn, await taken_generations(deps.cache, idn), strict=True))
    async with deps.uow() as uow:
        for i in unresolved:
            try:
                ids[i] = await resolve(uow, lookups[i], field_name)
            except NotFound:
                ids[i] = None
                continue
            identity = lookups[i].identity
            if identity is not None:
                key = identity_key(identity)
                fills.append((key, ids[i].encode(), taken[key]))  # type: ignore[union-attr]
        missing = sorted({c for c in ids if c and c not in found})
        if missing:
            keys = [cache_key(c) for c in missing]
            taken.update(zip(keys, await taken_generations(deps.cache, keys), strict=True))
            now = deps.clock()
            customers = await uow.load(missing, for_update=False)
            identities = await uow.identities_of(customers)
            fresh = {c: deps.render(customers[c], identities.get(c, []), now) for c in customers}
            found.update(fresh)
            fills += [(cache_key(c), v, taken[cache_key(c)]) for c, v in fresh.items()]
    if time.monotonic() - started < deps.cache_ttl / 2:
        with contextlib.suppress(CacheUnavailable):
            await deps.cache.set_many_if(fills, deps.cache_ttl)
    return [found.get(c) if c else None for c in ids]


def identity_key(identity: IdentityKey) -> str:
    return f"profile:idn:v1:{identity[0]}:{identity[1]}"


def _text(value: bytes | None) -> str | None:
    return value.decode() if value is not None else None


async def _cached(deps: ProfileDeps, keys: Sequence[str]) -> list[bytes | None]:
    if not keys:
        return []
    try:
        return await deps.cache.get_many(keys)
    except CacheUnavailable:
        return [None] * len(keys)


async def get_profile(deps: ProfileDeps, lookup: CustomerLookup) -> bytes:
    rendered = (await get_profiles(deps, [lookup]))[0]
    if rendered is None:
        async with deps.uow() as uow:
            await resolve(uow, lookup, "customer")  # raises the precise NotFound
        raise NotFound("customer not found", reason="CUSTOMER_NOT_FOUND")
    return rendered


async def list_purchases(
    deps: ProfileDeps, lookup: CustomerLookup, after: tuple[float, str] | None, limit: int
) -> tuple[list[PurchaseRecord], bool]:
    async with deps.uow() as uow:
        customer_id = await resolve(uow, lookup, "customer")
        rows = await uow.list_purchases(customer_id, after, limit + 1)
    return rows[:limit], len(rows) > limit


@dataclass(frozen=True)
class ExportCursor:
    """Where an export page ended: the customer it is of, the part (events, oldest first, then
    purchases, newest first) and the (time, event id) of the last row sent, None at a part's start.
    """

    customer_id: str
    part: str  # "events" | "purchases"
    after: tuple[float, str] | None


@dataclass
class ExportPage:
    customer_id: str
    # the first page only: the profile, its identities and the merge records
    customer: Customer | None
    identities: list[IdentityKey]
    merges: list[MergeRecord]
    events: list[StoredEventRecord]
    purchases: list[PurchaseRecord]
    more: bool  # rows past these exist


async def export_profile(
    deps: ProfileDeps,
    lookup: CustomerLookup,
    cursor: ExportCursor | None = None,
    limit: int = 1000,
) -> ExportPage:
    """One page of a customer's export: up to `limit` events then purchases after `cursor`."""
    async with deps.uow() as uow:
        customer_id = await resolve(uow, lookup, "customer")
        page = ExportPage(customer_id, None, [], [], [], [], more=False)
        if cursor is None:
            customer = (await uow.load([customer_id], for_update=False)).get(customer_id)
            if customer is None:  # erased or merged since resolved: as if it had not been
                raise NotFound("customer not found", reason="CUSTOMER_NOT_FOUND")
            page.customer = customer
            page.identities = (await uow.identities_of([customer_id])).get(customer_id, [])
            page.merges = await uow.merges_of(customer_id)
            cursor = ExportCursor(customer_id, "events", None)
        elif cursor.customer_id != customer_id:
            # Merged into another customer since the export began: its pages would mix two
            # histories at an arbitrary point.
            raise InvalidArgument(
                "page_token", "was issued for another customer; start the export again"
            )
        if cursor.part == "events":
            page.events = await uow.list_events(customer_id, cursor.after, limit + 1)
            if len(page.events) > limit:
                del page.events[limit:]
                page.more = True
                return page
            cursor = ExportCursor(customer_id, "purchases", None)
        room = limit - len(page.events)
        # One row more than there is room for tells whether another page follows.
        page.purchases = await uow.list_purchases(customer_id, cursor.after, room + 1)
        page.more = len(page.purchases) > room
        del page.purchases[room:]
    return page


# ---------------------------------------------------------------- writes


def check_trait_namespace(writer: Principal, namespace: str) -> None:
    """A caller writes traits in the namespace of its own name (the bonus service writes
    `bonus.*`), unless it is an admin."""
    if ADMIN not in writer.scopes and writer.name != namespace:
        raise PermissionDenied(
            f"{writer.name!r} may only write traits in namespace {writer.name!r}",
            reason="FOREIGN_NAMESPACE",
        )


async def _change(
    deps: ProfileDeps,
    lookup: CustomerLookup,
    mutate: Callable[[Customer, float], set[str]],
    create: bool = False,
) -> tuple[Customer, bool]:
    """Load one customer for update (or create it for a new identity), mutate, emit, commit."""

    async def once() -> tuple[Customer, bool]:
        now = deps.clock()
        created = False
        async with deps.uow() as uow:
            try:
                customer_id = await resolve(uow, lookup, "customer")
            except NotFound:
                if not create or lookup.identity is None:
                    raise
                customer, created = _new_customer(now), True
                await uow.save([customer])
                await uow.link_identities([(lookup.identity, customer.customer_id)], now)
            else:
                customer = (await _lock(uow, [customer_id]))[customer_id]
            paths = mutate(customer, now)
            if paths or created:
                customer.version += 1
                customer.updated_at = now
                await uow.save([customer])
                uow.emit(
                    ProfileChanged(
                        customer.customer_id, customer.version, tuple(sorted(paths)), now, customer
                    )
                )
                await uow.commit()
        return customer, created

    customer, created = await _retrying(once)
    await _invalidate(deps, [customer.customer_id])
    return customer, created


async def upsert_profile(
    deps: ProfileDeps,
    lookup: CustomerLookup,
    attributes: dict[str, str],
    consents: dict[str, dict[str, Any]],
) -> tuple[Customer, bool]:
    """Set the given attributes ("" clears one) and consents (channel -> state)."""

    def mutate(customer: Customer, now: float) -> set[str]:
        paths: set[str] = set()
        current = customer.data.setdefault("attributes", {})
        for name, value in attributes.items():
            if current.get(name, "") != value:
                paths.add(f"attributes.{name}")
                if value:
                    current[name] = value
                else:
                    current.pop(name, None)
        held = customer.data.setdefault("consents", {})
        for channel, consent in consents.items():
            if held.get(channel, {}).get("state") != consent["state"]:
                held[channel] = {"state": consent["state"], "updated_at": now}
                paths.add(f"consents.{channel}")
        return paths

    return await _change(deps, lookup, mutate, create=True)


async def set_traits(
    deps: ProfileDeps, lookup: CustomerLookup, namespace: str, traits: dict[str, Any]
) -> Customer:
    """Write traits under "<namespace>."; a None value removes the trait."""

    def mutate(customer: Customer, _now: float) -> set[str]:
        held = customer.data.setdefault("traits", {})
        paths = set()
        for key, value in traits.items():
            name = f"{namespace}.{key}"
            if value is None:
                if held.pop(name, None) is not None:
                    paths.add(f"traits.{name}")
            elif held.get(name) != value:
                held[name] = value
                paths.add(f"traits.{name}")
        return paths

    customer, _ = await _change(deps, lookup, mutate)
    return customer


async def _merge_in(
    uow: ProfileUnitOfWork,
    deps: ProfileDeps,
    target_id: str,
    source_id: str,
    actor: str,
    reason: str,
    now: float,
    pending: dict[str, Customer] | None = None,
) -> Customer:
    loaded = await _lock(uow, {target_id, source_id} - (pending or {}).keys())
    if pending:
        loaded.update({k: v for k, v in pending.items() if k in (target_id, source_id)})
    target, source = loaded[target_id], loaded[source_id]
    moved = (await uow.identities_of([source_id])).get(source_id, [])
    merge_data(target.data, source.data)
    target.created_at = min(target.created_at, source.created_at)
    await uow.move_history(source_id, target_id)
    # delete_customer also erases the merge records naming the source, among them those of
    # ids merged into it earlier: keep them, pointing at the target, or those ids dangle.
    earlier = [m for m in await uow.merges_of(source_id) if m.target_customer_id == source_id]
    await uow.delete_customer(source_id)
    for record in earlier:
        await uow.record_merge(replace(record, target_customer_id=target_id))
    await uow.record_merge(MergeRecord(source_id, target_id, actor, reason, now))
    target.version += 1
    target.updated_at = now
    await uow.save([target])
    uow.emit(ProfilesMerged(source_id, target_id, now))
    uow.emit(ProfileChanged(target_id, target.version, ("*",), now, target))
    await _invalidate(deps, [source_id])
    await _forget_identities(deps, moved)
    return target


async def merge_profiles(
    deps: ProfileDeps, target: CustomerLookup, source: CustomerLookup, actor: str, reason: str
) -> tuple[Customer, str]:
    async def once() -> tuple[Customer, str]:
        async with deps.uow() as uow:
            target_id = await resolve(uow, target, "target")
            source_id = await resolve(uow, source, "source")
            if target_id == source_id:
                raise InvalidArgument("source", "names the same customer as target")
            customer = await _merge_in(uow, deps, target_id, source_id, actor, reason, deps.clock())
            await uow.commit()
        return customer, source_id

    customer, source_id = await _retrying(once)
    await _invalidate(deps, [customer.customer_id, source_id])
    return customer, source_id


async def delete_profile(deps: ProfileDeps, lookup: CustomerLookup) -> str:
    async def once() -> tuple[str, list[IdentityKey], list[str]]:
        async with deps.uow() as uow:
            customer_id = await resolve(uow, lookup, "customer")
            # Locked first: a TrackEvents writing to this customer finishes before the erasure
            # reads what to erase, or finds the customer gone and starts afresh.
            await _lock(uow, [customer_id])
            identities = (await uow.identities_of([customer_id])).get(customer_id, [])
            merged_ids = [m.source_customer_id for m in await uow.merges_of(customer_id)]
            await uow.delete_customer(customer_id)
            uow.emit(ProfileDeleted(customer_id, deps.clock()))
            await uow.commit()
        return customer_id, identities, merged_ids

    erased: tuple[str, list[IdentityKey], list[str]] = await _retrying(once)
    customer_id, identities, merged_ids = erased
    await _invalidate(deps, [customer_id, *merged_ids])
    await _forget_identities(deps, identities)
    return customer_id


async def set_rfm_scores(
    deps: ProfileDeps, scores: Sequence[tuple[str, int, int, int]], run: int = 0
) -> int:
    """Store RFM scores computed by segmentation (customer, R, F, M) in its recomputation `run`;
    returns how many changed. Scores of an earlier run than one already applied are dropped:
    the bus may deliver two recomputations' events out of order (two consumers, a reclaimed
    delivery), and each run scores every buyer, so the later run has the current scores."""

    async def once() -> list[str]:
        now = deps.clock()
        async with deps.uow() as uow:
            if not await uow.claim_rfm_run(run):
                return []
            live = await uow.live_ids(c for c, _, _, _ in scores)
            customers = await uow.load(set(live.values()), for_update=True)
            changed: list[Customer] = []
            for customer_id, r, f, m in scores:
                customer = customers.get(live.get(customer_id, ""))
                if customer is None:
                    continue  # deleted meanwhile
                new = {"r": r, "f": f, "m": m}
                if customer.data.get("rfm_scores") != new:
                    customer.data["rfm_scores"] = new
                    customer.version += 1
                    customer.updated_at = now
                    changed.append(customer)
                    uow.emit(
                        ProfileChanged(
                            customer.customer_id,
                            customer.version,
                            ("rfm.frequency_score", "rfm.monetary_score", "rfm.recency_score"),
                            now,
                            customer,
                        )
                    )
            await uow.save(changed)
            await uow.commit()
        return [c.customer_id for c in changed]

    changed: list[str] = await _retrying(once)
    await _invalidate(deps, changed)
    return len(changed)

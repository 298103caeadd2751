"""In-memory adapters of the profile ports, for unit tests: no I/O, microseconds per call.

`FakeProfileUnitOfWork` has the semantics of `services.profile.repository.SqlProfileUnitOfWork`:
each unit of work works on a private copy of the shared `FakeProfileStore`, which replaces
the store's state only on commit (with the emitted domain events appended to `published`,
the outbox); leaving the unit without committing discards everything. Unique keys behave
as the tables' primary keys do: a duplicate insert raises `libs.errors.Conflict`.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from libs.cache.port import Cache, generation_key
from libs.errors import CacheUnavailable, Conflict
from services.profile.domain import Customer, IdentityKey
from services.profile.ports import (
    DomainEvent,
    MergeRecord,
    ProfileUnitOfWork,
    PurchaseRecord,
    StoredEventRecord,
)

__all__ = ["FakeCache", "FakeClock", "FakeProfileStore", "FakeProfileUnitOfWork"]


@dataclass
class _Identity:
    customer_id: str
    created_at: float


@dataclass
class _State:
    customers: dict[str, Customer] = field(default_factory=dict)
    identities: dict[IdentityKey, _Identity] = field(default_factory=dict)
    events: dict[str, StoredEventRecord] = field(default_factory=dict)
    purchases: dict[str, PurchaseRecord] = field(default_factory=dict)
    merges: dict[str, MergeRecord] = field(default_factory=dict)  # by source customer id
    rfm_run: int = 0


@dataclass
class FakeProfileStore:
    """The committed state every unit of work of a test shares."""

    state: _State = field(default_factory=_State)
    published: list[DomainEvent] = field(default_factory=list)
    # e.g. services.profile.events.encode_domain_event: commit fails if an event cannot be
    # encoded for the outbox, as SqlProfileUnitOfWork.commit does
    encode: Callable[[DomainEvent], tuple[str, bytes]] | None = None
    commits: int = 0
    # the next N commits fail as if a concurrent writer took a unique key first
    conflicts: int = 0

    @property
    def customers(self) -> dict[str, Customer]:
        return self.state.customers

    @property
    def identities(self) -> dict[IdentityKey, str]:
        return {k: v.customer_id for k, v in self.state.identities.items()}

    @property
    def events(self) -> dict[str, StoredEventRecord]:
        return self.state.events

    @property
    def purchases(self) -> dict[str, PurchaseRecord]:
        return self.state.purchases

    @property
    def merges(self) -> dict[str, MergeRecord]:
        return self.state.merges


class FakeProfileUnitOfWork(ProfileUnitOfWork):
    def __init__(self, store: FakeProfileStore) -> None:
        super().__init__()
        self.store = store
        self._work: _State | None = None

    async def __aenter__(self) -> FakeProfileUnitOfWork:
        await super().__aenter__()
        self._work = copy.deepcopy(self.store.state)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await super().__aexit__(*exc)
        self._work = None

    @property
    def w(self) -> _State:
        assert self._work is not None, "use the unit of work as an async context manager"
        return self._work

    async def commit(self) -> None:
        work = self.w
        if self.store.conflicts:
            self.store.conflicts -= 1
            raise Conflict("simulated concurrent writer")
        if self.store.encode is not None:
            for event in self.emitted:
                self.store.encode(event)
        self.store.state = work
        self.store.published.extend(self.emitted)
        self.store.commits += 1
        self.emitted = []
        # The unit of work stays usable after a commit, in a new transaction.
        self._work = copy.deepcopy(work)

    async def rollback(self) -> None:
        if self._work is not None:
            self._work = copy.deepcopy(self.store.state)
        self.emitted = []

    # identities and ids

    async def owners_of(self, keys: Iterable[IdentityKey]) -> dict[IdentityKey, str]:
        ids = self.w.identities
        return {k: ids[k].customer_id for k in dict.fromkeys(keys) if k in ids}

    async def live_ids(self, customer_ids: Iterable[str]) -> dict[str, str]:
        live: dict[str, str] = {}
        for c in dict.fromkeys(customer_ids):
            if c in self.w.customers:
                live[c] = c
            elif c in self.w.merges:
                live[c] = self.w.merges[c].target_customer_id
        return live

    async def identities_of(self, customer_ids: Iterable[str]) -> dict[str, list[IdentityKey]]:
        wanted = set(customer_ids)
        rows = sorted(
            ((row.created_at, key, row.customer_id) for key, row in self.w.identities.items()),
            key=lambda r: (r[0], r[1]),
        )
        out: dict[str, list[IdentityKey]] = {}
        for _, key, customer_id in rows:
            if customer_id in wanted:
                out.setdefault(customer_id, []).append(key)
        return out

    async def link_identities(self, links: Sequence[tuple[IdentityKey, str]], at: float) -> None:
        # INSERT … ON CONFLICT DO NOTHING RETURNING: a key owned already is a lost race.
        for key, customer_id in dict(links).items():
            if key in self.w.identities:
                raise Conflict(f"identity {key} is owned already")
            if customer_id not in self.w.customers:
                raise Conflict(f"customer {customer_id} does not exist (foreign key)")
            self.w.identities[key] = _Identity(customer_id, at)

    # customers

    async def load(self, customer_ids: Iterable[str], for_update: bool) -> dict[str, Customer]:
        return {
            c: copy.deepcopy(self.w.customers[c])
            for c in sorted(set(customer_ids))
            if c in self.w.customers
        }

    async def save(self, customers: Iterable[Customer]) -> None:
        customers = list(customers)
        for c in customers:
            row = copy.deepcopy(c)
            row.is_new = False
            if c.is_new:
                if c.customer_id in self.w.customers:
                    raise Conflict(f"customer {c.customer_id} exists")
            elif c.customer_id not in self.w.customers:
                raise LookupError(f"update of customer {c.customer_id}, which is not stored")
            self.w.customers[c.customer_id] = row
        for c in customers:
            c.is_new = False

    async def delete_customer(self, customer_id: str) -> None:
        w = self.w
        w.identities = {k: v for k, v in w.identities.items() if v.customer_id != customer_id}
        w.events = {k: v for k, v in w.events.items() if v.customer_id != customer_id}
        w.purchases = {k: v for k, v in w.purchases.items() if v.customer_id != customer_id}
        w.customers.pop(customer_id, None)
        w.merges = {
            k: m
            for k, m in w.merges.items()
            if customer_id not in (m.source_customer_id, m.target_customer_id)
        }

    # events and purchases

    async def known_event_ids(self, event_ids: Iterable[str]) -> set[str]:
        return {e for e in event_ids if e in self.w.events}

    async def insert_events(self, events: Sequence[StoredEventRecord]) -> set[str]:
        inserted: set[str] = set()
        for record in events:  # ON CONFLICT (event_id) DO NOTHING RETURNING event_id
            event_id = record.event.event_id
            if event_id not in self.w.events:
                self.w.events[event_id] = record
                inserted.add(event_id)
        return inserted

    async def counted_order_ids(self, order_ids: Iterable[str]) -> set[str]:
        wanted = set(order_ids)
        return {
            p.order_id
            for p in self.w.purchases.values()
            if p.order_id in wanted and p.counted and not p.is_return
        }

    async def insert_purchases(self, purchases: Sequence[PurchaseRecord]) -> None:
        ids = [p.event_id for p in purchases]
        if len(set(ids)) != len(ids) or any(i in self.w.purchases for i in ids):
            raise Conflict("duplicate purchase event id")
        for p in purchases:
            self.w.purchases[p.event_id] = copy.deepcopy(p)

    async def list_purchases(
        self, customer_id: str, after: tuple[float, str] | None, limit: int
    ) -> list[PurchaseRecord]:
        rows = [p for p in self.w.purchases.values() if p.customer_id == customer_id]
        if after is not None:
            rows = [p for p in rows if (p.placed_at, p.event_id) < after]
        rows.sort(key=lambda p: (p.placed_at, p.event_id), reverse=True)
        return copy.deepcopy(rows[:limit])

    async def list_events(
        self, customer_id: str, after: tuple[float, str] | None, limit: int
    ) -> list[StoredEventRecord]:
        rows = [r for r in self.w.events.values() if r.customer_id == customer_id]
        if after is not None:
            rows = [r for r in rows if (r.event.occurred_at, r.event.event_id) > after]
        rows.sort(key=lambda r: (r.event.occurred_at, r.event.event_id))
        rows = rows[:limit]
        # As SqlProfileUnitOfWork reads them back: the event names the customer that holds it.
        return [
            dataclasses.replace(r, event=dataclasses.replace(r.event, customer_id=r.customer_id))
            for r in rows
        ]

    async def move_history(self, source_id: str, target_id: str) -> None:
        w = self.w
        for row in w.identities.values():
            if row.customer_id == source_id:
                row.customer_id = target_id
        w.events = {
            k: dataclasses.replace(v, customer_id=target_id) if v.customer_id == source_id else v
            for k, v in w.events.items()
        }
        w.purchases = {
            k: dataclasses.replace(v, customer_id=target_id) if v.customer_id == source_id else v
            for k, v in w.purchases.items()
        }

    async def record_merge(self, record: MergeRecord) -> None:
        for m in self.w.merges.values():
            if m.target_customer_id == record.source_customer_id:
                m.target_customer_id = record.target_customer_id
        if record.source_customer_id in self.w.merges:
            raise Conflict(f"{record.source_customer_id} was merged already")
        self.w.merges[record.source_customer_id] = copy.copy(record)

    async def claim_rfm_run(self, run: int) -> bool:
        if run < self.w.rfm_run:
            return False
        self.w.rfm_run = run
        return True

    async def merges_of(self, customer_id: str) -> list[MergeRecord]:
        rows = [
            copy.copy(m)
            for m in self.w.merges.values()
            if customer_id in (m.source_customer_id, m.target_customer_id)
        ]
        return sorted(rows, key=lambda m: m.merged_at)


class FakeCache(Cache):
    """A dict; with `down` set every call raises CacheUnavailable, as an unreachable Redis."""

    def __init__(self, down: bool = False) -> None:
        self.down = down
        self.entries: dict[str, bytes] = {}
        self.ttls: dict[str, int] = {}
        self.deleted: list[str] = []

    def _check(self) -> None:
        if self.down:
            raise CacheUnavailable("fake cache is down")

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        self._check()
        return [self.entries.get(k) for k in keys]

    async def set_many(self, items: Sequence[tuple[str, bytes]], ttl_seconds: int) -> None:
        self._check()
        for key, value in items:
            self.entries[key] = value
            self.ttls[key] = ttl_seconds

    async def delete(self, keys: Sequence[str]) -> None:
        self._check()
        self.deleted.extend(keys)
        for key in keys:
            self.entries.pop(key, None)
            self.ttls.pop(key, None)

    async def invalidate(self, keys: Sequence[str], generation_ttl_seconds: int) -> None:
        self._check()
        await self.delete(keys)
        for key in keys:
            generation = generation_key(key)
            self.entries[generation] = b"%d" % (int(self.entries.get(generation, b"0")) + 1)
            self.ttls[generation] = generation_ttl_seconds

    async def set_many_if(
        self, items: Sequence[tuple[str, bytes, bytes | None]], ttl_seconds: int
    ) -> None:
        self._check()
        for key, value, seen in items:
            if self.entries.get(generation_key(key)) == seen:
                self.entries[key] = value
                self.ttls[key] = ttl_seconds

    async def ping(self) -> bool:
        return not self.down

    async def close(self) -> None:
        pass


@dataclass
class FakeClock:
    """A settable clock: `clock()` is `clock.now`."""

    now: float = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now

    def set(self, value: float) -> None:
        self.now = value

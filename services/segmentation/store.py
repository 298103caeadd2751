"""SQLAlchemy storage of segmentation: projection, segments, memberships, due queue, log.

One `SegStore` is one transaction (a `libs.db.SqlUnitOfWork`, which owns the session, the
conflicts and the outbox); membership changes are written to the log and the outbox in the
same transaction as the memberships themselves.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Self, cast

from sqlalchemy import (
    Float,
    String,
    Table,
    and_,
    bindparam,
    delete,
    func,
    literal,
    null,
    or_,
    select,
    text,
    tuple_,
    union_all,
    update,
)
from sqlalchemy import (
    cast as sql_cast,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.sql import ColumnElement

from libs.db import SqlUnitOfWork, among, chunks, outbox_from_arrays, pairs_among
from services.segmentation.conditions import Node, to_sql
from services.segmentation.facts import CustomerFacts, FactEvent
from services.segmentation.models import (
    CatalogRow,
    DueRow,
    MembershipLogRow,
    MembershipRow,
    RfmRunRow,
    SegEventRow,
    SegmentRow,
    SegOutboxRow,
    SegProfileRow,
    TombstoneRow,
)
from services.segmentation.ports import SegmentationUnitOfWork
from services.segmentation.records import MembershipChange, SegmentRecord

__all__ = ["SegStore", "follow_tombstones", "sql_of"]

PROFILE_COLUMNS = (
    "version",
    "created_at",
    "last_activity_at",
    "orders",
    "returns",
    "revenue",
    "first_purchase_at",
    "last_purchase_at",
    "engagement_score",
    "recency_score",
    "frequency_score",
    "monetary_score",
)


KEEP_ON_UPDATE = frozenset({"customer_id", "recency_score", "frequency_score", "monetary_score"})
# PostgreSQL advisory locks of segmentation's customers live under this first key, those of
# its segments (held by a first build, see `lock_segments`) under the second.
CUSTOMER_LOCKS = 0x5E6
SEGMENT_LOCKS = 0x5E7
MAX_HOPS = 16  # merges chained through one customer id
# One statement per unit of work, locks taken in key order (the sort runs before the volatile
# lock function is evaluated).
_LOCK = {
    True: text(
        "SELECT pg_advisory_xact_lock(:space, k)"
        " FROM unnest(CAST(:keys AS integer[])) AS k ORDER BY k"
    ),
    False: text(
        "SELECT pg_advisory_xact_lock_shared(:space, k)"
        " FROM unnest(CAST(:keys AS integer[])) AS k ORDER BY k"
    ),
}


# `catalog_version(hold=True)` and the exclusive `lock_customers` after it in one statement
# (one round trip per batch of changes): the catalogue row is held first (FOR SHARE, which
# returns its newest version even after waiting for a definition change), then the correlated
# subquery, evaluated for that row, takes the customers' locks in key order.
_VERSION_AND_LOCK = text(
    "SELECT c.version, (SELECT count(*) FROM"
    " (SELECT pg_advisory_xact_lock(:space, k) FROM unnest(CAST(:keys AS integer[])) AS k"
    " WHERE c.version IS NOT NULL ORDER BY k) AS locked)"
    " FROM (SELECT version FROM seg_catalog WHERE id = 1 FOR SHARE) AS c"
)


def follow_tombstones(
    customer_ids: Iterable[str], tombstones: dict[str, str | None]
) -> dict[str, str | None]:
    """Where each retired customer lives on: the end of its chain of merges (at most
    MAX_HOPS), or None when erased; customers with no tombstone are left out."""
    out: dict[str, str | None] = {}
    for customer_id in set(customer_ids) & tombstones.keys():
        current: str | None = customer_id
        for _ in range(MAX_HOPS):
            if current is None or current not in tombstones:
                break
            current = tombstones[current]
        out[customer_id] = current
    return out


def _lock_key(customer_id: str) -> int:
    """A stable signed 32-bit key per customer id (a collision only serialises two ids)."""
    digest = hashlib.blake2b(customer_id.encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big", signed=True)


def facts_row(facts: CustomerFacts) -> dict[str, Any]:
    row: dict[str, Any] = {"customer_id": facts.customer_id}
    row.update({c: getattr(facts, c) for c in PROFILE_COLUMNS})
    row["doc"] = {
        "attributes": facts.attributes,
        "interests": facts.interests,
        "traits": facts.traits,
        "consents": facts.consents,
    }
    return row


def facts_of(row: Any) -> CustomerFacts:
    """From a seg_profiles row (ORM instance or Core row: the same attribute names)."""
    doc = row.doc or {}
    return CustomerFacts(
        customer_id=row.customer_id,
        **{c: getattr(row, c) for c in PROFILE_COLUMNS},
        attributes=doc.get("attributes", {}),
        interests=doc.get("interests", {}),
        traits=doc.get("traits", {}),
        consents=doc.get("consents", {}),
    )


def event_of(row: Any) -> FactEvent:
    """A FactEvent from a row of `EVENT_COLUMNS` (positional: the fields' order)."""
    event_id, customer_id, type_, channel, occurred_at, category, sku, qty, total, props = row
    return FactEvent(
        event_id, customer_id, type_, channel, occurred_at, category, sku, qty, total, props or {}
    )


_EVENTS = cast(Table, SegEventRow.__table__)
# FactEvent's fields, in order: a change re-reads its customers' events, hundreds per batch
EVENT_COLUMNS = tuple(
    _EVENTS.c[name]
    for name in (
        "event_id",
        "customer_id",
        "type",
        "channel",
        "occurred_at",
        "category",
        "sku",
        "quantity",
        "order_total",
        "properties",
    )
)


def _stored_members(segment_id: str) -> ColumnElement[bool]:
    return SegProfileRow.customer_id.in_(
        select(MembershipRow.customer_id).where(MembershipRow.segment_id == segment_id)
    )


def sql_of(node: Node, now: float) -> ColumnElement[bool]:
    """A condition over seg_profiles; referenced segments are read from their stored members."""
    return to_sql(node, now, _stored_members)


def record_of(row: SegmentRow) -> SegmentRecord:
    return SegmentRecord(
        segment_id=row.segment_id,
        name=row.name,
        description=row.description,
        condition=row.condition,
        kind=row.kind,
        state=row.state,
        member_count=row.member_count,
        build_progress=row.build_progress,
        created_at=row.created_at,
        updated_at=row.updated_at,
        built_at=row.built_at,
        reads=row.reads,
        template=row.template,
    )


# One customer's rows for request-time evaluation: statements built once (a request must not
# pay for building and coercing a query), executed on the connection (no ORM layer).
_PROFILES = cast(Table, SegProfileRow.__table__)
_MEMBERS = cast(Table, MembershipRow.__table__)
_ONE_PROFILE = select(_PROFILES).where(_PROFILES.c.customer_id == bindparam("customer_id"))
_ONE_MEMBERSHIPS = select(_MEMBERS.c.segment_id).where(
    _MEMBERS.c.customer_id == bindparam("customer_id")
)
_ONE_EVENTS = select(*EVENT_COLUMNS).where(
    _EVENTS.c.customer_id == bindparam("customer_id"),
    _EVENTS.c.type.in_(bindparam("types", expanding=True)),
)
_ONE_EVENTS_SINCE = _ONE_EVENTS.where(_EVENTS.c.occurred_at > bindparam("since"))


def _arrays(*columns: tuple[str, Any]) -> Any:
    """PostgreSQL: rows given as one array parameter per column (named as the columns),
    numbered `n` in the order given."""
    return (
        func.unnest(*(bindparam(name, type_=postgresql.ARRAY(kind)) for name, kind in columns))
        .table_valued(*(name for name, _ in columns), with_ordinality="n")
        .render_derived()
    )


def _apply_with_outbox(log: bool) -> Any:
    """PostgreSQL: `apply` in one statement (a round trip instead of four, and no
    per-row work of an executemany): the ENTERED inserts, the LEFT deletes and the log rows as
    CTEs of the outbox rows' INSERT. Parameters: see `SegStore._apply_with_outbox`."""
    entered = _arrays(("segment_id", String), ("customer_id", String), ("since", Float))
    left = _arrays(("left_segment_id", String), ("left_customer_id", String))
    statement = outbox_from_arrays(SegOutboxRow).add_cte(
        postgresql.insert(_MEMBERS)
        .from_select(
            ["segment_id", "customer_id", "since"],
            select(entered.c.segment_id, entered.c.customer_id, entered.c.since),
        )
        .cte("entered"),
        delete(_MEMBERS)
        .where(
            tuple_(_MEMBERS.c.segment_id, _MEMBERS.c.customer_id).in_(
                select(left.c.left_segment_id, left.c.left_customer_id)
            )
        )
        .cte("left"),
    )
    if not log:
        return statement
    logged = _arrays(
        ("log_segment_id", String),
        ("log_customer_id", String),
        ("log_change", String),
        ("log_at", Float),
        ("log_reason", String),
    )
    # in the order given, as the executemany numbered them
    rows = select(*(c for c in logged.c if c.name != "n")).order_by(logged.c.n)
    return statement.add_cte(
        postgresql.insert(_LOG)
        .from_select(["segment_id", "customer_id", "change", "at", "reason"], rows)
        .cte("logged")
    )


def _schedule_statement() -> Any:
    """PostgreSQL: `schedule` in one statement, the due times' upsert with the deletes of the
    cleared pairs as a CTE (the two sets are disjoint). Parameters: arrays of both."""
    due = _arrays(("segment_id", String), ("customer_id", String), ("due_at", Float))
    cleared = _arrays(("cleared_segment_id", String), ("cleared_customer_id", String))
    insert = postgresql.insert(_DUE)
    upsert = insert.from_select(
        ["segment_id", "customer_id", "due_at"],
        select(due.c.segment_id, due.c.customer_id, due.c.due_at),
    ).on_conflict_do_update(
        index_elements=["segment_id", "customer_id"], set_={"due_at": insert.excluded.due_at}
    )
    return upsert.add_cte(
        delete(_DUE)
        .where(
            tuple_(_DUE.c.segment_id, _DUE.c.customer_id).in_(
                select(cleared.c.cleared_segment_id, cleared.c.cleared_customer_id)
            )
        )
        .cte("cleared")
    )


def _store_changes_statement() -> Any:
    """PostgreSQL: `store_changes` in one statement, the events' insert as a CTE of the
    snapshots' upsert, which returns the rows it wrote (the facts the change evaluates).
    Parameters: one array per column of each (see `SegStore.store_changes`)."""
    events = _arrays(*((f"event_{c.name}", _element(c)) for c in _EVENTS.c))
    profiles = _arrays(*((c.name, _element(c)) for c in _PROFILES.c))
    insert = postgresql.insert(_PROFILES)
    upsert = (
        insert.from_select(
            [c.name for c in _PROFILES.c], select(*(profiles.c[c.name] for c in _PROFILES.c))
        )
        .on_conflict_do_update(
            index_elements=["customer_id"],
            set_={
                c.name: insert.excluded[c.name] for c in _PROFILES.c if c.name not in KEEP_ON_UPDATE
            },
            where=_PROFILES.c.version < insert.excluded.version,
        )
        .returning(*_PROFILES.c)
    )
    stored_events = (
        postgresql.insert(_EVENTS)
        .from_select(
            [c.name for c in _EVENTS.c], select(*(events.c[f"event_{c.name}"] for c in _EVENTS.c))
        )
        .on_conflict_do_nothing(index_elements=["event_id"])
    )
    return upsert.add_cte(stored_events.cte("stored_events"))


def _element(column: Any) -> Any:
    """The type of an array parameter of the column (JSONB for the JSON documents)."""
    return postgresql.JSONB() if column.name in ("doc", "properties") else column.type


def _newest(rows: Sequence[CustomerFacts]) -> list[CustomerFacts]:
    """One snapshot per customer, the one an executemany of the upsert would leave: the
    first of the highest version (an upsert may not touch one row twice in a statement)."""
    out: dict[str, CustomerFacts] = {}
    for facts in rows:
        known = out.get(facts.customer_id)
        if known is None or known.version < facts.version:
            out[facts.customer_id] = facts
    return list(out.values())


def _memberships_and_due_statement() -> Any:
    """PostgreSQL: `memberships_and_due` in one statement. Rows (customer, segment, NULL) of
    the memberships, (customer, segment, due_at) of the due times.

    The customers are joined as rows of their array, not matched by `= ANY(array)`: after a
    few executions the prepared statement runs a generic plan, in which `= ANY` of a
    parameter is a linear search of the array per row scanned (with a hundred customers, 5 of
    a change's 24 ms on a few thousand memberships); a join probes the index or hashes."""
    customers = _arrays(("customer_id", String))
    pairs = _arrays(("segment_id", String), ("due_customer_id", String))
    members = select(_MEMBERS.c.customer_id, _MEMBERS.c.segment_id, sql_cast(null(), Float)).where(
        _MEMBERS.c.customer_id.in_(select(customers.c.customer_id))
    )
    due = select(_DUE.c.customer_id, _DUE.c.segment_id, _DUE.c.due_at).where(
        tuple_(_DUE.c.segment_id, _DUE.c.customer_id).in_(
            select(pairs.c.segment_id, pairs.c.due_customer_id)
        )
    )
    return union_all(members, due)


def _tombstones_statement() -> Any:
    """PostgreSQL: the tombstones of some customers (an array), built once: every batch of
    changes reads them, and building the query cost more than running it. Joined as rows
    of the array (see `_memberships_and_due_statement`)."""
    table = cast(Table, TombstoneRow.__table__)
    customers = _arrays(("customer_id", String))
    return select(table.c.customer_id, table.c.merged_into).where(
        table.c.customer_id.in_(select(customers.c.customer_id))
    )


_LOG = cast(Table, MembershipLogRow.__table__)
_DUE = cast(Table, DueRow.__table__)
_TOMBSTONES = _tombstones_statement()
_APPLY_WITH_OUTBOX = {log: _apply_with_outbox(log) for log in (True, False)}
_SCHEDULE = _schedule_statement()
_STORE_CHANGES = _store_changes_statement()
_MEMBERSHIPS_AND_DUE = _memberships_and_due_statement()


class SegStore(SqlUnitOfWork, SegmentationUnitOfWork):
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        encode_change: Callable[[MembershipChange], tuple[str, bytes]],
        after_commit: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(sessions, SegOutboxRow, after_commit)
        self._encode = encode_change
        # advisory lock keys this unit of work holds, per key space (released when it ends)
        self._shared: dict[int, set[int]] = {}
        self._exclusive: dict[int, set[int]] = {}
        self._keys: dict[str, int] = {}  # lock key of each name asked for (see `_not_held`)

    async def __aenter__(self) -> Self:
        self._shared, self._exclusive, self._keys = {}, {}, {}
        return await super().__aenter__()

    async def _read(self, query: Any, params: dict[str, Any] | None = None) -> Any:
        """Rows of a read on the unit of work's connection: Core rows, not through the ORM
        layer, whose per-row processing was a tenth of a change's CPU (a batch re-reads
        hundreds of events and memberships)."""
        conn = await self.s.connection()
        return await conn.execute(query, params)

    # ------------------------------------------------------------ projection

    async def upsert_profiles(self, rows: Sequence[CustomerFacts]) -> None:
        """Many snapshots in one executemany of one statement (compiled once, then cached)."""
        if not rows:
            return
        table = cast(Table, SegProfileRow.__table__)
        insert = self._insert(table)
        statement = insert.on_conflict_do_update(
            index_elements=["customer_id"],
            set_={
                c.name: insert.excluded[c.name]
                for c in table.columns
                if c.name not in KEEP_ON_UPDATE
            },
            where=table.c.version < insert.excluded.version,
        )
        await self.s.execute(statement, [facts_row(f) for f in rows])

    async def insert_events(self, events: Sequence[FactEvent]) -> None:
        """Events not stored yet (a redelivered change brings its events again)."""
        if events:
            table = cast(Table, SegEventRow.__table__)
            statement = self._insert(table).on_conflict_do_nothing(index_elements=["event_id"])
            await self.s.execute(statement, [e.__dict__ for e in events])

    async def store_changes(
        self, rows: Sequence[CustomerFacts], events: Sequence[FactEvent]
    ) -> dict[str, CustomerFacts]:
        if self._dialect != "postgresql" or not (rows or events):
            return await super().store_changes(rows, events)
        params: dict[str, Any] = {
            f"event_{c.name}": [getattr(e, c.name) for e in events] for c in _EVENTS.c
        }
        snapshots = [facts_row(f) for f in _newest(rows)]
        params.update({c.name: [r[c.name] for r in snapshots] for c in _PROFILES.c})
        written = await (await self.s.connection()).execute(_STORE_CHANGES, params)
        return {r.customer_id: facts_of(r) for r in written}

    async def load_facts(self, customer_ids: Iterable[str]) -> dict[str, CustomerFacts]:
        out: dict[str, CustomerFacts] = {}
        profiles = cast(Table, SegProfileRow.__table__)
        for chunk in chunks(sorted(set(customer_ids))):
            rows = await self._read(
                select(profiles).where(among(profiles.c.customer_id, chunk, self._dialect))
            )
            out.update((r.customer_id, facts_of(r)) for r in rows)
        return out

    async def load_events(
        self, customer_ids: Iterable[str], since: Mapping[str, float | None]
    ) -> dict[str, list[FactEvent]]:
        out: dict[str, list[FactEvent]] = {}
        if not since:
            return out
        table = _EVENTS
        # the types of one cutoff together: usually one to three groups (a week of views, a
        # quarter of purchases), each `type IN (…) AND occurred_at > cutoff`
        by_cutoff: dict[float | None, list[str]] = {}
        for kind, cutoff in sorted(since.items()):
            by_cutoff.setdefault(cutoff, []).append(kind)
        wanted = or_(
            *(
                among(table.c.type, kinds, self._dialect)
                if cutoff is None
                else and_(among(table.c.type, kinds, self._dialect), table.c.occurred_at > cutoff)
                for cutoff, kinds in by_cutoff.items()
            )
        )
        for chunk in chunks(sorted(set(customer_ids))):
            query = select(*EVENT_COLUMNS).where(
                among(table.c.customer_id, chunk, self._dialect), wanted
            )
            for row in await self._read(query):
                event = event_of(row)
                found = out.get(event.customer_id)
                if found is None:
                    out[event.customer_id] = [event]
                else:
                    found.append(event)
        return out

    async def customer_read(
        self,
        customer_id: str,
        *,
        memberships: bool,
        facts: bool,
        types: Iterable[str],
        since: float | None,
    ) -> tuple[set[str] | None, CustomerFacts | None, list[FactEvent] | None]:
        if self._dialect == "postgresql" and not self.s.in_transaction():
            # Read-only statements of one request: no BEGIN and ROLLBACK round trips around
            # them. Under READ COMMITTED each statement takes its own snapshot inside a
            # transaction too, so what they see is the same; the pool restores the
            # connection's isolation level when it is returned.
            conn = await self.s.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
        else:
            conn = await self.s.connection()
        members = None
        if memberships:
            rows = await conn.execute(_ONE_MEMBERSHIPS, {"customer_id": customer_id})
            members = set(rows.scalars())
        if not facts:
            return members, None, None
        row = (await conn.execute(_ONE_PROFILE, {"customer_id": customer_id})).first()
        wanted = sorted(set(types))
        events: list[FactEvent] = []
        if wanted:
            params: dict[str, Any] = {"customer_id": customer_id, "types": wanted}
            if since is None:
                result = await conn.execute(_ONE_EVENTS, params)
            else:
                result = await conn.execute(_ONE_EVENTS_SINCE, {**params, "since": since})
            events = [event_of(r) for r in result]
        return members, (facts_of(row) if row is not None else None), events

    async def forget_customer(self, customer_id: str, *, keep_events: bool = False) -> list[str]:
        """Drop the customer's projection, memberships and due times (its events too unless
        `keep_events`); returns the segments it was a member of."""
        segments = sorted(await self.memberships_of(customer_id))
        tables: tuple[Any, ...] = (SegProfileRow, MembershipRow, DueRow)
        if not keep_events:
            tables += (SegEventRow,)
        for table in tables:
            await self.s.execute(delete(table).where(table.customer_id == customer_id))
        return segments

    async def erase_log(self, customer_id: str) -> None:
        await self.s.execute(
            delete(MembershipLogRow).where(MembershipLogRow.customer_id == customer_id)
        )

    async def move_events(self, source: str, target: str) -> None:
        await self.s.execute(
            update(SegEventRow).where(SegEventRow.customer_id == source).values(customer_id=target)
        )

    # ------------------------------------------------------------ tombstones

    async def lock_customers(self, customer_ids: Iterable[str], *, exclusive: bool = False) -> None:
        """Serialise with other units of work on these customers until this one ends.

        Shared for writers of a customer's rows (projection, memberships), exclusive for its
        erasure, its merges and the consumption of its changes: an erasure waits for the
        writes under way and the writes after it see its tombstone. PostgreSQL
        transaction-scoped advisory locks, taken in key order so two units of work cannot
        deadlock on them; SQLite runs one unit of work at a time already.
        """
        await self._advisory(CUSTOMER_LOCKS, customer_ids, exclusive)

    async def lock_segments(self, segment_ids: Iterable[str], *, exclusive: bool = False) -> None:
        """Exclusive for a segment's first build, shared for every unit of work that reads or
        writes memberships of a segment being built: those wait until the build's members
        are committed, so the build's plain `INSERT … SELECT` meets no other writer of the
        segment's rows, and what it read is corrected by whatever was consumed meanwhile."""
        await self._advisory(SEGMENT_LOCKS, segment_ids, exclusive)

    async def _advisory(self, space: int, names: Iterable[str], exclusive: bool) -> None:
        if self._dialect != "postgresql":
            return
        keys = self._not_held(space, names, exclusive)
        if not keys:
            return
        await self.s.execute(_LOCK[exclusive], {"space": space, "keys": keys})
        self._now_held(space, keys, exclusive)

    def _not_held(self, space: int, names: Iterable[str], exclusive: bool) -> list[int]:
        """The lock keys of `names` this unit of work does not hold yet (as strongly), sorted."""
        mine = self._exclusive.setdefault(space, set())
        held = mine if exclusive else mine | self._shared.setdefault(space, set())
        known = self._keys  # a batch asks for the keys of its customers several times
        keys = set()
        for name in names:
            key = known.get(name)
            if key is None:
                key = known[name] = _lock_key(name)
            keys.add(key)
        return sorted(keys - held)

    def _now_held(self, space: int, keys: Iterable[int], exclusive: bool) -> None:
        (self._exclusive if exclusive else self._shared).setdefault(space, set()).update(keys)

    async def retired(self, customer_ids: Iterable[str]) -> dict[str, str | None]:
        """The customers that are gone, each with where it lives on: the customer it was
        merged into (following later merges), or None when erased (or merged into an
        erased customer). Locks (shared) the customers it follows merges to."""
        wanted = set(customer_ids)  # may be a one-shot iterator
        pending = sorted(wanted)
        tombstones: dict[str, str | None] = {}
        for _ in range(MAX_HOPS):
            if not pending:
                break
            await self.lock_customers(pending)
            if self._dialect == "postgresql":
                rows = await self._read(_TOMBSTONES, {"customer_id": pending})
            else:
                rows = await self._read(
                    select(TombstoneRow.customer_id, TombstoneRow.merged_into).where(
                        among(TombstoneRow.customer_id, pending, self._dialect)
                    )
                )
            tombstones.update({c: t for c, t in rows})
            pending = sorted(
                {t for t in tombstones.values() if t is not None and t not in tombstones}
            )
        return follow_tombstones(wanted, tombstones)

    async def retire(self, customer_id: str, at: float, merged_into: str | None) -> None:
        """Record the customer as gone; those merged into it follow it (into its target, or
        erased with it)."""
        statement = self._insert(TombstoneRow).values(
            customer_id=customer_id, deleted_at=at, merged_into=merged_into
        )
        await self.s.execute(
            statement.on_conflict_do_update(
                index_elements=["customer_id"],
                set_={"deleted_at": statement.excluded.deleted_at, "merged_into": merged_into},
            )
        )
        await self.s.execute(
            update(TombstoneRow)
            .where(TombstoneRow.merged_into == customer_id)
            .values(merged_into=merged_into)
        )

    async def projected(self, customer_ids: Sequence[str]) -> set[str]:
        """Those of the customers that have a projection, locked (shared) against erasure."""
        out: set[str] = set()
        for chunk in chunks(sorted(set(customer_ids))):
            query = select(SegProfileRow.customer_id).where(
                among(SegProfileRow.customer_id, chunk, self._dialect)
            )
            if self._dialect == "postgresql":
                query = query.with_for_update(read=True)
            out.update(await self.s.scalars(query))
        return out

    # ------------------------------------------------------------ catalogue version

    async def catalog_version(self, *, hold: bool = False) -> int:
        """The catalogue's version; `hold` keeps definition changes out (a shared row lock)
        until this unit of work ends, so what it evaluates with stays current."""
        query = select(CatalogRow.version).where(CatalogRow.id == 1)
        if hold and self._dialect == "postgresql":
            query = query.with_for_update(read=True)
        return int(await self.s.scalar(query) or 0)

    async def catalog_version_and_lock(
        self, customer_ids: Iterable[str], *, hold: bool = True
    ) -> int:
        if self._dialect != "postgresql" or not hold:
            return await super().catalog_version_and_lock(customer_ids, hold=hold)
        keys = self._not_held(CUSTOMER_LOCKS, customer_ids, True)
        conn = await self.s.connection()
        row = (
            await conn.execute(_VERSION_AND_LOCK, {"space": CUSTOMER_LOCKS, "keys": keys})
        ).first()
        if row is None:  # no version row (it is inserted with the table): nothing was locked
            await self._advisory(CUSTOMER_LOCKS, customer_ids, True)
            return 0
        self._now_held(CUSTOMER_LOCKS, keys, True)
        return int(row.version)

    async def bump_catalog_version(self) -> int:
        """Version + 1, locking the row: definition changes run one at a time, after the
        units of work that hold the previous version."""
        version = await self.s.scalar(
            update(CatalogRow)
            .where(CatalogRow.id == 1)
            .values(version=CatalogRow.version + 1)
            .returning(CatalogRow.version)
        )
        return int(version or 0)

    # ------------------------------------------------------------ segments

    async def segments(self) -> list[SegmentRecord]:
        rows = await self.s.scalars(select(SegmentRow).order_by(SegmentRow.segment_id))
        return [record_of(r) for r in rows]

    async def segment(self, segment_id: str) -> SegmentRecord | None:
        row = await self.s.get(SegmentRow, segment_id)
        return record_of(row) if row is not None else None

    async def list_segments(
        self, after: str | None, limit: int, kind: str | None
    ) -> list[SegmentRecord]:
        query = select(SegmentRow).order_by(SegmentRow.segment_id).limit(limit)
        if after:
            query = query.where(SegmentRow.segment_id > after)
        if kind:
            query = query.where(SegmentRow.kind == kind)
        return [record_of(r) for r in await self.s.scalars(query)]

    async def save_segment(self, record: SegmentRecord) -> None:
        values = dict(record.__dict__)
        statement = self._insert(SegmentRow).values(values)
        statement = statement.on_conflict_do_update(
            index_elements=["segment_id"],
            set_={k: statement.excluded[k] for k in values if k != "segment_id"},
        )
        await self.s.execute(statement)

    async def set_build(
        self, segment_id: str, *, state: str, progress: float, built_at: float | None = None
    ) -> None:
        values: dict[str, Any] = {"state": state, "build_progress": progress}
        if built_at is not None:
            values["built_at"] = built_at
        await self.s.execute(
            update(SegmentRow).where(SegmentRow.segment_id == segment_id).values(**values)
        )

    async def delete_segment(self, segment_id: str) -> None:
        for table in (MembershipRow, DueRow, SegmentRow):
            await self.s.execute(delete(table).where(table.segment_id == segment_id))

    async def clear_members(self, segment_id: str) -> None:
        for table in (MembershipRow, DueRow):
            await self.s.execute(delete(table).where(table.segment_id == segment_id))
        await self.s.execute(
            update(SegmentRow).where(SegmentRow.segment_id == segment_id).values(member_count=0)
        )

    async def refresh_count(self, segment_id: str, count: int | None = None) -> int:
        if count is None:
            count = await self.s.scalar(
                select(func.count())
                .select_from(MembershipRow)
                .where(MembershipRow.segment_id == segment_id)
            )
        await self.s.execute(
            update(SegmentRow)
            .where(SegmentRow.segment_id == segment_id)
            .values(member_count=count or 0)
        )
        return int(count or 0)

    # ------------------------------------------------------------ memberships

    async def memberships_of(self, customer_id: str) -> set[str]:
        rows = await self.s.scalars(
            select(MembershipRow.segment_id).where(MembershipRow.customer_id == customer_id)
        )
        return set(rows)

    async def memberships_of_many(self, customer_ids: Sequence[str]) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        for chunk in chunks(sorted(set(customer_ids))):
            rows = await self._read(
                select(MembershipRow.customer_id, MembershipRow.segment_id).where(
                    among(MembershipRow.customer_id, chunk, self._dialect)
                )
            )
            for customer_id, segment_id in rows:
                out.setdefault(customer_id, set()).add(segment_id)
        return out

    async def members(self, segment_id: str) -> set[str]:
        rows = await self.s.scalars(
            select(MembershipRow.customer_id).where(MembershipRow.segment_id == segment_id)
        )
        return set(rows)

    async def list_members(self, segment_id: str, after: str | None, limit: int) -> list[str]:
        query = (
            select(MembershipRow.customer_id)
            .where(MembershipRow.segment_id == segment_id)
            .order_by(MembershipRow.customer_id)
            .limit(limit)
        )
        if after:
            query = query.where(MembershipRow.customer_id > after)
        return list(await self.s.scalars(query))

    async def apply(
        self,
        changes: Sequence[MembershipChange],
        *,
        publish: bool = True,
        tolerant: bool = False,
        log: bool = True,
    ) -> None:
        """Write membership changes (ENTERED inserts, LEFT deletes), their log and outbox rows.

        Incremental updates insert plainly: a concurrent ENTERED for the same pair fails the
        unit of work (retried), so a membership is never announced twice. A build is
        `tolerant` of members the incremental path added meanwhile. An erasure publishes its
        LEFT changes without `log`ging them (the log of the customer goes with it).
        """
        entered = [c for c in changes if c.change == "ENTERED"]
        left = [c for c in changes if c.change == "LEFT"]
        if self._in_one_statement(changes, publish=publish, tolerant=tolerant):
            await self._apply_with_outbox(entered, left, changes, log)
            return
        for chunk in chunks(entered, 2000):
            insert = self._insert(MembershipRow)
            if tolerant:
                insert = insert.on_conflict_do_nothing()
            await self.s.execute(
                insert,
                [
                    {"segment_id": c.segment_id, "customer_id": c.customer_id, "since": c.at}
                    for c in chunk
                ],
            )
        for chunk in chunks(left, 2000):
            await self.s.execute(
                delete(MembershipRow).where(
                    pairs_among(
                        MembershipRow.segment_id,
                        MembershipRow.customer_id,
                        [(c.segment_id, c.customer_id) for c in chunk],
                        self._dialect,
                    )
                )
            )
        if not publish or not changes:
            return
        for chunk in chunks(list(changes), 2000):
            if log:
                await self.s.execute(
                    self._insert(MembershipLogRow),
                    [
                        {
                            "segment_id": c.segment_id,
                            "customer_id": c.customer_id,
                            "change": c.change,
                            "at": c.at,
                            "reason": c.reason[:256],
                        }
                        for c in chunk
                    ],
                )
            await self.write_outbox((*self._encode(c), c.customer_id) for c in chunk)

    def _in_one_statement(
        self, changes: Sequence[MembershipChange], *, publish: bool, tolerant: bool
    ) -> bool:
        """Whether `apply` may run as one statement: PostgreSQL, changes to publish, the
        plain inserts of the incremental path, and one change per pair (the CTEs of one
        statement do not see each other's rows, the statements of the other path do)."""
        return (
            self._dialect == "postgresql"
            and publish
            and bool(changes)
            and not tolerant
            and len({(c.segment_id, c.customer_id) for c in changes}) == len(changes)
        )

    async def _apply_with_outbox(
        self,
        entered: Sequence[MembershipChange],
        left: Sequence[MembershipChange],
        changes: Sequence[MembershipChange],
        log: bool,
    ) -> None:
        params: dict[str, Any] = {
            "segment_id": [c.segment_id for c in entered],
            "customer_id": [c.customer_id for c in entered],
            "since": [c.at for c in entered],
            "left_segment_id": [c.segment_id for c in left],
            "left_customer_id": [c.customer_id for c in left],
        }
        if log:
            params.update(
                log_segment_id=[c.segment_id for c in changes],
                log_customer_id=[c.customer_id for c in changes],
                log_change=[c.change for c in changes],
                log_at=[c.at for c in changes],
                log_reason=[c.reason[:256] for c in changes],
            )
        messages = [(*self._encode(c), c.customer_id) for c in changes]
        params.update(self.outbox_arrays(messages))
        await self.execute_with_outbox(_APPLY_WITH_OUTBOX[log], params)

    async def bump_counts(self, deltas: dict[str, int]) -> None:
        """One executemany of one statement, in segment order (two units of work lock the
        segment rows they both change in the same order)."""
        rows = [{"sid": s, "delta": d} for s, d in sorted(deltas.items()) if d]
        if rows:
            table = cast(Table, SegmentRow.__table__)
            await self.s.execute(
                update(table)
                .where(table.c.segment_id == bindparam("sid"))
                .values(member_count=table.c.member_count + bindparam("delta")),
                rows,
            )

    # ------------------------------------------------------------ due queue

    async def schedule(self, items: Sequence[tuple[str, str, float | None]]) -> None:
        """(segment, customer, due_at): when the answer can change by time; None clears."""
        if not items:
            return
        if self._dialect == "postgresql":
            await self._schedule_at_once(items)
            return
        cleared = [(s, c) for s, c, d in items if d is None]
        for chunk in chunks(cleared):
            await self.s.execute(
                delete(DueRow).where(
                    pairs_among(DueRow.segment_id, DueRow.customer_id, chunk, self._dialect)
                )
            )
        due = {(s, c): d for s, c, d in items if d is not None}  # the last one per pair wins
        rows = [{"segment_id": s, "customer_id": c, "due_at": d} for (s, c), d in due.items()]
        if rows:
            table = cast(Table, DueRow.__table__)
            insert = self._insert(table)
            statement = insert.on_conflict_do_update(
                index_elements=["segment_id", "customer_id"],
                set_={"due_at": insert.excluded.due_at},
            )
            for batch in chunks(rows):
                await self.s.execute(statement, list(batch))

    async def due_times(self, pairs: Sequence[tuple[str, str]]) -> dict[tuple[str, str], float]:
        """The stored due times of these (segment, customer) pairs (those that have one)."""
        out: dict[tuple[str, str], float] = {}
        for chunk in chunks(pairs):
            rows = await self._read(
                select(DueRow.segment_id, DueRow.customer_id, DueRow.due_at).where(
                    pairs_among(DueRow.segment_id, DueRow.customer_id, chunk, self._dialect)
                )
            )
            out.update(((s, c), d) for s, c, d in rows)
        return out

    async def _schedule_at_once(self, items: Sequence[tuple[str, str, float | None]]) -> None:
        due = {(s, c): d for s, c, d in items if d is not None}  # the last one per pair wins
        # a pair also given a time ends with it, whether or not it is deleted first
        cleared = sorted({(s, c) for s, c, d in items if d is None} - due.keys())
        await self.s.execute(
            _SCHEDULE,
            {
                "segment_id": [s for s, _ in due],
                "customer_id": [c for _, c in due],
                "due_at": list(due.values()),
                "cleared_segment_id": [s for s, _ in cleared],
                "cleared_customer_id": [c for _, c in cleared],
            },
        )

    async def memberships_and_due(
        self, customer_ids: Sequence[str], pairs: Sequence[tuple[str, str]]
    ) -> tuple[dict[str, set[str]], dict[tuple[str, str], float]]:
        if self._dialect != "postgresql":
            return await super().memberships_and_due(customer_ids, pairs)
        rows = await self._read(
            _MEMBERSHIPS_AND_DUE,
            {
                "customer_id": sorted(set(customer_ids)),
                "segment_id": [s for s, _ in pairs],
                "due_customer_id": [c for _, c in pairs],
            },
        )
        members: dict[str, set[str]] = {}
        due: dict[tuple[str, str], float] = {}
        for customer_id, segment_id, due_at in rows:
            if due_at is None:  # a membership (a due time is never NULL)
                members.setdefault(customer_id, set()).add(segment_id)
            else:
                due[(segment_id, customer_id)] = due_at
        return members, due

    async def due(self, now: float, limit: int) -> list[tuple[str, str]]:
        rows = await self.s.execute(
            select(DueRow.segment_id, DueRow.customer_id)
            .where(DueRow.due_at <= now)
            .order_by(DueRow.due_at)
            .limit(limit)
        )
        return [(s, c) for s, c in rows]

    # ------------------------------------------------------------ set-wise

    async def matching(self, node: Node, now: float) -> set[str]:
        rows = await self.s.scalars(select(SegProfileRow.customer_id).where(sql_of(node, now)))
        return set(rows)

    async def insert_matching(self, segment_id: str, node: Node, now: float) -> int:
        """INSERT ... SELECT the matching customers as members (a first build).

        The caller holds the segment exclusively (`lock_segments`) and found no members: no
        other unit of work writes the segment's rows until it commits, so the rows go in
        without `ON CONFLICT` (whose speculative insertion, a unique-index probe and a
        confirmation per row, was a third of the statement's CPU at a million customers).
        """
        condition, since = sql_of(node, now), now
        members = cast(Table, MembershipRow.__table__)
        profiles = cast(Table, SegProfileRow.__table__)
        source = select(
            literal(segment_id, String()), profiles.c.customer_id, literal(since, Float())
        ).where(condition)
        statement = self._insert(members).from_select(
            ["segment_id", "customer_id", "since"], source
        )
        result = await self.s.execute(statement)
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    async def count_matching(self, node: Node, now: float) -> int:
        count = await self.s.scalar(
            select(func.count()).select_from(SegProfileRow).where(sql_of(node, now))
        )
        return int(count or 0)

    async def sample_matching(self, node: Node, now: float, size: int) -> list[str]:
        rows = await self.s.scalars(
            select(SegProfileRow.customer_id)
            .where(sql_of(node, now))
            .order_by(SegProfileRow.customer_id)
            .limit(size)
        )
        return list(rows)

    # ------------------------------------------------------------ RFM

    async def rfm_inputs(self) -> list[tuple[str, float, int, float]]:
        """(customer, last purchase, orders, revenue) of every customer who bought."""
        rows = await self.s.execute(
            select(
                SegProfileRow.customer_id,
                SegProfileRow.last_purchase_at,
                SegProfileRow.orders,
                SegProfileRow.revenue,
            ).where(SegProfileRow.orders > 0, SegProfileRow.last_purchase_at.is_not(None))
        )
        return [(c, float(lp or 0.0), int(o), float(r)) for c, lp, o, r in rows]

    async def set_rfm_scores(self, scores: Sequence[tuple[str, int, int, int]]) -> int:
        # The run row first: its lock orders concurrent recomputations' writes by run number.
        run = await self.s.scalar(
            update(RfmRunRow)
            .where(RfmRunRow.id == 1)
            .values(run=RfmRunRow.run + 1)
            .returning(RfmRunRow.run)
        )
        await self.s.execute(
            update(SegProfileRow)
            .values(recency_score=0, frequency_score=0, monetary_score=0)
            .where(SegProfileRow.orders <= 0)
        )
        for chunk in chunks(list(scores), 5000):
            await self.s.execute(
                update(SegProfileRow),
                [
                    {
                        "customer_id": c,
                        "recency_score": r,
                        "frequency_score": f,
                        "monetary_score": m,
                    }
                    for c, r, f, m in chunk
                ],
            )
        return int(run or 0)

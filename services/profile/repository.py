"""SQLAlchemy adapter of the profile unit of work (SQLite and PostgreSQL).

Hot paths use Core statements over the mapped tables (bulk inserts, ON CONFLICT DO NOTHING with
RETURNING) because TrackEvents writes hundreds of rows per call.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, Self, cast

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    String,
    Table,
    any_,
    bindparam,
    delete,
    func,
    null,
    or_,
    select,
    tuple_,
    union_all,
    update,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from libs.db import (
    CHUNK,
    OutboxMessage,
    SqlUnitOfWork,
    among,
    chunks,
    outbox_from_arrays,
    pairs_among,
)
from libs.errors import Conflict
from services.profile.domain import CartLine, Customer, EventIn, IdentityKey, OrderIn
from services.profile.models import (
    CustomerRow,
    EventRow,
    IdentityRow,
    MergeRow,
    OutboxRow,
    PurchaseRow,
    RfmRunRow,
)
from services.profile.ports import (
    DomainEvent,
    MergeRecord,
    ProfilesMerged,
    ProfileUnitOfWork,
    PurchaseRecord,
    StoredEventRecord,
)

__all__ = ["SqlProfileUnitOfWork", "event_from_json", "event_to_json", "to_ts"]

CUSTOMERS = cast(Table, CustomerRow.__table__)
EVENTS = cast(Table, EventRow.__table__)
IDENTITIES = cast(Table, IdentityRow.__table__)
MERGES = cast(Table, MergeRow.__table__)
PURCHASES = cast(Table, PurchaseRow.__table__)
_UPDATE_CUSTOMER = (
    update(CUSTOMERS)
    .where(CUSTOMERS.c.customer_id == bindparam("b_id"))
    .values(
        updated_at=bindparam("b_updated"), version=bindparam("b_version"), data=bindparam("b_data")
    )
)


def _update_customers() -> Any:
    """PostgreSQL: every changed customer in one UPDATE … FROM unnest(arrays), one statement
    text whatever the count, instead of one UPDATE per customer (a TrackEvents call changes
    up to 100). Built once: the arrays are its parameters."""
    values = (
        func.unnest(
            bindparam("ids", type_=ARRAY(String)),
            bindparam("updated", type_=ARRAY(DateTime(timezone=True))),
            bindparam("versions", type_=ARRAY(BigInteger)),
            bindparam("data", type_=ARRAY(JSON)),
        )
        .table_valued("customer_id", "updated_at", "version", "data")
        .render_derived()
    )
    return (
        update(CUSTOMERS)
        .where(CUSTOMERS.c.customer_id == values.c.customer_id)
        .values(updated_at=values.c.updated_at, version=values.c.version, data=values.c.data)
    )


def _known_events_and_owners() -> Any:
    """PostgreSQL: which of the event ids are stored and who holds the identities, in one
    statement (one round trip instead of two). Rows: (event_id, NULL, NULL, NULL) for a known
    event, (NULL, type, value, customer_id) for a held identity."""
    keys = (
        func.unnest(
            bindparam("types", type_=ARRAY(String)), bindparam("values", type_=ARRAY(String))
        )
        .table_valued("type", "value")
        .render_derived()
    )
    nothing = sql_cast(null(), String)
    known = select(EVENTS.c.event_id, nothing, nothing, nothing).where(
        EVENTS.c.event_id == any_(bindparam("ids", type_=ARRAY(String)))
    )
    held = select(nothing, IDENTITIES.c.type, IDENTITIES.c.value, IDENTITIES.c.customer_id).where(
        tuple_(IDENTITIES.c.type, IDENTITIES.c.value).in_(select(keys.c.type, keys.c.value))
    )
    return union_all(known, held)


def _customer_arrays(customers: Sequence[Customer]) -> dict[str, list[Any]]:
    """The parameters of `_UPDATE_CUSTOMERS` (customers already stored)."""
    return {
        "ids": [c.customer_id for c in customers],
        "updated": [to_dt(c.updated_at) for c in customers],
        "versions": [c.version for c in customers],
        "data": [c.data for c in customers],
    }


_UPDATE_CUSTOMERS = _update_customers()
_KNOWN_EVENTS_AND_OWNERS = _known_events_and_owners()
# the end of a TrackEvents batch: _UPDATE_CUSTOMERS as a CTE of the outbox rows' INSERT
_SAVE_WITH_OUTBOX = outbox_from_arrays(OutboxRow).add_cte(_UPDATE_CUSTOMERS.cte("saved"))


def to_dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def to_ts(dt: datetime) -> float:
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()


def event_to_json(event: EventIn) -> dict[str, Any]:
    body: dict[str, Any] = {"sku": event.sku, "category": event.category}
    if event.properties:
        body["properties"] = event.properties
    if event.identities:
        body["identities"] = [list(k) for k in event.identities]
    if event.identity:
        body["identity"] = list(event.identity)
    if event.quantity or event.unit_price_micros:
        body["quantity"], body["price"] = event.quantity, event.unit_price_micros
        body["currency"] = event.currency
    if event.order is not None:
        body["order"] = _order_to_json(event.order)
    return body


def _order_to_json(order: OrderIn) -> dict[str, Any]:
    return {
        "order_id": order.order_id,
        "lines": [
            [line.sku, line.category, line.quantity, line.unit_price_micros, line.currency]
            for line in order.lines
        ],
        "total": order.total_micros,
        "currency": order.currency,
        "placed_at": order.placed_at,
    }


def event_from_json(row: EventRow) -> EventIn:
    body = row.body
    order = None
    if "order" in body:
        o = body["order"]
        order = OrderIn(
            order_id=o["order_id"],
            lines=tuple(CartLine(*line) for line in o["lines"]),
            total_micros=o["total"],
            currency=o["currency"],
            placed_at=o["placed_at"],
        )
    return EventIn(
        event_id=row.event_id,
        type=row.type,
        channel=row.channel,
        occurred_at=to_ts(row.occurred_at),
        customer_id=row.customer_id,
        identity=tuple(body["identity"]) if "identity" in body else None,  # type: ignore[arg-type]
        identities=tuple(tuple(k) for k in body.get("identities", ())),  # type: ignore[misc]
        sku=body.get("sku", ""),
        category=body.get("category", ""),
        properties=body.get("properties", {}),
        order=order,
        quantity=body.get("quantity", 0),
        unit_price_micros=body.get("price", 0),
        currency=body.get("currency", ""),
    )


class SqlProfileUnitOfWork(SqlUnitOfWork, ProfileUnitOfWork):
    """The profile unit of work over SQLAlchemy: the queries; the plumbing is libs.db's."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        encode: Callable[[DomainEvent], tuple[str, bytes]],
        after_commit: Callable[[], None] | None = None,
    ) -> None:
        SqlUnitOfWork.__init__(self, sessions, OutboxRow, after_commit)
        ProfileUnitOfWork.__init__(self)
        self._encode = encode

    async def __aenter__(self) -> Self:
        self.emitted = []
        return await super().__aenter__()

    async def commit(self) -> None:
        if self.emitted:
            await self.write_outbox(self._outbox_message(e) for e in self.emitted)
            self.emitted = []
        await super().commit()

    async def rollback(self) -> None:
        await super().rollback()
        self.emitted = []

    async def save_and_commit(self, customers: Iterable[Customer]) -> None:
        customers = list(customers)
        new = any(c.is_new for c in customers)
        if self._dialect != "postgresql" or new or not customers or not self.emitted:
            return await super().save_and_commit(customers)
        # One statement: the customers' UPDATE as a CTE of the outbox rows' INSERT (a round
        # trip less; each cost ~2.5% of the server's CPU under TrackEvents load).
        messages = [self._outbox_message(e) for e in self.emitted]
        self.emitted = []
        await self.execute_with_outbox(
            _SAVE_WITH_OUTBOX, {**_customer_arrays(customers), **self.outbox_arrays(messages)}
        )
        await self.commit()

    def _outbox_message(self, event: DomainEvent) -> OutboxMessage:
        topic, payload = self._encode(event)
        if isinstance(event, ProfilesMerged):
            return topic, payload, event.target_customer_id
        return topic, payload, event.customer_id

    async def owners_of(self, keys: Iterable[IdentityKey]) -> dict[IdentityKey, str]:
        keys = list(dict.fromkeys(keys))
        found: dict[IdentityKey, str] = {}
        for chunk in chunks(keys):
            rows = await self.s.execute(
                select(IDENTITIES.c.type, IDENTITIES.c.value, IDENTITIES.c.customer_id).where(
                    pairs_among(IDENTITIES.c.type, IDENTITIES.c.value, chunk, self._dialect)
                )
            )
            found.update({(t, v): c for t, v, c in rows})
        return found

    async def live_ids(self, customer_ids: Iterable[str]) -> dict[str, str]:
        ids = list(dict.fromkeys(customer_ids))
        live: dict[str, str] = {}
        for chunk in chunks(ids):
            live.update(
                (c, c)
                for c in await self.s.scalars(
                    select(CUSTOMERS.c.customer_id).where(
                        among(CUSTOMERS.c.customer_id, chunk, self._dialect)
                    )
                )
            )
            missing = [c for c in chunk if c not in live]
            if missing:
                rows = await self.s.execute(
                    select(MERGES.c.source_customer_id, MERGES.c.target_customer_id).where(
                        among(MERGES.c.source_customer_id, missing, self._dialect)
                    )
                )
                live.update({source: target for source, target in rows})
        return live

    async def identities_of(self, customer_ids: Iterable[str]) -> dict[str, list[IdentityKey]]:
        out: dict[str, list[IdentityKey]] = {}
        for chunk in chunks(list(customer_ids)):
            rows = await self.s.execute(
                select(IDENTITIES.c.customer_id, IDENTITIES.c.type, IDENTITIES.c.value)
                .where(among(IDENTITIES.c.customer_id, chunk, self._dialect))
                .order_by(IDENTITIES.c.created_at, IDENTITIES.c.type, IDENTITIES.c.value)
            )
            for customer_id, kind, value in rows:
                out.setdefault(customer_id, []).append((kind, value))
        return out

    async def link_identities(self, links: Sequence[tuple[IdentityKey, str]], at: float) -> None:
        if not links:
            return
        rows = [
            {"type": k[0], "value": k[1], "customer_id": c, "created_at": to_dt(at)}
            for k, c in dict(links).items()
        ]
        # Atomic claim: an identity a concurrent writer took since it was read stays theirs
        # (PostgreSQL waits for that writer, then skips the row), and the unit is re-run on
        # what is committed now. Never overwrite an owner on the strength of a stale read.
        statement = (
            self._insert(IdentityRow)
            .on_conflict_do_nothing(index_elements=["type", "value"])
            .returning(IDENTITIES.c.type, IDENTITIES.c.value)
        )
        claimed: set[tuple[str, str]] = set()
        for chunk in chunks(rows):
            claimed.update((t, v) for t, v in await self.s.execute(statement, chunk))
        if len(claimed) < len(rows):
            raise Conflict("an identity was claimed by a concurrent writer")

    async def load(self, customer_ids: Iterable[str], for_update: bool) -> dict[str, Customer]:
        # Sorted, so concurrent writers lock rows in the same order and cannot deadlock.
        ids = sorted(set(customer_ids))
        out: dict[str, Customer] = {}
        for chunk in chunks(ids):
            t = CUSTOMERS
            query = (
                select(t.c.customer_id, t.c.created_at, t.c.updated_at, t.c.version, t.c.data)
                .where(among(t.c.customer_id, chunk, self._dialect))
                .order_by(t.c.customer_id)
            )
            if for_update:
                query = query.with_for_update()
            for customer_id, created, updated, version, data in await self.s.execute(query):
                out[customer_id] = Customer(
                    customer_id=customer_id,
                    created_at=to_ts(created),
                    updated_at=to_ts(updated),
                    version=version,
                    data=data,
                )
        return out

    async def save(self, customers: Iterable[Customer]) -> None:
        customers = list(customers)
        new: list[dict[str, Any]] = []
        changed: list[dict[str, Any]] = []
        for c in customers:
            row = {
                "customer_id": c.customer_id,
                "created_at": to_dt(c.created_at),
                "updated_at": to_dt(c.updated_at),
                "version": c.version,
                "data": c.data,
            }
            (new if c.is_new else changed).append(row)
        if new:
            await self.s.execute(self._insert(CustomerRow), new)
        if changed and self._dialect == "postgresql":
            stored = [c for c in customers if not c.is_new]
            await self.s.execute(_UPDATE_CUSTOMERS, _customer_arrays(stored))
        elif changed:
            await self.s.execute(
                _UPDATE_CUSTOMER,
                [
                    {
                        "b_id": row["customer_id"],
                        "b_updated": row["updated_at"],
                        "b_version": row["version"],
                        "b_data": row["data"],
                    }
                    for row in changed
                ],
            )
        for c in customers:
            c.is_new = False

    async def delete_customer(self, customer_id: str) -> None:
        for table, column in (
            (IdentityRow, IdentityRow.customer_id),
            (EventRow, EventRow.customer_id),
            (PurchaseRow, PurchaseRow.customer_id),
            (CustomerRow, CustomerRow.customer_id),
        ):
            await self.s.execute(delete(table).where(column == customer_id))
        await self.s.execute(
            delete(MergeRow).where(
                or_(
                    MergeRow.target_customer_id == customer_id,
                    MergeRow.source_customer_id == customer_id,
                )
            )
        )

    async def known_event_ids(self, event_ids: Iterable[str]) -> set[str]:
        known: set[str] = set()
        for chunk in chunks(list(set(event_ids))):
            known.update(
                await self.s.scalars(
                    select(EVENTS.c.event_id).where(among(EVENTS.c.event_id, chunk, self._dialect))
                )
            )
        return known

    async def known_events_and_owners(
        self, event_ids: Iterable[str], keys: Iterable[IdentityKey]
    ) -> tuple[set[str], dict[IdentityKey, str]]:
        ids, pairs = list(dict.fromkeys(event_ids)), list(dict.fromkeys(keys))
        if self._dialect != "postgresql" or len(ids) > CHUNK or len(pairs) > CHUNK:
            return await super().known_events_and_owners(ids, pairs)
        rows = await self.s.execute(
            _KNOWN_EVENTS_AND_OWNERS,
            {"ids": ids, "types": [t for t, _ in pairs], "values": [v for _, v in pairs]},
        )
        known: set[str] = set()
        owners: dict[IdentityKey, str] = {}
        for event_id, kind, value, customer_id in rows:
            if event_id is not None:
                known.add(event_id)
            else:
                owners[(kind, value)] = customer_id
        return known, owners

    async def insert_events(self, events: Sequence[StoredEventRecord]) -> set[str]:
        inserted: set[str] = set()
        for chunk in chunks(events):
            rows = [
                {
                    "event_id": r.event.event_id,
                    "customer_id": r.customer_id,
                    "type": r.event.type,
                    "channel": r.event.channel,
                    "occurred_at": to_dt(r.event.occurred_at),
                    "received_at": to_dt(r.received_at),
                    "body": event_to_json(r.event),
                }
                for r in chunk
            ]
            statement = (
                self._insert(EventRow)
                .on_conflict_do_nothing(index_elements=["event_id"])
                .returning(EVENTS.c.event_id)
            )
            inserted.update(await self.s.scalars(statement, rows))
        return inserted

    async def counted_order_ids(self, order_ids: Iterable[str]) -> set[str]:
        found: set[str] = set()
        for chunk in chunks(list(set(order_ids))):
            found.update(
                await self.s.scalars(
                    select(PURCHASES.c.order_id).where(
                        among(PURCHASES.c.order_id, chunk, self._dialect),
                        PURCHASES.c.counted.is_(True),
                        PURCHASES.c.is_return.is_(False),
                    )
                )
            )
        return found

    async def insert_purchases(self, purchases: Sequence[PurchaseRecord]) -> None:
        if purchases:
            rows = [{**p.__dict__, "placed_at": to_dt(p.placed_at)} for p in purchases]
            await self.s.execute(self._insert(PurchaseRow), rows)

    async def list_purchases(
        self, customer_id: str, after: tuple[float, str] | None, limit: int
    ) -> list[PurchaseRecord]:
        query = select(PurchaseRow).where(PurchaseRow.customer_id == customer_id)
        if after is not None:
            placed, event_id = to_dt(after[0]), after[1]
            query = query.where(
                or_(
                    PurchaseRow.placed_at < placed,
                    (PurchaseRow.placed_at == placed) & (PurchaseRow.event_id < event_id),
                )
            )
        query = query.order_by(PurchaseRow.placed_at.desc(), PurchaseRow.event_id.desc())
        rows = (await self.s.scalars(query.limit(limit))).all()
        return [
            PurchaseRecord(
                event_id=r.event_id,
                customer_id=r.customer_id,
                order_id=r.order_id,
                placed_at=to_ts(r.placed_at),
                is_return=r.is_return,
                counted=r.counted,
                total_micros=r.total_micros,
                currency=r.currency,
                channel=r.channel,
                lines=r.lines,
            )
            for r in rows
        ]

    async def list_events(
        self, customer_id: str, after: tuple[float, str] | None, limit: int
    ) -> list[StoredEventRecord]:
        query = select(EventRow).where(EventRow.customer_id == customer_id)
        if after is not None:
            occurred, event_id = to_dt(after[0]), after[1]
            query = query.where(
                or_(
                    EventRow.occurred_at > occurred,
                    (EventRow.occurred_at == occurred) & (EventRow.event_id > event_id),
                )
            )
        rows = await self.s.scalars(
            query.order_by(EventRow.occurred_at, EventRow.event_id).limit(limit)
        )
        return [
            StoredEventRecord(event_from_json(r), r.customer_id, to_ts(r.received_at)) for r in rows
        ]

    async def move_history(self, source_id: str, target_id: str) -> None:
        for table in (IdentityRow, EventRow, PurchaseRow):
            await self.s.execute(
                update(table).where(table.customer_id == source_id).values(customer_id=target_id)
            )

    async def record_merge(self, record: MergeRecord) -> None:
        # Ids merged into the source earlier now resolve straight to the target (one hop).
        await self.s.execute(
            update(MergeRow)
            .where(MergeRow.target_customer_id == record.source_customer_id)
            .values(target_customer_id=record.target_customer_id)
        )
        await self.s.execute(
            self._insert(MergeRow),
            [{**record.__dict__, "merged_at": to_dt(record.merged_at)}],
        )

    async def claim_rfm_run(self, run: int) -> bool:
        # One conditional UPDATE: the check and the claim are atomic, and the row stays
        # write-locked until commit (a concurrent claim waits, then re-checks the new run).
        claimed = await self.s.scalar(
            update(RfmRunRow)
            .where(RfmRunRow.id == 1, RfmRunRow.run <= run)
            .values(run=run)
            .returning(RfmRunRow.id)
        )
        return claimed is not None

    async def merges_of(self, customer_id: str) -> list[MergeRecord]:
        rows = await self.s.scalars(
            select(MergeRow)
            .where(
                or_(
                    MergeRow.target_customer_id == customer_id,
                    MergeRow.source_customer_id == customer_id,
                )
            )
            .order_by(MergeRow.merged_at)
        )
        return [
            MergeRecord(
                r.source_customer_id, r.target_customer_id, r.actor, r.reason, to_ts(r.merged_at)
            )
            for r in rows
        ]

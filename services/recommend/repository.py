"""SQLAlchemy adapter of the recommend port (SQLite and PostgreSQL).

Item and showcase writes lock their rows (SELECT ... FOR UPDATE, in key order) and bump the
catalogue version row in their transaction. Behaviour from profile events is added with
additive upserts (INSERT ... ON CONFLICT DO UPDATE SET weight = weight + excluded.weight) in
key order, under the customer's guard row, once per event id (`reco_events`), so two
replicas consuming concurrently neither lose nor double-count an event.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

from sqlalchemy import Table, delete, func, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from libs.db import OutboxMessage, SqlUnitOfWork, among, chunks
from services.recommend.domain import Item, Showcase
from services.recommend.models import (
    BasketRow,
    CatalogRow,
    CustomerRow,
    EventRow,
    HistoryRow,
    ItemCountRow,
    ItemRow,
    ModelRow,
    PairRow,
    PopularityRow,
    RecommendOutboxRow,
    ShowcaseRow,
    TrainingRow,
)
from services.recommend.ports import Guard, History, RecommendUnitOfWork, StoredModel

__all__ = ["SqlRecommendUnitOfWork"]

ITEMS = cast(Table, ItemRow.__table__)
CATALOG = cast(Table, CatalogRow.__table__)
SHOWCASES = cast(Table, ShowcaseRow.__table__)
COUNTS = cast(Table, ItemCountRow.__table__)
PAIRS = cast(Table, PairRow.__table__)
POPULARITY = cast(Table, PopularityRow.__table__)
HISTORY = cast(Table, HistoryRow.__table__)
CUSTOMERS = cast(Table, CustomerRow.__table__)
EVENTS = cast(Table, EventRow.__table__)
BASKETS = cast(Table, BasketRow.__table__)
MODELS = cast(Table, ModelRow.__table__)
TRAINING = cast(Table, TrainingRow.__table__)

_ITEM_COLUMNS = (
    ITEMS.c.sku,
    ITEMS.c.category,
    ITEMS.c.available,
    ITEMS.c.released_at,
    ITEMS.c.updated_at,
    ITEMS.c.data,
)
_SHOWCASE_COLUMNS = (
    SHOWCASES.c.showcase_id,
    SHOWCASES.c.created_at,
    SHOWCASES.c.updated_at,
    SHOWCASES.c.data,
)


def _item(row: Any) -> Item:
    return Item.from_json(row[0], row[1], bool(row[2]), row[3], row[4], row[5])


def _showcase(row: Any) -> Showcase:
    return Showcase.from_json(row[0], row[1], row[2], row[3])


def _item_columns(item: Item, at: float) -> dict[str, Any]:
    return {
        "sku": item.sku,
        "category": item.category,
        "available": item.available,
        "released_at": item.released_at if item.released_at is not None else at,
        "updated_at": at,
        "data": item.to_json(),
    }


class SqlRecommendUnitOfWork(SqlUnitOfWork, RecommendUnitOfWork):
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        encode_items: Callable[[Sequence[str], float], OutboxMessage],
        encode_showcase: Callable[[str, float], OutboxMessage],
        after_commit: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(sessions, RecommendOutboxRow, after_commit)
        self._encode_items = encode_items
        self._encode_showcase = encode_showcase

    # catalogue

    async def items(self, skus: Sequence[str], *, for_update: bool = False) -> dict[str, Item]:
        found: dict[str, Item] = {}
        for part in chunks(sorted(set(skus))):
            query = select(*_ITEM_COLUMNS).where(ITEMS.c.sku.in_(part)).order_by(ITEMS.c.sku)
            if for_update:
                query = query.with_for_update()
            for row in await self.s.execute(query):
                found[row[0]] = _item(row)
        return found

    async def put_items(self, created: Sequence[Item], updated: Sequence[Item], at: float) -> None:
        if created:
            await self.s.execute(
                self._insert(ITEMS),
                [{**_item_columns(i, at), "created_at": at} for i in created],
            )
        for item in sorted(updated, key=lambda i: i.sku):
            columns = _item_columns(item, at)
            await self.s.execute(update(ITEMS).where(ITEMS.c.sku == item.sku).values(**columns))

    async def list_items(self, category: str, after: str | None, limit: int) -> list[Item]:
        query = select(*_ITEM_COLUMNS)
        if category:
            query = query.where(ITEMS.c.category == category)
        if after is not None:
            query = query.where(ITEMS.c.sku > after)
        query = query.order_by(ITEMS.c.sku).limit(limit)
        return [_item(row) for row in await self.s.execute(query)]

    async def all_items(self) -> list[Item]:
        return [_item(row) for row in await self.s.execute(select(*_ITEM_COLUMNS))]

    async def _bump(self) -> None:
        await self.s.execute(
            update(CATALOG).where(CATALOG.c.id == 1).values(version=CATALOG.c.version + 1)
        )

    async def announce_items(self, skus: Sequence[str], at: float) -> None:
        await self._bump()
        await self.write_outbox([self._encode_items(skus, at)])

    async def catalog_version(self) -> int:
        return int(await self.s.scalar(select(CATALOG.c.version).where(CATALOG.c.id == 1)) or 0)

    # showcases

    async def showcase(self, showcase_id: str, *, for_update: bool = False) -> Showcase | None:
        query = select(*_SHOWCASE_COLUMNS).where(SHOWCASES.c.showcase_id == showcase_id)
        if for_update:
            query = query.with_for_update()
        row = (await self.s.execute(query)).first()
        return _showcase(row) if row is not None else None

    async def add_showcase(self, showcase: Showcase) -> None:
        await self.s.execute(
            self._insert(SHOWCASES),
            {
                "showcase_id": showcase.showcase_id,
                "created_at": showcase.created_at,
                "updated_at": showcase.updated_at,
                "data": showcase.to_json(),
            },
        )

    async def save_showcase(self, showcase: Showcase) -> None:
        await self.s.execute(
            update(SHOWCASES)
            .where(SHOWCASES.c.showcase_id == showcase.showcase_id)
            .values(updated_at=showcase.updated_at, data=showcase.to_json())
        )

    async def list_showcases(self, after: tuple[float, str] | None, limit: int) -> list[Showcase]:
        query = select(*_SHOWCASE_COLUMNS)
        if after is not None:
            at, sid = after
            query = query.where(
                or_(
                    SHOWCASES.c.created_at < at,
                    (SHOWCASES.c.created_at == at) & (SHOWCASES.c.showcase_id < sid),
                )
            )
        query = query.order_by(SHOWCASES.c.created_at.desc(), SHOWCASES.c.showcase_id.desc())
        return [_showcase(row) for row in await self.s.execute(query.limit(limit))]

    async def all_showcases(self) -> list[Showcase]:
        return [_showcase(row) for row in await self.s.execute(select(*_SHOWCASE_COLUMNS))]

    async def announce_showcase(self, showcase_id: str, at: float) -> None:
        await self._bump()
        await self.write_outbox([self._encode_showcase(showcase_id, at)])

    # behaviour

    async def guard(self, customer_id: str) -> Guard:
        await self.s.execute(
            self._insert(CUSTOMERS)
            .values(customer_id=customer_id, erased_at=None, merged_into=None)
            .on_conflict_do_nothing()
        )
        row = (
            await self.s.execute(
                select(CUSTOMERS.c.erased_at, CUSTOMERS.c.merged_into)
                .where(CUSTOMERS.c.customer_id == customer_id)
                .with_for_update()
            )
        ).one()
        return Guard(customer_id, row[0] is not None, row[1] or "")

    async def claim_event(self, event_id: str, at: float) -> bool:
        inserted = await self.s.execute(
            self._insert(EVENTS)
            .values(event_id=event_id, counted_at=at)
            .on_conflict_do_nothing()
            .returning(EVENTS.c.event_id)
        )
        return inserted.first() is not None

    async def history(self, customer_id: str, limit: int = 500) -> list[History]:
        t = HISTORY.c
        rows = await self.s.execute(
            select(t.sku, t.purchased, t.viewed, t.last_at)
            .where(t.customer_id == customer_id)
            .order_by(t.last_at.desc(), t.sku)
            .limit(limit)
        )
        return [History(*row) for row in rows]

    async def add_history(
        self, customer_id: str, deltas: Mapping[str, tuple[float, float]], at: float
    ) -> None:
        if not deltas:
            return
        insert = self._insert(HISTORY)
        statement = insert.on_conflict_do_update(
            index_elements=[HISTORY.c.customer_id, HISTORY.c.sku],
            set_={
                "purchased": HISTORY.c.purchased + insert.excluded.purchased,
                "viewed": HISTORY.c.viewed + insert.excluded.viewed,
                "last_at": func.max(HISTORY.c.last_at, insert.excluded.last_at)
                if self._dialect == "sqlite"
                else func.greatest(HISTORY.c.last_at, insert.excluded.last_at),
            },
        )
        rows = [
            {"customer_id": customer_id, "sku": sku, "purchased": p, "viewed": v, "last_at": at}
            for sku, (p, v) in sorted(deltas.items())
        ]
        await self.s.execute(statement, rows)

    async def _add(self, table: Table, keys: list[str], rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        insert = self._insert(table)
        statement = insert.on_conflict_do_update(
            index_elements=[table.c[k] for k in keys],
            set_={"weight": table.c.weight + insert.excluded.weight},
        )
        rows.sort(key=lambda r: tuple(r[k] for k in keys))  # key order: no deadlocks
        for part in chunks(rows):
            await self.s.execute(statement, list(part))

    async def add_cooccurrence(
        self, item_deltas: Mapping[str, float], pair_deltas: Mapping[tuple[str, str], float]
    ) -> None:
        await self._add(COUNTS, ["sku"], [{"sku": s, "weight": w} for s, w in item_deltas.items()])
        both = [{"sku": a, "other": b, "weight": w} for (a, b), w in pair_deltas.items()]
        both += [{"sku": b, "other": a, "weight": w} for (a, b), w in pair_deltas.items()]
        await self._add(PAIRS, ["sku", "other"], both)

    async def add_popularity(self, deltas: Mapping[tuple[str, int, str], float]) -> None:
        await self._add(
            POPULARITY,
            ["segment_id", "day", "sku"],
            [
                {"segment_id": seg, "day": day, "sku": sku, "weight": w}
                for (seg, day, sku), w in deltas.items()
            ],
        )

    async def item_counts(self, skus: Sequence[str]) -> dict[str, float]:
        counts: dict[str, float] = {}
        for part in chunks(sorted(set(skus))):
            rows = await self.s.execute(
                select(COUNTS.c.sku, COUNTS.c.weight).where(
                    among(COUNTS.c.sku, part, self._dialect)
                )
            )
            counts.update({sku: float(w) for sku, w in rows})
        return counts

    async def related(
        self, skus: Sequence[str], limit: int, shrink: float
    ) -> dict[str, list[tuple[str, float, float]]]:
        p, n = PAIRS.c, COUNTS.c
        # similarity squared over the seed's own count: c^4 / ((c + shrink)^2 n(other)), no
        # square root (SQLite has none by default), the same order
        key = (p.weight * p.weight * p.weight * p.weight) / (
            (p.weight + shrink) * (p.weight + shrink) * n.weight
        )
        out: dict[str, list[tuple[str, float, float]]] = {}
        for part in chunks(sorted(set(skus))):
            rank = func.row_number().over(partition_by=p.sku, order_by=(key.desc(), p.other))
            ranked = (
                select(p.sku, p.other, p.weight, n.weight.label("n"), rank.label("rank"))
                .join(COUNTS, n.sku == p.other)
                .where(among(p.sku, part, self._dialect), p.weight > 0, n.weight > 0)
                .subquery()
            )
            rows = await self.s.execute(
                select(ranked.c.sku, ranked.c.other, ranked.c.weight, ranked.c.n)
                .where(ranked.c.rank <= limit)
                .order_by(ranked.c.sku, ranked.c.rank)
            )
            for sku, other, weight, count in rows:
                out.setdefault(sku, []).append((other, float(weight), float(count)))
        return out

    async def popularity(
        self, segment_ids: Sequence[str], since_day: int
    ) -> list[tuple[str, str, int, float]]:
        t = POPULARITY.c
        rows = await self.s.execute(
            select(t.segment_id, t.sku, t.day, t.weight).where(
                t.segment_id.in_(list(segment_ids)), t.day >= since_day
            )
        )
        return [(seg, sku, int(day), float(w)) for seg, sku, day, w in rows]

    async def erase_customer(self, customer_id: str, at: float) -> None:
        await self.s.execute(
            update(CUSTOMERS)
            .where(CUSTOMERS.c.customer_id == customer_id, CUSTOMERS.c.erased_at.is_(None))
            .values(erased_at=at)
        )
        await self.s.execute(delete(HISTORY).where(HISTORY.c.customer_id == customer_id))
        await self.s.execute(delete(BASKETS).where(BASKETS.c.customer_id == customer_id))

    async def merge_customer(self, source: str, target: str) -> None:
        t = HISTORY.c
        rows = await self.s.execute(
            select(t.sku, t.purchased, t.viewed, t.last_at).where(t.customer_id == source)
        )
        moved = list(rows)
        for sku, purchased, viewed, last_at in sorted(moved):
            await self.add_history(target, {sku: (purchased, viewed)}, last_at)
        await self.s.execute(delete(HISTORY).where(t.customer_id == source))
        await self.s.execute(
            update(BASKETS).where(BASKETS.c.customer_id == source).values(customer_id=target)
        )
        await self.s.execute(
            update(CUSTOMERS).where(CUSTOMERS.c.customer_id == source).values(merged_into=target)
        )

    # the personal model

    async def training_triples(self) -> list[tuple[str, str, float, float]]:
        t = HISTORY.c
        rows = await self.s.execute(select(t.customer_id, t.sku, t.purchased, t.viewed))
        return [(c, s, float(p), float(v)) for c, s, p, v in rows]

    async def lease_training(self, now: float, until: float) -> bool:
        taken = await self.s.execute(
            update(TRAINING)
            .where(TRAINING.c.id == 1, TRAINING.c.leased_until <= now)
            .values(leased_until=until)
            .returning(TRAINING.c.id)
        )
        return taken.first() is not None

    async def lease_rebuild(self, now: float, until: float) -> bool:
        taken = await self.s.execute(
            update(TRAINING)
            .where(TRAINING.c.id == 2, TRAINING.c.leased_until <= now)
            .values(leased_until=until)
            .returning(TRAINING.c.id)
        )
        return taken.first() is not None

    async def add_basket(
        self,
        event_id: str,
        customer_id: str,
        basket: Sequence[str],
        joins: Sequence[tuple[str, Sequence[str]]],
    ) -> None:
        data = {"basket": list(basket), "joins": [[sku, list(others)] for sku, others in joins]}
        await self.s.execute(
            self._insert(BASKETS).values(event_id=event_id, customer_id=customer_id, data=data)
        )

    async def baskets(self) -> list[tuple[list[str], list[tuple[str, list[str]]]]]:
        if self._dialect == "postgresql":
            # Counting (ROW EXCLUSIVE) waits until this unit of work ends; readers do not. An
            # event that committed before is read below; one that waits adds to the rebuilt
            # counts after. (SQLite has one writer: the transaction is alone anyway.)
            await self.s.execute(text("LOCK TABLE reco_item_counts, reco_pairs IN EXCLUSIVE MODE"))
        rows = await self.s.execute(select(BASKETS.c.data).order_by(BASKETS.c.event_id))
        return [
            (list(data["basket"]), [(sku, list(others)) for sku, others in data["joins"]])
            for (data,) in rows
        ]

    async def replace_cooccurrence(
        self, item_counts: Mapping[str, float], pairs: Mapping[tuple[str, str], float]
    ) -> None:
        await self.s.execute(delete(COUNTS))
        await self.s.execute(delete(PAIRS))
        await self.add_cooccurrence(item_counts, pairs)

    async def add_model(
        self, trained_at: float, seconds: float, customers: int, items: int, data: bytes
    ) -> int:
        inserted = await self.s.execute(
            self._insert(MODELS)
            .values(
                trained_at=trained_at,
                seconds=seconds,
                customers=customers,
                items=items,
                data=data,
            )
            .returning(MODELS.c.version)
        )
        return int(inserted.scalar_one())

    async def prune_models(self, before: int) -> int:
        deleted = await self.s.execute(
            delete(MODELS).where(MODELS.c.version < before).returning(MODELS.c.version)
        )
        return len(deleted.all())

    async def latest_model_version(self) -> int:
        return int(await self.s.scalar(select(func.max(MODELS.c.version))) or 0)

    async def model(self, version: int) -> StoredModel | None:
        t = MODELS.c
        row = (
            await self.s.execute(
                select(t.version, t.trained_at, t.customers, t["items"], t.data).where(
                    t.version == version
                )
            )
        ).first()
        return StoredModel(*row) if row is not None else None

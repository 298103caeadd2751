"""SQLAlchemy adapter of the bonus unit of work (SQLite and PostgreSQL).

The account row is the lock of every write to an account (SELECT ... FOR UPDATE on
PostgreSQL; the embedded SQLite engine has one connection, so units of work already take
turns). Before it, every write holds its customer's guard row shared (FOR SHARE), which an
erasure takes exclusively: the erasure waits for the writes in flight (and then deletes what
they committed, in statements that see it), and a write after it finds the customer erased.
A merge takes the source's guard exclusively the same way and then records `merged_into` on
it; reads of a customer's history, tier points and accruals include the rows of the customers
merged into it (`_members`, one indexed look-up). Ledger rows are only ever inserted, and
deleted only by an erasure.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any, cast

from sqlalchemy import Table, and_, bindparam, delete, distinct, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from libs.db import OutboxMessage, SqlUnitOfWork
from services.bonus.domain import Lot, Movement, Program, TierChange
from services.bonus.models import (
    AccountRow,
    BonusOutboxRow,
    ConfigVersionRow,
    ConversionRow,
    CustomerGuardRow,
    ExposureRow,
    LotRow,
    PendingReturnRow,
    ProgramRow,
    PromotionRow,
    PromotionUseRow,
    TransactionRow,
)
from services.bonus.ports import (
    AccountState,
    BonusUnitOfWork,
    Exposure,
    GroupFigures,
    PendingReturn,
    PromotionUse,
)
from services.bonus.promotions import Promotion, coupon_key

__all__ = ["SqlBonusUnitOfWork"]

ACCOUNTS = cast(Table, AccountRow.__table__)
GUARDS = cast(Table, CustomerGuardRow.__table__)
LOTS = cast(Table, LotRow.__table__)
PROGRAMS = cast(Table, ProgramRow.__table__)
LEDGER = cast(Table, TransactionRow.__table__)
PROMOTIONS = cast(Table, PromotionRow.__table__)
USES = cast(Table, PromotionUseRow.__table__)
CONFIG = cast(Table, ConfigVersionRow.__table__)
EXPOSURES = cast(Table, ExposureRow.__table__)
CONVERSIONS = cast(Table, ConversionRow.__table__)
PENDING_RETURNS = cast(Table, PendingReturnRow.__table__)
_PENDING_FIELDS = tuple(f.name for f in dataclasses.fields(PendingReturn))
_PROMOTION_COLUMNS = (
    PROMOTIONS.c.promotion_id,
    PROMOTIONS.c.program_id,
    PROMOTIONS.c.status,
    PROMOTIONS.c.priority,
    PROMOTIONS.c.created_at,
    PROMOTIONS.c.updated_at,
    PROMOTIONS.c.uses,
    PROMOTIONS.c.discount_given,
    PROMOTIONS.c.data,
)
_USE_FIELDS = (
    "promotion_id",
    "order_id",
    "program_id",
    "customer_id",
    "transaction_id",
    "discount",
    "bonus_points",
    "created_at",
)
# Columns that are Movement fields of the same name.
_FIELDS = (
    "transaction_id",
    "program_id",
    "customer_id",
    "type",
    "points",
    "order_id",
    "reversed_transaction_id",
    "fingerprint",
    "created_at",
    "available_at",
    "expires_at",
    "balance_after",
    "pending_after",
    "earned",
    "reverses",
    "unrecovered",
    "value_micros",
    "description",
)
_COLUMNS = [LEDGER.c[name] for name in _FIELDS] + [LEDGER.c.promotion_ids, LEDGER.c.idempotency_key]
_SET_REMAINING = (
    update(LOTS)
    .where(LOTS.c.lot_id == bindparam("b_id"))
    .values(remaining=bindparam("b_left"), pending=bindparam("b_pending"))
)


def _movement(row: Any) -> Movement:
    *values, promotions, key = row
    return Movement(
        **dict(zip(_FIELDS, values, strict=True)),
        idempotency_key=key or "",
        promotion_ids=tuple(p for p in (promotions or "").split(",") if p),
    )


def _row(movement: Movement) -> dict[str, Any]:
    row = {name: getattr(movement, name) for name in _FIELDS}
    row["idempotency_key"] = movement.idempotency_key or None  # NULLs never collide
    row["accrued_order_id"] = movement.order_id if movement.type == "ACCRUAL" else None
    row["promotion_ids"] = ",".join(movement.promotion_ids)
    return row


def _promotion(row: Any) -> Promotion:
    return Promotion.from_json(
        row.data,
        promotion_id=row.promotion_id,
        program_id=row.program_id,
        status=row.status,
        priority=row.priority,
        created_at=row.created_at,
        updated_at=row.updated_at,
        uses=row.uses,
        discount_given_micros=row.discount_given,
    )


def _promotion_row(p: Promotion) -> dict[str, Any]:
    return {
        "promotion_id": p.promotion_id,
        "program_id": p.program_id,
        "status": p.status,
        "priority": p.priority,
        "coupon_key": coupon_key(p.coupon_code) if p.coupon_code else None,
        "ends_at": p.end_time,
        "created_at": p.created_at,
        "updated_at": p.updated_at,
        "uses": p.uses,
        "discount_given": p.discount_given_micros,
        "data": p.to_json(),
    }


def _use(row: Any) -> PromotionUse:
    values = dict(zip(_USE_FIELDS, row, strict=True))
    values["discount_micros"] = values.pop("discount")
    return PromotionUse(**values)


class SqlBonusUnitOfWork(SqlUnitOfWork, BonusUnitOfWork):
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        encode_movement: Callable[[Movement], OutboxMessage],
        encode_program: Callable[[Program], OutboxMessage],
        encode_promotion: Callable[[Promotion], OutboxMessage],
        after_commit: Callable[[], None] | None = None,
        *,
        encode_tier: Callable[[TierChange], OutboxMessage],
    ) -> None:
        super().__init__(sessions, BonusOutboxRow, after_commit)
        self._encode_movement = encode_movement
        self._encode_program = encode_program
        self._encode_promotion = encode_promotion
        self._encode_tier = encode_tier

    # programs

    async def program(self, program_id: str, *, for_update: bool = False) -> Program | None:
        query = select(PROGRAMS.c.created_at, PROGRAMS.c.updated_at, PROGRAMS.c.data).where(
            PROGRAMS.c.program_id == program_id
        )
        if for_update:
            query = query.with_for_update()
        row = (await self.s.execute(query)).first()
        if row is None:
            return None
        return Program.from_json(program_id, row.data, row.created_at, row.updated_at)

    async def add_program(self, program: Program) -> None:
        await self.s.execute(
            self._insert(PROGRAMS),
            {
                "program_id": program.program_id,
                "created_at": program.created_at,
                "updated_at": program.updated_at,
                "data": program.to_json(),
            },
        )

    async def save_program(self, program: Program) -> None:
        await self.s.execute(
            update(PROGRAMS)
            .where(PROGRAMS.c.program_id == program.program_id)
            .values(updated_at=program.updated_at, data=program.to_json())
        )

    async def announce_program(self, program: Program) -> None:
        await self.write_outbox([self._encode_program(program)])
        await self._bump_version()

    async def _bump_version(self) -> None:
        await self.s.execute(
            update(CONFIG).where(CONFIG.c.id == 1).values(version=CONFIG.c.version + 1)
        )

    async def config_version(self) -> int:
        return int(await self.s.scalar(select(CONFIG.c.version).where(CONFIG.c.id == 1)) or 0)

    # promotions

    async def promotion(self, promotion_id: str, *, for_update: bool = False) -> Promotion | None:
        query = select(*_PROMOTION_COLUMNS).where(PROMOTIONS.c.promotion_id == promotion_id)
        if for_update:
            query = query.with_for_update()
        row = (await self.s.execute(query)).first()
        return _promotion(row) if row is not None else None

    async def add_promotion(self, promotion: Promotion) -> None:
        await self.s.execute(self._insert(PROMOTIONS), _promotion_row(promotion))

    async def save_promotion(self, promotion: Promotion) -> None:
        values = _promotion_row(promotion)
        del values["promotion_id"]
        await self.s.execute(
            update(PROMOTIONS)
            .where(PROMOTIONS.c.promotion_id == promotion.promotion_id)
            .values(**values)
        )

    async def announce_promotion(self, promotion: Promotion) -> None:
        await self.write_outbox([self._encode_promotion(promotion)])
        await self._bump_version()

    async def coupon_holder(self, program_id: str, coupon_key: str) -> str | None:
        return await self.s.scalar(
            select(PROMOTIONS.c.promotion_id).where(
                PROMOTIONS.c.program_id == program_id,
                PROMOTIONS.c.coupon_key == coupon_key,
                PROMOTIONS.c.status != "ENDED",
            )
        )

    async def promotions_page(
        self,
        program_id: str,
        status: str,
        after: tuple[int, float, str] | None,
        limit: int,
    ) -> list[Promotion]:
        p = PROMOTIONS.c
        query = (
            select(*_PROMOTION_COLUMNS)
            .where(p.program_id == program_id)
            .order_by(p.priority.desc(), p.created_at, p.promotion_id)
            .limit(limit)
        )
        if status:
            query = query.where(p.status == status)
        if after is not None:
            priority, created_at, promotion_id = after
            query = query.where(
                or_(
                    p.priority < priority,
                    (p.priority == priority) & (p.created_at > created_at),
                    (p.priority == priority)
                    & (p.created_at == created_at)
                    & (p.promotion_id > promotion_id),
                )
            )
        return [_promotion(row) for row in await self.s.execute(query)]

    async def schedule_ended(self, now: float, limit: int) -> list[str]:
        rows = await self.s.scalars(
            select(PROMOTIONS.c.promotion_id)
            .where(PROMOTIONS.c.status != "ENDED", PROMOTIONS.c.ends_at <= now)
            .limit(limit)
        )
        return list(rows)

    async def active_promotions(self, program_id: str) -> list[Promotion]:
        query = select(*_PROMOTION_COLUMNS).where(
            PROMOTIONS.c.program_id == program_id, PROMOTIONS.c.status == "ACTIVE"
        )
        return [_promotion(row) for row in await self.s.execute(query)]

    async def lock_promotions(self, promotion_ids: Sequence[str]) -> list[Promotion]:
        locked = []
        for promotion_id in sorted(set(promotion_ids)):  # one at a time, in id order
            promotion = await self.promotion(promotion_id, for_update=True)
            if promotion is not None:
                locked.append(promotion)
        return locked

    async def customer_uses(
        self, program_id: str, customer_id: str, promotion_ids: Sequence[str]
    ) -> dict[str, int]:
        if not promotion_ids:
            return {}
        # the uses of customers merged into this one are its uses (a merge does not reset a
        # per-customer limit)
        rows = await self.s.execute(
            select(USES.c.promotion_id, func.count())
            .where(
                USES.c.program_id == program_id,
                USES.c.customer_id.in_(await self._members(customer_id)),
                USES.c.promotion_id.in_(sorted(set(promotion_ids))),
            )
            .group_by(USES.c.promotion_id)
        )
        return {promotion_id: int(n) for promotion_id, n in rows}

    async def add_uses(self, uses: Sequence[PromotionUse]) -> None:
        if uses:
            await self.s.execute(
                self._insert(USES),
                [
                    {
                        **{name: getattr(u, name) for name in _USE_FIELDS if name != "discount"},
                        "discount": u.discount_micros,
                    }
                    for u in uses
                ],
            )

    async def uses_of(self, transaction_id: str) -> list[PromotionUse]:
        rows = await self.s.execute(
            select(*(USES.c[name] for name in _USE_FIELDS)).where(
                USES.c.transaction_id == transaction_id
            )
        )
        return [_use(row) for row in rows]

    async def drop_uses(self, transaction_id: str) -> None:
        await self.s.execute(delete(USES).where(USES.c.transaction_id == transaction_id))

    async def note_promotions(self, transaction_id: str, promotion_ids: Sequence[str]) -> None:
        await self.s.execute(
            update(LEDGER)
            .where(LEDGER.c.transaction_id == transaction_id)
            .values(promotion_ids=",".join(promotion_ids))
        )

    async def announce_tier(self, change: TierChange) -> None:
        await self.write_outbox([self._encode_tier(change)])

    async def tiered_accounts(
        self, after: tuple[str, str] | None, limit: int
    ) -> list[tuple[str, str, str]]:
        query = select(ACCOUNTS.c.program_id, ACCOUNTS.c.customer_id, ACCOUNTS.c.tier).where(
            ACCOUNTS.c.tier != ""
        )
        if after is not None:
            query = query.where(
                or_(
                    ACCOUNTS.c.program_id > after[0],
                    (ACCOUNTS.c.program_id == after[0]) & (ACCOUNTS.c.customer_id > after[1]),
                )
            )
        rows = await self.s.execute(
            query.order_by(ACCOUNTS.c.program_id, ACCOUNTS.c.customer_id).limit(limit)
        )
        return [(p, c, t) for p, c, t in rows]

    # customers

    async def _guard(self, customer_id: str, *, exclusive: bool) -> tuple[float | None, str | None]:
        """Creates the guard row if needed, locks it, and returns (erased_at, merged_into)."""
        await self.s.execute(
            self._insert(GUARDS)
            .values(customer_id=customer_id, erased_at=None)
            .on_conflict_do_nothing()
        )
        query = select(GUARDS.c.erased_at, GUARDS.c.merged_into).where(
            GUARDS.c.customer_id == customer_id
        )
        row = (await self.s.execute(query.with_for_update(read=not exclusive))).one()
        return row.erased_at, row.merged_into

    async def guard_customer(self, customer_id: str) -> bool:
        return await self._guard(customer_id, exclusive=False) == (None, None)

    async def erase_customer(self, customer_id: str, at: float) -> None:
        erased_at, _ = await self._guard(customer_id, exclusive=True)
        await self.s.execute(
            update(GUARDS)
            .where(GUARDS.c.customer_id == customer_id)
            .values(erased_at=erased_at or at)
        )
        for table in (LEDGER, LOTS, ACCOUNTS, USES, EXPOSURES, CONVERSIONS, PENDING_RETURNS):
            await self.s.execute(
                delete(table).where(table.c.customer_id.in_(await self._members(customer_id)))
            )

    async def _members(self, customer_id: str) -> list[str]:
        """The customer and the customers merged into it: whose ledger rows are its history.
        A list of ids (not a subquery), so the account index serves the queries using it."""
        merged = await self.s.scalars(
            select(GUARDS.c.customer_id).where(GUARDS.c.merged_into == customer_id)
        )
        return [customer_id, *merged]

    async def merged_into(self, customer_id: str) -> str | None:
        return await self.s.scalar(
            select(GUARDS.c.merged_into).where(GUARDS.c.customer_id == customer_id)
        )

    async def lock_merge(self, source_id: str, target_id: str) -> tuple[str | None, bool]:
        states = {
            c: await self._guard(c, exclusive=c == source_id)
            for c in sorted((source_id, target_id))
        }
        erased = any(erased_at is not None for erased_at, _ in states.values())
        return states[source_id][1], erased

    async def mark_merged(self, source_id: str, target_id: str) -> None:
        await self.s.execute(
            update(GUARDS)
            .where(or_(GUARDS.c.customer_id == source_id, GUARDS.c.merged_into == source_id))
            .values(merged_into=target_id)
        )

    async def move_lots(self, program_id: str, source_id: str, target_id: str) -> None:
        await self.s.execute(
            update(LOTS)
            .where(LOTS.c.program_id == program_id, LOTS.c.customer_id == source_id)
            .values(customer_id=target_id)
        )

    # accounts

    async def open_account(self, program_id: str, customer_id: str, at: float) -> bool:
        inserted = await self.s.execute(
            self._insert(ACCOUNTS)
            .values(
                program_id=program_id,
                customer_id=customer_id,
                enrolled_at=at,
                points=0,
                lifetime_points=0,
                tier="",
            )
            .on_conflict_do_nothing()
            .returning(ACCOUNTS.c.program_id)
        )
        return inserted.first() is not None

    async def _account(
        self, program_id: str, customer_id: str, for_update: bool
    ) -> AccountState | None:
        query = select(
            ACCOUNTS.c.enrolled_at, ACCOUNTS.c.points, ACCOUNTS.c.lifetime_points, ACCOUNTS.c.tier
        ).where(ACCOUNTS.c.program_id == program_id, ACCOUNTS.c.customer_id == customer_id)
        if for_update:
            query = query.with_for_update()
        row = (await self.s.execute(query)).first()
        return AccountState(*row) if row is not None else None

    async def lock_account(self, program_id: str, customer_id: str) -> AccountState | None:
        return await self._account(program_id, customer_id, for_update=True)

    async def account(self, program_id: str, customer_id: str) -> AccountState | None:
        return await self._account(program_id, customer_id, for_update=False)

    async def save_account(self, program_id: str, customer_id: str, state: AccountState) -> None:
        await self.s.execute(
            update(ACCOUNTS)
            .where(ACCOUNTS.c.program_id == program_id, ACCOUNTS.c.customer_id == customer_id)
            .values(points=state.points, lifetime_points=state.lifetime_points, tier=state.tier)
        )

    async def lots(self, program_id: str, customer_id: str) -> list[Lot]:
        rows = await self.s.execute(
            select(
                LOTS.c.lot_id,
                LOTS.c.remaining,
                LOTS.c.available_at,
                LOTS.c.expires_at,
                LOTS.c.pending,
            ).where(
                LOTS.c.program_id == program_id,
                LOTS.c.customer_id == customer_id,
                LOTS.c.remaining > 0,
            )
        )
        return [Lot(*row) for row in rows]

    async def due_for_expiry(self, now: float, limit: int) -> list[tuple[str, str]]:
        rows = await self.s.execute(
            select(LOTS.c.program_id, LOTS.c.customer_id)
            .where(
                LOTS.c.remaining > 0,
                or_(LOTS.c.expires_at <= now, LOTS.c.pending & (LOTS.c.available_at <= now)),
            )
            .distinct()
            .limit(limit)
        )
        return [(program_id, customer_id) for program_id, customer_id in rows]

    async def save_lots(self, program_id: str, customer_id: str, lots: Sequence[Lot]) -> None:
        if not lots:
            return
        ids = [lot.lot_id for lot in lots]
        known = set(
            (await self.s.scalars(select(LOTS.c.lot_id).where(LOTS.c.lot_id.in_(ids)))).all()
        )
        new = [
            {
                "lot_id": lot.lot_id,
                "program_id": program_id,
                "customer_id": customer_id,
                "remaining": lot.remaining,
                "available_at": lot.available_at,
                "expires_at": lot.expires_at,
                "pending": lot.pending,
            }
            for lot in lots
            if lot.lot_id not in known
        ]
        changed = [
            {"b_id": lot.lot_id, "b_left": lot.remaining, "b_pending": lot.pending}
            for lot in lots
            if lot.lot_id in known
        ]
        if new:
            await self.s.execute(self._insert(LOTS), new)
        if changed:
            await self.s.execute(_SET_REMAINING, changed)

    # the ledger

    async def append(self, movements: Sequence[Movement]) -> None:
        if not movements:
            return
        await self.s.execute(self._insert(LEDGER), [_row(m) for m in movements])
        await self.write_outbox([self._encode_movement(m) for m in movements])

    async def _one(self, *where: Any) -> Movement | None:
        row = (await self.s.execute(select(*_COLUMNS).where(*where))).first()
        return _movement(row) if row is not None else None

    async def by_key(self, program_id: str, idempotency_key: str) -> Movement | None:
        return await self._one(
            LEDGER.c.program_id == program_id, LEDGER.c.idempotency_key == idempotency_key
        )

    async def by_id(self, transaction_id: str) -> Movement | None:
        return await self._one(LEDGER.c.transaction_id == transaction_id)

    async def accrual_of(self, program_id: str, order_id: str) -> Movement | None:
        return await self._one(
            LEDGER.c.program_id == program_id, LEDGER.c.accrued_order_id == order_id
        )

    async def enrolled_programs(self, customer_id: str) -> list[tuple[str, float]]:
        rows = await self.s.execute(
            select(ACCOUNTS.c.program_id, ACCOUNTS.c.enrolled_at)
            .where(ACCOUNTS.c.customer_id == customer_id)
            .order_by(ACCOUNTS.c.program_id)
        )
        return [(program_id, enrolled_at) for program_id, enrolled_at in rows]

    async def open_accruals(self, program_id: str, customer_id: str) -> list[tuple[Movement, int]]:
        undone = (
            select(
                LEDGER.c.reversed_transaction_id.label("id"),
                func.sum(LEDGER.c.reverses).label("undone"),
            )
            .where(
                LEDGER.c.program_id == program_id,
                LEDGER.c.customer_id.in_(await self._members(customer_id)),
                LEDGER.c.type == "REVERSAL",
            )
            .group_by(LEDGER.c.reversed_transaction_id)
            .subquery()
        )
        left = LEDGER.c.points - func.coalesce(undone.c.undone, 0)
        rows = await self.s.execute(
            select(*_COLUMNS, left)
            .outerjoin(undone, undone.c.id == LEDGER.c.transaction_id)
            .where(
                LEDGER.c.program_id == program_id,
                LEDGER.c.customer_id.in_(await self._members(customer_id)),
                LEDGER.c.type == "ACCRUAL",
                left > 0,
            )
            .order_by(LEDGER.c.seq.desc())
        )
        return [(_movement(row[:-1]), int(row[-1])) for row in rows]

    async def reversed_so_far(self, transaction_id: str) -> int:
        total = await self.s.scalar(
            select(func.coalesce(func.sum(LEDGER.c.reverses), 0)).where(
                LEDGER.c.reversed_transaction_id == transaction_id, LEDGER.c.type == "REVERSAL"
            )
        )
        return int(total or 0)

    async def returned_value_so_far(self, transaction_id: str) -> int:
        total = await self.s.scalar(
            select(func.coalesce(func.sum(LEDGER.c.value_micros), 0)).where(
                LEDGER.c.reversed_transaction_id == transaction_id, LEDGER.c.type == "REVERSAL"
            )
        )
        return int(total or 0)

    async def add_pending_return(self, pending: PendingReturn) -> None:
        await self.s.execute(
            self._insert(PENDING_RETURNS),
            {name: getattr(pending, name) for name in _PENDING_FIELDS},
        )

    async def take_pending_returns(self, program_id: str, order_id: str) -> list[PendingReturn]:
        where = (PENDING_RETURNS.c.program_id == program_id, PENDING_RETURNS.c.order_id == order_id)
        rows = await self.s.execute(
            select(*(PENDING_RETURNS.c[name] for name in _PENDING_FIELDS))
            .where(*where)
            .order_by(PENDING_RETURNS.c.created_at, PENDING_RETURNS.c.transaction_id)
        )
        pending = [PendingReturn(*row) for row in rows]
        if pending:
            await self.s.execute(delete(PENDING_RETURNS).where(*where))
        return pending

    async def earned_since(self, program_id: str, customer_id: str, since: float) -> int:
        total = await self.s.scalar(
            select(func.coalesce(func.sum(LEDGER.c.earned), 0)).where(
                LEDGER.c.program_id == program_id,
                LEDGER.c.customer_id.in_(await self._members(customer_id)),
                LEDGER.c.created_at >= since,
            )
        )
        return int(total or 0)

    async def history(
        self, program_id: str, customer_id: str, before: int | None, limit: int
    ) -> list[tuple[int, Movement]]:
        query = (
            select(LEDGER.c.seq, *_COLUMNS)
            .where(
                LEDGER.c.program_id == program_id,
                LEDGER.c.customer_id.in_(await self._members(customer_id)),
            )
            .order_by(LEDGER.c.seq.desc())
            .limit(limit)
        )
        if before is not None:
            query = query.where(LEDGER.c.seq < before)
        return [(row[0], _movement(row[1:])) for row in await self.s.execute(query)]

    # holdout

    async def add_exposures(self, exposures: Sequence[Exposure]) -> None:
        # Quotes note exposures in memory and a flush may come after the customer's erasure:
        # hold the customers' guards shared (as every write does, in key order) and leave out
        # the erased ones, so an erasure either waits for this flush and deletes what it wrote,
        # or came first and nothing of the customer is written.
        customers = sorted({e.customer_id for e in exposures})
        if customers:
            await self.s.execute(
                self._insert(GUARDS).on_conflict_do_nothing(),
                [{"customer_id": c, "erased_at": None} for c in customers],
            )
            guards = (
                await self.s.execute(
                    select(GUARDS.c.customer_id, GUARDS.c.erased_at, GUARDS.c.merged_into)
                    .where(GUARDS.c.customer_id.in_(customers))
                    .order_by(GUARDS.c.customer_id)
                    .with_for_update(read=True)
                )
            ).all()
            erased = {c for c, erased_at, _ in guards if erased_at is not None}
            # a customer merged into another lives on as that one: gone when it is erased
            owners = sorted({t for _, _, t in guards if t is not None})
            if owners:
                rows = await self.s.execute(
                    select(GUARDS.c.customer_id, GUARDS.c.erased_at)
                    .where(GUARDS.c.customer_id.in_(owners))
                    .order_by(GUARDS.c.customer_id)
                    .with_for_update(read=True)
                )
                gone = {c for c, erased_at in rows if erased_at is not None}
                erased |= {c for c, _, t in guards if t in gone}
            exposures = [e for e in exposures if e.customer_id not in erased]
        if exposures:
            await self.s.execute(
                self._insert(EXPOSURES).on_conflict_do_nothing(),
                [
                    {
                        "promotion_id": e.promotion_id,
                        "customer_id": e.customer_id,
                        "program_id": e.program_id,
                        "held_out": e.held_out,
                        "first_seen_at": e.at,
                    }
                    for e in exposures
                ],
            )

    async def exposed(self, program_id: str, customer_id: str) -> bool:
        found = await self.s.scalar(
            select(EXPOSURES.c.promotion_id)
            .where(EXPOSURES.c.program_id == program_id, EXPOSURES.c.customer_id == customer_id)
            .limit(1)
        )
        return found is not None

    async def add_conversion(
        self, program_id: str, order_id: str, customer_id: str, total_micros: int, at: float
    ) -> None:
        await self.s.execute(
            self._insert(CONVERSIONS)
            .values(
                program_id=program_id,
                order_id=order_id,
                customer_id=customer_id,
                total=total_micros,
                created_at=at,
            )
            .on_conflict_do_nothing()
        )

    async def holdout_report(self, promotion_id: str) -> dict[bool, GroupFigures]:
        e, c = EXPOSURES.c, CONVERSIONS.c
        exposed = await self.s.execute(
            select(e.held_out, func.count())
            .where(e.promotion_id == promotion_id)
            .group_by(e.held_out)
        )
        customers = {bool(held): int(n) for held, n in exposed}
        bought = await self.s.execute(
            select(
                e.held_out,
                func.count(distinct(c.customer_id)),
                func.count(),
                func.coalesce(func.sum(c.total), 0),
            )
            .select_from(
                EXPOSURES.join(
                    CONVERSIONS,
                    and_(
                        c.program_id == e.program_id,
                        c.customer_id == e.customer_id,
                        c.created_at >= e.first_seen_at,
                    ),
                )
            )
            .where(e.promotion_id == promotion_id)
            .group_by(e.held_out)
        )
        figures = {held: GroupFigures(customers.get(held, 0)) for held in (False, True)}
        for held, converted, orders, revenue in bought:
            figures[bool(held)] = GroupFigures(
                customers.get(bool(held), 0), int(converted), int(orders), int(revenue)
            )
        return figures

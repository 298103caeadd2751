"""An in-memory adapter of the bonus unit of work, for unit tests: no I/O.

It has the semantics of `services.bonus.repository.SqlBonusUnitOfWork` that the handlers rely
on: units of work take turns (one at a time, as the account row lock makes writes to one
account), each works on a private copy of the shared store that replaces it only on commit,
and the ledger's unique keys (a key per program, an accrued order per program) raise
`libs.errors.Conflict` on a duplicate, as the tables' constraints do.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from libs.errors import Conflict, Unavailable
from services.bonus.domain import Lot, Movement, Program, TierChange
from services.bonus.ports import (
    AccountState,
    BonusUnitOfWork,
    Exposure,
    GroupFigures,
    PendingReturn,
    ProfileTraits,
    PromotionUse,
)
from services.bonus.promotions import Promotion, coupon_key
from tests.unit.fake_store import FakeStore, FakeUnitOfWork
from tests.unit.signal_fakes import FakeSignals

__all__ = ["FakeBonusStore", "FakeBonusUnitOfWork", "FakeSignals", "FakeTraits"]

Account = tuple[str, str]  # (program_id, customer_id)


@dataclass
class _State:
    programs: dict[str, Program] = field(default_factory=dict)
    accounts: dict[Account, AccountState] = field(default_factory=dict)
    lots: dict[str, tuple[Account, Lot]] = field(default_factory=dict)
    ledger: list[Movement] = field(default_factory=list)
    published: list[str] = field(default_factory=list)  # outbox: "program:<id>" / tx ids
    tiers: list[TierChange] = field(default_factory=list)  # outbox: TierChanged
    erased: set[str] = field(default_factory=set)
    promotions: dict[str, Promotion] = field(default_factory=dict)
    uses: list[PromotionUse] = field(default_factory=list)
    version: int = 0
    exposures: dict[tuple[str, str], Exposure] = field(default_factory=dict)
    conversions: dict[tuple[str, str], tuple[str, int, float]] = field(default_factory=dict)
    merged: dict[str, str] = field(default_factory=dict)  # source -> the customer it lives on as
    pending_returns: list[PendingReturn] = field(default_factory=list)


@dataclass
class FakeBonusStore(FakeStore[_State]):
    state: _State = field(default_factory=_State)


class FakeBonusUnitOfWork(FakeUnitOfWork[_State], BonusUnitOfWork):
    async def program(self, program_id: str, *, for_update: bool = False) -> Program | None:
        return self._s.programs.get(program_id)

    async def add_program(self, program: Program) -> None:
        if program.program_id in self._s.programs:
            raise Conflict(program.program_id)
        self._s.programs[program.program_id] = program

    async def save_program(self, program: Program) -> None:
        self._s.programs[program.program_id] = program

    async def announce_program(self, program: Program) -> None:
        self._s.published.append(f"program:{program.program_id}")
        self._s.version += 1

    async def config_version(self) -> int:
        return self._s.version

    async def promotion(self, promotion_id: str, *, for_update: bool = False) -> Promotion | None:
        return self._s.promotions.get(promotion_id)

    async def add_promotion(self, promotion: Promotion) -> None:
        if promotion.promotion_id in self._s.promotions:
            raise Conflict(promotion.promotion_id)
        self._s.promotions[promotion.promotion_id] = promotion

    async def save_promotion(self, promotion: Promotion) -> None:
        self._s.promotions[promotion.promotion_id] = promotion

    async def announce_promotion(self, promotion: Promotion) -> None:
        self._s.published.append(f"promotion:{promotion.promotion_id}:{promotion.status}")
        self._s.version += 1

    async def coupon_holder(self, program_id: str, coupon_key_: str) -> str | None:
        return next(
            (
                p.promotion_id
                for p in self._s.promotions.values()
                if p.program_id == program_id
                and p.status != "ENDED"
                and p.coupon_code
                and coupon_key(p.coupon_code) == coupon_key_
            ),
            None,
        )

    async def promotions_page(
        self, program_id: str, status: str, after: tuple[int, float, str] | None, limit: int
    ) -> list[Promotion]:
        def position(p: Promotion) -> tuple[int, float, str]:
            return (-p.priority, p.created_at, p.promotion_id)

        rows = sorted(
            (
                p
                for p in self._s.promotions.values()
                if p.program_id == program_id and (not status or p.status == status)
            ),
            key=position,
        )
        if after is not None:
            start = (-after[0], after[1], after[2])
            rows = [p for p in rows if position(p) > start]
        return rows[:limit]

    async def schedule_ended(self, now: float, limit: int) -> list[str]:
        return sorted(
            p.promotion_id
            for p in self._s.promotions.values()
            if p.status != "ENDED" and p.end_time is not None and p.end_time <= now
        )[:limit]

    async def active_promotions(self, program_id: str) -> list[Promotion]:
        return [
            p
            for p in self._s.promotions.values()
            if p.program_id == program_id and p.status == "ACTIVE"
        ]

    async def lock_promotions(self, promotion_ids: Sequence[str]) -> list[Promotion]:
        return [
            self._s.promotions[i] for i in sorted(set(promotion_ids)) if i in self._s.promotions
        ]

    async def customer_uses(
        self, program_id: str, customer_id: str, promotion_ids: Sequence[str]
    ) -> dict[str, int]:
        counts: dict[str, int] = {}
        members = self._members(customer_id)
        for u in self._s.uses:
            if (
                u.program_id == program_id
                and u.customer_id in members
                and (u.promotion_id in promotion_ids)
            ):
                counts[u.promotion_id] = counts.get(u.promotion_id, 0) + 1
        return counts

    async def add_uses(self, uses: Sequence[PromotionUse]) -> None:
        for u in uses:
            if any(
                (v.promotion_id, v.order_id) == (u.promotion_id, u.order_id) for v in self._s.uses
            ):
                raise Conflict(u.order_id)
            self._s.uses.append(u)

    async def add_exposures(self, exposures: Sequence[Exposure]) -> None:
        for e in exposures:
            owner = self._s.merged.get(e.customer_id)
            if e.customer_id not in self._s.erased and owner not in self._s.erased:
                self._s.exposures.setdefault((e.promotion_id, e.customer_id), e)

    async def exposed(self, program_id: str, customer_id: str) -> bool:
        return any(
            (e.program_id, e.customer_id) == (program_id, customer_id)
            for e in self._s.exposures.values()
        )

    async def add_conversion(
        self, program_id: str, order_id: str, customer_id: str, total_micros: int, at: float
    ) -> None:
        self._s.conversions.setdefault((program_id, order_id), (customer_id, total_micros, at))

    async def holdout_report(self, promotion_id: str) -> dict[bool, GroupFigures]:
        out = {}
        for held in (False, True):
            group = [
                e
                for e in self._s.exposures.values()
                if e.promotion_id == promotion_id and e.held_out == held
            ]
            orders = [
                (customer, total)
                for e in group
                for (program_id, _), (customer, total, at) in self._s.conversions.items()
                if (program_id, customer) == (e.program_id, e.customer_id) and at >= e.at
            ]
            out[held] = GroupFigures(
                len(group), len({c for c, _ in orders}), len(orders), sum(t for _, t in orders)
            )
        return out

    async def uses_of(self, transaction_id: str) -> list[PromotionUse]:
        return [u for u in self._s.uses if u.transaction_id == transaction_id]

    async def drop_uses(self, transaction_id: str) -> None:
        self._s.uses = [u for u in self._s.uses if u.transaction_id != transaction_id]

    async def note_promotions(self, transaction_id: str, promotion_ids: Sequence[str]) -> None:
        self._s.ledger = [
            dataclasses.replace(m, promotion_ids=tuple(promotion_ids))
            if m.transaction_id == transaction_id
            else m
            for m in self._s.ledger
        ]

    async def announce_tier(self, change: TierChange) -> None:
        self._s.tiers.append(change)

    async def tiered_accounts(
        self, after: tuple[str, str] | None, limit: int
    ) -> list[tuple[str, str, str]]:
        keys = sorted(k for k, state in self._s.accounts.items() if state.tier)
        keys = [k for k in keys if after is None or k > after]
        return [(p, c, self._s.accounts[p, c].tier) for p, c in keys[:limit]]

    async def guard_customer(self, customer_id: str) -> bool:
        return customer_id not in self._s.erased and customer_id not in self._s.merged

    def _members(self, customer_id: str) -> set[str]:
        return {customer_id, *(s for s, t in self._s.merged.items() if t == customer_id)}

    async def erase_customer(self, customer_id: str, at: float) -> None:
        s = self._s
        gone = self._members(customer_id)
        s.erased.add(customer_id)
        s.accounts = {k: v for k, v in s.accounts.items() if k[1] not in gone}
        s.lots = {k: v for k, v in s.lots.items() if v[0][1] not in gone}
        s.ledger = [m for m in s.ledger if m.customer_id not in gone]
        s.uses = [u for u in s.uses if u.customer_id not in gone]
        s.exposures = {k: e for k, e in s.exposures.items() if e.customer_id not in gone}
        s.conversions = {k: v for k, v in s.conversions.items() if v[0] not in gone}
        s.pending_returns = [r for r in s.pending_returns if r.customer_id not in gone]

    async def add_pending_return(self, pending: PendingReturn) -> None:
        self._s.pending_returns.append(pending)

    async def take_pending_returns(self, program_id: str, order_id: str) -> list[PendingReturn]:
        s = self._s
        ours = [
            r for r in s.pending_returns if (r.program_id, r.order_id) == (program_id, order_id)
        ]
        s.pending_returns = [r for r in s.pending_returns if r not in ours]
        return sorted(ours, key=lambda r: (r.created_at, r.transaction_id))

    async def merged_into(self, customer_id: str) -> str | None:
        return self._s.merged.get(customer_id)

    async def lock_merge(self, source_id: str, target_id: str) -> tuple[str | None, bool]:
        erased = bool({source_id, target_id} & self._s.erased)
        return self._s.merged.get(source_id), erased

    async def mark_merged(self, source_id: str, target_id: str) -> None:
        for s, t in list(self._s.merged.items()):
            if t == source_id:
                self._s.merged[s] = target_id
        self._s.merged[source_id] = target_id

    async def move_lots(self, program_id: str, source_id: str, target_id: str) -> None:
        for lot_id, (owner, lot) in list(self._s.lots.items()):
            if owner == (program_id, source_id):
                self._s.lots[lot_id] = ((program_id, target_id), lot)

    async def open_account(self, program_id: str, customer_id: str, at: float) -> bool:
        if (program_id, customer_id) in self._s.accounts:
            return False
        self._s.accounts[program_id, customer_id] = AccountState(at, 0, 0)
        return True

    async def lock_account(self, program_id: str, customer_id: str) -> AccountState | None:
        return self._s.accounts.get((program_id, customer_id))

    async def account(self, program_id: str, customer_id: str) -> AccountState | None:
        return self._s.accounts.get((program_id, customer_id))

    async def save_account(self, program_id: str, customer_id: str, state: AccountState) -> None:
        self._s.accounts[program_id, customer_id] = state

    async def lots(self, program_id: str, customer_id: str) -> list[Lot]:
        return [
            dataclasses.replace(lot)
            for owner, lot in self._s.lots.values()
            if owner == (program_id, customer_id) and lot.remaining > 0
        ]

    async def due_for_expiry(self, now: float, limit: int) -> list[tuple[str, str]]:
        due = {
            owner
            for owner, lot in self._s.lots.values()
            if lot.remaining > 0 and (lot.expired(now) or (lot.pending and lot.available_at <= now))
        }
        return sorted(due)[:limit]

    async def save_lots(self, program_id: str, customer_id: str, lots: Sequence[Lot]) -> None:
        for lot in lots:
            self._s.lots[lot.lot_id] = ((program_id, customer_id), dataclasses.replace(lot))

    async def append(self, movements: Sequence[Movement]) -> None:
        for m in movements:
            if m.idempotency_key and await self.by_key(m.program_id, m.idempotency_key):
                raise Conflict(m.idempotency_key)
            if m.type == "ACCRUAL" and await self.accrual_of(m.program_id, m.order_id):
                raise Conflict(m.order_id)
            self._s.ledger.append(m)
            self._s.published.append(m.transaction_id)

    async def by_key(self, program_id: str, idempotency_key: str) -> Movement | None:
        return next(
            (
                m
                for m in self._s.ledger
                if (m.program_id, m.idempotency_key) == (program_id, idempotency_key)
            ),
            None,
        )

    async def by_id(self, transaction_id: str) -> Movement | None:
        return next((m for m in self._s.ledger if m.transaction_id == transaction_id), None)

    async def accrual_of(self, program_id: str, order_id: str) -> Movement | None:
        return next(
            (
                m
                for m in self._s.ledger
                if m.type == "ACCRUAL" and (m.program_id, m.order_id) == (program_id, order_id)
            ),
            None,
        )

    async def enrolled_programs(self, customer_id: str) -> list[tuple[str, float]]:
        return sorted(
            (p, s.enrolled_at) for (p, c), s in self._s.accounts.items() if c == customer_id
        )

    async def open_accruals(self, program_id: str, customer_id: str) -> list[tuple[Movement, int]]:
        out = []
        members = self._members(customer_id)
        for m in reversed(self._s.ledger):
            if m.type == "ACCRUAL" and m.program_id == program_id and m.customer_id in members:
                left = m.points - await self.reversed_so_far(m.transaction_id)
                if left > 0:
                    out.append((m, left))
        return out

    async def returned_value_so_far(self, transaction_id: str) -> int:
        return sum(
            m.value_micros
            for m in self._s.ledger
            if m.type == "REVERSAL" and m.reversed_transaction_id == transaction_id
        )

    async def reversed_so_far(self, transaction_id: str) -> int:
        return sum(
            m.reverses
            for m in self._s.ledger
            if m.type == "REVERSAL" and m.reversed_transaction_id == transaction_id
        )

    async def earned_since(self, program_id: str, customer_id: str, since: float) -> int:
        members = self._members(customer_id)
        return sum(
            m.earned
            for m in self._s.ledger
            if m.program_id == program_id and m.customer_id in members and m.created_at >= since
        )

    async def history(
        self, program_id: str, customer_id: str, before: int | None, limit: int
    ) -> list[tuple[int, Movement]]:
        members = self._members(customer_id)
        rows = [
            (i + 1, m)
            for i, m in enumerate(self._s.ledger)
            if m.program_id == program_id
            and m.customer_id in members
            and (before is None or i + 1 < before)
        ]
        return rows[::-1][:limit]


@dataclass
class FakeTraits(ProfileTraits):
    """The profile's traits per customer (`known`: customers profile has; None: all);
    `down` makes every write raise Unavailable, as the adapter does when profile is down."""

    traits: dict[str, dict[str, str]] = field(default_factory=dict)
    known: set[str] | None = None
    down: bool = False

    async def set_traits(self, customer_id: str, traits: Mapping[str, str | None]) -> bool:
        if self.down:
            raise Unavailable("profile is down")
        if self.known is not None and customer_id not in self.known:
            return False
        held = self.traits.setdefault(customer_id, {})
        for key, value in traits.items():
            if value is None:
                held.pop(key, None)
            else:
                held[key] = value
        return True

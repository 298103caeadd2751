"""What the bonus handlers need from storage: one unit of work (a transaction) at a time.

The SQL adapter is `services.bonus.repository.SqlBonusUnitOfWork`; the unit tests use an
in-memory fake (tests/unit/bonus_fakes.py).
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from libs.ports import UnitOfWork
from libs.signals import CustomerSignals  # re-exported: the port bonus asks segmentation by
from services.bonus.domain import Lot, Movement, Program, TierChange
from services.bonus.promotions import Promotion

__all__ = [
    "AccountState",
    "BonusUnitOfWork",
    "CustomerSignals",
    "Exposure",
    "GroupFigures",
    "PendingReturn",
    "ProfileTraits",
    "PromotionUse",
]


@dataclass(frozen=True)
class AccountState:
    enrolled_at: float
    points: int  # the ledger's sum: balance + pending
    lifetime_points: int
    tier: str = ""  # as last announced (TierChanged)


@dataclass(frozen=True)
class PromotionUse:
    """A promotion's use counted by an accrual (one per promotion and order)."""

    promotion_id: str
    order_id: str
    program_id: str
    customer_id: str
    transaction_id: str
    discount_micros: int
    bonus_points: int
    created_at: float


@dataclass(frozen=True)
class PendingReturn:
    """A return taken before the accrual of the order it names (two consumers, a backlog):
    recorded with its keyed 0-point REVERSAL (`transaction_id`), it waits for that order's
    accrual, which takes back its share at once (services/bonus/purchases.py)."""

    transaction_id: str  # the return's own REVERSAL (the one its key answers with)
    program_id: str
    order_id: str  # the order it returns (the accrual it waits for)
    customer_id: str
    return_order_id: str  # the return's own order id (its REVERSALs carry it)
    value_micros: int  # what the returned lines are worth (order_value)
    points: int  # what they earn at the base rate (for an accrual without a value)
    created_at: float


@dataclass(frozen=True)
class Exposure:
    promotion_id: str
    customer_id: str
    program_id: str
    held_out: bool
    at: float


@dataclass(frozen=True)
class GroupFigures:
    """Treated or held-out customers of a promotion: how many were exposed, how many bought
    after their first exposure, their orders since then and those orders' total."""

    customers: int = 0
    converted: int = 0
    orders: int = 0
    revenue_micros: int = 0


class BonusUnitOfWork(UnitOfWork):
    # programs
    @abc.abstractmethod
    async def program(self, program_id: str, *, for_update: bool = False) -> Program | None: ...

    @abc.abstractmethod
    async def add_program(self, program: Program) -> None: ...

    @abc.abstractmethod
    async def save_program(self, program: Program) -> None: ...

    # customers: every write to a customer's accounts first holds its guard (shared)
    @abc.abstractmethod
    async def guard_customer(self, customer_id: str) -> bool:
        """Holds the customer's guard until commit; False when the customer was erased."""

    @abc.abstractmethod
    async def erase_customer(self, customer_id: str, at: float) -> None:
        """Holds the guard exclusively, marks the customer erased and deletes its accounts,
        lots and ledger rows in every program (and those of customers merged into it)."""

    # merges: the source's guard names the target; reads of the target's history, tier
    # points and accruals include the rows of the customers merged into it
    @abc.abstractmethod
    async def merged_into(self, customer_id: str) -> str | None:
        """The customer a merged one lives on as (None: not merged)."""

    @abc.abstractmethod
    async def lock_merge(self, source_id: str, target_id: str) -> tuple[str | None, bool]:
        """Holds both customers' guards until commit, in key order, the source's exclusively
        (writes in flight on it finish first; later ones see the merge). Returns what the
        source was merged into already (None) and whether either customer was erased."""

    @abc.abstractmethod
    async def mark_merged(self, source_id: str, target_id: str) -> None:
        """The source lives on as the target, and so do the customers merged into it."""

    @abc.abstractmethod
    async def move_lots(self, program_id: str, source_id: str, target_id: str) -> None:
        """The source's lots in the program become the target's, as they are."""

    # accounts: every write locks the account row first (`lock_account`) and keeps it locked
    # until commit, so two callers on one account (in one process or two) take turns
    @abc.abstractmethod
    async def open_account(self, program_id: str, customer_id: str, at: float) -> bool:
        """Creates the account unless it exists; True when this call created it."""

    @abc.abstractmethod
    async def lock_account(self, program_id: str, customer_id: str) -> AccountState | None: ...

    @abc.abstractmethod
    async def account(self, program_id: str, customer_id: str) -> AccountState | None:
        """Without a lock, for reads."""

    @abc.abstractmethod
    async def save_account(
        self, program_id: str, customer_id: str, state: AccountState
    ) -> None: ...

    @abc.abstractmethod
    async def lots(self, program_id: str, customer_id: str) -> list[Lot]:
        """The account's lots that still hold points."""

    @abc.abstractmethod
    async def due_for_expiry(self, now: float, limit: int) -> list[tuple[str, str]]:
        """(program_id, customer_id) of accounts holding points past their expiry, or pending
        points whose return window has ended (their ACTIVATION not recorded yet)."""

    @abc.abstractmethod
    async def save_lots(self, program_id: str, customer_id: str, lots: Sequence[Lot]) -> None:
        """Inserts new lots and writes the remaining points of changed ones."""

    # the ledger: appended to, never changed
    @abc.abstractmethod
    async def append(self, movements: Sequence[Movement]) -> None:
        """Appends movements and publishes them (outbox) in this transaction."""

    @abc.abstractmethod
    async def by_key(self, program_id: str, idempotency_key: str) -> Movement | None: ...

    @abc.abstractmethod
    async def by_id(self, transaction_id: str) -> Movement | None: ...

    @abc.abstractmethod
    async def accrual_of(self, program_id: str, order_id: str) -> Movement | None: ...

    @abc.abstractmethod
    async def enrolled_programs(self, customer_id: str) -> list[tuple[str, float]]:
        """(program_id, enrolled_at) of the customer's accounts."""

    @abc.abstractmethod
    async def open_accruals(self, program_id: str, customer_id: str) -> list[tuple[Movement, int]]:
        """The account's ACCRUALs that still have points to reverse, newest first, each with
        what is left to reverse of it (its points minus what its reversals undid)."""

    @abc.abstractmethod
    async def reversed_so_far(self, transaction_id: str) -> int:
        """How much of a transaction its reversals have undone."""

    @abc.abstractmethod
    async def returned_value_so_far(self, transaction_id: str) -> int:
        """The value (micros, as order_value weighs it) of the returns recorded against an
        accrual so far: the sum of its return REVERSALs' value_micros."""

    @abc.abstractmethod
    async def add_pending_return(self, pending: PendingReturn) -> None:
        """Records a return that waits for its order's accrual."""

    @abc.abstractmethod
    async def take_pending_returns(self, program_id: str, order_id: str) -> list[PendingReturn]:
        """Removes and returns the returns waiting for the order's accrual, oldest first (the
        accrual's unit of work holds the account's lock the returns were recorded under)."""

    @abc.abstractmethod
    async def earned_since(self, program_id: str, customer_id: str, since: float) -> int:
        """Points counted towards tiers from `since` on."""

    @abc.abstractmethod
    async def history(
        self, program_id: str, customer_id: str, before: int | None, limit: int
    ) -> list[tuple[int, Movement]]:
        """(position, movement), newest first, strictly before `before` when given."""

    @abc.abstractmethod
    async def announce_program(self, program: Program) -> None:
        """Publishes ProgramChanged (outbox) and moves the configuration version, in this
        transaction."""

    # tiers
    @abc.abstractmethod
    async def announce_tier(self, change: TierChange) -> None:
        """Publishes TierChanged (outbox) in this transaction."""

    @abc.abstractmethod
    async def tiered_accounts(
        self, after: tuple[str, str] | None, limit: int
    ) -> list[tuple[str, str, str]]:
        """(program_id, customer_id, tier) of accounts holding a tier, in key order, strictly
        after `after`."""

    # promotions (services/bonus/offers.py); every change to one is announced
    @abc.abstractmethod
    async def promotion(
        self, promotion_id: str, *, for_update: bool = False
    ) -> Promotion | None: ...

    @abc.abstractmethod
    async def add_promotion(self, promotion: Promotion) -> None: ...

    @abc.abstractmethod
    async def save_promotion(self, promotion: Promotion) -> None:
        """Writes every field, the counters included (the caller holds the row lock)."""

    @abc.abstractmethod
    async def announce_promotion(self, promotion: Promotion) -> None:
        """Publishes PromotionChanged (outbox) and moves the configuration version, in this
        transaction."""

    @abc.abstractmethod
    async def coupon_holder(self, program_id: str, coupon_key: str) -> str | None:
        """The promotion of the program, not ENDED, that holds the coupon key."""

    @abc.abstractmethod
    async def promotions_page(
        self,
        program_id: str,
        status: str,
        after: tuple[int, float, str] | None,
        limit: int,
    ) -> list[Promotion]:
        """Priority descending, then created_at, then id; strictly after the
        (priority, created_at, promotion_id) position when given; `status` "" for all."""

    @abc.abstractmethod
    async def active_promotions(self, program_id: str) -> list[Promotion]: ...

    @abc.abstractmethod
    async def schedule_ended(self, now: float, limit: int) -> list[str]:
        """Promotions not ENDED whose schedule has ended by `now`."""

    @abc.abstractmethod
    async def config_version(self) -> int:
        """Moves with every program or promotion change (the caches' safety net)."""

    @abc.abstractmethod
    async def lock_promotions(self, promotion_ids: Sequence[str]) -> list[Promotion]:
        """Locks the promotions' rows in id order (the counters) and returns those that exist."""

    @abc.abstractmethod
    async def customer_uses(
        self, program_id: str, customer_id: str, promotion_ids: Sequence[str]
    ) -> dict[str, int]:
        """How many uses of each promotion the customer has, the uses of customers merged into
        it included (indexed reads)."""

    @abc.abstractmethod
    async def add_uses(self, uses: Sequence[PromotionUse]) -> None: ...

    @abc.abstractmethod
    async def uses_of(self, transaction_id: str) -> list[PromotionUse]:
        """The uses an accrual counted."""

    @abc.abstractmethod
    async def drop_uses(self, transaction_id: str) -> None:
        """Releases the uses an accrual counted (its reversal)."""

    @abc.abstractmethod
    async def note_promotions(self, transaction_id: str, promotion_ids: Sequence[str]) -> None:
        """Records on an accrual the promotions whose uses were counted against it after it
        was written (a late quote)."""

    # holdout: exposures (batched from quotes) and the orders of exposed customers
    @abc.abstractmethod
    async def add_exposures(self, exposures: Sequence[Exposure]) -> None:
        """Inserts those not recorded yet (the first exposure of a pair stays)."""

    @abc.abstractmethod
    async def exposed(self, program_id: str, customer_id: str) -> bool:
        """Whether the customer was exposed to some promotion of the program."""

    @abc.abstractmethod
    async def add_conversion(
        self, program_id: str, order_id: str, customer_id: str, total_micros: int, at: float
    ) -> None:
        """Records an exposed customer's order (once per order)."""

    @abc.abstractmethod
    async def holdout_report(self, promotion_id: str) -> dict[bool, GroupFigures]:
        """held_out -> the group's figures (both keys always present)."""


class ProfileTraits(abc.ABC):
    """Where bonus publishes what it knows about a customer: the profile service's SetTraits
    in the namespace `bonus`. The gRPC adapter is `services.bonus.traits.ProfileTraitsWriter`;
    the unit tests use a fake (tests/unit/bonus_fakes.py)."""

    @abc.abstractmethod
    async def set_traits(self, customer_id: str, traits: Mapping[str, str | None]) -> bool:
        """Writes the traits (None removes one). False when profile does not know the
        customer; raises libs.errors.Unavailable when profile cannot be reached, so that the
        caller (a bus consumer) tries again later instead of losing the write."""

"""Loyalty programs and the ledger arithmetic, free of storage and of gRPC.

Points live in an append-only ledger of `Movement`s; an account's `points` is their sum. What
is left of each credit is a `Lot` (available from `available_at`, until `expires_at`), so a
spend takes the earliest-expiring available points first and a balance is the sum of the
available lots. `Ledger` holds one account's lots while its row is locked and turns a request
into movements; it never lets the spendable balance go below zero.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from decimal import ROUND_FLOOR, Context, Decimal
from typing import Any

from libs.errors import FailedPrecondition

__all__ = [
    "DAY",
    "EXPIRING_SOON_DAYS",
    "MAX_POINTS",
    "REVERSIBLE",
    "AccountView",
    "Ledger",
    "Lot",
    "Movement",
    "OrderLine",
    "Program",
    "Tier",
    "TierChange",
    "TierStanding",
    "account_view",
    "new_id",
    "order_points",
    "order_value",
    "return_part",
    "returned_share",
    "returns_all",
    "segment_multiplier",
    "tier_standing",
]

DAY = 86_400.0
EXPIRING_SOON_DAYS = 30
DEFAULT_TIER_PERIOD_DAYS = 365
# An account never holds more: every sum of points stays far inside int64.
MAX_POINTS = 10**15
REVERSIBLE = frozenset({"WELCOME", "ACCRUAL", "REDEMPTION"})
# Exact decimal arithmetic for points: rates arrive as doubles, and 0.3 points per unit must
# earn 3 points on 10 units, not 2 (the double nearest 0.3 is below it).
_EXACT = Context(prec=60)


def new_id() -> str:
    return uuid.uuid4().hex


def _decimal(rate: float) -> Decimal:
    return Decimal(repr(rate))  # the shortest decimal that reads back as this double


@dataclass(frozen=True)
class Tier:
    name: str
    threshold_points: int
    discount_percent: float = 0.0
    points_multiplier: float = 0.0  # 0 means 1.0

    @property
    def multiplier(self) -> float:
        return self.points_multiplier or 1.0


@dataclass(frozen=True)
class Program:
    program_id: str
    name: str
    currency: str
    points_per_unit: float
    category_multipliers: dict[str, float] = field(default_factory=dict)
    segment_multipliers: dict[str, float] = field(default_factory=dict)
    tiers: tuple[Tier, ...] = ()
    tier_period_days: int = 0
    welcome_points: int = 0
    expiry_days: int = 0
    pending_days: int = 0
    point_value_micros: int = 0
    max_redeem_percent: float = 0.0
    created_at: float = 0.0
    updated_at: float = 0.0

    @property
    def tier_period(self) -> float:
        return (self.tier_period_days or DEFAULT_TIER_PERIOD_DAYS) * DAY

    def expiry_after(self, available_at: float) -> float | None:
        return available_at + self.expiry_days * DAY if self.expiry_days else None

    def to_json(self) -> dict[str, Any]:
        """The stored document: every field but the id and the times (columns of their own)."""
        return {
            "name": self.name,
            "currency": self.currency,
            "points_per_unit": self.points_per_unit,
            "category_multipliers": self.category_multipliers,
            "segment_multipliers": self.segment_multipliers,
            "tiers": [
                [t.name, t.threshold_points, t.discount_percent, t.points_multiplier]
                for t in self.tiers
            ],
            "tier_period_days": self.tier_period_days,
            "welcome_points": self.welcome_points,
            "expiry_days": self.expiry_days,
            "pending_days": self.pending_days,
            "point_value_micros": self.point_value_micros,
            "max_redeem_percent": self.max_redeem_percent,
        }

    @classmethod
    def from_json(
        cls, program_id: str, data: dict[str, Any], created_at: float, updated_at: float
    ) -> Program:
        fields = dict(data)
        fields["tiers"] = tuple(Tier(*t) for t in data["tiers"])
        return cls(program_id=program_id, created_at=created_at, updated_at=updated_at, **fields)


@dataclass(frozen=True)
class OrderLine:
    category: str
    quantity: int  # negative: returned units
    unit_price_micros: int


def order_value(program: Program, lines: Sequence[OrderLine]) -> int:
    """The lines' value in micros weighed by the category multipliers (what the points rate
    applies to), rounded down; negative when returns outweigh purchases. An accrual records
    it, so a return can take back its share of the points (`returned_share`)."""
    micros = sum(
        (
            Decimal(line.quantity * line.unit_price_micros)
            * _decimal(program.category_multipliers.get(line.category, 1.0))
            for line in lines
        ),
        Decimal(0),
    )
    return int(micros.to_integral_value(rounding=ROUND_FLOOR, context=_EXACT))


def returned_share(points: int, value_micros: int, returned_micros: int) -> int:
    """The points of an accrual (earned on `value_micros`) that returning lines worth
    `returned_micros` takes back: floor(points x returned / value), at most all of them."""
    if value_micros <= 0:
        return 0
    return min(points, points * returned_micros // value_micros)


def return_part(
    points: int, accrual_value: int, returned_before: int, returned_value: int, base_points: int
) -> tuple[int, int]:
    """(value, points) one return takes off an accrual of `points` earned on `accrual_value`
    micros, when earlier returns took `returned_before` of that value: its cumulative share
    less what the earlier ones took, so parts add up to the whole (each part's own floor
    would leave points behind), on at most the value not returned yet (the recorded values
    add up to no more than the accrual's, however much a return claims). An accrual recorded
    before accruals kept their order's value (0) takes `base_points`, the returned lines'
    points at the base rate. The caller caps the points at what is left to reverse."""
    if accrual_value <= 0:
        return 0, base_points
    value = min(returned_value, max(0, accrual_value - returned_before))
    share = returned_share(points, accrual_value, returned_before + value) - returned_share(
        points, accrual_value, returned_before
    )
    return value, share


def returns_all(
    points: int, left: int, amount: int, accrual_value: int, returned_before: int, value: int
) -> bool:
    """Whether a return (or reversal) part that takes `amount` of the `left` points and
    `value` of the value of an accrual of `points` earned on `accrual_value` (of which
    `returned_before` was returned already) takes back all of it — which frees the uses its
    quote counted. An accrual that earned points is all taken back with its points; one that
    earned none (a small order at a low rate) with its value, or its uses would stay counted
    for good: a return takes no points from it and a Reverse had none to undo."""
    if points > 0:
        return amount == left
    return accrual_value > 0 and returned_before + value >= accrual_value


def order_points(
    program: Program,
    lines: Sequence[OrderLine],
    tier_multiplier: float,
    segment_multiplier: float = 1.0,
) -> int:
    """Points an order earns: its value in whole currency units times the program's rate, the
    line's category multiplier, the tier's and the segment's, rounded down; returns reduce it,
    never below 0.
    """
    micros = sum(
        (
            Decimal(line.quantity * line.unit_price_micros)
            * _decimal(program.category_multipliers.get(line.category, 1.0))
            for line in lines
        ),
        Decimal(0),
    )
    points = _EXACT.multiply(
        _EXACT.multiply(
            _EXACT.multiply(micros, _decimal(program.points_per_unit)), _decimal(tier_multiplier)
        ),
        _decimal(segment_multiplier),
    )
    whole = (points / Decimal(1_000_000)).quantize(Decimal(1), rounding=ROUND_FLOOR, context=_EXACT)
    return max(0, int(whole))


@dataclass(frozen=True)
class TierChange:
    """An account's tier moved (proto TierChanged)."""

    program_id: str
    customer_id: str
    previous: str
    tier: str
    points: int
    at: float


@dataclass(frozen=True)
class TierStanding:
    tier: Tier | None
    next_tier: Tier | None
    points: int  # earned over the rolling period

    @property
    def name(self) -> str:
        return self.tier.name if self.tier else ""

    @property
    def multiplier(self) -> float:
        return self.tier.multiplier if self.tier else 1.0

    @property
    def points_to_next(self) -> int:
        return self.next_tier.threshold_points - self.points if self.next_tier else 0


def segment_multiplier(program: Program, segments: frozenset[str]) -> float:
    """The highest multiplier among the program's segments the customer is in (1.0: none)."""
    return max(
        (m for segment, m in program.segment_multipliers.items() if segment in segments),
        default=1.0,
    )


def tier_standing(program: Program, earned: int) -> TierStanding:
    reached = [t for t in program.tiers if earned >= t.threshold_points]
    above = [t for t in program.tiers if earned < t.threshold_points]
    return TierStanding(reached[-1] if reached else None, above[0] if above else None, earned)


@dataclass
class Lot:
    """What is left of one credit (its id is the credit's transaction id)."""

    lot_id: str
    remaining: int
    available_at: float
    expires_at: float | None
    # credited pending, and its ACTIVATION not recorded yet
    pending: bool = False

    def spendable(self, now: float) -> bool:
        return self.available_at <= now and not self.expired(now)

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and self.expires_at <= now

    @property
    def order(self) -> tuple[float, float, str]:
        # earliest expiry first (never-expiring last), then the oldest
        return (
            self.expires_at if self.expires_at is not None else math.inf,
            self.available_at,
            self.lot_id,
        )


@dataclass(frozen=True)
class Movement:
    """One ledger row (proto Transaction); `fingerprint` is of the request that made it."""

    transaction_id: str
    program_id: str
    customer_id: str
    type: str  # TransactionType without its prefix: WELCOME, ACCRUAL, ...
    points: int
    created_at: float
    balance_after: int = 0
    pending_after: int = 0
    order_id: str = ""
    reversed_transaction_id: str = ""
    idempotency_key: str = ""
    fingerprint: str = ""
    available_at: float | None = None
    expires_at: float | None = None
    earned: int = 0  # counted towards tiers
    reverses: int = 0  # REVERSAL: how much of the reversed transaction it undid
    unrecovered: int = 0  # REVERSAL of a credit: points already spent, not taken back
    value_micros: int = 0  # REDEMPTION: points x point value
    description: str = ""
    # ACCRUAL: the promotions whose uses it counted (its quote's), kept once they are released
    promotion_ids: tuple[str, ...] = ()

    @property
    def is_credit(self) -> bool:
        return self.type in ("WELCOME", "ACCRUAL", "TRANSFER_IN")


@dataclass(frozen=True)
class AccountView:
    """An account as of a moment (proto Account)."""

    program_id: str
    customer_id: str
    enrolled: bool
    balance: int = 0
    pending: int = 0
    standing: TierStanding | None = None
    expiring_soon: int = 0
    next_expiry_at: float | None = None
    lifetime_points: int = 0
    enrolled_at: float | None = None


class Ledger:
    """One account's lots and totals while its row is locked: the only place points move."""

    def __init__(
        self,
        program: Program,
        customer_id: str,
        lots: Sequence[Lot],
        points: int,
        lifetime: int,
        now: float,
    ) -> None:
        self.program = program
        self.customer_id = customer_id
        self.lots = sorted((replace(lot) for lot in lots if lot.remaining > 0), key=_order)
        self.points = points
        self.lifetime = lifetime
        self.now = now
        self.changed: dict[str, Lot] = {}  # lots to write back (new or reduced)
        self.movements: list[Movement] = []

    @property
    def balance(self) -> int:
        return sum(lot.remaining for lot in self.lots if lot.spendable(self.now))

    @property
    def pending(self) -> int:
        return sum(lot.remaining for lot in self.lots if lot.available_at > self.now)

    def _record(self, movement: Movement) -> Movement:
        self.points += movement.points
        recorded = replace(movement, balance_after=self.balance, pending_after=self.pending)
        self.movements.append(recorded)
        return recorded

    def _take(self, lot: Lot, points: int) -> int:
        taken = min(lot.remaining, points)
        lot.remaining -= taken
        self.changed[lot.lot_id] = lot
        return taken

    def activate(self) -> None:
        """An ACTIVATION for every pending lot whose return window has ended: points 0 (balance
        + pending stay), the lot's points move from pending to the balance."""
        for lot in self.lots:
            if lot.pending and lot.available_at <= self.now:
                lot.pending = False
                self.changed[lot.lot_id] = lot
                if lot.remaining:
                    self._record(
                        Movement(
                            new_id(),
                            self.program.program_id,
                            self.customer_id,
                            "ACTIVATION",
                            0,
                            self.now,
                            reversed_transaction_id=lot.lot_id,
                            description=f"{lot.remaining} points of {lot.lot_id} became spendable",
                        )
                    )

    def expire(self) -> None:
        """An EXPIRATION for every lot past its expiry that still holds points."""
        for lot in self.lots:
            if lot.remaining and lot.expired(self.now):
                taken = self._take(lot, lot.remaining)
                self._record(
                    Movement(
                        new_id(),
                        self.program.program_id,
                        self.customer_id,
                        "EXPIRATION",
                        -taken,
                        self.now,
                        description=f"points of {lot.lot_id} expired",
                    )
                )

    def credit(self, movement: Movement, available_at: float) -> Movement:
        """A credit of movement.points, spendable from available_at: a new lot."""
        if self.points + movement.points > MAX_POINTS:
            raise FailedPrecondition(
                f"an account holds at most {MAX_POINTS} points", reason="BALANCE_LIMIT"
            )
        expires_at = self.program.expiry_after(available_at)
        if movement.points:  # an order that earns nothing is recorded, with no lot
            lot = Lot(
                movement.transaction_id,
                movement.points,
                available_at,
                expires_at,
                pending=available_at > self.now,
            )
            self.lots = sorted([*self.lots, lot], key=_order)
            self.changed[lot.lot_id] = lot
        if movement.type != "REVERSAL":
            self.lifetime += movement.points
        return self._record(
            replace(
                movement,
                available_at=available_at if available_at > self.now else None,
                expires_at=expires_at,
            )
        )

    def spend(self, movement: Movement) -> Movement:
        """Debits -movement.points from the spendable lots, earliest expiry first; the caller
        has checked the balance covers it."""
        left = -movement.points
        for lot in self.lots:
            if left and lot.spendable(self.now):
                left -= self._take(lot, left)
        assert left == 0, "spend beyond the balance"
        return self._record(movement)

    def transfer_out(self, movement: Movement) -> list[Lot]:
        """A merge: every lot still holding points leaves the account (as it is: amount,
        availability, expiry), recorded as one debit of their sum. Expire first."""
        moved = [lot for lot in self.lots if lot.remaining > 0]
        self.lots = []
        self._record(replace(movement, points=-sum(lot.remaining for lot in moved)))
        return moved

    def transfer_in(self, movement: Movement, lots: Sequence[Lot], lifetime: int) -> Movement:
        """A merge: the lots another account gave up join this one, one credit of their sum
        (the lots keep their ids, so they are moved, not inserted)."""
        points = sum(lot.remaining for lot in lots)
        if self.points + points > MAX_POINTS:
            raise FailedPrecondition(
                f"an account holds at most {MAX_POINTS} points", reason="BALANCE_LIMIT"
            )
        self.lots = sorted([*self.lots, *(replace(lot) for lot in lots)], key=_order)
        self.lifetime += lifetime
        return self._record(replace(movement, points=points))

    def take_back(self, movement: Movement, first_lot: str, points: int) -> Movement:
        """Reverses a credit: `points` from its own lot first, then from any lot (pending
        included), earliest expiry first; what the account no longer holds is unrecovered."""
        left = points
        ordered = sorted(self.lots, key=lambda lot: lot.lot_id != first_lot)
        for lot in ordered:
            if left and not lot.expired(self.now):
                left -= self._take(lot, left)
        self.lifetime -= points
        return self._record(replace(movement, points=-(points - left), unrecovered=left))


def _order(lot: Lot) -> tuple[float, float, str]:
    return lot.order


def account_view(
    program: Program,
    customer_id: str,
    enrolled_at: float,
    lifetime: int,
    lots: Sequence[Lot],
    earned: int,
    now: float,
) -> AccountView:
    """The account as of `now`: points past their expiry count nowhere, even before the
    EXPIRATION that records it is written."""
    spendable = [lot for lot in lots if lot.remaining and lot.spendable(now)]
    soon = [
        lot
        for lot in spendable
        if lot.expires_at is not None and lot.expires_at <= now + EXPIRING_SOON_DAYS * DAY
    ]
    return AccountView(
        program_id=program.program_id,
        customer_id=customer_id,
        enrolled=True,
        balance=sum(lot.remaining for lot in spendable),
        pending=sum(lot.remaining for lot in lots if lot.available_at > now),
        standing=tier_standing(program, earned),
        expiring_soon=sum(lot.remaining for lot in soon),
        next_expiry_at=min((lot.expires_at for lot in soon if lot.expires_at), default=None),
        lifetime_points=lifetime,
        enrolled_at=enrolled_at,
    )

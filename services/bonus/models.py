"""The bonus service's tables (no other service reads them: they use the API or the bus).

`bonus_transactions` is the ledger: append-only, one row per movement, never updated.
`bonus_accounts.points` caches the ledger's sum and is the row every write to an account locks;
`bonus_lots` caches what is left of each credit, so spends can take the earliest-expiring
points first without replaying the ledger. Both caches change only in the transaction that
appends the movement they follow from.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from libs.db import Base, BigId
from libs.outbox import OutboxColumns

__all__ = [
    "AccountRow",
    "BonusOutboxRow",
    "ConfigVersionRow",
    "ConversionRow",
    "CustomerGuardRow",
    "ExposureRow",
    "LotRow",
    "PendingReturnRow",
    "ProgramRow",
    "PromotionRow",
    "PromotionUseRow",
    "TransactionRow",
]


class ProgramRow(Base):
    __tablename__ = "bonus_programs"

    program_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)
    # every configurable field, read and written whole (services/bonus/domain.py Program)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)


class AccountRow(Base):
    __tablename__ = "bonus_accounts"

    program_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    enrolled_at: Mapped[float] = mapped_column(Float)
    points: Mapped[int] = mapped_column(BigInteger)  # sum of the ledger: balance + pending
    lifetime_points: Mapped[int] = mapped_column(BigInteger)
    # The tier as last announced on bonus.tiers (migration bonus_0004): a write that changes
    # it, or the tier sweep when points leave the period, announces the change.
    tier: Mapped[str] = mapped_column(String(64), server_default="")


class TransactionRow(Base):
    __tablename__ = "bonus_transactions"
    __table_args__ = (
        # A key names one movement per program; NULL (server-made movements) repeats freely.
        UniqueConstraint("program_id", "idempotency_key", name="uq_bonus_transactions_key"),
        # An order accrues once per program, whoever's key it comes with.
        UniqueConstraint("program_id", "accrued_order_id", name="uq_bonus_transactions_order"),
        Index("ix_bonus_transactions_account", "program_id", "customer_id", "seq"),
        Index("ix_bonus_transactions_reversed", "reversed_transaction_id"),
    )

    seq: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    transaction_id: Mapped[str] = mapped_column(String(32), unique=True)
    program_id: Mapped[str] = mapped_column(String(32))
    customer_id: Mapped[str] = mapped_column(String(64))
    type: Mapped[str] = mapped_column(String(16))
    points: Mapped[int] = mapped_column(BigInteger)  # signed
    order_id: Mapped[str] = mapped_column(String(128))
    accrued_order_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    reversed_transaction_id: Mapped[str] = mapped_column(String(32))
    idempotency_key: Mapped[str | None] = mapped_column(String(128), nullable=True)
    fingerprint: Mapped[str] = mapped_column(String(64))  # of the request that made it
    created_at: Mapped[float] = mapped_column(Float)
    available_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    expires_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    balance_after: Mapped[int] = mapped_column(BigInteger)
    pending_after: Mapped[int] = mapped_column(BigInteger)
    # What it counts towards tiers (accruals, reversals of accruals), and how much of the
    # reversed transaction a reversal undid (taken back or not).
    earned: Mapped[int] = mapped_column(BigInteger)
    reverses: Mapped[int] = mapped_column(BigInteger)
    unrecovered: Mapped[int] = mapped_column(BigInteger)
    value_micros: Mapped[int] = mapped_column(BigInteger)  # REDEMPTION: what the points paid
    description: Mapped[str] = mapped_column(String(512))
    # ACCRUAL: the promotions whose uses it counted, comma-separated ("" for none)
    promotion_ids: Mapped[str] = mapped_column(Text, server_default="")


class LotRow(Base):
    __tablename__ = "bonus_lots"
    __table_args__ = (Index("ix_bonus_lots_account", "program_id", "customer_id"),)

    lot_id: Mapped[str] = mapped_column(String(32), primary_key=True)  # the credit's id
    program_id: Mapped[str] = mapped_column(String(32))
    customer_id: Mapped[str] = mapped_column(String(64))
    remaining: Mapped[int] = mapped_column(BigInteger)
    available_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    # Credited pending, its ACTIVATION not recorded yet (migration bonus_0004).
    pending: Mapped[bool] = mapped_column(Boolean, server_default=false())


class PendingReturnRow(Base):
    """A return taken before the accrual of the order it names (migration bonus_0005): that
    accrual, written under the same account lock, takes back its share and deletes the row."""

    __tablename__ = "bonus_pending_returns"
    __table_args__ = (Index("ix_bonus_pending_returns_order", "program_id", "order_id"),)

    transaction_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    program_id: Mapped[str] = mapped_column(String(32))
    order_id: Mapped[str] = mapped_column(String(128))
    customer_id: Mapped[str] = mapped_column(String(64))
    return_order_id: Mapped[str] = mapped_column(String(128))
    value_micros: Mapped[int] = mapped_column(BigInteger)
    points: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[float] = mapped_column(Float)


class CustomerGuardRow(Base):
    """One row per customer the ledger has written for: every write holds it shared and an
    erasure holds it exclusively, so an erasure waits for the writes in flight and the writes
    after it see `erased_at` (kept for good, as a tombstone: customer ids are never reused)."""

    __tablename__ = "bonus_customers"
    __table_args__ = (Index("ix_bonus_customers_merged_into", "merged_into"),)

    customer_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    erased_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    # profile.merged: the customer this one lives on as (its accounts, lots and history
    # follow that one; writes naming this one are refused). Migration bonus_0004.
    merged_into: Mapped[str | None] = mapped_column(String(64), nullable=True)


class PromotionRow(Base):
    """A promotion: its configurable fields in `data` (services/bonus/promotions.py), the
    columns queries filter and sort on, and its counters (changed only under its row lock, by
    the accrual that counts a use or the reversal that releases one)."""

    __tablename__ = "bonus_promotions"
    __table_args__ = (
        Index(
            "ix_bonus_promotions_listing", "program_id", "priority", "created_at", "promotion_id"
        ),
        Index("ix_bonus_promotions_coupon", "program_id", "coupon_key"),
        Index("ix_bonus_promotions_ends", "status", "ends_at"),
    )

    promotion_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    program_id: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    priority: Mapped[int] = mapped_column(Integer)
    coupon_key: Mapped[str | None] = mapped_column(String(128), nullable=True)
    ends_at: Mapped[float | None] = mapped_column(Float, nullable=True)  # schedule end
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)
    uses: Mapped[int] = mapped_column(BigInteger)
    discount_given: Mapped[int] = mapped_column(BigInteger)  # micros
    data: Mapped[dict[str, Any]] = mapped_column(JSON)


class PromotionUseRow(Base):
    """One counted use: a promotion applied to an order accrued with its quote (once per
    order: the primary key)."""

    __tablename__ = "bonus_promotion_uses"
    __table_args__ = (
        Index("ix_bonus_promotion_uses_customer", "program_id", "customer_id", "promotion_id"),
        Index("ix_bonus_promotion_uses_transaction", "transaction_id"),
    )

    promotion_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    order_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    program_id: Mapped[str] = mapped_column(String(32))
    customer_id: Mapped[str] = mapped_column(String(64))
    transaction_id: Mapped[str] = mapped_column(String(32))
    discount: Mapped[int] = mapped_column(BigInteger)  # micros
    bonus_points: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[float] = mapped_column(Float)


class ConfigVersionRow(Base):
    """One row: moved by every change to a program or promotion, in its transaction, so every
    process can tell cheaply whether its cached configuration is stale."""

    __tablename__ = "bonus_config"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger)


class ExposureRow(Base):
    """A customer quoted while eligible for a promotion, treated or held out (the first time
    recorded; quotes batch them in memory and insert with ON CONFLICT DO NOTHING)."""

    __tablename__ = "bonus_exposures"
    __table_args__ = (Index("ix_bonus_exposures_customer", "program_id", "customer_id"),)

    promotion_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    program_id: Mapped[str] = mapped_column(String(32))
    held_out: Mapped[bool] = mapped_column(Boolean)
    first_seen_at: Mapped[float] = mapped_column(Float)


class ConversionRow(Base):
    """An order accrued by a customer exposed to some promotion of the program (what the
    holdout report compares)."""

    __tablename__ = "bonus_conversions"
    __table_args__ = (Index("ix_bonus_conversions_customer", "program_id", "customer_id"),)

    program_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    order_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(64))
    total: Mapped[int] = mapped_column(BigInteger)  # micros
    created_at: Mapped[float] = mapped_column(Float)


class BonusOutboxRow(OutboxColumns, Base):
    """Ledger movements and program changes, published by the relay after commit."""

    __tablename__ = "bonus_outbox"

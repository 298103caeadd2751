"""The profile service's tables (no other service reads them: they use the API or the bus)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, DateTime, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from libs.db import Base
from libs.outbox import OutboxColumns

__all__ = [
    "CustomerRow",
    "EventRow",
    "IdentityRow",
    "MergeRow",
    "OutboxRow",
    "PurchaseRow",
    "RfmRunRow",
]

# Identities, events and purchases cannot outlive their customer: erasing or merging one while
# another call writes for it fails that write, which re-runs, rather than leaving rows behind.
OWNER = "profile_customers.customer_id"


class CustomerRow(Base):
    __tablename__ = "profile_customers"

    customer_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    version: Mapped[int] = mapped_column(BigInteger)
    # attributes, consents, traits and every aggregate: read and written whole with the row
    data: Mapped[dict[str, Any]] = mapped_column(JSON)


class IdentityRow(Base):
    __tablename__ = "profile_identities"

    type: Mapped[str] = mapped_column(String(16), primary_key=True)
    value: Mapped[str] = mapped_column(String(256), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(32), ForeignKey(OWNER), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class EventRow(Base):
    __tablename__ = "profile_events"
    __table_args__ = (Index("ix_profile_events_customer_time", "customer_id", "occurred_at"),)

    event_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(32), ForeignKey(OWNER))
    type: Mapped[str] = mapped_column(String(24))
    channel: Mapped[str] = mapped_column(String(16))
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    body: Mapped[dict[str, Any]] = mapped_column(JSON)


class PurchaseRow(Base):
    __tablename__ = "profile_purchases"
    __table_args__ = (
        Index("ix_profile_purchases_customer_time", "customer_id", "placed_at", "event_id"),
    )

    event_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(32), ForeignKey(OWNER))
    order_id: Mapped[str] = mapped_column(String(128), index=True)
    placed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    is_return: Mapped[bool] = mapped_column(Boolean)
    # False for a repeat of an order already counted (same order id, new event id)
    counted: Mapped[bool] = mapped_column(Boolean)
    total_micros: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    channel: Mapped[str] = mapped_column(String(16))
    lines: Mapped[list[Any]] = mapped_column(JSON)


class MergeRow(Base):
    """Audit trail of identity stitching; a merged id keeps resolving to its target."""

    __tablename__ = "profile_merges"

    source_customer_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    target_customer_id: Mapped[str] = mapped_column(String(32), index=True)
    actor: Mapped[str] = mapped_column(String(128))
    reason: Mapped[str] = mapped_column(String(512))
    merged_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class RfmRunRow(Base):
    """One row: the latest RFM recomputation (segmentation's run number) whose scores were
    applied. Row-locked while scores are applied, so runs apply one at a time and an earlier
    run's scores, delivered late, are dropped instead of overwriting a later run's."""

    __tablename__ = "profile_rfm_run"

    id: Mapped[int] = mapped_column(primary_key=True)
    run: Mapped[int] = mapped_column(BigInteger)


class OutboxRow(OutboxColumns, Base):
    """Bus events written in the same transaction as the change; a relay publishes them."""

    __tablename__ = "profile_outbox"

"""Segmentation's tables: its own projection of profiles and events, segments, memberships.

Segmentation never reads the profile service's tables: the projection is fed by the
`profile.changed` bus events (which carry the profile and the events behind each change).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, Float, Index, Integer, LargeBinary, String
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from libs.db import Base, BigId
from libs.outbox import OutboxColumns

__all__ = [
    "CatalogRow",
    "DueRow",
    "MembershipLogRow",
    "MembershipRow",
    "SegEventRow",
    "SegOutboxRow",
    "SegProfileRow",
    "SegmentRow",
    "TombstoneRow",
]

# JSONB on PostgreSQL: conditions read keys of these documents for every row of a segment
# build, and jsonb is stored parsed (json is parsed again on every access).
Doc = JSON().with_variant(JSONB(), "postgresql")


class SegProfileRow(Base):
    __tablename__ = "seg_profiles"

    customer_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[float] = mapped_column(Float)
    last_activity_at: Mapped[float] = mapped_column(Float)
    orders: Mapped[int] = mapped_column(BigInteger)
    returns: Mapped[int] = mapped_column(BigInteger)
    revenue: Mapped[float] = mapped_column(Float)  # whole currency units
    first_purchase_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    last_purchase_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    engagement_score: Mapped[float] = mapped_column(Float)
    recency_score: Mapped[int] = mapped_column(Integer)
    frequency_score: Mapped[int] = mapped_column(Integer)
    monetary_score: Mapped[int] = mapped_column(Integer)
    # {"attributes": {..str}, "interests": {..float}, "traits": {..json}, "consents": {..str}}
    doc: Mapped[dict[str, Any]] = mapped_column(Doc)


class SegEventRow(Base):
    __tablename__ = "seg_events"
    __table_args__ = (
        Index("ix_seg_events_customer_type_time", "customer_id", "type", "occurred_at"),
    )

    event_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(32))
    type: Mapped[str] = mapped_column(String(24))
    channel: Mapped[str] = mapped_column(String(16))
    category: Mapped[str] = mapped_column(String(128))
    sku: Mapped[str] = mapped_column(String(128))
    occurred_at: Mapped[float] = mapped_column(Float)
    quantity: Mapped[int] = mapped_column(BigInteger)
    order_total: Mapped[float | None] = mapped_column(Float, nullable=True)
    properties: Mapped[dict[str, Any]] = mapped_column(Doc)


class SegmentRow(Base):
    __tablename__ = "seg_segments"

    segment_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(String(2000))
    condition: Mapped[bytes] = mapped_column(LargeBinary)  # serialized Condition
    kind: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16))
    member_count: Mapped[int] = mapped_column(BigInteger)
    build_progress: Mapped[float] = mapped_column(Float)
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)
    built_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    # what the condition reads: {"paths": [...], "event_types": [...], "segments": [...],
    # "time_dependent": bool} - the index from changes to the segments they can affect
    reads: Mapped[dict[str, Any]] = mapped_column(JSON)
    template: Mapped[str] = mapped_column(String(64))  # "" or the built-in template's key


class MembershipRow(Base):
    __tablename__ = "seg_memberships"

    segment_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(32), primary_key=True, index=True)
    since: Mapped[float] = mapped_column(Float)


class DueRow(Base):
    """When a (segment, customer) answer can change by time alone: re-evaluate then."""

    __tablename__ = "seg_due"

    segment_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    due_at: Mapped[float] = mapped_column(Float, index=True)


class MembershipLogRow(Base):
    __tablename__ = "seg_membership_log"
    __table_args__ = (Index("ix_seg_membership_log_customer", "customer_id", "at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    segment_id: Mapped[str] = mapped_column(String(32))
    customer_id: Mapped[str] = mapped_column(String(32))
    change: Mapped[str] = mapped_column(String(8))  # ENTERED | LEFT
    at: Mapped[float] = mapped_column(Float)
    reason: Mapped[str] = mapped_column(String(256))


class SegOutboxRow(OutboxColumns, Base):
    """Membership changes and segment announcements, published by the relay after commit."""

    __tablename__ = "seg_outbox"


class TombstoneRow(Base):
    """A customer that is gone: erased (merged_into NULL) or merged into another customer.

    Checked, under a per-customer lock, by every unit of work that writes a customer's rows,
    so a change delivered after the erasure (or the merge) cannot bring the customer back.
    Kept for good: customer ids are random and never reused, and the row holds no personal
    data (an erased customer's tombstone is the id and a time).
    """

    __tablename__ = "seg_tombstones"

    customer_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    deleted_at: Mapped[float] = mapped_column(Float)
    merged_into: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)


class CatalogRow(Base):
    """One row: the catalogue version, bumped in the transaction of every definition change.

    Processes compare it with the version of the catalogue they hold before they use it.
    """

    __tablename__ = "seg_catalog"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger)


class RfmRunRow(Base):
    """One row: the number of the last RFM recomputation, taken (row-locked) in the transaction
    that writes its scores, so recomputations write one at a time and in number order."""

    __tablename__ = "seg_rfm_run"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run: Mapped[int] = mapped_column(BigInteger)

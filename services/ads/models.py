"""The ads service's tables (no other service reads them: they use the API or the bus).

`ads_campaigns` holds each campaign whole (JSON), with the columns listings filter on;
`ads_catalog` is one version row, bumped by every campaign change, that each process compares
(at most every 0.5 s) with the version its campaign cache was loaded at. `ads_slots` are the
embedded default's selection reservations and settled impressions (with Redis they live in
Redis, `services/ads/counters.py`); `ads_interactions` is every recorded interaction, once per
(token, type): the idempotency record and the source of the statistics.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Float, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from libs.db import Base
from libs.outbox import OutboxColumns

__all__ = [
    "AdsOutboxRow",
    "CampaignRow",
    "CatalogRow",
    "CustomerGuardRow",
    "InteractionRow",
    "SlotRow",
    "TrafficRow",
]


class CampaignRow(Base):
    __tablename__ = "ads_campaigns"
    __table_args__ = (
        Index("ix_ads_campaigns_created", "created_at", "campaign_id"),
        Index("ix_ads_campaigns_brand", "brand", "created_at"),
    )

    campaign_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    status: Mapped[str] = mapped_column(String(16))  # as stored: ACTIVE, PAUSED, ENDED
    brand: Mapped[str] = mapped_column(String(200))
    end_time: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)  # services/ads/domain.py Campaign


class CatalogRow(Base):
    __tablename__ = "ads_catalog"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)  # always 1
    version: Mapped[int] = mapped_column(BigInteger)


class SlotRow(Base):
    """A selection's hold on a limited campaign (SQL counters): reserved until `expires_at`
    unless settled by its impression (`settled_day` set), which it then counts as."""

    __tablename__ = "ads_slots"
    __table_args__ = (
        Index("ix_ads_slots_campaign", "campaign_id", "settled_day"),
        Index("ix_ads_slots_customer", "campaign_id", "customer_id", "created_at"),
        Index("ix_ads_slots_expiry", "expires_at"),
    )

    slot_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    campaign_id: Mapped[str] = mapped_column(String(32))
    customer_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float)
    settled_day: Mapped[int | None] = mapped_column(Integer, nullable=True)


class InteractionRow(Base):
    __tablename__ = "ads_interactions"
    __table_args__ = (
        Index("ix_ads_interactions_campaign", "campaign_id", "type", "day"),
        Index("ix_ads_interactions_customer", "customer_id"),
    )

    token_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    type: Mapped[str] = mapped_column(String(16), primary_key=True)
    campaign_id: Mapped[str] = mapped_column(String(32))
    creative_id: Mapped[str] = mapped_column(String(32))
    customer_id: Mapped[str] = mapped_column(String(64))
    placement: Mapped[str] = mapped_column(String(128))
    channel: Mapped[int] = mapped_column(Integer)
    occurred_at: Mapped[float] = mapped_column(Float)
    day: Mapped[int] = mapped_column(Integer)
    # IMPRESSION: whether it counted against the budget (False: its reservation had lapsed
    # and no room was left).
    billable: Mapped[bool] = mapped_column(Boolean)
    # CLICK/CONVERSION of a rewarding campaign: what became of the reward, once the bonus
    # service answered ("REWARDED <transaction id>" or "REFUSED <reason>"); NULL: no reward,
    # or not answered yet.
    reward: Mapped[str | None] = mapped_column(String(200), nullable=True)


class CustomerGuardRow(Base):
    """One row per customer an interaction was recorded for: recording holds it shared, an
    erasure exclusively, so an erasure waits for the recordings in flight, and the ones after
    it see `erased_at` (kept for good: customer ids are never reused) and record anonymously."""

    __tablename__ = "ads_customers"

    customer_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    erased_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class TrafficRow(Base):
    """SelectAds requests per UTC (day, hour), summed over every ads process: what pacing
    learns the shape of a day from (services/ads/pacing.py)."""

    __tablename__ = "ads_traffic"

    day: Mapped[int] = mapped_column(Integer, primary_key=True)
    hour: Mapped[int] = mapped_column(Integer, primary_key=True)
    requests: Mapped[int] = mapped_column(BigInteger)


class AdsOutboxRow(OutboxColumns, Base):
    """Campaign changes and counted interactions, published by the relay after commit."""

    __tablename__ = "ads_outbox"

"""The recommend service's tables (no other service reads them: they use the API or the bus).

- `reco_items`: the catalogue, each item whole (JSON) with the columns listings filter on;
  `reco_catalog` one version row bumped by every item or showcase change, which every
  process compares (at most every 0.5 s) with the version its cache was loaded at.
- `reco_showcases`: showcase definitions (JSON).
- `reco_item_counts` / `reco_pairs`: the co-occurrence counts (services/recommend/
  cooccurrence.py), added to with additive upserts; pairs are stored in both directions.
- `reco_popularity`: purchase weight per (segment, sku, UTC day); segment "" is overall.
- `reco_history`: per (customer, sku): units bought (returns subtract), views, last time.
- `reco_customers`: a guard row per customer every per-customer write locks first; erased
  customers keep it as a tombstone (ids are never reused), merged ones name their target.
- `reco_events`: the profile events already counted (consumers are idempotent by event id).
- `reco_baskets`: per counted event, what it added to the co-occurrence (the basket bought,
  the views joining a session), under its customer: a full rebuild recounts the co-occurrence
  from these, so an erased customer's (deleted with the history) drop out of it.
- `reco_models`: trained personal models (numpy bytes), by version; `reco_training` the leases
  that let one process at a time train (row 1) and rebuild the co-occurrence (row 2).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Float, Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from libs.db import Base
from libs.outbox import OutboxColumns

__all__ = [
    "BasketRow",
    "CatalogRow",
    "CustomerRow",
    "EventRow",
    "HistoryRow",
    "ItemCountRow",
    "ItemRow",
    "ModelRow",
    "PairRow",
    "PopularityRow",
    "RecommendOutboxRow",
    "ShowcaseRow",
    "TrainingRow",
]

SKU = 200


class ItemRow(Base):
    __tablename__ = "reco_items"
    __table_args__ = (Index("ix_reco_items_category", "category", "sku"),)

    sku: Mapped[str] = mapped_column(String(SKU), primary_key=True)
    category: Mapped[str] = mapped_column(String(200))
    available: Mapped[bool] = mapped_column(Boolean)
    released_at: Mapped[float] = mapped_column(Float)
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)  # domain.Item.to_json()


class CatalogRow(Base):
    __tablename__ = "reco_catalog"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)  # 1 training, 2 rebuild
    version: Mapped[int] = mapped_column(BigInteger)


class ShowcaseRow(Base):
    __tablename__ = "reco_showcases"
    __table_args__ = (Index("ix_reco_showcases_created", "created_at", "showcase_id"),)

    showcase_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)  # domain.Showcase.to_json()


class ItemCountRow(Base):
    __tablename__ = "reco_item_counts"

    sku: Mapped[str] = mapped_column(String(SKU), primary_key=True)
    weight: Mapped[float] = mapped_column(Float)


class PairRow(Base):
    __tablename__ = "reco_pairs"

    sku: Mapped[str] = mapped_column(String(SKU), primary_key=True)
    other: Mapped[str] = mapped_column(String(SKU), primary_key=True)
    weight: Mapped[float] = mapped_column(Float)


class PopularityRow(Base):
    __tablename__ = "reco_popularity"

    segment_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    day: Mapped[int] = mapped_column(Integer, primary_key=True)
    sku: Mapped[str] = mapped_column(String(SKU), primary_key=True)
    weight: Mapped[float] = mapped_column(Float)


class HistoryRow(Base):
    __tablename__ = "reco_history"

    customer_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    sku: Mapped[str] = mapped_column(String(SKU), primary_key=True)
    purchased: Mapped[float] = mapped_column(Float)  # units bought minus units returned
    viewed: Mapped[float] = mapped_column(Float)
    last_at: Mapped[float] = mapped_column(Float)


class CustomerRow(Base):
    __tablename__ = "reco_customers"

    customer_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    erased_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    merged_into: Mapped[str | None] = mapped_column(String(64), nullable=True)


class EventRow(Base):
    __tablename__ = "reco_events"

    event_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    counted_at: Mapped[float] = mapped_column(Float)


class BasketRow(Base):
    __tablename__ = "reco_baskets"
    __table_args__ = (Index("ix_reco_baskets_customer", "customer_id"),)

    event_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(64))
    # {"basket": [sku, ...], "joins": [[sku, [session sku, ...]], ...]}
    data: Mapped[dict[str, Any]] = mapped_column(JSON)


class ModelRow(Base):
    __tablename__ = "reco_models"

    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    trained_at: Mapped[float] = mapped_column(Float)
    seconds: Mapped[float] = mapped_column(Float)
    customers: Mapped[int] = mapped_column(Integer)
    items: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes] = mapped_column(LargeBinary)  # personal.PersonalModel.to_bytes()


class TrainingRow(Base):
    __tablename__ = "reco_training"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)  # 1 training, 2 rebuild
    leased_until: Mapped[float] = mapped_column(Float)


class RecommendOutboxRow(OutboxColumns, Base):
    """Item and showcase changes, published by the relay after commit."""

    __tablename__ = "reco_outbox"

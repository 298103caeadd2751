"""What segmentation knows of a customer: its projection of the profile, events and context.

Both condition evaluators read these: the set-wise one as the columns of `models.py`, the
per-customer one as these objects. Money is in whole currency units (float), times are epoch
seconds, enums are short names ("WEB", "ACTIVE", "GRANTED").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["CartItem", "ContextFacts", "CustomerFacts", "FactEvent"]


@dataclass
class CustomerFacts:
    customer_id: str
    version: int = 0
    created_at: float = 0.0
    last_activity_at: float = 0.0
    orders: int = 0
    returns: int = 0
    revenue: float = 0.0
    first_purchase_at: float | None = None
    last_purchase_at: float | None = None
    engagement_score: float = 0.0
    # 1-5 RFM scores; 0 = not scored yet
    recency_score: int = 0
    frequency_score: int = 0
    monetary_score: int = 0
    attributes: dict[str, str] = field(default_factory=dict)  # name, email, region, ...
    interests: dict[str, float] = field(default_factory=dict)  # category -> score
    traits: dict[str, Any] = field(default_factory=dict)  # "bonus.tier" -> JSON value
    consents: dict[str, str] = field(default_factory=dict)  # "EMAIL" -> "GRANTED"


@dataclass  # not frozen: built for every event a change re-reads, and frozen costs 2x
class FactEvent:
    event_id: str
    customer_id: str
    type: str  # "PRODUCT_VIEW"
    channel: str  # "WEB"
    occurred_at: float
    category: str = ""
    sku: str = ""
    quantity: int = 0
    order_total: float | None = None  # whole units; purchases only
    properties: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CartItem:
    sku: str
    category: str
    quantity: int
    unit_price: float  # whole units


@dataclass
class ContextFacts:
    channel: str = ""
    placement: str = ""
    region: str = ""
    current_sku: str = ""
    cart: list[CartItem] = field(default_factory=list)
    attributes: dict[str, str] = field(default_factory=dict)
    now: float = 0.0  # the request time (for now.hour / now.weekday)

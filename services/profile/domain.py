"""The customer profile and how events change it: pure functions, no I/O.

Aggregates are kept incrementally as events arrive, in any order:
- interests: category -> score; each interaction adds a weight, scores halve every 30 days;
- engagement: the same decay over opens, clicks, visits, calls; shown as 0-100;
- purchase summary and RFM raw values (recency days, frequency = orders, monetary = revenue);
- status by days since the last activity: NEW (first seen <= 30 days ago, at most one order),
  ACTIVE (<= 90 days), CHURN_RISK (90-180 days), LAPSED (> 180 days);
- the current cart from add/remove events, emptied of what is bought;
- the 20 most recent events.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from libs.profile_status import status_at

__all__ = [
    "DAY",
    "RECENT_EVENTS",
    "CartLine",
    "Customer",
    "EventIn",
    "IdentityKey",
    "OrderIn",
    "apply_event",
    "decayed",
    "engagement_score",
    "merge_data",
    "status_of",
]

DAY = 86_400.0
HALF_LIFE = 30 * DAY
RECENT_EVENTS = 20
ENGAGEMENT_SCALE = 25.0
# Revenue is int64 micros on the wire. A sum past it (9.2e12 currency units) saturates at
# the bound instead of failing every read of the profile: the orders are real and still count.
REVENUE_BOUNDS = (-(2**63), 2**63 - 1)

IdentityKey = tuple[str, str]  # (type, normalised value)

INTEREST_WEIGHTS = {
    "PAGE_VIEW": 0.2,
    "PRODUCT_VIEW": 1.0,
    "SEARCH": 0.5,
    "ADD_TO_CART": 3.0,
    "PURCHASE": 5.0,
    "EMAIL_CLICK": 1.0,
    "AD_CLICK": 1.0,
    "STORE_VISIT": 1.0,
}
ENGAGEMENT_WEIGHTS = {
    "PAGE_VIEW": 0.2,
    "PRODUCT_VIEW": 0.5,
    "SEARCH": 0.3,
    "ADD_TO_CART": 1.0,
    "PURCHASE": 5.0,
    "EMAIL_OPEN": 1.0,
    "EMAIL_CLICK": 3.0,
    "AD_CLICK": 2.0,
    "CALL": 3.0,
    "STORE_VISIT": 5.0,
}


@dataclass(frozen=True)
class CartLine:
    sku: str
    category: str
    quantity: int
    unit_price_micros: int
    currency: str


@dataclass(frozen=True)
class OrderIn:
    order_id: str
    lines: tuple[CartLine, ...]
    total_micros: int
    currency: str
    placed_at: float

    @property
    def is_return(self) -> bool:
        return self.total_micros < 0 or (
            bool(self.lines) and all(line.quantity < 0 for line in self.lines)
        )


@dataclass(frozen=True)
class EventIn:
    """A validated event, identities already normalised."""

    event_id: str
    type: str
    channel: str
    occurred_at: float
    customer_id: str | None = None
    identity: IdentityKey | None = None
    identities: tuple[IdentityKey, ...] = ()
    sku: str = ""
    category: str = ""
    properties: dict[str, Any] = field(default_factory=dict)
    order: OrderIn | None = None
    quantity: int = 0
    unit_price_micros: int = 0
    currency: str = ""


def decayed(value: float, ref: float, now: float) -> float:
    return value * 0.5 ** ((now - ref) / HALF_LIFE) if now > ref else value


def _add_decaying(slot: list[float] | None, weight: float, at: float) -> list[float]:
    """[value, ref]: the value as of ref. Late events are decayed back to ref."""
    if slot is None:
        return [weight, at]
    value, ref = slot
    if at >= ref:
        return [decayed(value, ref, at) + weight, at]
    return [value + decayed(weight, at, ref), ref]


def engagement_score(slot: list[float] | None, now: float) -> float:
    if not slot:
        return 0.0
    raw = decayed(slot[0], slot[1], now)
    return round(100.0 * (1.0 - math.exp(-raw / ENGAGEMENT_SCALE)), 2)


@dataclass
class Customer:
    """One customer's profile as stored: columns plus a JSON document `data`."""

    customer_id: str
    created_at: float
    updated_at: float
    version: int = 0
    data: dict[str, Any] = field(default_factory=dict)
    is_new: bool = False

    @property
    def last_activity_at(self) -> float:
        return float(self.data.get("last_activity_at") or self.created_at)

    @property
    def orders(self) -> int:
        return int(self.data.get("orders", 0))

    @property
    def revenue_micros(self) -> int:
        return _saturated(int(self.data.get("revenue_micros", 0)))

    @property
    def last_purchase_at(self) -> float | None:
        value = self.data.get("last_purchase_at")
        return float(value) if value is not None else None


def _saturated(micros: int) -> int:
    low, high = REVENUE_BOUNDS
    return min(max(micros, low), high)


def status_of(customer: Customer, now: float) -> str:
    return status_at(customer.created_at, customer.last_activity_at, customer.orders, now)


def apply_event(customer: Customer, event: EventIn, count_order: bool = True) -> set[str]:
    """Fold one accepted event into the profile; returns the changed field paths.

    `count_order` is False when the order was already recorded by another event (a retry with
    a new event id must not count the revenue twice).
    """
    data, changed = customer.data, set()
    at = event.occurred_at
    if at > float(data.get("last_activity_at") or 0):
        data["last_activity_at"] = at
        changed.add("last_activity_at")
    categories = [event.category] if event.category else []
    if event.order is not None:
        categories += [line.category for line in event.order.lines if line.category]
    weight = INTEREST_WEIGHTS.get(event.type, 0.0)
    if weight and categories:
        interests = data.setdefault("interests", {})
        for category in dict.fromkeys(categories):
            interests[category] = _add_decaying(interests.get(category), weight, at)
            changed.add(f"interests.{category}")
    engagement = ENGAGEMENT_WEIGHTS.get(event.type, 0.0)
    if engagement:
        data["engagement"] = _add_decaying(data.get("engagement"), engagement, at)
        changed.add("engagement_score")
    if event.type in ("ADD_TO_CART", "REMOVE_FROM_CART") and event.sku:
        changed |= _apply_cart(data, event)
    if event.type == "PURCHASE" and event.order is not None and count_order:
        changed |= _apply_order(data, event.order)
    recent = data.setdefault("recent", [])
    recent.append(
        {
            "id": event.event_id,
            "type": event.type,
            "channel": event.channel,
            "at": at,
            "sku": event.sku,
            "category": event.category,
        }
    )
    recent.sort(key=lambda e: e["at"], reverse=True)
    del recent[RECENT_EVENTS:]
    changed.add("recent_events")
    return changed


def _apply_cart(data: dict[str, Any], event: EventIn) -> set[str]:
    cart: dict[str, Any] = data.setdefault("cart", {})
    quantity = event.quantity or 1
    line = cart.get(event.sku)
    if event.type == "ADD_TO_CART":
        if line is None:
            line = cart[event.sku] = {
                "category": event.category,
                "quantity": 0,
                "price": event.unit_price_micros,
                "currency": event.currency,
            }
        line["quantity"] += quantity
        if event.unit_price_micros:
            line["price"], line["currency"] = event.unit_price_micros, event.currency
    elif line is not None:
        line["quantity"] -= quantity
        if line["quantity"] <= 0:
            del cart[event.sku]
    return {"cart"}


def _apply_order(data: dict[str, Any], order: OrderIn) -> set[str]:
    changed = {"purchase_summary", "rfm"}
    data["revenue_micros"] = _saturated(int(data.get("revenue_micros", 0)) + order.total_micros)
    if order.currency and not data.get("currency"):
        data["currency"] = order.currency
    if order.is_return:
        data["returns"] = int(data.get("returns", 0)) + 1
        return changed
    data["orders"] = int(data.get("orders", 0)) + 1
    first, last = data.get("first_purchase_at"), data.get("last_purchase_at")
    if first is None or order.placed_at < first:
        data["first_purchase_at"] = order.placed_at
    if last is None or order.placed_at > last:
        data["last_purchase_at"] = order.placed_at
    cart: dict[str, Any] = data.get("cart") or {}
    bought = {line.sku for line in order.lines if line.quantity > 0} & cart.keys()
    for sku in bought:
        del cart[sku]
    if bought:
        changed.add("cart")
    return changed


def merge_data(target: dict[str, Any], source: dict[str, Any]) -> None:
    """Fold the source profile's document into the target's (identity stitching)."""
    for key in ("orders", "returns"):
        target[key] = int(target.get(key, 0)) + int(source.get(key, 0))
    target["revenue_micros"] = _saturated(
        int(target.get("revenue_micros", 0)) + int(source.get("revenue_micros", 0))
    )
    if source.get("currency") and not target.get("currency"):
        target["currency"] = source["currency"]
    for key, pick in (("first_purchase_at", min), ("last_purchase_at", max)):
        values = [v for v in (target.get(key), source.get(key)) if v is not None]
        if values:
            target[key] = pick(values)
    target["last_activity_at"] = max(
        float(target.get("last_activity_at") or 0), float(source.get("last_activity_at") or 0)
    )
    interests = target.setdefault("interests", {})
    for category, (value, ref) in (source.get("interests") or {}).items():
        interests[category] = _add_decaying(interests.get(category), value, ref)
    if source.get("engagement"):
        value, ref = source["engagement"]
        target["engagement"] = _add_decaying(target.get("engagement"), value, ref)
    cart = target.setdefault("cart", {})
    for sku, line in (source.get("cart") or {}).items():
        if sku in cart:
            cart[sku]["quantity"] += line["quantity"]
        else:
            cart[sku] = dict(line)
    recent = (target.get("recent") or []) + (source.get("recent") or [])
    recent.sort(key=lambda e: e["at"], reverse=True)
    target["recent"] = recent[:RECENT_EVENTS]
    # Declared data: the target's own values win; the source fills the gaps.
    for key in ("attributes", "consents", "traits"):
        merged = dict(source.get(key) or {})
        merged.update(target.get(key) or {})
        if merged:
            target[key] = merged

"""Promotions as plain values (no protobuf), and what a process keeps of them in memory.

A `Promotion` is stored whole as a JSON document beside a few columns (status, priority, the
coupon key, the counters); its condition is kept as the serialized segmentation `Condition`
the caller sent, validated by segmentation's parser on the way in. `Compiled` is a promotion
ready to price with: its condition parsed once, its atoms split into those a quote answers
locally (the request context and the cart) and those only segmentation can answer (segments,
profile properties, events).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from backcrm.segmentation.v1 import condition_pb2

from services.segmentation.conditions.ast import ContextCond, Group, Node, walk
from services.segmentation.conditions.parse import decode_condition, to_proto

__all__ = [
    "EFFECTS",
    "PRICE_BASES",
    "STACKING_MODES",
    "STATUSES",
    "Compiled",
    "Effect",
    "Promotion",
    "compile_promotion",
    "coupon_key",
    "held_out",
]

EFFECTS = ("PERCENT_OFF", "AMOUNT_OFF", "GIFT", "POINTS_MULTIPLIER", "FIXED_PRICE")
STACKING_MODES = ("STACKABLE", "EXCLUSIVE", "BEST_FOR_CUSTOMER")
PRICE_BASES = ("ORIGINAL", "DISCOUNTED")
STATUSES = ("ACTIVE", "PAUSED", "ENDED")


def coupon_key(code: str) -> str:
    """Codes compare case-insensitively (and without surrounding blanks)."""
    return code.strip().casefold()


@dataclass(frozen=True)
class Effect:
    type: str  # one of EFFECTS
    percent: float = 0.0
    amount_micros: int = 0
    gift_sku: str = ""
    multiplier: float = 0.0
    price_micros: int = 0
    skus: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    gift_quantity: int = 0

    def matches(self, sku: str, category: str) -> bool:
        """Whether a cart line is one the effect applies to (every line when none named)."""
        if not self.skus and not self.categories:
            return True
        return sku in self.skus or (bool(category) and category in self.categories)

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "percent": self.percent,
            "amount_micros": self.amount_micros,
            "gift_sku": self.gift_sku,
            "multiplier": self.multiplier,
            "price_micros": self.price_micros,
            "skus": list(self.skus),
            "categories": list(self.categories),
            "gift_quantity": self.gift_quantity,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Effect:
        return cls(**{**data, "skus": tuple(data["skus"]), "categories": tuple(data["categories"])})


@dataclass(frozen=True)
class Promotion:
    promotion_id: str
    program_id: str
    name: str
    effect: Effect
    description: str = ""
    condition: bytes = b""  # a serialized segmentation Condition; empty: everyone
    priority: int = 0
    stacking: str = "STACKABLE"
    price_base: str = "DISCOUNTED"
    start_time: float | None = None
    end_time: float | None = None  # exclusive
    max_uses: int = 0
    max_uses_per_customer: int = 0
    max_discount_micros: int = 0
    coupon_code: str = ""
    status: str = "ACTIVE"
    holdout_percent: float = 0.0
    uses: int = 0
    discount_given_micros: int = 0
    created_at: float = 0.0
    updated_at: float = 0.0

    @property
    def exclusive(self) -> bool:
        return self.stacking == "EXCLUSIVE"

    @property
    def has_budget(self) -> bool:
        return bool(self.max_uses or self.max_discount_micros or self.max_uses_per_customer)

    def budget_spent(self) -> bool:
        return (self.max_uses > 0 and self.uses >= self.max_uses) or (
            self.max_discount_micros > 0 and self.discount_given_micros >= self.max_discount_micros
        )

    def live_at(self, now: float) -> bool:
        return (self.start_time is None or self.start_time <= now) and (
            self.end_time is None or now < self.end_time
        )

    def to_json(self) -> dict[str, Any]:
        """The stored document: the configurable fields (the rest are columns)."""
        return {
            "name": self.name,
            "description": self.description,
            "condition": self.condition.hex(),
            "effect": self.effect.to_json(),
            "stacking": self.stacking,
            "price_base": self.price_base,
            "start_time": self.start_time,
            "end_time": self.end_time,
            "max_uses": self.max_uses,
            "max_uses_per_customer": self.max_uses_per_customer,
            "max_discount_micros": self.max_discount_micros,
            "coupon_code": self.coupon_code,
            "holdout_percent": self.holdout_percent,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], **columns: Any) -> Promotion:
        fields = dict(data)
        fields["condition"] = bytes.fromhex(data["condition"])
        fields["effect"] = Effect.from_json(data["effect"])
        return cls(**fields, **columns)


def held_out(promotion: Promotion, customer_id: str) -> bool:
    """Whether the customer is in the promotion's control group: a stable hash of (promotion,
    customer) into [0, 100), so a customer is always on the same side of one promotion and
    independently placed for another. Unknown customers are never held out."""
    if promotion.holdout_percent <= 0 or not customer_id:
        return False
    digest = hashlib.sha256(f"{promotion.promotion_id}/{customer_id}".encode()).digest()
    bucket = int.from_bytes(digest[:8], "big") / 2**64 * 100.0
    return bucket < promotion.holdout_percent


@dataclass(frozen=True)
class Compiled:
    """A promotion with its condition parsed. `customer_atoms` are the nodes only
    segmentation can answer (segment refs, profile properties, events), as Condition
    messages keyed by their serialization (deduplicated across promotions by the quote)."""

    promotion: Promotion
    node: Node | None
    customer_atoms: dict[Node, bytes] = field(default_factory=dict)

    @property
    def needs_customer(self) -> bool:
        return bool(self.customer_atoms)


def _atoms(node: Node) -> list[Node]:
    return [n for n in walk(node) if not isinstance(n, Group | ContextCond)]


def compile_promotion(promotion: Promotion) -> Compiled:
    if not promotion.condition:
        return Compiled(promotion, None)
    node = decode_condition(promotion.condition)
    atoms: dict[Node, bytes] = {}
    for atom in _atoms(node):
        message: condition_pb2.Condition = to_proto(atom)
        atoms[atom] = message.SerializeToString(deterministic=True)
    return Compiled(promotion, node, atoms)

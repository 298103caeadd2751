"""Recommend domain: catalogue items and showcases. Pure: no I/O.

Items and showcases are stored whole as JSON (`to_json` / `from_json`) with the columns
listings and the cache filter on, like ads' campaigns.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from services.recommend.mix import MixSpec, Rules, Strategy

__all__ = ["DEFAULT_FALLBACK", "Item", "Showcase", "new_id"]

DEFAULT_FALLBACK = (Strategy.POPULAR, Strategy.NEW)


def new_id() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True)
class Item:
    sku: str
    title: str = ""
    category: str = ""
    tags: tuple[str, ...] = ()
    price_micros: int = 0
    currency: str = ""
    has_price: bool = False
    available: bool = True
    attributes: Mapping[str, str] = field(default_factory=dict)
    released_at: float | None = None  # None: the time of the first upsert
    updated_at: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "tags": list(self.tags),
            "price_micros": self.price_micros,
            "currency": self.currency,
            "has_price": self.has_price,
            "attributes": dict(self.attributes),
        }

    @classmethod
    def from_json(
        cls,
        sku: str,
        category: str,
        available: bool,
        released_at: float,
        updated_at: float,
        data: Mapping[str, Any],
    ) -> Item:
        return cls(
            sku=sku,
            title=str(data.get("title", "")),
            category=category,
            tags=tuple(data.get("tags", ())),
            price_micros=int(data.get("price_micros", 0)),
            currency=str(data.get("currency", "")),
            has_price=bool(data.get("has_price", False)),
            available=available,
            attributes=dict(data.get("attributes", {})),
            released_at=released_at,
            updated_at=updated_at,
        )


@dataclass(frozen=True)
class Showcase:
    showcase_id: str
    name: str
    strategies: tuple[tuple[Strategy, float], ...]
    categories: tuple[str, ...] = ()
    exclude_purchased: bool = False
    only_available: bool = False
    exclude_in_cart: bool = False
    segment_boosts: Mapping[str, float] = field(default_factory=dict)
    pins: Mapping[str, int] = field(default_factory=dict)
    boosts: Mapping[str, float] = field(default_factory=dict)
    excludes: tuple[str, ...] = ()
    max_per_category: int = 0
    fallback: tuple[Strategy, ...] = ()
    created_at: float = 0.0
    updated_at: float = 0.0

    @property
    def fallback_chain(self) -> tuple[Strategy, ...]:
        return self.fallback or DEFAULT_FALLBACK

    def spec(self) -> MixSpec:
        """The mix this showcase asks for. Unavailable items are never served, whatever
        `only_available` says (the filter only documents the intent)."""
        return MixSpec(
            weights=dict(self.strategies),
            categories=frozenset(self.categories),
            exclude_purchased=self.exclude_purchased,
            only_available=True,
            exclude_in_cart=self.exclude_in_cart,
            max_per_category=self.max_per_category,
            fallback=self.fallback_chain,
            rules=Rules(
                pins=dict(self.pins), boosts=dict(self.boosts), excludes=frozenset(self.excludes)
            ),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "strategies": [[s.name, w] for s, w in self.strategies],
            "categories": list(self.categories),
            "exclude_purchased": self.exclude_purchased,
            "only_available": self.only_available,
            "exclude_in_cart": self.exclude_in_cart,
            "segment_boosts": dict(self.segment_boosts),
            "pins": dict(self.pins),
            "boosts": dict(self.boosts),
            "excludes": list(self.excludes),
            "max_per_category": self.max_per_category,
            "fallback": [s.name for s in self.fallback],
        }

    @classmethod
    def from_json(
        cls, showcase_id: str, created_at: float, updated_at: float, data: Mapping[str, Any]
    ) -> Showcase:
        return cls(
            showcase_id=showcase_id,
            name=str(data["name"]),
            strategies=tuple((Strategy[s], float(w)) for s, w in data["strategies"]),
            categories=tuple(data.get("categories", ())),
            exclude_purchased=bool(data.get("exclude_purchased", False)),
            only_available=bool(data.get("only_available", False)),
            exclude_in_cart=bool(data.get("exclude_in_cart", False)),
            segment_boosts={k: float(v) for k, v in data.get("segment_boosts", {}).items()},
            pins={k: int(v) for k, v in data.get("pins", {}).items()},
            boosts={k: float(v) for k, v in data.get("boosts", {}).items()},
            excludes=tuple(data.get("excludes", ())),
            max_per_category=int(data.get("max_per_category", 0)),
            fallback=tuple(Strategy[s] for s in data.get("fallback", ())),
            created_at=created_at,
            updated_at=updated_at,
        )

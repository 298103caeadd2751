"""Domain -> protobuf: responses and bus payloads."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from backcrm.recommend.v1 import recommend_service_pb2 as pb

from libs.db import OutboxMessage
from libs.protoutil import enum, money, ts
from libs.topics import RECOMMEND_ITEMS, RECOMMEND_SHOWCASES
from services.recommend.domain import Item, Showcase
from services.recommend.mix import Mixed, Strategy

__all__ = [
    "encode_items",
    "encode_showcase",
    "item_to_proto",
    "recommended_to_proto",
    "showcase_to_proto",
]


def _strategy(s: Strategy) -> Any:
    return enum(pb.Strategy, f"STRATEGY_{s.name}")


def item_to_proto(item: Item) -> pb.Item:
    out = pb.Item(
        sku=item.sku,
        title=item.title,
        category=item.category,
        tags=list(item.tags),
        available=item.available,
        attributes=dict(item.attributes),
    )
    if item.has_price:
        out.price.CopyFrom(money(item.price_micros, item.currency))
    if item.released_at is not None:
        out.released_at.CopyFrom(ts(item.released_at))
    if item.updated_at:
        out.updated_at.CopyFrom(ts(item.updated_at))
    return out


def showcase_to_proto(s: Showcase) -> pb.Showcase:
    return pb.Showcase(
        showcase_id=s.showcase_id,
        name=s.name,
        strategies=[pb.StrategyWeight(strategy=_strategy(k), weight=w) for k, w in s.strategies],
        filters=pb.ShowcaseFilters(
            categories=list(s.categories),
            exclude_purchased=s.exclude_purchased,
            only_available=s.only_available,
            exclude_in_cart=s.exclude_in_cart,
        ),
        segment_boosts=dict(s.segment_boosts),
        created_at=ts(s.created_at),
        updated_at=ts(s.updated_at),
        rules=pb.ShowcaseRules(pins=dict(s.pins), boosts=dict(s.boosts), excludes=list(s.excludes)),
        max_per_category=s.max_per_category,
        fallback=[_strategy(f) for f in s.fallback],
    )


def recommended_to_proto(m: Mixed, item: Item) -> pb.RecommendedItem:
    return pb.RecommendedItem(
        sku=m.sku,
        score=m.score,
        reason=pb.Reason(
            strategy=_strategy(m.strategy),
            because_sku=m.because_sku,
            because_segment_id=m.because_segment_id,
            pinned=m.pinned,
        ),
        item=item_to_proto(item),
    )


def encode_items(skus: Sequence[str], at: float) -> OutboxMessage:
    topic, payload = RECOMMEND_ITEMS.outbox_row(
        pb.ItemsUpserted(skus=list(skus), upserted_at=ts(at))
    )
    return topic, payload, ""


def encode_showcase(showcase_id: str, at: float) -> OutboxMessage:
    topic, payload = RECOMMEND_SHOWCASES.outbox_row(
        pb.ShowcaseChanged(showcase_id=showcase_id, changed_at=ts(at))
    )
    return topic, payload, ""

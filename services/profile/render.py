"""Domain -> protobuf: what responses and bus payloads are made of.

The outbound half of the service's translation (`translate.py` is the inbound half: requests
validated into domain values). Profiles are rendered as of a moment, because decayed
interests, engagement and status depend on it.
"""

from __future__ import annotations

from typing import Any

from backcrm.common.v1 import common_pb2
from backcrm.profile.v1 import profile_service_pb2 as pb
from google.protobuf import struct_pb2
from google.protobuf.json_format import ParseDict

from libs.protoutil import enum, money, ts
from services.profile.domain import (
    DAY,
    CartLine,
    Customer,
    EventIn,
    IdentityKey,
    OrderIn,
    decayed,
    engagement_score,
    status_of,
)
from services.profile.ports import MergeRecord, PurchaseRecord

__all__ = [
    "event_to_proto",
    "identity_to_proto",
    "line_to_proto",
    "merge_record_to_proto",
    "order_to_proto",
    "purchase_to_proto",
    "render_profile",
    "render_response",
    "struct_of",
]


def identity_to_proto(key: IdentityKey) -> common_pb2.Identity:
    return common_pb2.Identity(
        type=enum(common_pb2.IdentityType, f"IDENTITY_TYPE_{key[0]}"), value=key[1]
    )


def line_to_proto(line: CartLine) -> common_pb2.CartLine:
    return common_pb2.CartLine(
        sku=line.sku,
        category=line.category,
        quantity=line.quantity,
        unit_price=money(line.unit_price_micros, line.currency),
    )


def order_to_proto(order: OrderIn) -> common_pb2.Order:
    return common_pb2.Order(
        order_id=order.order_id,
        lines=[line_to_proto(line) for line in order.lines],
        total=money(order.total_micros, order.currency),
        placed_at=ts(order.placed_at),
    )


def struct_of(values: dict[str, Any]) -> struct_pb2.Struct:
    # Struct.update takes what ParseDict takes for a Struct (JSON values), at a fraction of
    # its cost: every event with properties in a ProfileChanged goes through here.
    struct = struct_pb2.Struct()
    struct.update(values)
    return struct


def event_to_proto(event: EventIn, *, for_customer: str | None = None) -> pb.Event:
    """The event as sent; with `for_customer` as it goes on the bus: named by that customer id,
    without the identities (emails, phones) it was sent with."""
    message = pb.Event(
        event_id=event.event_id,
        identities=[] if for_customer else [identity_to_proto(k) for k in event.identities],
        type=enum(pb.EventType, f"EVENT_TYPE_{event.type}"),
        channel=enum(common_pb2.Channel, f"CHANNEL_{event.channel}"),
        occurred_at=ts(event.occurred_at),
        sku=event.sku,
        category=event.category,
        quantity=event.quantity,
    )
    if for_customer or event.customer_id:
        message.customer.customer_id = for_customer or event.customer_id or ""
    elif event.identity:
        message.customer.identity.CopyFrom(identity_to_proto(event.identity))
    if event.properties:
        message.properties.CopyFrom(struct_of(event.properties))
    if event.order is not None:
        message.order.CopyFrom(order_to_proto(event.order))
    if event.unit_price_micros or event.currency:
        message.unit_price.CopyFrom(money(event.unit_price_micros, event.currency))
    return message


def render_profile(
    customer: Customer, identities: list[IdentityKey], now: float, *, recent: bool = True
) -> pb.Profile:
    data = customer.data
    currency = data.get("currency", "")
    profile = pb.Profile(
        customer_id=customer.customer_id,
        identities=[identity_to_proto(k) for k in identities],
        attributes=pb.Attributes(**data.get("attributes", {})),
        consents=[
            pb.Consent(
                channel=enum(common_pb2.Channel, f"CHANNEL_{channel}"),
                state=enum(pb.ConsentState, f"CONSENT_STATE_{c['state']}"),
                updated_at=ts(c["updated_at"]),
            )
            for channel, c in sorted(data.get("consents", {}).items())
        ],
        status=enum(pb.ProfileStatus, f"PROFILE_STATUS_{status_of(customer, now)}"),
        interests={
            category: round(decayed(value, ref, now), 4)
            for category, (value, ref) in data.get("interests", {}).items()
        },
        engagement_score=engagement_score(data.get("engagement"), now),
        cart=[
            common_pb2.CartLine(
                sku=sku,
                category=line["category"],
                quantity=line["quantity"],
                unit_price=money(line["price"], line["currency"]),
            )
            for sku, line in data.get("cart", {}).items()
        ],
        purchase_summary=pb.PurchaseSummary(
            orders=customer.orders,
            revenue=money(customer.revenue_micros, currency),
            returns=int(data.get("returns", 0)),
        ),
        recent_events=[
            pb.RecentEvent(
                event_id=e["id"],
                type=enum(pb.EventType, f"EVENT_TYPE_{e['type']}"),
                channel=enum(common_pb2.Channel, f"CHANNEL_{e['channel']}"),
                occurred_at=ts(e["at"]),
                sku=e["sku"],
                category=e["category"],
            )
            for e in (data.get("recent", []) if recent else [])
        ],
        created_at=ts(customer.created_at),
        updated_at=ts(customer.updated_at),
        version=customer.version,
        last_activity_at=ts(customer.last_activity_at),
    )
    summary = profile.purchase_summary
    if "first_purchase_at" in data:
        summary.first_purchase_at.CopyFrom(ts(data["first_purchase_at"]))
    if customer.last_purchase_at is not None:
        summary.last_purchase_at.CopyFrom(ts(customer.last_purchase_at))
        profile.rfm.recency_days = int(max(0.0, now - customer.last_purchase_at) // DAY)
    profile.rfm.frequency = customer.orders
    profile.rfm.monetary.CopyFrom(money(customer.revenue_micros, currency))
    scores = data.get("rfm_scores", {})
    profile.rfm.recency_score = scores.get("r", 0)
    profile.rfm.frequency_score = scores.get("f", 0)
    profile.rfm.monetary_score = scores.get("m", 0)
    for name, value in data.get("traits", {}).items():
        profile.traits[name].CopyFrom(ParseDict(value, struct_pb2.Value()))
    return profile


def render_response(customer: Customer, identities: list[IdentityKey], now: float) -> bytes:
    return pb.GetProfileResponse(
        profile=render_profile(customer, identities, now)
    ).SerializeToString()


def purchase_to_proto(record: PurchaseRecord) -> pb.Purchase:
    lines = tuple(CartLine(*line) for line in record.lines)
    order = OrderIn(record.order_id, lines, record.total_micros, record.currency, record.placed_at)
    return pb.Purchase(
        order_id=record.order_id,
        order=order_to_proto(order),
        is_return=record.is_return,
        event_id=record.event_id,
        channel=enum(common_pb2.Channel, f"CHANNEL_{record.channel}"),
    )


def merge_record_to_proto(record: MergeRecord) -> pb.MergeRecord:
    return pb.MergeRecord(
        source_customer_id=record.source_customer_id,
        target_customer_id=record.target_customer_id,
        actor=record.actor,
        reason=record.reason,
        merged_at=ts(record.merged_at),
    )

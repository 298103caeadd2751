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

from libs.protoutil import enum_values, money, stamp, ts
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


# Short names -> numbers, once: a profile has a few dozen enum fields.
_CHANNEL = enum_values(common_pb2.Channel)
_CONSENT_STATE = enum_values(pb.ConsentState)
_EVENT_TYPE = enum_values(pb.EventType)
_IDENTITY_TYPE = enum_values(common_pb2.IdentityType)
_STATUS = enum_values(pb.ProfileStatus)


def identity_to_proto(key: IdentityKey) -> common_pb2.Identity:
    return common_pb2.Identity(type=_IDENTITY_TYPE[key[0]], value=key[1])


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
        type=_EVENT_TYPE[event.type],
        channel=_CHANNEL[event.channel],
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


def _money(micros: int, currency: str) -> dict[str, Any]:
    return {"currency": currency, "units_micros": micros}


def render_profile(
    customer: Customer, identities: list[IdentityKey], now: float, *, recent: bool = True
) -> pb.Profile:
    """The profile as of `now`. Built by one constructor call from plain dicts and lists:
    upb then makes every submessage in C, where building each (a recent event, a timestamp,
    an amount) as a message of its own to copy in took twice as long — GetProfile's cache
    fills and every ProfileChanged snapshot of the event path render here.
    tests/unit/test_render.py holds the output to the previous rendering, byte for byte."""
    data = customer.data
    currency = data.get("currency", "")
    summary: dict[str, Any] = {
        "orders": customer.orders,
        "revenue": _money(customer.revenue_micros, currency),
        "returns": int(data.get("returns", 0)),
    }
    scores = data.get("rfm_scores", {})
    rfm: dict[str, Any] = {
        "frequency": customer.orders,
        "monetary": _money(customer.revenue_micros, currency),
        "recency_score": scores.get("r", 0),
        "frequency_score": scores.get("f", 0),
        "monetary_score": scores.get("m", 0),
    }
    if "first_purchase_at" in data:
        summary["first_purchase_at"] = stamp(data["first_purchase_at"])
    if customer.last_purchase_at is not None:
        summary["last_purchase_at"] = stamp(customer.last_purchase_at)
        rfm["recency_days"] = int(max(0.0, now - customer.last_purchase_at) // DAY)
    profile = pb.Profile(
        customer_id=customer.customer_id,
        identities=[{"type": _IDENTITY_TYPE[kind], "value": value} for kind, value in identities],
        attributes=data.get("attributes", {}),
        consents=[
            {
                "channel": _CHANNEL[channel],
                "state": _CONSENT_STATE[c["state"]],
                "updated_at": stamp(c["updated_at"]),
            }
            for channel, c in sorted(data.get("consents", {}).items())
        ],
        status=_STATUS[status_of(customer, now)],
        interests={
            category: round(decayed(value, ref, now), 4)
            for category, (value, ref) in data.get("interests", {}).items()
        },
        engagement_score=engagement_score(data.get("engagement"), now),
        cart=[
            {
                "sku": sku,
                "category": line["category"],
                "quantity": line["quantity"],
                "unit_price": _money(line["price"], line["currency"]),
            }
            for sku, line in data.get("cart", {}).items()
        ],
        purchase_summary=summary,
        rfm=rfm,
        recent_events=[
            {
                "event_id": e["id"],
                "type": _EVENT_TYPE[e["type"]],
                "channel": _CHANNEL[e["channel"]],
                "occurred_at": stamp(e["at"]),
                "sku": e["sku"],
                "category": e["category"],
            }
            for e in (data.get("recent", []) if recent else [])
        ],
        created_at=stamp(customer.created_at),
        updated_at=stamp(customer.updated_at),
        version=customer.version,
        last_activity_at=stamp(customer.last_activity_at),
    )
    traits = data.get("traits")
    if traits:
        # the JSON values as google.protobuf.Values (a Struct's fields are the same map type)
        profile.traits.MergeFrom(struct_of(traits).fields)
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
        channel=_CHANNEL[record.channel],
    )


def merge_record_to_proto(record: MergeRecord) -> pb.MergeRecord:
    return pb.MergeRecord(
        source_customer_id=record.source_customer_id,
        target_customer_id=record.target_customer_id,
        actor=record.actor,
        reason=record.reason,
        merged_at=ts(record.merged_at),
    )

"""Domain <-> protobuf translation shared by the entrypoint, the outbox and the renderer."""

from __future__ import annotations

from typing import Any

from backcrm.common.v1 import common_pb2
from backcrm.profile.v1 import profile_service_pb2 as pb
from google.protobuf import struct_pb2
from google.protobuf.json_format import ParseDict

from libs.protoutil import enum, ts
from services.profile.domain import CartLine, EventIn, IdentityKey, OrderIn

__all__ = [
    "TOPIC_CHANGED",
    "TOPIC_DELETED",
    "TOPIC_MERGED",
    "event_to_proto",
    "identity_to_proto",
    "money",
    "order_to_proto",
]

TOPIC_CHANGED = "profile.changed"
TOPIC_DELETED = "profile.deleted"
TOPIC_MERGED = "profile.merged"
PRODUCER = "profile"


def identity_to_proto(key: IdentityKey) -> common_pb2.Identity:
    return common_pb2.Identity(
        type=enum(common_pb2.IdentityType, f"IDENTITY_TYPE_{key[0]}"), value=key[1]
    )


def money(micros: int, currency: str) -> common_pb2.Money:
    return common_pb2.Money(currency=currency, units_micros=micros)


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
    return ParseDict(values, struct_pb2.Struct())


def event_to_proto(event: EventIn) -> pb.Event:
    message = pb.Event(
        event_id=event.event_id,
        identities=[identity_to_proto(k) for k in event.identities],
        type=enum(pb.EventType, f"EVENT_TYPE_{event.type}"),
        channel=enum(common_pb2.Channel, f"CHANNEL_{event.channel}"),
        occurred_at=ts(event.occurred_at),
        sku=event.sku,
        category=event.category,
        quantity=event.quantity,
    )
    if event.customer_id:
        message.customer.customer_id = event.customer_id
    elif event.identity:
        message.customer.identity.CopyFrom(identity_to_proto(event.identity))
    if event.properties:
        message.properties.CopyFrom(struct_of(event.properties))
    if event.order is not None:
        message.order.CopyFrom(order_to_proto(event.order))
    if event.unit_price_micros or event.currency:
        message.unit_price.CopyFrom(money(event.unit_price_micros, event.currency))
    return message

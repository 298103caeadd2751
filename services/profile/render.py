"""Customer (domain) -> GetProfileResponse bytes, as of a moment (decay and status are timely)."""

from __future__ import annotations

from backcrm.common.v1 import common_pb2
from backcrm.profile.v1 import profile_service_pb2 as pb
from google.protobuf import struct_pb2
from google.protobuf.json_format import ParseDict

from libs.protoutil import enum, ts
from services.profile.codec import identity_to_proto, money
from services.profile.domain import (
    DAY,
    Customer,
    IdentityKey,
    decayed,
    engagement_score,
    status_of,
)

__all__ = ["render_profile", "render_response"]


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

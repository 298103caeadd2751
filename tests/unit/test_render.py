"""`render_profile` gives exactly what the rendering before its speed-up gave (issue 11).

`_reference` below is that rendering, kept verbatim as the oracle: the profile of every
GetProfile and of every ProfileChanged snapshot must not change by a byte while its cost
does. Rich profiles (every event type, orders and returns, a cart, consents, attributes,
nested traits, RFM scores) are rendered at several moments, as the decayed fields depend on it.
"""

from __future__ import annotations

import random
from typing import Any

import pytest
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
    apply_event,
    decayed,
    engagement_score,
    status_of,
)
from services.profile.render import render_profile, render_response

TYPES = [
    "PAGE_VIEW",
    "PRODUCT_VIEW",
    "SEARCH",
    "ADD_TO_CART",
    "REMOVE_FROM_CART",
    "PURCHASE",
    "EMAIL_OPEN",
    "EMAIL_CLICK",
    "AD_IMPRESSION",
    "AD_CLICK",
    "CALL",
    "STORE_VISIT",
    "CUSTOM",
]
CHANNELS = ["WEB", "MOBILE_APP", "EMAIL", "CALL_CENTER", "STORE", "SMS"]
T0 = 1_700_000_000.123456


def _reference(
    customer: Customer, identities: list[IdentityKey], now: float, *, recent: bool = True
) -> pb.Profile:
    """render_profile as it was before issue 11 (02cec13..9e18bfd), unchanged."""
    data = customer.data
    currency = data.get("currency", "")
    profile = pb.Profile(
        customer_id=customer.customer_id,
        identities=[
            common_pb2.Identity(
                type=enum(common_pb2.IdentityType, f"IDENTITY_TYPE_{k[0]}"), value=k[1]
            )
            for k in identities
        ],
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


def _event(rng: random.Random, i: int, at: float) -> EventIn:
    kind = rng.choice(TYPES)
    category = rng.choice(["books", "garden", "toys", "ringtones", ""])
    sku = f"sku-{rng.randint(1, 9)}"
    order = None
    if kind == "PURCHASE":
        sign = -1 if rng.random() < 0.2 else 1  # a return now and then
        lines = tuple(
            CartLine(f"sku-{n}", category or "books", sign * rng.randint(1, 3), 1_990_000, "EUR")
            for n in range(rng.randint(1, 3))
        )
        total = sum(line.quantity * line.unit_price_micros for line in lines)
        order = OrderIn(f"o-{i}", lines, total, "EUR", at)
    return EventIn(
        event_id=f"e-{i}",
        type=kind,
        channel=rng.choice(CHANNELS),
        occurred_at=at,
        customer_id="c-1",
        sku=sku,
        category=category,
        order=order,
        quantity=rng.randint(1, 4) if kind in ("ADD_TO_CART", "REMOVE_FROM_CART") else 0,
        unit_price_micros=4_990_000 if kind == "ADD_TO_CART" else 0,
        currency="EUR" if kind == "ADD_TO_CART" else "",
    )


def rich_customer(seed: int, events: int = 40) -> Customer:
    rng = random.Random(seed)
    customer = Customer("c-1", created_at=T0, updated_at=T0, version=1)
    at = T0
    for i in range(events):
        at += rng.uniform(0, 5 * DAY)
        apply_event(customer, _event(rng, i, at))
    added = EventIn(
        event_id="e-cart",
        type="ADD_TO_CART",
        channel="WEB",
        occurred_at=at,
        customer_id="c-1",
        sku="sku-last",
        category="toys",
        quantity=2,
        unit_price_micros=990_000,
        currency="EUR",
    )
    apply_event(customer, added)  # never an empty cart
    data: dict[str, Any] = customer.data
    customer.updated_at, customer.version = at + 0.5, events + 1
    data["attributes"] = {"name": "Ada Q", "email": "ada@example.com", "region": "north"}
    data["consents"] = {
        "SMS": {"state": "DENIED", "updated_at": T0 + 3.25},
        "EMAIL": {"state": "GRANTED", "updated_at": T0 + 1.5},
    }
    data["traits"] = {
        "bonus.tier": "gold",
        "bonus.points": 1250,
        "ads.seen": [1, "two", None, True, {"deep": [2.5, {"x": False}]}],
        "crm.flags": {"vip": True, "note": None, "score": -3.75},
        "crm.empty": {},
    }
    data["rfm_scores"] = {"r": 4, "f": 2, "m": 5}
    return customer


IDENTITIES: list[IdentityKey] = [
    ("EMAIL", "ada@example.com"),
    ("PHONE", "+447700900123"),
    ("COOKIE", "ck-1"),
    ("LOYALTY_CARD", "L-77"),
]


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("recent", [True, False])
def test_render_profile_is_the_reference_rendering(seed: int, recent: bool) -> None:
    customer = rich_customer(seed)
    assert customer.data["recent"] and customer.data["interests"] and customer.data["cart"]
    last = customer.last_activity_at
    for now in (T0 - DAY, last, last + 1.0, last + 45 * DAY, last + 400 * DAY):
        got = render_profile(customer, IDENTITIES, now, recent=recent)
        want = _reference(customer, IDENTITIES, now, recent=recent)
        assert got == want, (seed, now)
        assert got.SerializeToString(deterministic=True) == want.SerializeToString(
            deterministic=True
        )


def test_an_empty_profile_is_the_reference_rendering() -> None:
    customer = Customer("c-0", created_at=T0, updated_at=T0)
    for identities in ([], IDENTITIES):
        got = render_profile(customer, identities, T0 + 10)
        assert got == _reference(customer, identities, T0 + 10)
        assert render_response(customer, identities, T0 + 10) == (
            pb.GetProfileResponse(profile=_reference(customer, identities, T0 + 10))
        ).SerializeToString(deterministic=True)

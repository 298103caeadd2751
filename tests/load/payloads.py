"""Pre-serialised request bodies for the benchmark, so the client spends next to no CPU on them.

Every source is a zero-argument callable returning the next request's bytes.
TrackEvents batches are serialised once as templates whose event and order ids hold a
fixed-width placeholder; each call swaps in a fresh counter of the same width, so the bytes
stay valid protobuf and every event id is unique.
"""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import Callable, Sequence

from backcrm.common.v1 import common_pb2
from backcrm.profile.v1 import profile_service_pb2 as pb

__all__ = [
    "EVENTS_PER_BATCH",
    "RequestSource",
    "cycle",
    "echo_requests",
    "get_profile_requests",
    "register_requests",
    "track_events_requests",
]

RequestSource = Callable[[], bytes]
EVENTS_PER_BATCH = 100
LOAD_CUSTOMERS = 10_000
_PLACEHOLDER = b"@@@@@@@@@@@@"  # 12 bytes, replaced by a 12-digit call number
_CATEGORIES = ("books", "garden", "kitchen", "toys", "sports", "beauty", "music", "outdoor")
# (type, weight): what a web shop's tracker sends, browsing dominating buying
_MIX = (("PRODUCT_VIEW", 70), ("ADD_TO_CART", 22), ("PURCHASE", 8))


def cycle(bodies: Sequence[bytes]) -> RequestSource:
    return itertools.cycle(bodies).__next__


def echo_requests(size: int = 60) -> RequestSource:
    """About the size of a GetProfile request by customer id."""
    return cycle([b"r" * size])


def get_profile_requests(customer_ids: Sequence[str]) -> RequestSource:
    return cycle(
        [
            pb.GetProfileRequest(customer=common_pb2.CustomerRef(customer_id=c)).SerializeToString()
            for c in customer_ids
        ]
    )


def _money(micros: int) -> common_pb2.Money:
    return common_pb2.Money(currency="EUR", units_micros=micros)


def _event(rng: random.Random, index: int, now: float, run: str) -> pb.Event:
    kind = rng.choices([k for k, _ in _MIX], weights=[w for _, w in _MIX])[0]
    category = rng.choice(_CATEGORIES)
    sku = f"SKU-{category[:3].upper()}-{rng.randint(1, 500):04d}"
    price = rng.choice((4_990_000, 12_500_000, 19_990_000, 49_000_000))
    event = pb.Event(
        event_id=f"bench-{run}-{_PLACEHOLDER.decode()}-{index:03d}",
        customer=_customer(rng.randrange(LOAD_CUSTOMERS)),
        type=pb.EventType.Value(f"EVENT_TYPE_{kind}"),
        channel=rng.choice((common_pb2.CHANNEL_WEB, common_pb2.CHANNEL_MOBILE_APP)),
        sku=sku,
        category=category,
    )
    event.occurred_at.FromNanoseconds(int((now - rng.uniform(0, 3600)) * 1e9))
    if kind == "PRODUCT_VIEW":
        event.properties.update({"path": f"/p/{sku.lower()}", "referrer": "search"})
    elif kind == "ADD_TO_CART":
        event.quantity = rng.choice((1, 1, 1, 2, 3))
        event.unit_price.CopyFrom(_money(price))
    else:
        lines = [
            common_pb2.CartLine(
                sku=f"SKU-{c[:3].upper()}-{rng.randint(1, 500):04d}",
                category=c,
                quantity=rng.choice((1, 1, 2)),
                unit_price=_money(rng.choice((4_990_000, 12_500_000, 19_990_000))),
            )
            for c in rng.sample(_CATEGORIES, rng.randint(1, 3))
        ]
        event.order.order_id = f"order-{run}-{_PLACEHOLDER.decode()}-{index:03d}"
        event.order.lines.extend(lines)
        event.order.total.CopyFrom(
            _money(sum(line.quantity * line.unit_price.units_micros for line in lines))
        )
        event.order.placed_at.CopyFrom(event.occurred_at)
    return event


def _customer(k: int) -> common_pb2.CustomerRef:
    return common_pb2.CustomerRef(
        identity=common_pb2.Identity(
            type=common_pb2.IDENTITY_TYPE_EMAIL, value=f"load{k}@bench.example"
        )
    )


def register_requests(run: str, batch: int = EVENTS_PER_BATCH) -> list[bytes]:
    """One PAGE_VIEW per load customer, `batch` customers a call: they all exist afterwards."""
    return [
        pb.TrackEventsRequest(
            events=[
                pb.Event(
                    event_id=f"register-{run}-{k}",
                    customer=_customer(k),
                    type=pb.EVENT_TYPE_PAGE_VIEW,
                    channel=common_pb2.CHANNEL_WEB,
                )
                for k in range(start, min(start + batch, LOAD_CUSTOMERS))
            ]
        ).SerializeToString()
        for start in range(0, LOAD_CUSTOMERS, batch)
    ]


def track_events_requests(
    run: str, templates: int = 64, batch: int = EVENTS_PER_BATCH, seed: int = 7
) -> RequestSource:
    """Batches of `batch` events over LOAD_CUSTOMERS customers (by EMAIL), unique ids per call."""
    rng = random.Random(seed)
    now = time.time()
    bodies = [
        pb.TrackEventsRequest(
            events=[_event(rng, i, now, run) for i in range(batch)]
        ).SerializeToString()
        for _ in range(templates)
    ]
    calls = itertools.count(1)

    def next_request() -> bytes:
        number = next(calls)
        return bodies[number % templates].replace(_PLACEHOLDER, b"%012d" % number)

    return next_request

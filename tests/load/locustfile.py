"""Locust load test of ProfileService, shaped like a web shop (`make load`).

    locust -f tests/load/locustfile.py --headless -u 32 -r 8 -t 60s --host 127.0.0.1:50051

The host is a plain `host:port` (no scheme). The bearer token comes from BACKCRM_TOKEN, or
else from var/demo.token (BACKCRM_VAR_DIR/demo.token), which `make run` writes.

Each user is one shopper: on start it signs up (UpsertProfile by email) and then, weighted
like a shop's traffic, tracks batches of 20 events (the tracker fires all the time), reads
its profile for personalisation, previews a handful of profiles (a back-office list) and now
and then edits its attributes. Calls use a plain sync grpc channel made gevent-friendly, and
every call is reported to Locust through the `request` event.
"""

from __future__ import annotations

import os
import random
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import grpc.experimental.gevent as grpc_gevent
from locust import User, between, task

# Locust loads this file by path: make the repository and its generated stubs importable.
_REPO = Path(__file__).resolve().parents[2]
for _path in (_REPO, _REPO / "libs" / "gen"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from backcrm.common.v1 import common_pb2  # noqa: E402
from backcrm.profile.v1 import profile_service_pb2 as pb  # noqa: E402
from backcrm.profile.v1 import profile_service_pb2_grpc  # noqa: E402

grpc_gevent.init_gevent()  # sync grpc calls yield to gevent instead of blocking the process

BATCH = 20
CATEGORIES = ("books", "garden", "kitchen", "toys", "sports", "beauty", "music", "outdoor")
# customer ids the users created, for GetProfile / BatchGetProfiles of other shoppers
KNOWN: list[str] = []


def bearer_token() -> str:
    token = os.environ.get("BACKCRM_TOKEN", "").strip()
    if token:
        return token
    path = Path(os.environ.get("BACKCRM_VAR_DIR", "var")) / "demo.token"
    if not path.exists():
        raise SystemExit(f"no token: set BACKCRM_TOKEN or run `make run` to create {path}")
    return path.read_text().strip()


def _money(micros: int) -> common_pb2.Money:
    return common_pb2.Money(currency="EUR", units_micros=micros)


def _sku(category: str) -> str:
    return f"SKU-{category[:3].upper()}-{random.randint(1, 500):04d}"


def shop_event(email: str) -> pb.Event:
    """A PRODUCT_VIEW, ADD_TO_CART or PURCHASE of the shopper, 70/22/8."""
    kind = random.choices(("PRODUCT_VIEW", "ADD_TO_CART", "PURCHASE"), weights=(70, 22, 8))[0]
    category = random.choice(CATEGORIES)
    event = pb.Event(
        event_id=f"locust-{uuid.uuid4().hex}",
        customer=common_pb2.CustomerRef(
            identity=common_pb2.Identity(type=common_pb2.IDENTITY_TYPE_EMAIL, value=email)
        ),
        type=pb.EventType.Value(f"EVENT_TYPE_{kind}"),
        channel=common_pb2.CHANNEL_WEB,
        sku=_sku(category),
        category=category,
    )
    if kind == "ADD_TO_CART":
        event.quantity = random.choice((1, 1, 2))
        event.unit_price.CopyFrom(_money(random.choice((4_990_000, 12_500_000))))
    elif kind == "PURCHASE":
        line = common_pb2.CartLine(
            sku=event.sku, category=category, quantity=1, unit_price=_money(19_990_000)
        )
        event.order.order_id = f"locust-{uuid.uuid4().hex[:16]}"
        event.order.lines.append(line)
        event.order.total.CopyFrom(_money(19_990_000))
    return event


class GrpcTimer:
    """Calls a stub method and reports it to Locust (request_type "grpc")."""

    def __init__(self, user: User, metadata: tuple[tuple[str, str], ...]) -> None:
        self._fire = user.environment.events.request.fire
        self._metadata = metadata

    def __call__(self, name: str, method: Callable[..., Any], request: Any) -> Any:
        started = time.perf_counter()
        response, exception = None, None
        try:
            response = method(request, metadata=self._metadata, timeout=10.0)
        except grpc.RpcError as error:
            exception = error
        self._fire(
            request_type="grpc",
            name=name,
            response_time=(time.perf_counter() - started) * 1000,
            response_length=response.ByteSize() if response is not None else 0,
            exception=exception,
            context={},
        )
        return response


class ShopUser(User):
    wait_time = between(0.05, 0.5)

    def on_start(self) -> None:
        if not self.host:
            raise SystemExit("pass --host 127.0.0.1:50051")
        self.channel = grpc.insecure_channel(self.host.removeprefix("grpc://"))
        self.stub = profile_service_pb2_grpc.ProfileServiceStub(self.channel)
        self.call = GrpcTimer(self, (("authorization", f"Bearer {bearer_token()}"),))
        self.email = f"shopper-{uuid.uuid4().hex[:12]}@load.example"
        self.customer_id = ""
        self.sign_up()

    def on_stop(self) -> None:
        self.channel.close()

    def _ref(self) -> common_pb2.CustomerRef:
        return common_pb2.CustomerRef(
            identity=common_pb2.Identity(type=common_pb2.IDENTITY_TYPE_EMAIL, value=self.email)
        )

    def sign_up(self) -> None:
        request = pb.UpsertProfileRequest(
            customer=self._ref(),
            attributes=pb.Attributes(name="Load Shopper", email=self.email, language="en-GB"),
        )
        answer = self.call("UpsertProfile", self.stub.UpsertProfile, request)
        if answer is not None:
            self.customer_id = answer.profile.customer_id
            KNOWN.append(self.customer_id)

    @task(10)
    def track_events(self) -> None:
        request = pb.TrackEventsRequest(events=[shop_event(self.email) for _ in range(BATCH)])
        self.call("TrackEvents", self.stub.TrackEvents, request)

    @task(6)
    def get_profile(self) -> None:
        self.call("GetProfile", self.stub.GetProfile, pb.GetProfileRequest(customer=self._ref()))

    @task(1)
    def batch_get_profiles(self) -> None:
        if not KNOWN:
            return
        ids = random.sample(KNOWN, min(10, len(KNOWN)))
        request = pb.BatchGetProfilesRequest(customer_ids=ids)
        self.call("BatchGetProfiles", self.stub.BatchGetProfiles, request)

    @task(1)
    def upsert_profile(self) -> None:
        request = pb.UpsertProfileRequest(
            customer=self._ref(),
            attributes=pb.Attributes(city=random.choice(("London", "Leeds", "Bristol"))),
        )
        self.call("UpsertProfile", self.stub.UpsertProfile, request)

"""Bonus and ads asking segmentation in process (`Peers.local`) when one process serves both:
the same answers as the gRPC call, the same scope check, the same deadline, erasure included."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from backcrm.common.v1 import common_pb2
from backcrm.profile.v1 import profile_service_pb2 as ppb
from backcrm.segmentation.v1 import condition_pb2 as c
from backcrm.segmentation.v1 import segmentation_service_pb2 as pb
from google.protobuf import struct_pb2

from libs.auth import TokenRegistry
from libs.runtime import Peers
from libs.signals import EVALUATE_CONDITIONS, EVALUATE_SEGMENTS, SegmentationSignals
from services.ads.remote import GET_PROFILE, ProfileInterests
from tests.e2e.conftest import Suite
from tests.e2e.helpers import email, event, purchase
from tests.support import TOKENS

pytestmark = pytest.mark.e2e


def uid() -> str:
    return uuid.uuid4().hex[:10]


def _orders_at_least(n: int) -> c.Condition:
    return c.Condition(
        property=c.PropertyCondition(
            path="purchase_summary.orders",
            op=c.OPERATOR_GTE,
            value=struct_pb2.Value(number_value=n),
        )
    )


def _on_mobile() -> c.Condition:
    return c.Condition(
        context=c.ContextCondition(
            path="channel", op=c.OPERATOR_EQ, value=struct_pb2.Value(string_value="MOBILE_APP")
        )
    )


def _peers(suite: Suite, token: str) -> Peers:
    """Peers of a process serving the suite's services, calling with `token`."""
    assert suite.running is not None
    settings = suite.backend.settings
    registry = TokenRegistry.from_sources(settings.auth_tokens, Path("/nonexistent"))
    peers = Peers(settings, token, lambda: suite.address)
    peers.host([app.rpc for app in suite.running.apps], registry)
    return peers


async def _segment(suite: Suite, name: str, condition: c.Condition) -> str:
    seg = suite.client().segmentation
    created = await seg.CreateSegment(
        pb.CreateSegmentRequest(segment=pb.Segment(name=name, condition=condition))
    )
    return created.segment.segment_id


async def test_in_process_answers_what_the_grpc_call_answers(suite: Suite) -> None:
    assert suite.running is not None and suite.running.peers is not None
    served = suite.running.peers
    assert served.local(EVALUATE_SEGMENTS) is not None  # serve all: bonus and ads ask in process
    buyers = await _segment(suite, f"buyers {uid()}", _orders_at_least(1))
    mobile_buyers = await _segment(
        suite,
        f"mobile buyers {uid()}",
        c.Condition(all_of=c.ConditionGroup(conditions=[_orders_at_least(1), _on_mobile()])),
    )
    who = email(f"{uid()}@example.com")
    customer_id = (
        await suite.client("shop").profile.TrackEvents(
            ppb.TrackEventsRequest(events=[purchase(uid(), who, uid(), ("x", "y", 1, 1_000_000))])
        )
    ).customer_ids[0]
    await suite.settled()

    in_process = SegmentationSignals(served.client, served.local)
    over_grpc = SegmentationSignals(served.client)
    ids = [buyers, mobile_buyers, "no-such-segment"]
    mobile = common_pb2.Context(channel=common_pb2.CHANNEL_MOBILE_APP)
    web = common_pb2.Context(channel=common_pb2.CHANNEL_WEB)
    for context, expected in ((mobile, {buyers, mobile_buyers}), (web, {buyers})):
        local = await in_process.segments(customer_id, ids, context, 5.0)
        remote = await over_grpc.segments(customer_id, ids, context, 5.0)
        assert local == remote == frozenset(expected)
    conditions = [_orders_at_least(1), _orders_at_least(2), _on_mobile()]
    assert (
        await in_process.conditions(customer_id, conditions, mobile, 5.0)
        == await over_grpc.conditions(customer_id, conditions, mobile, 5.0)
        == [True, False, True]
    )

    # Erasure: the in-process path reads what segmentation holds, so the customer is out.
    await suite.client("admin").profile.DeleteProfile(
        ppb.DeleteProfileRequest(customer=common_pb2.CustomerRef(customer_id=customer_id))
    )
    await suite.settled()
    assert await in_process.segments(customer_id, ids, mobile, 5.0) == frozenset()
    assert await in_process.conditions(customer_id, conditions, mobile, 5.0) == [
        False,
        False,
        True,
    ]


async def test_in_process_call_needs_the_scope_and_keeps_the_deadline(suite: Suite) -> None:
    customer_id = uuid.uuid4().hex
    conditions = [_orders_at_least(0)]
    allowed = _peers(suite, TOKENS["segments"][0])
    signals = SegmentationSignals(allowed.client, allowed.local)
    assert await signals.conditions(customer_id, conditions, None, 5.0) == [True]
    # a deadline already spent: the caller degrades (None), as with gRPC's DEADLINE_EXCEEDED
    assert await signals.conditions(customer_id, conditions, None, 0.0) is None
    assert await signals.segments(customer_id, ["any"], None, 0.0) is None
    # a token without segments:read, or none the registry knows, is refused in process too
    for token in (TOKENS["bonus"][0], "tok-unknown"):
        refused = _peers(suite, token)
        assert refused.local(EVALUATE_CONDITIONS) is not None
        signals = SegmentationSignals(refused.client, refused.local)
        assert await signals.conditions(customer_id, conditions, None, 5.0) is None
        assert await signals.segments(customer_id, ["any"], None, 5.0) is None
        await refused.close()
    await allowed.close()


async def test_a_service_not_hosted_here_is_called_over_grpc(suite: Suite) -> None:
    peers = _peers(suite, TOKENS["segments"][0])
    assert peers.local(EVALUATE_SEGMENTS) is not None
    peers.host([], None)  # serving nothing now: over gRPC
    assert peers.local(EVALUATE_SEGMENTS) is None
    elsewhere = Peers(suite.backend.settings, TOKENS["segments"][0], lambda: suite.address)
    assert elsewhere.local(EVALUATE_SEGMENTS) is None
    signals = SegmentationSignals(elsewhere.client, elsewhere.local)
    assert await signals.conditions(uuid.uuid4().hex, [_orders_at_least(0)], None, 5.0) == [True]
    await elsewhere.close()
    await peers.close()


async def test_ads_reads_interests_in_process_as_over_grpc(suite: Suite) -> None:
    assert suite.running is not None and suite.running.peers is not None
    served = suite.running.peers
    assert served.local(GET_PROFILE) is not None
    who = email(f"{uid()}@example.com")
    viewed = event(uid(), who, ppb.EVENT_TYPE_PRODUCT_VIEW, category="garden", sku="g-1")
    customer_id = (
        await suite.client("shop").profile.TrackEvents(ppb.TrackEventsRequest(events=[viewed]))
    ).customer_ids[0]
    in_process = ProfileInterests(served.client, served.local)
    over_grpc = ProfileInterests(served.client)
    local = await in_process.interests(customer_id, 5.0)
    assert local == await over_grpc.interests(customer_id, 5.0)
    assert local is not None and local["garden"] > 0
    # an unknown customer has no interests (NOT_FOUND), a spent deadline answers None
    assert await in_process.interests(uuid.uuid4().hex, 5.0) == {}
    assert await in_process.interests(customer_id, 0.0) is None

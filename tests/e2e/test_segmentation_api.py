"""Segmentation end to end: segments defined over gRPC follow the data both ways."""

from __future__ import annotations

import asyncio
import uuid

import grpc
import pytest
from backcrm.common.v1 import common_pb2
from backcrm.profile.v1 import profile_service_pb2 as ppb
from backcrm.segmentation.v1 import condition_pb2 as c
from backcrm.segmentation.v1 import segmentation_service_pb2 as pb
from google.protobuf import duration_pb2, struct_pb2

from libs.topics import PROFILE_CHANGED
from services.segmentation.translate import profile_update
from tests.e2e.conftest import Suite
from tests.e2e.helpers import email, field_violations, purchase, rpc_error
from tests.support import eventually

pytestmark = pytest.mark.e2e


def uid() -> str:
    return uuid.uuid4().hex[:10]


def text(value: str) -> struct_pb2.Value:
    return struct_pb2.Value(string_value=value)


def bought_twice(category: str, within_seconds: int) -> c.Condition:
    return c.Condition(
        event=c.EventCondition(
            type=ppb.EVENT_TYPE_PURCHASE,
            filters=[c.PropertyCondition(path="category", op=c.OPERATOR_EQ, value=text(category))],
            within=duration_pb2.Duration(seconds=within_seconds),
            count_op=c.OPERATOR_GTE,
            count=2,
        )
    )


async def ready(api: object, segment_id: str) -> pb.Segment:
    segment = pb.Segment()

    async def built() -> bool:
        nonlocal segment
        segment = (await api.GetSegment(pb.GetSegmentRequest(segment_id=segment_id))).segment  # type: ignore[attr-defined]
        return bool(segment.state == pb.SEGMENT_STATE_READY)

    await eventually(built, "the segment to become READY", timeout=20)
    return segment


async def next_change(stream: object, timeout: float = 15) -> pb.MembershipChange:
    return (await asyncio.wait_for(stream.read(), timeout)).change  # type: ignore[attr-defined]


async def test_walkthrough_enter_on_events_and_leave_when_the_window_passes(suite: Suite) -> None:
    seg = suite.client().segmentation
    shop = suite.client("shop").profile
    category = f"ringtones-{uid()}"
    created = (
        await seg.CreateSegment(
            pb.CreateSegmentRequest(
                segment=pb.Segment(name="Ringtone fans", condition=bought_twice(category, 3))
            )
        )
    ).segment
    assert created.kind == pb.SEGMENT_KIND_BEHAVIORAL
    await ready(seg, created.segment_id)
    stream = suite.client("reader").segmentation.WatchMembershipChanges(
        pb.WatchMembershipChangesRequest(segment_ids=[created.segment_id])
    )
    await stream.initial_metadata()
    who = email(f"{uid()}@example.com")
    reply = await shop.TrackEvents(
        ppb.TrackEventsRequest(
            events=[
                purchase(uid(), who, uid(), ("tone-1", category, 1, 990_000)),
                purchase(uid(), who, uid(), ("tone-2", category, 1, 990_000)),
            ]
        )
    )
    customer_id = reply.customer_ids[0]
    entered = await next_change(stream)
    assert (entered.customer_id, entered.change) == (customer_id, pb.MEMBERSHIP_CHANGE_TYPE_ENTERED)
    memberships = await seg.GetMemberships(pb.GetMembershipsRequest(customer=who))
    assert created.segment_id in memberships.segment_ids
    assert memberships.customer_id == customer_id
    members = await seg.ListMembers(pb.ListMembersRequest(segment_id=created.segment_id))
    assert list(members.customer_ids) == [customer_id]

    left = await next_change(stream)  # no new event: the 3-second window passes
    assert (left.customer_id, left.change) == (customer_id, pb.MEMBERSHIP_CHANGE_TYPE_LEFT)
    assert "time" in left.reason
    memberships = await seg.GetMemberships(pb.GetMembershipsRequest(customer=who))
    assert created.segment_id not in memberships.segment_ids
    stream.cancel()


async def test_preview_counts_before_saving(suite: Suite) -> None:
    shop = suite.client("shop").profile
    category = f"jazz-{uid()}"
    for _ in range(3):
        who = email(f"{uid()}@example.com")
        await shop.TrackEvents(
            ppb.TrackEventsRequest(
                events=[
                    purchase(uid(), who, uid(), ("cd", category, 1, 5_000_000)) for _ in range(2)
                ]
            )
        )
    seg = suite.client().segmentation
    await suite.settled()
    preview = await seg.PreviewSegment(
        pb.PreviewSegmentRequest(condition=bought_twice(category, 86_400), sample_size=2)
    )
    assert preview.estimated_count == 3
    assert len(preview.sample_customer_ids) == 2


async def test_contextual_and_combined_segments_answer_per_request(suite: Suite) -> None:
    seg = suite.client().segmentation
    mobile = c.Condition(
        context=c.ContextCondition(path="channel", op=c.OPERATOR_EQ, value=text("MOBILE_APP"))
    )
    contextual = (
        await seg.CreateSegment(
            pb.CreateSegmentRequest(segment=pb.Segment(name="On mobile", condition=mobile))
        )
    ).segment
    assert contextual.kind == pb.SEGMENT_KIND_CONTEXTUAL
    big_cart = c.Condition(
        all_of=c.ConditionGroup(
            conditions=[
                c.Condition(segment=c.SegmentCondition(segment_id=contextual.segment_id)),
                c.Condition(
                    context=c.ContextCondition(
                        path="cart.total",
                        op=c.OPERATOR_GTE,
                        value=struct_pb2.Value(number_value=50),
                    )
                ),
                c.Condition(
                    property=c.PropertyCondition(
                        path="purchase_summary.orders",
                        op=c.OPERATOR_GTE,
                        value=struct_pb2.Value(number_value=1),
                    )
                ),
            ]
        )
    )
    combined = (
        await seg.CreateSegment(
            pb.CreateSegmentRequest(segment=pb.Segment(name="Big mobile carts", condition=big_cart))
        )
    ).segment
    assert combined.kind == pb.SEGMENT_KIND_COMBINED
    who = email(f"{uid()}@example.com")
    customer_id = (
        await suite.client("shop").profile.TrackEvents(
            ppb.TrackEventsRequest(events=[purchase(uid(), who, uid(), ("x", "y", 1, 1_000_000))])
        )
    ).customer_ids[0]
    await suite.settled()
    cart = [
        common_pb2.CartLine(
            sku="tv",
            category="tv",
            quantity=1,
            unit_price=common_pb2.Money(currency="GBP", units_micros=60_000_000),
        )
    ]
    ids = [contextual.segment_id, combined.segment_id, "no-such-segment"]
    on_mobile = await seg.EvaluateSegments(
        pb.EvaluateSegmentsRequest(
            customer=common_pb2.CustomerRef(customer_id=customer_id),
            context=common_pb2.Context(channel=common_pb2.CHANNEL_MOBILE_APP, cart=cart),
            segment_ids=ids,
        )
    )
    assert set(on_mobile.segment_ids) == {contextual.segment_id, combined.segment_id}
    assert list(on_mobile.unknown_segment_ids) == ["no-such-segment"]
    on_web = await seg.EvaluateSegments(
        pb.EvaluateSegmentsRequest(
            customer=common_pb2.CustomerRef(customer_id=customer_id),
            context=common_pb2.Context(channel=common_pb2.CHANNEL_WEB, cart=cart),
            segment_ids=ids,
        )
    )
    assert list(on_web.segment_ids) == []
    err = await rpc_error(seg.ListMembers(pb.ListMembersRequest(segment_id=contextual.segment_id)))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_nested_segments_and_deletion_leave(suite: Suite) -> None:
    seg = suite.client().segmentation
    category = f"books-{uid()}"
    base = (
        await seg.CreateSegment(
            pb.CreateSegmentRequest(
                segment=pb.Segment(name="Book buyers", condition=bought_twice(category, 86_400))
            )
        )
    ).segment
    nested_condition = c.Condition(
        all_of=c.ConditionGroup(
            conditions=[
                c.Condition(segment=c.SegmentCondition(segment_id=base.segment_id)),
                c.Condition(
                    property=c.PropertyCondition(
                        path="attributes.city", op=c.OPERATOR_EQ, value=text("Leeds")
                    )
                ),
            ]
        )
    )
    nested = (
        await seg.CreateSegment(
            pb.CreateSegmentRequest(
                segment=pb.Segment(name="Leeds book buyers", condition=nested_condition)
            )
        )
    ).segment
    await ready(seg, base.segment_id)
    await ready(seg, nested.segment_id)
    stream = suite.client("reader").segmentation.WatchMembershipChanges(
        pb.WatchMembershipChangesRequest(segment_ids=[base.segment_id, nested.segment_id])
    )
    await stream.initial_metadata()
    who = email(f"{uid()}@example.com")
    shop = suite.client("shop").profile
    await shop.UpsertProfile(
        ppb.UpsertProfileRequest(customer=who, attributes=ppb.Attributes(city="Leeds"))
    )
    await shop.TrackEvents(
        ppb.TrackEventsRequest(
            events=[purchase(uid(), who, uid(), ("b", category, 1, 1_000_000)) for _ in range(2)]
        )
    )
    seen = {(await next_change(stream)).segment_id for _ in range(2)}
    assert seen == {base.segment_id, nested.segment_id}
    err = await rpc_error(seg.DeleteSegment(pb.DeleteSegmentRequest(segment_id=base.segment_id)))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION  # still referenced

    await suite.client().profile.DeleteProfile(ppb.DeleteProfileRequest(customer=who))
    changes = [await next_change(stream) for _ in range(2)]
    assert {ch.change for ch in changes} == {pb.MEMBERSHIP_CHANGE_TYPE_LEFT}
    assert {ch.segment_id for ch in changes} == {base.segment_id, nested.segment_id}
    stream.cancel()


async def test_segment_writes_need_admin_and_bad_conditions_name_the_node(suite: Suite) -> None:
    reader = suite.client("reader").segmentation
    condition = c.Condition(
        property=c.PropertyCondition(path="status", op=c.OPERATOR_EQ, value=text("ACTIVE"))
    )
    err = await rpc_error(
        reader.CreateSegment(
            pb.CreateSegmentRequest(segment=pb.Segment(name="x", condition=condition))
        )
    )
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    admin = suite.client().segmentation
    bad = c.Condition(
        all_of=c.ConditionGroup(
            conditions=[
                condition,
                c.Condition(
                    property=c.PropertyCondition(
                        path="purchase_summary.orders", op=c.OPERATOR_PREFIX, value=text("1")
                    )
                ),
            ]
        )
    )
    err = await rpc_error(
        admin.CreateSegment(pb.CreateSegmentRequest(segment=pb.Segment(name="x", condition=bad)))
    )
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert any(
        f.startswith("segment.condition.all_of.conditions[1]") for f in field_violations(err)
    )
    err = await rpc_error(
        admin.CreateSegment(pb.CreateSegmentRequest(segment=pb.Segment(name="x")))
    )
    assert field_violations(err) == ["segment.condition"]
    err = await rpc_error(admin.GetSegment(pb.GetSegmentRequest(segment_id="nope")))
    assert err.code() == grpc.StatusCode.NOT_FOUND


async def test_replayed_profile_change_does_not_enter_twice(suite: Suite) -> None:
    seg = suite.client().segmentation
    category = f"games-{uid()}"
    segment = (
        await seg.CreateSegment(
            pb.CreateSegmentRequest(
                segment=pb.Segment(name="Gamers", condition=bought_twice(category, 86_400))
            )
        )
    ).segment
    await ready(seg, segment.segment_id)
    captured: list[object] = []

    async def capture(envelope: object) -> None:
        captured.append(envelope)

    sub = await suite.resources.bus.subscribe(
        PROFILE_CHANGED.name, f"capture-{uid()}", "c", capture
    )
    who = email(f"{uid()}@example.com")
    await suite.client("shop").profile.TrackEvents(
        ppb.TrackEventsRequest(
            events=[purchase(uid(), who, uid(), ("g", category, 1, 1_000_000)) for _ in range(2)]
        )
    )
    await eventually(lambda: bool(captured), "the profile change", timeout=5)
    await sub.stop()
    engine = suite.segmentation.deps.engine
    update = profile_update(PROFILE_CHANGED.unpack(captured[0]))  # type: ignore[arg-type]
    await suite.settled()
    assert await engine.on_profile_changes([update]) == []  # the redelivery changes nothing
    members = await seg.ListMembers(pb.ListMembersRequest(segment_id=segment.segment_id))
    assert len(members.customer_ids) == 1


async def test_rfm_scores_and_templates(suite: Suite) -> None:
    seg = suite.client().segmentation
    templates = await seg.ListSegmentTemplates(pb.ListSegmentTemplatesRequest())
    assert {t.template for t in templates.templates} >= {"rfm_champions", "rfm_lost"}
    champions = (
        await seg.CreateSegment(
            pb.CreateSegmentRequest(segment=pb.Segment(name="Champions", template="rfm_champions"))
        )
    ).segment
    assert champions.condition.HasField("all_of")
    shop = suite.client("shop").profile
    heavy = email(f"{uid()}@example.com")
    await shop.TrackEvents(
        ppb.TrackEventsRequest(
            events=[purchase(uid(), heavy, uid(), ("p", "c", 1, 90_000_000)) for _ in range(12)]
        )
    )
    await suite.settled()
    result = await seg.RecomputeRfm(pb.RecomputeRfmRequest())
    assert result.scored_customers >= 1
    await ready(seg, champions.segment_id)
    memberships = await seg.GetMemberships(pb.GetMembershipsRequest(customer=heavy))
    assert champions.segment_id in memberships.segment_ids
    # the profile learns its scores from the bus
    profile = ppb.Profile()

    async def scored() -> bool:
        nonlocal profile
        profile = (await shop.GetProfile(ppb.GetProfileRequest(customer=heavy))).profile
        return bool(profile.rfm.frequency_score)

    await eventually(scored, "the profile to learn its RFM scores", timeout=5)
    assert (profile.rfm.recency_score, profile.rfm.frequency_score, profile.rfm.monetary_score) == (
        5,
        5,
        5,
    )


async def test_identity_lookup_needs_profile_read(suite: Suite) -> None:
    who = email(f"{uid()}@example.com")
    customer_id = (
        await suite.client("shop").profile.TrackEvents(
            ppb.TrackEventsRequest(events=[purchase(uid(), who, uid(), ("x", "y", 1, 1_000_000))])
        )
    ).customer_ids[0]
    segments_only = suite.client("segments")
    err = await rpc_error(segments_only.profile.GetProfile(ppb.GetProfileRequest(customer=who)))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    seg = segments_only.segmentation
    condition = c.Condition(
        property=c.PropertyCondition(
            path="purchase_summary.orders",
            op=c.OPERATOR_GTE,
            value=struct_pb2.Value(number_value=1),
        )
    )
    for call in (
        seg.GetMemberships(pb.GetMembershipsRequest(customer=who)),
        seg.EvaluateSegments(pb.EvaluateSegmentsRequest(customer=who)),
        seg.EvaluateConditions(pb.EvaluateConditionsRequest(customer=who, conditions=[condition])),
    ):
        err = await rpc_error(call)
        assert err.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "profile:read" in (err.details() or "")
        assert customer_id not in (err.details() or "")
    by_id = common_pb2.CustomerRef(customer_id=customer_id)
    reply = await seg.GetMemberships(pb.GetMembershipsRequest(customer=by_id))
    assert reply.customer_id == customer_id
    # with profile:read the identity resolves as before
    reply = await suite.client("reader").segmentation.GetMemberships(
        pb.GetMembershipsRequest(customer=who)
    )
    assert reply.customer_id == customer_id


def _wide(nodes: int) -> c.Condition:
    """A condition of exactly `nodes` nodes: an any_of over nodes - 1 property tests."""
    leaf = c.Condition(
        property=c.PropertyCondition(
            path="purchase_summary.orders",
            op=c.OPERATOR_GTE,
            value=struct_pb2.Value(number_value=1),
        )
    )
    return c.Condition(any_of=c.ConditionGroup(conditions=[leaf] * (nodes - 1)))


async def test_evaluate_conditions_has_a_node_budget_per_request(suite: Suite) -> None:
    from services.segmentation.conditions import MAX_NODES
    from services.segmentation.translate import MAX_REQUEST_NODES

    seg = suite.client("reader").segmentation
    who = common_pb2.CustomerRef(customer_id=uuid.uuid4().hex)
    oversized = [_wide(999) for _ in range(65)]  # the request that stalled the process
    err = await rpc_error(
        seg.EvaluateConditions(pb.EvaluateConditionsRequest(customer=who, conditions=oversized))
    )
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(err) == ["conditions"]
    at_bound = [_wide(MAX_NODES) for _ in range(MAX_REQUEST_NODES // MAX_NODES)]
    reply = await seg.EvaluateConditions(
        pb.EvaluateConditionsRequest(customer=who, conditions=at_bound)
    )
    assert list(reply.matched) == [False] * len(at_bound)
    err = await rpc_error(
        seg.EvaluateConditions(
            pb.EvaluateConditionsRequest(customer=who, conditions=[*at_bound, _wide(2)])
        )
    )
    assert field_violations(err) == ["conditions"]

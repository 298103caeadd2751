"""The profile service end to end: real server, real stubs, both backends."""

from __future__ import annotations

import asyncio
import uuid

import grpc
import pytest
from backcrm.common.v1 import common_pb2
from backcrm.profile.v1 import profile_service_pb2 as pb
from backcrm.segmentation.v1 import condition_pb2 as cpb
from backcrm.segmentation.v1 import segmentation_service_pb2 as spb
from google.protobuf import field_mask_pb2, struct_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from libs.validation import encode_page_token
from tests.e2e.conftest import Suite
from tests.e2e.helpers import (
    cookie,
    email,
    error_reason,
    event,
    field_violations,
    purchase,
    rpc_error,
)
from tests.e2e.test_segmentation_api import next_change, ready

pytestmark = pytest.mark.e2e


def uid() -> str:
    return uuid.uuid4().hex[:10]


async def test_health_serving_and_reflection_open_without_token(suite: Suite) -> None:
    async with grpc.aio.insecure_channel(suite.address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for name in ("", "backcrm.profile.v1.ProfileService"):
            reply = await health.Check(health_pb2.HealthCheckRequest(service=name))
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)

        async def one() -> object:
            yield reflection_pb2.ServerReflectionRequest(list_services="")

        async for response in stub.ServerReflectionInfo(one()):
            names = {s.name for s in response.list_services_response.service}
            assert "backcrm.profile.v1.ProfileService" in names
            break


async def test_auth_required_and_scopes_enforced(suite: Suite) -> None:
    who = email(f"{uid()}@example.com")
    err = await rpc_error(suite.client(None).profile.GetProfile(pb.GetProfileRequest(customer=who)))
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED
    err = await rpc_error(
        suite.client("reader").profile.TrackEvents(
            pb.TrackEventsRequest(events=[event(uid(), who)])
        )
    )
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    assert error_reason(err) == ("MISSING_SCOPE", "profile.backcrm")
    err = await rpc_error(
        suite.client("shop").profile.DeleteProfile(pb.DeleteProfileRequest(customer=who))
    )
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_merging_needs_its_own_scope(suite: Suite) -> None:
    """profile:write may not merge: a merge writes traits of every namespace (the bonus token,
    refused a loyalty.* write, could merge a customer holding loyalty.tier into another) and
    removes the source customer."""
    admin = suite.client().profile
    target, source = email(f"{uid()}@example.com"), email(f"{uid()}@example.com")
    for who in (target, source):
        await admin.TrackEvents(pb.TrackEventsRequest(events=[event(uid(), who)]))
    gold = {"tier": struct_pb2.Value(string_value="gold")}
    await admin.SetTraits(pb.SetTraitsRequest(customer=source, namespace="loyalty", traits=gold))
    merge = pb.MergeProfilesRequest(target=target, source=source, reason="same person")
    err = await rpc_error(suite.client("bonus").profile.MergeProfiles(merge))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    assert error_reason(err) == ("MISSING_SCOPE", "profile.backcrm")
    untouched = (await admin.GetProfile(pb.GetProfileRequest(customer=target))).profile
    assert "loyalty.tier" not in untouched.traits
    merged = await suite.client("merger").profile.MergeProfiles(merge)
    assert merged.profile.traits["loyalty.tier"].string_value == "gold"


async def test_track_then_read_sees_the_write_and_replay_counts_once(suite: Suite) -> None:
    api = suite.client("shop").profile
    who = email(f" {uid()}@Example.COM ")
    batch = pb.TrackEventsRequest(
        events=[
            event(
                f"v-{uid()}", who, sku="tone-1", category="ringtones", identities=[cookie(uid())]
            ),
            purchase(f"p-{uid()}", who, f"o-{uid()}", ("tone-1", "ringtones", 2, 1_500_000)),
            event(f"o-{uid()}", who, pb.EVENT_TYPE_EMAIL_OPEN),
        ]
    )
    first = await api.TrackEvents(batch)
    assert (first.accepted, first.duplicates, list(first.rejected)) == (3, 0, [])
    assert len(set(first.customer_ids)) == 1
    profile = (await api.GetProfile(pb.GetProfileRequest(customer=who))).profile
    assert profile.customer_id == first.customer_ids[0]
    assert profile.purchase_summary.orders == 1
    assert profile.purchase_summary.revenue.units_micros == 3_000_000
    assert profile.interests["ringtones"] > 0
    assert profile.engagement_score > 0
    assert {i.type for i in profile.identities} == {
        common_pb2.IDENTITY_TYPE_EMAIL,
        common_pb2.IDENTITY_TYPE_COOKIE,
    }
    version = profile.version

    replay = await api.TrackEvents(batch)
    assert (replay.accepted, replay.duplicates) == (0, 3)
    again = (await api.GetProfile(pb.GetProfileRequest(customer=who))).profile
    assert again.version == version
    assert again.purchase_summary.revenue.units_micros == 3_000_000

    # Read after write: the next event shows at once, though the profile was cached.
    await api.TrackEvents(pb.TrackEventsRequest(events=[event(uid(), who, category="jazz")]))
    fresh = (await api.GetProfile(pb.GetProfileRequest(customer=who))).profile
    assert fresh.version == version + 1
    assert "jazz" in fresh.interests


async def test_accepted_events_survive_a_restart_and_replays_still_count_once(suite: Suite) -> None:
    who = email(f"{uid()}@example.com")
    batch = pb.TrackEventsRequest(
        events=[purchase(f"p-{uid()}", who, f"o-{uid()}", ("sku", "books", 1, 9_990_000))]
    )
    assert (await suite.client().profile.TrackEvents(batch)).accepted == 1
    await suite.restart()
    api = suite.client().profile
    replay = await api.TrackEvents(batch)
    assert (replay.accepted, replay.duplicates) == (0, 1)
    profile = (await api.GetProfile(pb.GetProfileRequest(customer=who))).profile
    assert profile.purchase_summary.revenue.units_micros == 9_990_000


async def test_a_bad_event_is_rejected_by_index_the_rest_accepted(suite: Suite) -> None:
    who = email(f"{uid()}@example.com")
    bad = pb.Event(event_id=uid(), customer=who, type=pb.EVENT_TYPE_PAGE_VIEW)  # no channel
    reply = await suite.client().profile.TrackEvents(
        pb.TrackEventsRequest(events=[event(uid(), who), bad, event(uid(), who)])
    )
    assert reply.accepted == 2
    assert [(r.index, r.field) for r in reply.rejected] == [(1, "events[1].channel")]


BAD_REQUESTS = [
    ("TrackEvents", pb.TrackEventsRequest(), "events"),
    (
        "TrackEvents",
        pb.TrackEventsRequest(events=[event(str(i), email("a@example.com")) for i in range(1001)]),
        "events",
    ),
    (
        "TrackEvents",
        pb.TrackEventsRequest(events=[event("", email("a@example.com"))]),
        "events[0].event_id",
    ),
    (
        "TrackEvents",
        pb.TrackEventsRequest(events=[event("x", email("not-an-email"))]),
        "events[0].customer.identity.value",
    ),
    (
        "TrackEvents",
        pb.TrackEventsRequest(
            events=[pb.Event(event_id="x", customer=email("a@example.com"), type=99, channel=1)]
        ),
        "events[0].type",
    ),
    (
        "TrackEvents",
        pb.TrackEventsRequest(
            events=[
                event("x", email("a@example.com"), pb.EVENT_TYPE_ADD_TO_CART, sku="s", quantity=-2)
            ]
        ),
        "events[0].quantity",
    ),
    (
        "TrackEvents",
        pb.TrackEventsRequest(events=[event("x", email("a@example.com"), sku="bad\x07sku")]),
        "events[0].sku",
    ),
    (
        "TrackEvents",
        pb.TrackEventsRequest(
            events=[purchase("x", email("a@example.com"), "o", ("s", "c", 1, -5))]
        ),
        "events[0].order.lines[0].unit_price.units_micros",
    ),
    ("GetProfile", pb.GetProfileRequest(), "customer"),
    (
        "GetProfile",
        pb.GetProfileRequest(customer=common_pb2.CustomerRef(customer_id="")),
        "customer.customer_id",
    ),
    (
        "GetProfile",
        pb.GetProfileRequest(
            customer=email("a@example.com"), field_mask=field_mask_pb2.FieldMask(paths=["nope"])
        ),
        "field_mask",
    ),
    (
        "GetProfile",
        pb.GetProfileRequest(
            customer=common_pb2.CustomerRef(identity=common_pb2.Identity(type=42, value="x"))
        ),
        "customer.identity.type",
    ),
    ("BatchGetProfiles", pb.BatchGetProfilesRequest(), "customer_ids"),
    (
        "BatchGetProfiles",
        pb.BatchGetProfilesRequest(customer_ids=["ok", "\x00"]),
        "customer_ids[1]",
    ),
    ("UpsertProfile", pb.UpsertProfileRequest(), "customer"),
    (
        "UpsertProfile",
        pb.UpsertProfileRequest(
            customer=email("a@example.com"), attributes=pb.Attributes(email="nope")
        ),
        "attributes.email",
    ),
    (
        "UpsertProfile",
        pb.UpsertProfileRequest(
            customer=email("a@example.com"), attributes=pb.Attributes(birth_date="1990-13-01")
        ),
        "attributes.birth_date",
    ),
    (
        "UpsertProfile",
        pb.UpsertProfileRequest(
            customer=email("a@example.com"), update_mask=field_mask_pb2.FieldMask(paths=["traits"])
        ),
        "update_mask",
    ),
    (
        "UpsertProfile",
        pb.UpsertProfileRequest(customer=email("a@example.com"), consents=[pb.Consent(channel=1)]),
        "consents[0].state",
    ),
    (
        "SetTraits",
        pb.SetTraitsRequest(customer=email("a@example.com"), namespace="Bad NS"),
        "namespace",
    ),
    (
        "SetTraits",
        pb.SetTraitsRequest(customer=email("a@example.com"), namespace="admin"),
        "traits",
    ),
    (
        "ListPurchases",
        pb.ListPurchasesRequest(customer=email("a@example.com"), page_size=-1),
        "page_size",
    ),
    (
        "ListPurchases",
        pb.ListPurchasesRequest(customer=email("a@example.com"), page_token="forged"),
        "page_token",
    ),
    ("MergeProfiles", pb.MergeProfilesRequest(target=email("a@example.com")), "source"),
    ("DeleteProfile", pb.DeleteProfileRequest(), "customer"),
    (
        "ExportProfile",
        pb.ExportProfileRequest(
            customer=common_pb2.CustomerRef(identity=common_pb2.Identity(type=1))
        ),
        "customer.identity.value",
    ),
]


@pytest.mark.parametrize(
    ("method", "request_", "field"), BAD_REQUESTS, ids=[f"{m}:{f}" for m, _, f in BAD_REQUESTS]
)
async def test_bad_input_is_invalid_argument_naming_the_field(
    suite: Suite, method: str, request_: object, field: str
) -> None:
    err = await rpc_error(getattr(suite.client().profile, method)(request_))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, err.details()
    assert field in field_violations(err)


async def test_undecodable_bytes_are_invalid_argument_not_internal(suite: Suite) -> None:
    async with grpc.aio.insecure_channel(suite.address) as channel:
        call = channel.unary_unary(
            "/backcrm.profile.v1.ProfileService/GetProfile",
            request_serializer=lambda b: b,
            response_deserializer=lambda b: b,
        )
        err = await rpc_error(
            call(b"\xff\xff\xff\x0f", metadata=(("authorization", "Bearer tok-admin"),))
        )
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(err) == ["request"]


async def test_unknown_customer_is_not_found(suite: Suite) -> None:
    err = await rpc_error(
        suite.client().profile.GetProfile(
            pb.GetProfileRequest(customer=email(f"{uid()}@nobody.org"))
        )
    )
    assert err.code() == grpc.StatusCode.NOT_FOUND


async def test_upsert_traits_and_field_masks(suite: Suite) -> None:
    who = email(f"{uid()}@example.com")
    api = suite.client("bonus").profile
    created = await api.UpsertProfile(
        pb.UpsertProfileRequest(
            customer=who,
            attributes=pb.Attributes(name="Ada", phone="07700 900123", region="London"),
            consents=[pb.Consent(channel=common_pb2.CHANNEL_EMAIL, state=pb.CONSENT_STATE_GRANTED)],
        )
    )
    assert created.created
    assert created.profile.attributes.phone == "+447700900123"
    updated = await api.UpsertProfile(
        pb.UpsertProfileRequest(
            customer=who,
            attributes=pb.Attributes(city="Leeds", name="ignored"),
            update_mask=field_mask_pb2.FieldMask(paths=["attributes.city"]),
        )
    )
    assert not updated.created
    assert (updated.profile.attributes.name, updated.profile.attributes.city) == ("Ada", "Leeds")
    assert updated.profile.version == created.profile.version + 1

    traits = {
        "tier": struct_pb2.Value(string_value="gold"),
        "points": struct_pb2.Value(number_value=120),
    }
    reply = await api.SetTraits(pb.SetTraitsRequest(customer=who, namespace="bonus", traits=traits))
    assert reply.profile.traits["bonus.tier"].string_value == "gold"
    err = await rpc_error(
        api.SetTraits(pb.SetTraitsRequest(customer=who, namespace="ads", traits=traits))
    )
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED

    masked = await suite.client("reader").profile.GetProfile(
        pb.GetProfileRequest(
            customer=who, field_mask=field_mask_pb2.FieldMask(paths=["attributes.city", "traits"])
        )
    )
    assert masked.profile.attributes.city == "Leeds"
    assert masked.profile.attributes.name == ""
    assert masked.profile.customer_id == ""
    assert masked.profile.traits["bonus.points"].number_value == 120


async def test_list_purchases_pages_newest_first(suite: Suite) -> None:
    who = email(f"{uid()}@example.com")
    api = suite.client().profile
    events = []
    for day in range(5):
        e = purchase(
            f"p{day}-{uid()}", who, f"o{day}-{uid()}", ("s", "c", 1, 1_000_000 * (day + 1))
        )
        e.occurred_at.FromSeconds(1_700_000_000 + day * 86_400)
        e.order.placed_at.FromSeconds(1_700_000_000 + day * 86_400)
        events.append(e)
    await api.TrackEvents(pb.TrackEventsRequest(events=events))
    seen, token = [], ""
    while True:
        page = await api.ListPurchases(
            pb.ListPurchasesRequest(customer=who, page_size=2, page_token=token)
        )
        seen += [p.order.total.units_micros for p in page.purchases]
        token = page.next_page_token
        if not token:
            break
    assert seen == [5_000_000, 4_000_000, 3_000_000, 2_000_000, 1_000_000]


async def test_batch_get_keeps_order_and_reports_missing(suite: Suite) -> None:
    api = suite.client().profile
    a, b = email(f"{uid()}@example.com"), email(f"{uid()}@example.com")
    ids = (
        await api.TrackEvents(pb.TrackEventsRequest(events=[event(uid(), a), event(uid(), b)]))
    ).customer_ids
    reply = await api.BatchGetProfiles(
        pb.BatchGetProfilesRequest(customer_ids=[ids[1], "missing", ids[0]])
    )
    assert [p.customer_id for p in reply.profiles] == [ids[1], ids[0]]
    assert list(reply.missing_customer_ids) == ["missing"]


async def test_merge_moves_history_and_the_merged_id_keeps_resolving(suite: Suite) -> None:
    api = suite.client().profile
    target, source = email(f"{uid()}@example.com"), email(f"{uid()}@example.com")
    reply = await api.TrackEvents(
        pb.TrackEventsRequest(
            events=[
                purchase(uid(), target, uid(), ("a", "books", 1, 2_000_000)),
                purchase(uid(), source, uid(), ("b", "music", 2, 3_000_000)),
            ]
        )
    )
    target_id, source_id = reply.customer_ids
    merged = await api.MergeProfiles(
        pb.MergeProfilesRequest(target=target, source=source, reason="same person")
    )
    assert merged.merged_customer_id == source_id
    assert merged.profile.purchase_summary.orders == 2
    assert merged.profile.purchase_summary.revenue.units_micros == 8_000_000
    by_old_id = await api.GetProfile(
        pb.GetProfileRequest(customer=common_pb2.CustomerRef(customer_id=source_id))
    )
    assert by_old_id.profile.customer_id == target_id
    by_source_email = await api.GetProfile(pb.GetProfileRequest(customer=source))
    assert by_source_email.profile.customer_id == target_id
    export = await api.ExportProfile(pb.ExportProfileRequest(customer=target))
    assert len(export.purchases) == 2
    assert [(m.source_customer_id, m.target_customer_id, m.actor) for m in export.merges] == [
        (source_id, target_id, "admin")
    ]


async def test_delete_erases_and_identities_stop_resolving(suite: Suite) -> None:
    api = suite.client().profile
    who = email(f"{uid()}@example.com")
    customer_id = (
        await api.TrackEvents(pb.TrackEventsRequest(events=[event(uid(), who)]))
    ).customer_ids[0]
    await api.GetProfile(pb.GetProfileRequest(customer=who))  # cached now
    deleted = await api.DeleteProfile(pb.DeleteProfileRequest(customer=who))
    assert deleted.customer_id == customer_id
    for ref in (who, common_pb2.CustomerRef(customer_id=customer_id)):
        err = await rpc_error(api.GetProfile(pb.GetProfileRequest(customer=ref)))
        assert err.code() == grpc.StatusCode.NOT_FOUND


async def test_watch_streams_filtered_profile_changes(suite: Suite) -> None:
    api = suite.client().profile
    who, other = email(f"{uid()}@example.com"), email(f"{uid()}@example.com")
    customer_id = (
        await api.TrackEvents(pb.TrackEventsRequest(events=[event(uid(), who)]))
    ).customer_ids[0]
    stream = suite.client("reader").profile.WatchProfileChanges(
        pb.WatchProfileChangesRequest(
            filter=pb.ProfileChangedFilter(customer_ids=[customer_id], field_paths=["interests"])
        )
    )
    await stream.initial_metadata()  # subscribed
    await api.TrackEvents(pb.TrackEventsRequest(events=[event(uid(), other, category="x")]))
    await api.TrackEvents(
        pb.TrackEventsRequest(events=[event(uid(), who, pb.EVENT_TYPE_EMAIL_OPEN)])
    )
    await api.TrackEvents(pb.TrackEventsRequest(events=[event(uid(), who, category="opera")]))
    change = (await asyncio.wait_for(stream.read(), 10)).change
    assert change.customer_id == customer_id
    assert "interests.opera" in change.changed_paths
    stream.cancel()


async def test_a_profile_change_without_an_event_reaches_segmentation(suite: Suite) -> None:
    """UpsertProfile alone (no TrackEvents) setting the city makes the customer enter a segment
    on that city: every ProfileChanged carries the profile snapshot segmentation reads."""
    seg = suite.client().segmentation
    city = f"Leeds-{uid()}"
    condition = cpb.Condition(
        property=cpb.PropertyCondition(
            path="attributes.city", op=cpb.OPERATOR_EQ, value=struct_pb2.Value(string_value=city)
        )
    )
    segment = (
        await seg.CreateSegment(
            spb.CreateSegmentRequest(segment=spb.Segment(name="In town", condition=condition))
        )
    ).segment
    await ready(seg, segment.segment_id)
    stream = suite.client("reader").segmentation.WatchMembershipChanges(
        spb.WatchMembershipChangesRequest(segment_ids=[segment.segment_id])
    )
    await stream.initial_metadata()
    created = await suite.client("shop").profile.UpsertProfile(
        pb.UpsertProfileRequest(
            customer=email(f"{uid()}@example.com"), attributes=pb.Attributes(city=city)
        )
    )
    entered = await next_change(stream)
    assert (entered.customer_id, entered.change) == (
        created.profile.customer_id,
        spb.MEMBERSHIP_CHANGE_TYPE_ENTERED,
    )
    stream.cancel()


async def _export_all(api: object, who: common_pb2.CustomerRef, size: int = 0) -> list:  # type: ignore[type-arg]
    pages, token = [], ""
    while True:
        page = await api.ExportProfile(  # type: ignore[attr-defined]
            pb.ExportProfileRequest(customer=who, page_size=size, page_token=token)
        )
        pages.append(page)
        token = page.next_page_token
        if not token:
            return pages


async def test_a_heavy_profile_exports_whole_in_pages_under_the_size_bound(suite: Suite) -> None:
    """ExportProfile was one message: 60,000 events made 12.3 MB and RESOURCE_EXHAUSTED. Here
    2,000 events of about 1.5 KB (3 MB) page out under 1 MiB each, with nothing lost or twice."""
    api = suite.client().profile
    who = email(f"{uid()}@example.com")
    views = []
    for i in range(2000):
        e = event(f"v{i}-{uid()}", who, category="books")
        e.properties.update({"note": f"{i:05d}" + "x" * 1500})
        views.append(e)
    buys = [purchase(f"p{i}-{uid()}", who, uid(), ("s", "c", 1, 1_000_000)) for i in range(30)]
    for start in range(0, len(views), 500):
        reply = await api.TrackEvents(pb.TrackEventsRequest(events=views[start : start + 500]))
        assert reply.accepted == 500
    await api.TrackEvents(pb.TrackEventsRequest(events=buys))
    all_events = {e.event_id for e in views + buys}
    all_purchases = {e.event_id for e in buys}

    for size, at_least in ((0, 4), (150, 14)):
        pages = await _export_all(api, who, size)
        assert len(pages) >= at_least
        assert all(p.ByteSize() <= 1024 * 1024 for p in pages)
        assert pages[0].profile.purchase_summary.orders == 30
        assert not any(p.HasField("profile") or p.merges for p in pages[1:])
        events = [e.event.event_id for p in pages for e in p.events]
        purchases = [x.event_id for p in pages for x in p.purchases]
        assert len(events) == len(set(events)) and set(events) == all_events
        assert len(purchases) == len(set(purchases)) and set(purchases) == all_purchases


async def test_a_forged_export_token_is_invalid_argument(suite: Suite) -> None:
    api = suite.client().profile
    who = email(f"{uid()}@example.com")
    await api.TrackEvents(pb.TrackEventsRequest(events=[event(uid(), who) for _ in range(3)]))
    first = await api.ExportProfile(pb.ExportProfileRequest(customer=who, page_size=1))
    assert first.next_page_token
    other = email(f"{uid()}@example.com")
    await api.TrackEvents(pb.TrackEventsRequest(events=[event(uid(), other)]))
    scope = f"export:{who.SerializeToString().hex()}"
    for token in (
        first.next_page_token + "x",
        encode_page_token(["c", "events", 1e300, "x"], scope),
        encode_page_token(["c", "nothing", 1.0, "x"], scope),
        encode_page_token([1, 2], scope),
    ):
        err = await rpc_error(
            api.ExportProfile(pb.ExportProfileRequest(customer=who, page_token=token))
        )
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, err.details()
        assert field_violations(err) == ["page_token"]
    # a token is bound to the customer reference it was issued for
    err = await rpc_error(
        api.ExportProfile(pb.ExportProfileRequest(customer=other, page_token=first.next_page_token))
    )
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT

"""The profile use cases against in-memory fakes: behaviour through the handlers' own API."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from backcrm.common.v1.common_pb2 import EventEnvelope
from backcrm.profile.v1 import profile_service_pb2 as pb

from libs.errors import Conflict, InvalidArgument, NotFound, Unavailable
from libs.topics import PROFILE_CHANGED
from services.profile import handlers as h
from services.profile.domain import DAY, CartLine, Customer, EventIn, IdentityKey, OrderIn
from services.profile.events import encode_domain_event
from services.profile.ports import ProfileChanged, ProfileDeleted, ProfilesMerged
from services.profile.render import render_response
from tests.unit.fakes import FakeCache, FakeClock, FakeProfileStore, FakeProfileUnitOfWork

T0 = 1_700_000_000.0
ANN: IdentityKey = ("EMAIL", "ann@example.com")
BOB: IdentityKey = ("EMAIL", "bob@example.com")
COOKIE: IdentityKey = ("COOKIE", "ck-1")
COOKIE2: IdentityKey = ("COOKIE", "ck-2")


@dataclass
class World:
    store: FakeProfileStore = field(
        default_factory=lambda: FakeProfileStore(encode=encode_domain_event)
    )
    cache: FakeCache = field(default_factory=FakeCache)
    clock: FakeClock = field(default_factory=lambda: FakeClock(T0))

    @property
    def deps(self) -> h.ProfileDeps:
        return h.ProfileDeps(
            uow=lambda: FakeProfileUnitOfWork(self.store),
            cache=self.cache,
            clock=self.clock,
            render=render_response,
        )

    async def track(self, *events: EventIn | h.Rejection) -> h.TrackResult:
        return await h.track_events(self.deps, list(events))

    async def profile(self, who: str | IdentityKey) -> pb.Profile:
        rendered = await h.get_profile(self.deps, lookup(who))
        return pb.GetProfileResponse.FromString(rendered).profile

    def published(self, kind: type) -> list:  # type: ignore[type-arg]
        return [e for e in self.store.published if isinstance(e, kind)]


@pytest.fixture
def world() -> World:
    return World()


def lookup(who: str | IdentityKey) -> h.CustomerLookup:
    if isinstance(who, tuple):
        return h.CustomerLookup(identity=who)
    return h.CustomerLookup(customer_id=who)


def ev(
    event_id: str,
    who: str | IdentityKey,
    *identities: IdentityKey,
    kind: str = "PAGE_VIEW",
    at: float = T0,
    **kw: object,
) -> EventIn:
    ref = {"customer_id": who} if isinstance(who, str) else {"identity": who}
    return EventIn(
        event_id=event_id,
        type=kind,
        channel="WEB",
        occurred_at=at,
        identities=identities,
        **ref,  # type: ignore[arg-type]
        **kw,  # type: ignore[arg-type]
    )


def purchase(
    event_id: str, who: str | IdentityKey, order_id: str, total: int, at: float = T0
) -> EventIn:
    quantity = 1 if total >= 0 else -1
    lines = (CartLine("sku-1", "shoes", quantity, abs(total), "GBP"),)
    return ev(
        event_id,
        who,
        kind="PURCHASE",
        at=at,
        order=OrderIn(order_id, lines, total, "GBP", at),
    )


def identities(profile: pb.Profile) -> set[IdentityKey]:
    return {(pb_name(i.type), i.value) for i in profile.identities}


def pb_name(identity_type: int) -> str:
    from backcrm.common.v1 import common_pb2

    return common_pb2.IdentityType.Name(identity_type).removeprefix("IDENTITY_TYPE_")


# ---------------------------------------------------------------- TrackEvents


async def test_same_batch_twice_is_accepted_once(world: World) -> None:
    batch = [ev(f"e{i}", ANN) for i in range(3)]
    first = await world.track(*batch)
    again = await world.track(*batch)
    assert (first.accepted, first.duplicates) == (3, 0)
    assert (again.accepted, again.duplicates) == (0, 3)
    assert len(world.store.events) == 3
    profile = await world.profile(ANN)
    assert len(profile.recent_events) == 3
    assert profile.version == 1


async def test_duplicate_ids_within_one_batch_count_once(world: World) -> None:
    result = await world.track(ev("e1", ANN), ev("e1", ANN), ev("e2", ANN))
    assert (result.accepted, result.duplicates) == (2, 1)
    assert len((await world.profile(ANN)).recent_events) == 2


async def test_event_with_email_and_cookie_makes_one_customer_with_both(world: World) -> None:
    first = await world.track(ev("e1", ANN, COOKIE))
    later = await world.track(ev("e2", COOKIE))
    assert first.customer_ids == later.customer_ids
    assert len(world.store.customers) == 1
    profile = await world.profile(first.customer_ids[0])
    assert identities(profile) == {ANN, COOKIE}
    assert {e.event_id for e in profile.recent_events} == {"e1", "e2"}


async def test_events_for_one_new_identity_in_one_batch_make_one_customer(world: World) -> None:
    result = await world.track(ev("e1", COOKIE), ev("e2", COOKIE), ev("e3", COOKIE2, COOKIE))
    assert len(set(result.customer_ids)) == 1
    assert len(world.store.customers) == 1


async def test_anonymous_cookie_profile_is_stitched_into_the_customer_named_by_email(
    world: World,
) -> None:
    anonymous = await world.track(ev("e1", COOKIE, kind="PRODUCT_VIEW", category="hats"))
    known = await world.track(ev("e2", ANN))
    result = await world.track(ev("e3", ANN, COOKIE))
    ann_id, anon_id = known.customer_ids[0], anonymous.customer_ids[0]
    assert result.customer_ids == [ann_id]
    assert set(world.store.customers) == {ann_id}
    profile = await world.profile(ann_id)
    assert identities(profile) == {ANN, COOKIE}
    assert {e.event_id for e in profile.recent_events} == {"e1", "e2", "e3"}
    assert "hats" in profile.interests
    # the anonymous id keeps resolving, to the customer it became
    assert (await world.profile(anon_id)).customer_id == ann_id
    merged = world.published(ProfilesMerged)
    assert [(m.source_customer_id, m.target_customer_id) for m in merged] == [(anon_id, ann_id)]


async def test_anonymous_event_customer_is_stitched_into_the_known_identity_owner(
    world: World,
) -> None:
    """The anonymous profile is the one folded in, whichever side of the event names it."""
    anon_id = (await world.track(ev("e1", COOKIE))).customer_ids[0]
    ann_id = (await world.track(ev("e2", ANN))).customer_ids[0]
    result = await world.track(ev("e3", COOKIE, ANN))
    assert result.customer_ids == [ann_id]
    assert set(world.store.customers) == {ann_id}
    assert identities(await world.profile(ann_id)) == {ANN, COOKIE}
    assert (await world.profile(anon_id)).customer_id == ann_id


async def test_two_known_customers_are_never_merged_implicitly(world: World) -> None:
    ann_id = (await world.track(ev("e1", ANN))).customer_ids[0]
    bob_id = (await world.track(ev("e2", BOB))).customer_ids[0]
    result = await world.track(ev("e3", ANN, BOB))
    assert result.customer_ids == [ann_id]
    assert set(world.store.customers) == {ann_id, bob_id}
    assert world.store.identities[BOB] == bob_id
    assert identities(await world.profile(ann_id)) == {ANN}
    assert [e.event_id for e in (await world.profile(bob_id)).recent_events] == ["e2"]
    assert not world.published(ProfilesMerged)


async def test_identity_first_seen_in_a_batch_links_to_customer_merged_in_same_batch(
    world: World,
) -> None:
    """A device first seen on an anonymous profile follows it when it is stitched away."""
    anon_id = (await world.track(ev("e1", COOKIE))).customer_ids[0]
    ann_id = (await world.track(ev("e2", ANN))).customer_ids[0]
    device: IdentityKey = ("DEVICE", "d-1")
    await world.track(ev("e3", COOKIE, device), ev("e4", ANN, COOKIE))
    assert set(world.store.customers) == {ann_id}
    assert world.store.identities[device] == ann_id
    assert anon_id not in world.store.identities.values()
    result = await world.track(ev("e5", device))
    assert result.customer_ids == [ann_id]


async def test_unknown_customer_id_is_rejected_with_index_and_field(world: World) -> None:
    result = await world.track(ev("e0", ANN), ev("e1", "no-such-customer"))
    assert result.accepted == 1
    assert result.rejected == [
        h.Rejection(1, "e1", "events[1].customer.customer_id", "customer not found")
    ]
    assert result.customer_ids[1] == ""
    assert "e1" not in world.store.events


async def test_rejections_from_translation_are_reported_in_index_order(world: World) -> None:
    bad = h.Rejection(0, "x", "events[0].type", "is required")
    result = await world.track(bad, ev("e1", ANN))
    assert result.rejected == [bad]
    assert result.accepted == 1
    assert result.customer_ids[0] == ""


async def test_purchase_retried_under_new_event_id_counts_revenue_once(world: World) -> None:
    await world.track(purchase("p1", ANN, "order-1", 30_000_000))
    result = await world.track(purchase("p2", ANN, "order-1", 30_000_000))
    assert result.accepted == 1
    summary = (await world.profile(ANN)).purchase_summary
    assert (summary.orders, summary.revenue.units_micros) == (1, 30_000_000)
    # both events are kept; only the first counts
    assert {p.event_id: p.counted for p in world.store.purchases.values()} == {
        "p1": True,
        "p2": False,
    }


async def test_same_order_twice_in_one_batch_counts_once(world: World) -> None:
    await world.track(
        purchase("p1", ANN, "order-1", 30_000_000), purchase("p2", ANN, "order-1", 30_000_000)
    )
    summary = (await world.profile(ANN)).purchase_summary
    assert (summary.orders, summary.revenue.units_micros) == (1, 30_000_000)


async def test_return_reduces_revenue(world: World) -> None:
    await world.track(purchase("p1", ANN, "order-1", 30_000_000))
    await world.track(purchase("r1", ANN, "order-1", -10_000_000, at=T0 + DAY))
    summary = (await world.profile(ANN)).purchase_summary
    assert (summary.orders, summary.returns, summary.revenue.units_micros) == (1, 1, 20_000_000)


async def test_profile_changed_carries_paths_and_increasing_versions(world: World) -> None:
    await world.track(ev("e1", ANN, kind="PRODUCT_VIEW", category="shoes"))
    await world.track(ev("e2", ANN, kind="ADD_TO_CART", sku="s1", at=T0 + 1))
    changes = world.published(ProfileChanged)
    assert [c.version for c in changes] == [1, 2]
    assert "interests.shoes" in changes[0].paths
    assert "cart" in changes[1].paths and "cart" not in changes[0].paths
    assert changes[1].event_ids == ("e2",)
    assert changes[1].event_types == ("ADD_TO_CART",)
    assert [e.event_id for c in changes for e in c.events] == ["e1", "e2"]
    assert changes[1].customer is not None and "s1" in changes[1].customer.data["cart"]


async def test_one_change_per_customer_per_batch(world: World) -> None:
    await world.track(ev("e1", ANN), ev("e2", BOB), ev("e3", ANN, kind="SEARCH"))
    changes = world.published(ProfileChanged)
    assert sorted(len(c.event_ids) for c in changes) == [1, 2]
    ann_change = next(c for c in changes if len(c.event_ids) == 2)
    assert ann_change.event_types == ("PAGE_VIEW", "SEARCH")


async def test_conflict_is_retried_and_nothing_leaks_from_the_failed_attempt(
    world: World,
) -> None:
    world.store.conflicts = 1
    result = await world.track(ev("e1", ANN))
    assert result.accepted == 1
    assert len(world.store.customers) == 1
    assert len(world.published(ProfileChanged)) == 1


async def test_persistent_contention_asks_the_caller_to_retry(world: World) -> None:
    world.store.conflicts = h.RETRIES
    with pytest.raises(Unavailable) as raised:
        await world.track(ev("e1", ANN))
    assert raised.value.reason == "CONTENTION"
    assert not world.store.customers
    assert not world.store.published


# ---------------------------------------------------------------- reads and cache


async def test_read_after_write_sees_the_write(world: World) -> None:
    await world.track(ev("e1", ANN))
    before = await world.profile(ANN)
    assert world.cache.entries  # the rendered profile is cached
    await world.track(ev("e2", ANN, kind="SEARCH", at=T0 + 5))
    after = await world.profile(ANN)
    assert after.version > before.version
    assert {e.event_id for e in after.recent_events} == {"e1", "e2"}
    key = h.cache_key(after.customer_id)
    assert pb.GetProfileResponse.FromString(world.cache.entries[key]).profile == after


async def test_second_read_is_served_from_the_cache(world: World) -> None:
    customer_id = (await world.track(ev("e1", ANN))).customer_ids[0]
    first = await h.get_profile(world.deps, lookup(customer_id))
    world.cache.entries[h.cache_key(customer_id)] = b"sentinel"
    assert await h.get_profile(world.deps, lookup(customer_id)) == b"sentinel"
    assert first != b"sentinel"


async def test_reads_and_writes_work_while_the_cache_is_down(world: World) -> None:
    world.cache.down = True
    await world.track(ev("e1", ANN))
    profile = await world.profile(ANN)
    assert profile.version == 1
    await world.track(ev("e2", ANN, at=T0 + 1))
    assert (await world.profile(ANN)).version == 2


async def test_get_profiles_reports_missing_as_none(world: World) -> None:
    customer_id = (await world.track(ev("e1", ANN))).customer_ids[0]
    found = await h.get_profiles(world.deps, [lookup("nobody"), lookup(customer_id), lookup(BOB)])
    assert found[0] is None and found[2] is None
    assert found[1] is not None
    assert pb.GetProfileResponse.FromString(found[1]).profile.customer_id == customer_id


async def test_get_profile_of_unknown_identity_is_not_found(world: World) -> None:
    with pytest.raises(NotFound) as info:
        await world.profile(BOB)
    assert info.value.reason == "CUSTOMER_NOT_FOUND"


async def test_profile_status_and_interests_are_rendered_as_of_now(world: World) -> None:
    await world.track(ev("e1", ANN))
    assert (await world.profile(ANN)).status == pb.PROFILE_STATUS_NEW
    world.clock.advance(100 * DAY)
    world.cache.entries.clear()
    assert (await world.profile(ANN)).status == pb.PROFILE_STATUS_CHURN_RISK


# ---------------------------------------------------------------- upsert and traits


async def test_upsert_creates_a_customer_for_a_new_identity(world: World) -> None:
    customer, created = await h.upsert_profile(world.deps, lookup(ANN), {"name": "Ann"}, {})
    assert created
    profile = await world.profile(ANN)
    assert profile.customer_id == customer.customer_id
    assert profile.attributes.name == "Ann"
    assert identities(profile) == {ANN}
    assert profile.version == 1


async def test_upsert_updates_attributes_and_consents_of_an_existing_customer(
    world: World,
) -> None:
    customer_id = (await world.track(ev("e1", ANN))).customer_ids[0]
    await world.profile(ANN)  # cached
    customer, created = await h.upsert_profile(
        world.deps,
        lookup(ANN),
        {"name": "Ann", "city": "York"},
        {"EMAIL": {"state": "GRANTED"}},
    )
    assert not created and customer.customer_id == customer_id
    await h.upsert_profile(world.deps, lookup(customer_id), {"city": ""}, {})
    profile = await world.profile(ANN)
    assert (profile.attributes.name, profile.attributes.city) == ("Ann", "")
    assert [(c.channel, c.state) for c in profile.consents] == [
        (pb_channel("EMAIL"), pb.CONSENT_STATE_GRANTED)
    ]
    assert profile.version == 3
    changes = world.published(ProfileChanged)
    assert changes[-2].paths == ("attributes.city", "attributes.name", "consents.EMAIL")
    assert changes[-1].paths == ("attributes.city",)


async def test_upsert_without_changes_writes_nothing(world: World) -> None:
    await h.upsert_profile(world.deps, lookup(ANN), {"name": "Ann"}, {})
    commits = world.store.commits
    await h.upsert_profile(world.deps, lookup(ANN), {"name": "Ann"}, {})
    assert world.store.commits == commits
    assert (await world.profile(ANN)).version == 1


async def test_upsert_by_unknown_customer_id_is_not_found(world: World) -> None:
    with pytest.raises(NotFound):
        await h.upsert_profile(world.deps, lookup("nobody"), {"name": "X"}, {})
    assert not world.store.customers


async def test_every_profile_changed_on_the_bus_carries_the_profile(world: World) -> None:
    """Segmentation acts on the snapshot: a change with no event (UpsertProfile, SetTraits,
    RFM scores, a merge) must carry it as much as TrackEvents does."""
    await h.upsert_profile(world.deps, lookup(ANN), {"city": "Leeds"}, {})
    await h.set_traits(world.deps, lookup(ANN), "ads", {"tier": "gold"})
    ann_id = world.store.identities[ANN]
    await h.set_rfm_scores(world.deps, [(ann_id, 5, 4, 3)])
    await world.track(ev("e1", COOKIE))
    await h.merge_profiles(world.deps, lookup(ANN), lookup(COOKIE), "test", "")
    snapshots = []
    for change in world.published(ProfileChanged):
        _, raw = encode_domain_event(change)
        snapshots.append(PROFILE_CHANGED.unpack(EventEnvelope.FromString(raw)))
    assert len(snapshots) == 5
    assert all(s.HasField("profile") and s.profile.customer_id == s.customer_id for s in snapshots)
    assert snapshots[0].profile.attributes.city == "Leeds"
    assert snapshots[1].profile.traits["ads.tier"].string_value == "gold"
    assert snapshots[2].profile.rfm.recency_score == 5


async def test_bus_events_carry_no_identity_of_the_customer(world: World) -> None:
    phone: IdentityKey = ("PHONE", "+447700900123")
    await world.track(ev("e1", ANN, phone, COOKIE, kind="PRODUCT_VIEW", category="shoes"))
    await world.track(ev("e2", COOKIE2))
    await world.track(ev("e3", COOKIE2, ANN))  # stitches the anonymous cookie into Ann
    await h.delete_profile(world.deps, lookup(ANN))
    payloads = [encode_domain_event(e)[1] for e in world.store.published]
    assert len(world.published(ProfilesMerged)) == 1
    assert len(world.published(ProfileDeleted)) == 1
    for raw in payloads:
        for _, value in (ANN, phone, COOKIE, COOKIE2):
            assert value.encode() not in raw
    changes = [PROFILE_CHANGED.unpack(EventEnvelope.FromString(r)) for r in payloads[:1]]
    event = changes[0].events[0]
    assert event.customer.customer_id == changes[0].customer_id
    assert (event.category, list(event.identities)) == ("shoes", [])


async def test_bus_events_carry_the_properties_as_sent(world: World) -> None:
    """The properties ride along as a Struct: nested values, lists, booleans and nulls as sent
    (segmentation's event conditions read them)."""
    from google.protobuf.json_format import MessageToDict

    properties = {"path": "/p/1", "n": 3, "ok": True, "none": None, "tags": ["a", 1.5, {"b": []}]}
    await world.track(ev("e1", COOKIE, kind="PRODUCT_VIEW", properties=properties))
    _, raw = encode_domain_event(world.published(ProfileChanged)[0])
    event = PROFILE_CHANGED.unpack(EventEnvelope.FromString(raw)).events[0]
    assert MessageToDict(event.properties) == properties


def pb_channel(name: str) -> int:
    from backcrm.common.v1 import common_pb2

    return common_pb2.Channel.Value(f"CHANNEL_{name}")


async def test_set_traits_are_namespaced_and_none_removes(world: World) -> None:
    await world.track(ev("e1", ANN))
    await h.set_traits(world.deps, lookup(ANN), "ads", {"segment": "vip", "score": 0.5})
    profile = await world.profile(ANN)
    assert set(profile.traits) == {"ads.segment", "ads.score"}
    assert profile.traits["ads.segment"].string_value == "vip"
    assert world.published(ProfileChanged)[-1].paths == ("traits.ads.score", "traits.ads.segment")
    await h.set_traits(world.deps, lookup(ANN), "ads", {"segment": None, "absent": None})
    profile = await world.profile(ANN)
    assert set(profile.traits) == {"ads.score"}
    assert world.published(ProfileChanged)[-1].paths == ("traits.ads.segment",)


async def test_set_traits_needs_an_existing_customer(world: World) -> None:
    with pytest.raises(NotFound):
        await h.set_traits(world.deps, lookup(ANN), "ads", {"x": 1})


# ---------------------------------------------------------------- merge


async def test_merge_moves_identities_events_and_purchases(world: World) -> None:
    ann_id = (await world.track(purchase("p1", ANN, "o1", 10_000_000))).customer_ids[0]
    bob_id = (await world.track(purchase("p2", BOB, "o2", 5_000_000, at=T0 + 1))).customer_ids[0]
    await world.profile(bob_id)  # cached
    customer, source_id = await h.merge_profiles(
        world.deps, lookup(ANN), lookup(bob_id), "tester", "same person"
    )
    assert (customer.customer_id, source_id) == (ann_id, bob_id)
    profile = await world.profile(ann_id)
    assert identities(profile) == {ANN, BOB}
    assert profile.purchase_summary.orders == 2
    assert profile.purchase_summary.revenue.units_micros == 15_000_000
    assert {e.customer_id for e in world.store.events.values()} == {ann_id}
    rows, more = await h.list_purchases(world.deps, lookup(ann_id), None, 10)
    assert [r.event_id for r in rows] == ["p2", "p1"] and not more
    # the merged id resolves to the target, cached or not
    assert (await world.profile(bob_id)).customer_id == ann_id
    assert (await world.profile(BOB)).customer_id == ann_id
    export = await h.export_profile(world.deps, lookup(bob_id))
    assert [(m.source_customer_id, m.actor, m.reason) for m in export.merges] == [
        (bob_id, "tester", "same person")
    ]
    assert world.published(ProfilesMerged)[-1].target_customer_id == ann_id


async def test_merge_with_itself_is_invalid(world: World) -> None:
    customer_id = (await world.track(ev("e1", ANN, COOKIE))).customer_ids[0]
    with pytest.raises(InvalidArgument) as info:
        await h.merge_profiles(world.deps, lookup(customer_id), lookup(COOKIE), "t", "")
    assert [f for f, _ in info.value.violations] == ["source"]


async def test_merge_of_unknown_source_is_not_found(world: World) -> None:
    await world.track(ev("e1", ANN))
    with pytest.raises(NotFound):
        await h.merge_profiles(world.deps, lookup(ANN), lookup(BOB), "t", "")


async def test_an_id_merged_twice_resolves_to_the_last_target(world: World) -> None:
    a = (await world.track(ev("e1", ANN))).customer_ids[0]
    b = (await world.track(ev("e2", BOB))).customer_ids[0]
    c = (await world.track(ev("e3", COOKIE))).customer_ids[0]
    await h.merge_profiles(world.deps, lookup(b), lookup(a), "t", "a into b")
    await h.merge_profiles(world.deps, lookup(c), lookup(b), "t", "b into c")
    assert set(world.store.customers) == {c}
    assert (await world.profile(a)).customer_id == c
    assert (await world.profile(b)).customer_id == c
    result = await world.track(ev("e4", a))
    assert result.customer_ids == [c]
    export = await h.export_profile(world.deps, lookup(c))
    assert {m.source_customer_id for m in export.merges} == {a, b}


# ---------------------------------------------------------------- delete


async def test_delete_erases_everything_and_identities_stop_resolving(world: World) -> None:
    customer_id = (await world.track(ev("e1", ANN, COOKIE))).customer_ids[0]
    await world.track(purchase("p1", ANN, "o1", 10))
    await world.profile(ANN)  # cached
    assert await h.delete_profile(world.deps, lookup(COOKIE)) == customer_id
    for who in (ANN, COOKIE, customer_id):
        with pytest.raises(NotFound):
            await world.profile(who)
    assert not world.store.customers
    assert not world.store.identities
    assert not world.store.events
    assert not world.store.purchases
    assert world.published(ProfileDeleted)[-1].customer_id == customer_id
    # the identity is free again: a new event makes a new customer
    assert (await world.track(ev("e2", ANN))).customer_ids[0] != customer_id


async def test_delete_also_forgets_ids_merged_into_the_customer(world: World) -> None:
    ann_id = (await world.track(ev("e1", ANN))).customer_ids[0]
    bob_id = (await world.track(ev("e2", BOB))).customer_ids[0]
    await h.merge_profiles(world.deps, lookup(ann_id), lookup(bob_id), "t", "")
    await world.profile(bob_id)
    await h.delete_profile(world.deps, lookup(ann_id))
    assert not world.store.merges
    with pytest.raises(NotFound):
        await world.profile(bob_id)
    assert h.cache_key(bob_id) in world.cache.deleted


async def test_delete_unknown_is_not_found(world: World) -> None:
    with pytest.raises(NotFound):
        await h.delete_profile(world.deps, lookup(ANN))
    assert not world.store.published


# ---------------------------------------------------------------- purchases


async def test_list_purchases_pages_newest_first_with_a_cursor(world: World) -> None:
    # two purchases share a timestamp: the event id breaks the tie
    times = [T0 + 3, T0 + 1, T0 + 2, T0 + 2, T0]
    await world.track(*(purchase(f"p{i}", ANN, f"o{i}", 10, at=t) for i, t in enumerate(times)))
    seen, after, pages = [], None, 0
    while True:
        rows, more = await h.list_purchases(world.deps, lookup(ANN), after, 2)
        seen += rows
        pages += 1
        if not more:
            break
        after = (rows[-1].placed_at, rows[-1].event_id)
    assert [r.event_id for r in seen] == ["p0", "p3", "p2", "p1", "p4"]
    assert pages == 3


@pytest.mark.parametrize("limit", [1, 2, 3, 5, 7, 1000])
async def test_export_pages_events_then_purchases_without_gaps_or_repeats(
    world: World, limit: int
) -> None:
    views = [ev(f"v{i}", ANN, at=T0 + i % 3) for i in range(5)]  # equal times: id breaks ties
    buys = [purchase(f"p{i}", ANN, f"o{i}", 1_000_000, at=T0 + i) for i in range(2)]
    await world.track(*views, *buys)
    events, purchases, pages, cursor = [], [], 0, None
    while True:
        page = await h.export_profile(world.deps, lookup(ANN), cursor, limit)
        pages += 1
        assert (page.customer is not None) == (pages == 1)
        assert len(page.events) + len(page.purchases) <= limit
        events += [e.event.event_id for e in page.events]
        purchases += [p.event_id for p in page.purchases]
        if not page.more:
            break
        # as the entrypoint makes the token: from the last row of the page
        if page.purchases:
            cursor = h.ExportCursor(
                page.customer_id,
                "purchases",
                (page.purchases[-1].placed_at, page.purchases[-1].event_id),
            )
        else:
            last = page.events[-1].event
            cursor = h.ExportCursor(page.customer_id, "events", (last.occurred_at, last.event_id))
    assert sorted(events) == sorted([e.event_id for e in views + buys])
    assert len(events) == len(set(events))
    assert purchases == ["p1", "p0"]  # newest first
    assert pages == -(-9 // limit)  # 7 events (purchases are events too) + 2 purchases


async def test_an_export_token_of_a_customer_merged_since_is_refused(world: World) -> None:
    await world.track(ev("a1", ANN), ev("a2", ANN), ev("b1", BOB))
    first = await h.export_profile(world.deps, lookup(BOB), None, 1)
    cursor = h.ExportCursor(first.customer_id, "events", (T0, "b1"))
    await h.merge_profiles(world.deps, lookup(ANN), lookup(BOB), "test", "")
    with pytest.raises(InvalidArgument):
        await h.export_profile(world.deps, lookup(BOB), cursor, 1)


async def test_list_purchases_of_unknown_customer_is_not_found(world: World) -> None:
    with pytest.raises(NotFound):
        await h.list_purchases(world.deps, lookup("nobody"), None, 10)


# ---------------------------------------------------------------- the fake itself


async def test_fake_unit_of_work_discards_what_was_not_committed(world: World) -> None:
    async with FakeProfileUnitOfWork(world.store) as uow:
        await uow.save([Customer("c1", T0, T0, is_new=True)])
        await uow.link_identities([(ANN, "c1")], T0)
        assert await uow.owners_of([ANN]) == {ANN: "c1"}
    assert not world.store.identities
    async with FakeProfileUnitOfWork(world.store) as uow:
        await uow.save([Customer("c1", T0, T0, is_new=True)])
        await uow.link_identities([(ANN, "c1")], T0)
        await uow.commit()
    assert world.store.identities == {ANN: "c1"}
    async with FakeProfileUnitOfWork(world.store) as uow:
        with pytest.raises(Conflict):  # claimed already: never moved
            await uow.link_identities([(ANN, "c2")], T0)


async def test_fake_insert_events_returns_only_new_ids(world: World) -> None:
    from services.profile.ports import StoredEventRecord

    records = [StoredEventRecord(ev(i, ANN), "c1", T0) for i in ("a", "b", "a")]
    async with FakeProfileUnitOfWork(world.store) as uow:
        assert await uow.insert_events(records) == {"a", "b"}
        assert await uow.insert_events(records[:1]) == set()


# ---------------------------------------------------------------- entrypoint: page tokens


@pytest.mark.parametrize("position", [["x", "e1"], [{}, "e1"], [None, "e1"], ["1", "e1", 3]])
async def test_forged_purchase_page_token_is_invalid_argument(
    world: World, position: list[object]
) -> None:
    """Tokens are not signed: a caller can build one, and a bad one must not be INTERNAL."""
    from backcrm.common.v1 import common_pb2

    from libs.bus.memory import InProcessBus
    from libs.validation import encode_page_token
    from services.profile.entrypoint import ProfileServicer

    customer_id = (await world.track(purchase("p1", ANN, "o1", 10))).customer_ids[0]
    request = pb.ListPurchasesRequest(customer=common_pb2.CustomerRef(customer_id=customer_id))
    request.page_token = encode_page_token(
        position, f"purchases:{request.customer.SerializeToString().hex()}"
    )
    servicer = ProfileServicer(world.deps, bus=InProcessBus())
    with pytest.raises(InvalidArgument) as info:
        await servicer.ListPurchases(request, None)
    assert info.value.violations[0][0] == "page_token"


async def test_purchase_page_token_round_trips_through_the_entrypoint(world: World) -> None:
    from backcrm.common.v1 import common_pb2

    from libs.bus.memory import InProcessBus
    from services.profile.entrypoint import ProfileServicer

    await world.track(*(purchase(f"p{i}", ANN, f"o{i}", 10, at=T0 + i) for i in range(3)))
    servicer = ProfileServicer(world.deps, bus=InProcessBus())
    request = pb.ListPurchasesRequest(
        customer=common_pb2.CustomerRef(identity=common_pb2.Identity(type=1, value=ANN[1])),
        page_size=2,
    )
    first = await servicer.ListPurchases(request, None)
    request.page_token = first.next_page_token
    second = await servicer.ListPurchases(request, None)
    assert [p.event_id for p in first.purchases] == ["p2", "p1"]
    assert [p.event_id for p in second.purchases] == ["p0"]
    assert not second.next_page_token

"""The segmentation use cases against the in-memory fake of the store port: definitions, builds,
incremental memberships, erasure and merges, request-time evaluation, RFM."""

from __future__ import annotations

import asyncio
import gc
from dataclasses import dataclass, field

import pytest
from backcrm.profile.v1 import profile_service_pb2 as ppb
from backcrm.segmentation.v1 import condition_pb2 as c
from google.protobuf import duration_pb2, struct_pb2

from libs.errors import FailedPrecondition, InvalidArgument, NotFound
from libs.topics import SEGMENTATION_RFM, SEGMENTATION_SEGMENTS
from services.segmentation import handlers as h
from services.segmentation.build import MAX_CONCURRENT_BUILDS, Builder, BuildQueue
from services.segmentation.conditions import EventIndex, Node, decode_condition
from services.segmentation.engine import (
    FILL_TTL,
    ProfileUpdate,
    facts_key,
    memberships_key,
)
from services.segmentation.facts import ContextFacts, CustomerFacts, FactEvent
from services.segmentation.records import SegmentRecord
from tests.unit.fakes import FakeCache, FakeClock
from tests.unit.segmentation_fakes import FakeSegmentationStore, fake_segmentation

T0 = 1_700_000_000.0
DAY = 86_400.0


def prop(path: str, op: int, value: float | str) -> c.Condition:
    v = (
        struct_pb2.Value(string_value=value)
        if isinstance(value, str)
        else struct_pb2.Value(number_value=value)
    )
    return c.Condition(property=c.PropertyCondition(path=path, op=op, value=v))


def views(category: str, count: int, within: float = 0) -> c.Condition:
    return c.Condition(
        event=c.EventCondition(
            type=ppb.EVENT_TYPE_PRODUCT_VIEW,
            filters=[
                c.PropertyCondition(
                    path="category",
                    op=c.OPERATOR_EQ,
                    value=struct_pb2.Value(string_value=category),
                )
            ],
            within=duration_pb2.Duration(seconds=int(within)),
            count_op=c.OPERATOR_GTE,
            count=count,
        )
    )


def ref(segment_id: str) -> c.Condition:
    return c.Condition(segment=c.SegmentCondition(segment_id=segment_id))


def mobile() -> c.Condition:
    return c.Condition(
        context=c.ContextCondition(
            path="channel", op=c.OPERATOR_EQ, value=struct_pb2.Value(string_value="MOBILE_APP")
        )
    )


def parsed(condition: c.Condition) -> tuple[bytes, Node]:
    body = condition.SerializeToString()
    return body, decode_condition(body)


BOOKS = prop("interests.books", c.OPERATOR_GT, 1)


@dataclass
class World:
    store: FakeSegmentationStore = field(default_factory=FakeSegmentationStore)
    cache: FakeCache = field(default_factory=FakeCache)
    clock: FakeClock = field(default_factory=lambda: FakeClock(T0))
    deps: h.SegmentationDeps = field(init=False)

    def __post_init__(self) -> None:
        self.deps = self.process()

    def process(self) -> h.SegmentationDeps:
        """Another process of the service over the same storage."""
        return fake_segmentation(self.store, self.cache, self.clock)

    async def segment(self, name: str, condition: c.Condition) -> SegmentRecord:
        body, node = parsed(condition)
        record = await h.create_segment(self.deps, name, "", body, node)
        build = self.deps.builds.running.get(record.segment_id)
        if build is not None:
            await build
        return record

    async def change(
        self,
        customer_id: str,
        version: int,
        *,
        books: float = 0.0,
        city: str = "",
        views: int = 0,
        at: float | None = None,
    ) -> list[str]:
        """A profile.changed of the customer; returns the changes it made, as "ENTERED s"."""
        when = self.clock() if at is None else at
        facts = CustomerFacts(
            customer_id=customer_id,
            version=version,
            created_at=T0 - 30 * DAY,
            last_activity_at=when,
            interests={"books": books},
            attributes={"city": city} if city else {},
        )
        events = tuple(
            FactEvent(
                f"{customer_id}-{version}-{i}", customer_id, "PRODUCT_VIEW", "WEB", when, "tv"
            )
            for i in range(views)
        )
        update = ProfileUpdate(
            customer_id,
            ("interests.books", "attributes.city"),
            ("PRODUCT_VIEW",) if views else (),
            facts,
            events,
            "test",
        )
        changes = await self.deps.engine.on_profile_changes([update])
        return [f"{ch.change} {ch.segment_id}" for ch in changes]

    async def memberships(self, customer_id: str) -> list[str]:
        return await h.get_memberships(self.deps, customer_id)


# ---------------------------------------------------------------- definitions and builds


async def test_a_behavioural_segment_is_built_from_the_projection_and_announced() -> None:
    world = World()
    await world.change("ann", 1, books=3)
    await world.change("bob", 1, books=0)
    record = await world.segment("Book lovers", BOOKS)
    assert record.state == "BUILDING"
    stored = await h.get_segment(world.deps, record.segment_id)
    assert (stored.state, stored.member_count, stored.build_progress) == ("READY", 1, 1.0)
    assert world.store.members_of(record.segment_id) == {"ann"}
    # created, then ready: each a definition change every process learns of
    assert world.store.topics() == [SEGMENTATION_SEGMENTS.name, SEGMENTATION_SEGMENTS.name]
    assert world.store.state.catalog_version == 2
    # a first build does not announce its initial members
    assert world.store.state.published == []


async def test_definitions_are_checked_against_the_catalogue() -> None:
    world = World()
    body, node = parsed(ref("nope"))
    with pytest.raises(InvalidArgument) as unknown:
        await h.create_segment(world.deps, "x", "", body, node)
    assert unknown.value.violations[0][0] == "segment.condition"
    books = await world.segment("Books", BOOKS)
    fans = await world.segment("Fans", ref(books.segment_id))
    body, node = parsed(ref(fans.segment_id))
    with pytest.raises(InvalidArgument, match="cycle"):
        await h.update_segment(world.deps, books.segment_id, None, None, body, node)
    with pytest.raises(FailedPrecondition) as in_use:
        await h.delete_segment(world.deps, books.segment_id)
    assert in_use.value.reason == "SEGMENT_IN_USE"
    await h.delete_segment(world.deps, fans.segment_id)
    await h.delete_segment(world.deps, books.segment_id)
    with pytest.raises(NotFound):
        await h.get_segment(world.deps, books.segment_id)
    assert await h.list_segments(world.deps, None, 10, None) == []


async def test_an_updated_condition_is_rebuilt_and_announces_the_differences() -> None:
    world = World()
    await world.change("ann", 1, books=3, city="Leeds")
    await world.change("bob", 1, city="York")
    record = await world.segment("Books", BOOKS)
    body, node = parsed(prop("attributes.city", c.OPERATOR_EQ, "York"))
    updated = await h.update_segment(world.deps, record.segment_id, "York", None, body, node)
    assert (updated.name, updated.state) == ("York", "BUILDING")
    await world.deps.builds.running[record.segment_id]
    assert world.store.members_of(record.segment_id) == {"bob"}
    assert sorted((p.customer_id, p.change) for p in world.store.state.published) == [
        ("ann", "LEFT"),
        ("bob", "ENTERED"),
    ]


async def test_a_contextual_segment_has_no_member_list_and_no_preview() -> None:
    world = World()
    record = await world.segment("On mobile", mobile())
    assert (record.kind, record.state) == ("CONTEXTUAL", "READY")
    with pytest.raises(FailedPrecondition) as no_list:
        await h.list_members(world.deps, record.segment_id, None, 10)
    assert no_list.value.reason == "CONTEXTUAL_SEGMENT"
    with pytest.raises(InvalidArgument):
        await h.preview_segment(world.deps, decode_condition(mobile().SerializeToString()), 10)


async def test_preview_counts_and_samples_without_storing() -> None:
    world = World()
    for i in range(5):
        await world.change(f"c{i}", 1, books=i)
    preview = await h.preview_segment(world.deps, parsed(BOOKS)[1], 2)
    assert (preview.count, preview.sample, preview.kind) == (3, ["c2", "c3"], "BEHAVIORAL")
    assert world.store.state.segments == {}


# ---------------------------------------------------------------- incremental memberships


async def test_profile_changes_enter_and_leave_and_a_redelivery_changes_nothing() -> None:
    world = World()
    books = await world.segment("Books", BOOKS)
    assert await world.change("ann", 1, books=3) == [f"ENTERED {books.segment_id}"]
    assert await world.memberships("ann") == [books.segment_id]
    assert await world.change("ann", 1, books=3) == []  # redelivered
    assert await world.change("ann", 2, books=0) == [f"LEFT {books.segment_id}"]
    assert await world.memberships("ann") == []
    assert [(r.customer_id, r.change) for r in world.store.state.log] == [
        ("ann", "ENTERED"),
        ("ann", "LEFT"),
    ]


async def test_a_lost_race_re_runs_the_unit_of_work() -> None:
    world = World()
    books = await world.segment("Books", BOOKS)
    world.store.conflicts = 2
    assert await world.change("ann", 1, books=3) == [f"ENTERED {books.segment_id}"]
    assert world.store.members_of(books.segment_id) == {"ann"}
    assert len(world.store.state.published) == 1


async def test_time_passing_moves_a_customer_out_through_the_due_queue() -> None:
    world = World()
    recent = await world.segment("Viewed TV today", views("tv", 1, within=DAY))
    assert await world.change("ann", 1, views=1) == [f"ENTERED {recent.segment_id}"]
    assert await world.deps.engine.run_due() == 0
    world.clock.advance(DAY + 1)
    assert await world.deps.engine.run_due() == 1
    assert await world.memberships("ann") == []
    assert world.store.state.due == {}


async def test_a_segment_made_by_another_process_is_used_at_once() -> None:
    world = World()
    other = world.process()
    body, node = parsed(BOOKS)
    record = await h.create_segment(other, "Books", "", body, node)
    await other.builds.running[record.segment_id]
    # consumers compare the catalogue version in their unit of work: no refresh needed
    assert await world.change("ann", 1, books=3) == [f"ENTERED {record.segment_id}"]
    # request paths compare it at most every CATALOG_MAX_AGE seconds
    await h.refresh_catalog(world.deps, max_age=0.0)
    assert world.deps.catalogs.exists(record.segment_id)
    matched, unknown = await h.evaluate_segments(world.deps, "ann", None, [record.segment_id])
    assert (matched, unknown) == ([record.segment_id], [])


# ---------------------------------------------------------------- erasure and merges


async def test_erasure_wins_over_a_change_delivered_after_it() -> None:
    world = World()
    books = await world.segment("Books", BOOKS)
    await world.change("ann", 1, books=3, views=2)
    changes = await world.deps.engine.on_profile_deleted("ann")
    assert [(ch.segment_id, ch.change) for ch in changes] == [(books.segment_id, "LEFT")]
    assert await world.change("ann", 2, books=5, views=1) == []
    state = world.store.state
    assert "ann" not in state.profiles
    assert not [e for e in state.events.values() if e.customer_id == "ann"]
    assert not [r for r in state.log if r.customer_id == "ann"]
    assert state.tombstones == {"ann": None}
    assert await world.memberships("ann") == []


async def test_a_merge_keeps_the_behaviour_of_the_source_on_the_target() -> None:
    world = World()
    viewers = await world.segment("Viewed TV 3 times", views("tv", 3))
    await world.change("cookie", 1, views=2)
    await world.change("ann", 1)
    changes = await world.deps.engine.on_profiles_merged("cookie", "ann")
    assert changes == []  # 2 views between them
    assert world.store.state.tombstones == {"cookie": "ann"}
    # a late change of the source goes to the target, with its events
    assert await world.change("cookie", 2, views=1) == [f"ENTERED {viewers.segment_id}"]
    assert await world.memberships("ann") == [viewers.segment_id]
    assert "cookie" not in world.store.state.profiles
    # redelivery changes nothing
    assert await world.deps.engine.on_profiles_merged("cookie", "ann") == []


# ---------------------------------------------------------------- request-time evaluation


async def test_contextual_segments_are_evaluated_against_the_request_context() -> None:
    world = World()
    on_mobile = await world.segment("On mobile", mobile())
    books = await world.segment("Books", BOOKS)
    both = c.Condition(all_of=c.ConditionGroup(conditions=[ref(books.segment_id), mobile()]))
    combined = await world.segment("Book lovers on mobile", both)
    assert combined.kind == "COMBINED"
    await world.change("ann", 1, books=3)
    ids = [on_mobile.segment_id, books.segment_id, combined.segment_id, "nope"]
    on_app = ContextFacts(channel="MOBILE_APP", now=T0)
    matched, unknown = await h.evaluate_segments(world.deps, "ann", on_app, ids)
    assert (matched, unknown) == (ids[:3], ["nope"])
    matched, _ = await h.evaluate_segments(world.deps, "ann", None, ids)
    assert matched == [books.segment_id]


async def test_request_time_answers_follow_definition_changes() -> None:
    world = World()
    on_mobile = await world.segment("On mobile", mobile())
    on_web = ContextFacts(channel="WEB", now=T0)
    await world.change("ann", 1, books=3)
    assert await h.evaluate_segments(world.deps, "ann", on_web, []) == ([], [])
    # what a request needs is derived once per list of ids, and dropped by every change
    web = c.Condition(
        context=c.ContextCondition(
            path="channel", op=c.OPERATOR_EQ, value=struct_pb2.Value(string_value="WEB")
        )
    )
    body, node = parsed(web)
    await h.update_segment(world.deps, on_mobile.segment_id, None, None, body, node)
    assert await h.evaluate_segments(world.deps, "ann", on_web, []) == ([on_mobile.segment_id], [])
    also_web = await world.segment("Also on the web", web)
    matched, _ = await h.evaluate_segments(world.deps, "ann", on_web, [])
    assert sorted(matched) == sorted([on_mobile.segment_id, also_web.segment_id])
    await h.delete_segment(world.deps, also_web.segment_id)
    assert await h.evaluate_segments(world.deps, "ann", on_web, [also_web.segment_id]) == (
        [],
        [also_web.segment_id],
    )


async def test_a_request_reads_storage_once_then_the_cache_until_the_customer_changes() -> None:
    world = World()
    books = await world.segment("Books", BOOKS)
    book_views = c.Condition(all_of=c.ConditionGroup(conditions=[views("tv", 2), mobile()]))
    combined = await world.segment("Viewers on mobile", book_views)
    ids = [books.segment_id, combined.segment_id]
    on_app = ContextFacts(channel="MOBILE_APP", now=T0)
    await world.change("ann", 1, books=3, views=2)
    cache = world.cache
    await cache.delete([memberships_key("ann"), facts_key("ann")])  # as the relay leaves them
    assert await h.evaluate_segments(world.deps, "ann", on_app, ids) == (ids, [])
    # one unit of work filled both, briefly (a fill may race a change)
    assert cache.ttls[memberships_key("ann")] == cache.ttls[facts_key("ann")] == FILL_TTL
    saved = world.store.state
    world.store.state = type(saved)()  # storage empty: the next answer is the cache's
    assert await h.evaluate_segments(world.deps, "ann", on_app, ids) == (ids, [])
    world.store.state = saved
    # a change of the customer evicts its facts: the next request sees it
    await world.change("ann", 2, books=0, views=0)
    assert await h.evaluate_segments(world.deps, "ann", on_app, ids) == ([combined.segment_id], [])
    # with the cache down, storage answers
    cache.down = True
    assert await h.evaluate_segments(world.deps, "ann", on_app, ids) == ([combined.segment_id], [])
    assert await h.evaluate_conditions(world.deps, "ann", None, [parsed(BOOKS)[1]]) == [False]


async def test_a_new_segment_reaches_cached_memberships_once_built() -> None:
    """A first build fills the members in storage without touching the cache: the entries
    cached before it must not hide the new segment for their TTL."""
    world = World()
    books = await world.segment("Books", BOOKS)
    await world.change("ann", 1, books=3, city="Lyon")
    assert await world.memberships("ann") == [books.segment_id]  # cached now
    assert memberships_key("ann") in world.cache.entries
    in_lyon = await world.segment("Lyon", prop("attributes.city", c.OPERATOR_EQ, "Lyon"))
    world.clock.advance(1)  # past the catalogue's version check interval
    assert await world.memberships("ann") == sorted([books.segment_id, in_lyon.segment_id])
    on_app = ContextFacts(channel="MOBILE_APP", now=world.clock())
    matched, _ = await h.evaluate_segments(world.deps, "ann", on_app, [in_lyon.segment_id])
    assert matched == [in_lyon.segment_id]
    # another process, whose catalogue is as new, sees it through the same cache
    other = world.process()
    assert await h.get_memberships(other, "ann") == sorted([books.segment_id, in_lyon.segment_id])


async def test_a_request_leaves_nothing_to_the_cyclic_garbage_collector() -> None:
    """What a request reads of the customer is freed when it returns, by reference counting:
    a reference cycle per call (a closure that called itself) kept every call's facts and
    events until a collection, whose pauses were the tail of the reads."""
    world = World()
    books = await world.segment("Books", BOOKS)
    both = c.Condition(all_of=c.ConditionGroup(conditions=[ref(books.segment_id), mobile()]))
    combined = await world.segment("Book lovers on mobile", both)
    viewers = await world.segment(
        "Viewers on mobile",
        c.Condition(all_of=c.ConditionGroup(conditions=[views("tv", 2), mobile()])),
    )
    ids = [books.segment_id, combined.segment_id, viewers.segment_id]
    await world.change("ann", 1, books=3, views=2)
    on_app = ContextFacts(channel="MOBILE_APP", now=T0)
    assert await h.evaluate_segments(world.deps, "ann", on_app, ids) == (ids, [])  # cache filled
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        for _ in range(3):
            assert await h.evaluate_segments(world.deps, "ann", on_app, ids) == (ids, [])
        gc.collect()
        kinds = (CustomerFacts, FactEvent, ContextFacts, EventIndex)
        left = sorted({type(o).__name__ for o in gc.garbage if isinstance(o, kinds)})
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    assert left == []


async def test_conditions_are_evaluated_for_one_customer() -> None:
    world = World()
    await world.change("ann", 1, books=3, views=3)
    nodes = [parsed(BOOKS)[1], parsed(views("tv", 4))[1], parsed(views("tv", 3))[1]]
    assert await h.evaluate_conditions(world.deps, "ann", None, nodes) == [True, False, True]
    # from the cached bundle the second time
    world.store.state.profiles.clear()
    assert await h.evaluate_conditions(world.deps, "ann", None, nodes) == [True, False, True]
    with pytest.raises(InvalidArgument) as needs_context:
        await h.evaluate_conditions(world.deps, "ann", None, [nodes[0], parsed(mobile())[1]])
    assert needs_context.value.violations[0][0] == "conditions[1]"


# ---------------------------------------------------------------- RFM


async def test_rfm_scores_are_stored_published_and_rebuild_their_readers() -> None:
    world = World()
    champions = await world.segment("Frequent", prop("rfm.frequency_score", c.OPERATOR_GTE, 4))
    for i in range(10):
        await world.change(f"c{i}", 1)
        world.store.state.profiles[f"c{i}"].orders = i + 1
        world.store.state.profiles[f"c{i}"].last_purchase_at = T0 - i * DAY
    result = await h.recompute_rfm(world.deps, T0)
    assert len(result.scores) == 10
    assert SEGMENTATION_RFM.name in world.store.topics()
    frequent = {c for c, _, f, _ in result.scores if f >= 4}
    assert frequent and world.store.members_of(champions.segment_id) == frequent
    assert {p.customer_id for p in world.store.state.published} == frequent


async def test_each_rfm_recomputation_publishes_its_run_number() -> None:
    """The profile service orders recomputations by it (a late earlier run is dropped)."""
    from backcrm.common.v1.common_pb2 import EventEnvelope

    world = World()
    await world.change("c1", 1)
    world.store.state.profiles["c1"].orders = 1
    world.store.state.profiles["c1"].last_purchase_at = T0
    for _ in range(2):
        await h.recompute_rfm(world.deps, T0)
    runs = [
        SEGMENTATION_RFM.unpack(EventEnvelope.FromString(payload)).run
        for topic, payload, _ in world.store.state.outbox
        if topic == SEGMENTATION_RFM.name
    ]
    assert runs == [1, 2]


# ---------------------------------------------------------------- the build queue


class CountingBuilder(Builder):
    """Counts the builds running at once instead of building."""

    running = 0
    peak = 0

    def __init__(self, builder: Builder) -> None:
        super().__init__(builder.store, builder.catalogs, builder.cache, builder.clock)
        self.built: list[str] = []

    async def build(self, segment_id: str, *, announce: bool, reason: str) -> int:
        self.running += 1
        self.peak = max(self.peak, self.running)
        await asyncio.sleep(0.01)
        self.running -= 1
        self.built.append(segment_id)
        return 0


def _queue() -> tuple[BuildQueue, CountingBuilder]:
    builder = CountingBuilder(fake_segmentation().builder)
    return BuildQueue(builder), builder


async def test_builds_run_at_most_max_concurrent_builds_at_once() -> None:
    queue, builder = _queue()
    ids = [f"s{i}" for i in range(5 * MAX_CONCURRENT_BUILDS)]
    for segment_id in ids:
        queue.start(segment_id, announce=False, reason="segment created")
    await asyncio.gather(*queue.running.values())
    assert sorted(builder.built) == sorted(ids)
    assert builder.peak == MAX_CONCURRENT_BUILDS


async def test_a_queued_build_can_still_be_cancelled() -> None:
    queue, builder = _queue()
    ids = [f"s{i}" for i in range(MAX_CONCURRENT_BUILDS + 1)]
    for segment_id in ids:
        queue.start(segment_id, announce=False, reason="segment created")
    last = queue.running[ids[-1]]
    queue.cancel(ids[-1])
    await asyncio.gather(last, *queue.running.values(), return_exceptions=True)
    assert ids[-1] not in builder.built
    assert len(builder.built) == MAX_CONCURRENT_BUILDS

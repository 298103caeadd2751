"""Segmentation keeps erasure and identity stitching right whatever order the bus delivers in.

`profile.changed`, `profile.deleted` and `profile.merged` are separate topics: after a backlog
or a redelivery their messages reach segmentation in any order. The tests hand envelopes to
the consumer handlers directly, in the orders a backlog can produce, and race them.
"""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence

import pytest
from backcrm.common.v1 import common_pb2
from backcrm.common.v1.common_pb2 import EventEnvelope
from backcrm.profile.v1 import profile_service_pb2 as ppb
from backcrm.segmentation.v1 import condition_pb2 as c
from backcrm.segmentation.v1 import segmentation_service_pb2 as pb
from google.protobuf import struct_pb2
from sqlalchemy import func, select

from libs.protoutil import ts
from libs.topics import PROFILE_CHANGED, PROFILE_DELETED, PROFILE_MERGED
from services.segmentation import consumers
from services.segmentation.engine import Engine
from services.segmentation.models import (
    DueRow,
    MembershipLogRow,
    MembershipRow,
    SegEventRow,
    SegProfileRow,
    TombstoneRow,
)
from tests.e2e.conftest import Suite
from tests.e2e.helpers import cookie, email, event
from tests.support import eventually

pytestmark = pytest.mark.e2e

TABLES = (SegProfileRow, SegEventRow, MembershipRow, DueRow, MembershipLogRow)
TRIALS = 40


def uid() -> str:
    return uuid.uuid4().hex


def _changed(
    customer_id: str,
    version: int,
    city: str,
    events: Sequence[ppb.Event] = (),
    paths: Sequence[str] = ("attributes.city", "attributes.name"),
) -> EventEnvelope:
    now = time.time()
    profile = ppb.Profile(
        customer_id=customer_id,
        version=version,
        attributes=ppb.Attributes(name="Ada Lovelace", city=city),
        created_at=ts(now - 60),
        last_activity_at=ts(now),
    )
    change = ppb.ProfileChanged(
        customer_id=customer_id,
        version=version,
        changed_paths=list(paths),
        event_ids=[e.event_id for e in events],
        event_types=[e.type for e in events],
        profile=profile,
        events=events,
        changed_at=ts(now),
    )
    return PROFILE_CHANGED.pack(change)


def _view(category: str) -> ppb.Event:
    return ppb.Event(
        event_id=uid(),
        type=ppb.EVENT_TYPE_PRODUCT_VIEW,
        channel=common_pb2.CHANNEL_WEB,
        category=category,
        occurred_at=ts(time.time() - 5),
    )


def _deleted(customer_id: str) -> EventEnvelope:
    return PROFILE_DELETED.pack(
        ppb.ProfileDeleted(customer_id=customer_id, deleted_at=ts(time.time()))
    )


def _merged(source: str, target: str) -> EventEnvelope:
    return PROFILE_MERGED.pack(
        ppb.ProfilesMerged(
            source_customer_id=source, target_customer_id=target, merged_at=ts(time.time())
        )
    )


async def _rows(suite: Suite, customer_id: str) -> dict[str, int]:
    """Rows naming the customer in each of segmentation's tables (tombstones aside)."""
    out = {}
    async with suite.resources.sessions() as session:
        for table in TABLES:
            count = await session.scalar(
                select(func.count()).select_from(table).where(table.customer_id == customer_id)
            )
            out[table.__tablename__] = int(count or 0)
    return out


async def _events_of(suite: Suite, customer_id: str) -> int:
    return (await _rows(suite, customer_id))["seg_events"]


async def _tombstone(suite: Suite, customer_id: str) -> tuple[bool, str | None]:
    async with suite.resources.sessions() as session:
        row = await session.get(TombstoneRow, customer_id)
    return (row is not None, row.merged_into if row is not None else None)


async def _segment(suite: Suite, name: str, condition: c.Condition) -> str:
    api = suite.client().segmentation
    segment = (
        await api.CreateSegment(
            pb.CreateSegmentRequest(segment=pb.Segment(name=name, condition=condition))
        )
    ).segment

    async def built() -> bool:
        reply = await api.GetSegment(pb.GetSegmentRequest(segment_id=segment.segment_id))
        return bool(reply.segment.state == pb.SEGMENT_STATE_READY)

    await eventually(built, "the segment to become READY", timeout=20)
    return str(segment.segment_id)


def _city(city: str) -> c.Condition:
    return c.Condition(
        property=c.PropertyCondition(
            path="attributes.city", op=c.OPERATOR_EQ, value=struct_pb2.Value(string_value=city)
        )
    )


def _viewed(category: str, times: int) -> c.Condition:
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
            count_op=c.OPERATOR_GTE,
            count=times,
        )
    )


async def _members(suite: Suite, segment_id: str) -> set[str]:
    async with suite.resources.sessions() as session:
        rows = await session.scalars(
            select(MembershipRow.customer_id).where(MembershipRow.segment_id == segment_id)
        )
        return set(rows)


# ---------------------------------------------------------------- erasure


async def test_erasure_wins_over_changes_delivered_in_any_order(suite: Suite) -> None:
    city = f"Leeds-{uid()[:8]}"
    segment_id = await _segment(suite, "Leeds", _city(city))
    engine = suite.segmentation.deps.engine
    deliveries: dict[str, Callable[[EventEnvelope], Awaitable[None]]] = {
        "upsert": lambda e: consumers.on_changed(engine, [e]),
        "track": lambda e: consumers.on_changed(engine, [e]),
        "delete": lambda e: consumers.on_deleted(engine, e),
    }
    orders = list(itertools.permutations(deliveries))
    for order in orders:
        customer_id = uid()
        envelopes = {
            "upsert": _changed(customer_id, 1, city),
            "track": _changed(customer_id, 2, city, [_view("books")]),
            "delete": _deleted(customer_id),
        }
        for step in order:
            await deliveries[step](envelopes[step])
        # a redelivered backlog changes nothing either
        for step in order:
            await deliveries[step](envelopes[step])
        assert await _rows(suite, customer_id) == dict.fromkeys(
            (t.__tablename__ for t in TABLES), 0
        ), order
        assert await _tombstone(suite, customer_id) == (True, None)
        assert customer_id not in await _members(suite, segment_id)


async def test_erasure_racing_changes_leaves_nothing(suite: Suite) -> None:
    """Erasure and changes of one customer consumed at once (two consumers, or a batch and a
    redelivery): whichever runs first, nothing of the customer is left."""
    city = f"York-{uid()[:8]}"
    await _segment(suite, "York", _city(city))
    engine = suite.segmentation.deps.engine
    survivors = []
    for trial in range(TRIALS):
        customer_id = uid()
        changes = [_changed(customer_id, v, city, [_view("tea")]) for v in (1, 2, 3)]
        jobs: list[Awaitable[object]] = [consumers.on_changed(engine, [e]) for e in changes]
        jobs.insert(trial % 4, engine.on_profile_deleted(customer_id))
        await asyncio.gather(*jobs)
        rows = await _rows(suite, customer_id)
        if any(rows.values()):
            survivors.append(rows)
    assert survivors == [], f"{len(survivors)} of {TRIALS} trials left rows"


async def test_erasure_erases_the_membership_log_and_announces_left(suite: Suite) -> None:
    city = f"Hull-{uid()[:8]}"
    segment_id = await _segment(suite, "Hull", _city(city))
    engine = suite.segmentation.deps.engine
    customer_id = uid()
    await consumers.on_changed(engine, [_changed(customer_id, 1, city)])
    assert customer_id in await _members(suite, segment_id)
    assert (await _rows(suite, customer_id))["seg_membership_log"] == 1
    changes = await engine.on_profile_deleted(customer_id)
    assert [(ch.segment_id, ch.change) for ch in changes] == [(segment_id, "LEFT")]
    assert not any((await _rows(suite, customer_id)).values())


# ---------------------------------------------------------------- stitching


async def _in_order(engine: Engine, steps: Sequence[tuple[str, EventEnvelope]]) -> None:
    for kind, envelope in steps:
        if kind == "changed":
            await consumers.on_changed(engine, [envelope])
        else:
            await consumers.on_merged(engine, envelope)


async def test_merge_keeps_the_anonymous_behaviour_in_any_order(suite: Suite) -> None:
    category = f"shoes-{uid()[:8]}"
    segment_id = await _segment(suite, "Viewed shoes 3 times", _viewed(category, 3))
    engine = suite.segmentation.deps.engine
    for permutation in itertools.permutations(("source", "merged", "target")):
        source, target = uid(), uid()
        # the cookie's three views, the stitch, and the target's snapshot after it ("*")
        messages = {
            "source": ("changed", _changed(source, 1, "", [_view(category) for _ in range(3)])),
            "merged": ("merged", _merged(source, target)),
            "target": ("changed", _changed(target, 2, "", paths=["*"])),
        }
        steps = [messages[k] for k in permutation]
        await _in_order(engine, steps)
        await _in_order(engine, steps)  # redelivery
        assert await _members(suite, segment_id) >= {target}, permutation
        assert source not in await _members(suite, segment_id), permutation
        assert await _events_of(suite, target) == 3, permutation
        left = await _rows(suite, source)
        # the source lives on as the target: only its membership history stays
        assert left == {**dict.fromkeys(left, 0), "seg_membership_log": left["seg_membership_log"]}
        assert await _tombstone(suite, source) == (True, target)


async def test_a_merge_into_an_erased_customer_erases_the_source(suite: Suite) -> None:
    engine = suite.segmentation.deps.engine
    source, target = uid(), uid()
    await consumers.on_changed(engine, [_changed(source, 1, "", [_view("x")])])
    await consumers.on_deleted(engine, _deleted(target))
    await consumers.on_merged(engine, _merged(source, target))
    await consumers.on_changed(engine, [_changed(source, 2, "", [_view("x")])])
    for who in (source, target):
        assert not any((await _rows(suite, who)).values())
        assert await _tombstone(suite, who) == (True, None)


async def test_login_stitches_the_cookie_and_keeps_its_behaviour(suite: Suite) -> None:
    """The ordinary flow, end to end: a cookie views a product three times and enters the
    segment; a login event naming cookie and email stitches it; the customer stays in."""
    category = f"lamps-{uid()[:8]}"
    segment_id = await _segment(suite, "Viewed lamps 3 times", _viewed(category, 3))
    shop = suite.client("shop").profile
    seg = suite.client("reader").segmentation
    visitor = common_pb2.CustomerRef(identity=cookie(f"ck-{uid()}"))
    reply = await shop.TrackEvents(
        ppb.TrackEventsRequest(
            events=[event(uid(), visitor, category=category, sku="lamp") for _ in range(3)]
        )
    )
    anonymous = reply.customer_ids[0]
    await eventually(
        lambda: _member_of(seg, visitor, segment_id), "the cookie to enter", timeout=20
    )
    who = email(f"{uid()}@example.com")
    await shop.TrackEvents(  # the email is known already: the cookie joins it
        ppb.TrackEventsRequest(events=[event(uid(), who, ppb.EVENT_TYPE_PAGE_VIEW)])
    )
    login = event(uid(), who, ppb.EVENT_TYPE_PAGE_VIEW)
    login.identities.append(visitor.identity)
    known = (await shop.TrackEvents(ppb.TrackEventsRequest(events=[login]))).customer_ids[0]
    assert known != anonymous

    async def settled() -> bool:
        return (
            await _member_of(seg, who, segment_id)
            and await _events_of(suite, known) == 5
            and (await _rows(suite, anonymous))["seg_memberships"] == 0
            and (await _rows(suite, anonymous))["seg_events"] == 0
        )

    await eventually(settled, "the stitched customer to keep the cookie's behaviour", timeout=20)
    profile = (await shop.GetProfile(ppb.GetProfileRequest(customer=who))).profile
    assert profile.customer_id == known


async def _member_of(seg: object, who: common_pb2.CustomerRef, segment_id: str) -> bool:
    reply = await seg.GetMemberships(pb.GetMembershipsRequest(customer=who))  # type: ignore[attr-defined]
    return segment_id in reply.segment_ids

"""Two segmentation processes on one database and one Redis: one catalogue between them.

Production runs at least two replicas. A segment created through one must be known to the
other (its EvaluateSegments answers for it, its consumer maintains it), or the customers
whose changes the other process consumes never become members.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from backcrm.common.v1 import common_pb2
from backcrm.profile.v1 import profile_service_pb2 as ppb
from backcrm.segmentation.v1 import condition_pb2 as c
from backcrm.segmentation.v1 import segmentation_service_pb2 as pb
from google.protobuf import struct_pb2

from tests.e2e.conftest import Suite
from tests.e2e.helpers import email, event
from tests.support import Backend, backend_settings, eventually

pytestmark = pytest.mark.e2e
CUSTOMERS = 100


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backend]:
    """PostgreSQL + Redis: the in-process bus cannot be shared by two processes."""
    with backend_settings("postgres", Path(tmp_path_factory.mktemp("replicas"))) as b:
        yield b


@pytest.fixture
async def replicas(shared: Backend) -> AsyncIterator[tuple[Suite, Suite]]:
    a, b = Suite(shared), Suite(shared)
    await a.start()
    try:
        await b.start()
        try:
            yield a, b
        finally:
            await b.stop()
    finally:
        await a.stop()


async def test_a_segment_created_on_one_replica_is_maintained_by_both(
    replicas: tuple[Suite, Suite],
) -> None:
    a, b = replicas
    category = f"bath-{uuid.uuid4().hex[:8]}"
    people = [email(f"{uuid.uuid4().hex}@example.com") for _ in range(CUSTOMERS)]
    shop = a.client("shop").profile

    async def upsert(who: common_pb2.CustomerRef) -> None:
        view = event(uuid.uuid4().hex, who, category=category, sku="towel")
        await shop.TrackEvents(ppb.TrackEventsRequest(events=[view]))

    # half before the segment exists, half while and after it is created: the changes are
    # consumed by both replicas (one consumer group), whichever holds the catalogue
    await asyncio.gather(*(upsert(p) for p in people[: CUSTOMERS // 2]))
    condition = c.Condition(
        event=c.EventCondition(
            type=ppb.EVENT_TYPE_PRODUCT_VIEW,
            filters=[
                c.PropertyCondition(
                    path="category",
                    op=c.OPERATOR_EQ,
                    value=struct_pb2.Value(string_value=category),
                )
            ],
        )
    )
    create = a.client().segmentation.CreateSegment(
        pb.CreateSegmentRequest(segment=pb.Segment(name="Towel viewers", condition=condition))
    )
    created, *_ = await asyncio.gather(create, *(upsert(p) for p in people[CUSTOMERS // 2 :]))
    segment_id = created.segment.segment_id
    on_b = b.client("reader").segmentation

    async def b_knows_it() -> bool:
        reply = await on_b.EvaluateSegments(
            pb.EvaluateSegmentsRequest(
                customer=common_pb2.CustomerRef(customer_id="nobody"), segment_ids=[segment_id]
            )
        )
        return segment_id not in reply.unknown_segment_ids

    await eventually(b_knows_it, "replica B to learn of the segment", timeout=30)

    async def all_members() -> bool:
        reply = await on_b.ListMembers(pb.ListMembersRequest(segment_id=segment_id, page_size=1000))
        return len(reply.customer_ids) == CUSTOMERS

    await eventually(all_members, "every qualifying customer in the segment", timeout=30)
    for who in people[:5]:  # B answers from its own catalogue and the shared memberships
        reply = await on_b.EvaluateSegments(
            pb.EvaluateSegmentsRequest(customer=who, segment_ids=[segment_id])
        )
        assert list(reply.segment_ids) == [segment_id]
    # and a segment deleted through B is gone from A's catalogue too
    await b.client().segmentation.DeleteSegment(pb.DeleteSegmentRequest(segment_id=segment_id))
    on_a = a.client("reader").segmentation

    async def a_forgot_it() -> bool:
        reply = await on_a.EvaluateSegments(
            pb.EvaluateSegmentsRequest(
                customer=common_pb2.CustomerRef(customer_id="nobody"), segment_ids=[segment_id]
            )
        )
        return segment_id in reply.unknown_segment_ids

    await eventually(a_forgot_it, "replica A to forget the deleted segment", timeout=30)

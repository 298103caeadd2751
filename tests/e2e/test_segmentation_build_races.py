"""A segment's first build (one `INSERT … SELECT` over the projection) racing the changes and
erasures consumed while it runs: the members end as the data, on both backends.

The build reads the projection at the start of its statement and commits its members at the
end. A customer erased or changed in between must not be left behind as a member (an erased
customer's data outliving the erasure, or a member that no longer matches).
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Awaitable
from typing import Any

import pytest
from backcrm.segmentation.v1 import segmentation_service_pb2 as pb
from sqlalchemy import select

from services.segmentation import consumers
from services.segmentation.facts import CustomerFacts
from services.segmentation.models import MembershipRow, SegmentRow
from tests.e2e.conftest import Suite
from tests.e2e.test_segmentation_integrity import _changed, _city
from tests.support import eventually

pytestmark = pytest.mark.e2e

# Enough customers that the build's statement takes a while (tenths of a second on PostgreSQL).
POPULATION = 10_000
TRIALS = 3
RACERS = 30  # erasures and changes per trial, each started within the build's window


def uid() -> str:
    return uuid.uuid4().hex


async def _late(call: Awaitable[object], window: float = 0.3) -> None:
    """Start somewhere within the build's window."""
    await asyncio.sleep(random.uniform(0, window))
    await call


async def _ready(api: Any, segment_id: str) -> None:
    async def ready() -> bool:
        reply = await api.GetSegment(pb.GetSegmentRequest(segment_id=segment_id))
        return bool(reply.segment.state == pb.SEGMENT_STATE_READY)

    await eventually(ready, "the segment to become READY", timeout=60)


async def test_a_first_build_racing_erasures_and_changes_ends_as_the_data(suite: Suite) -> None:
    engine = suite.segmentation.deps.engine
    api = suite.client().segmentation
    now = time.time()
    for trial in range(TRIALS):
        city = f"Bath-{uid()[:8]}"
        population = [uid() for _ in range(POPULATION)]
        async with engine.store() as store:
            await store.upsert_profiles(
                [
                    CustomerFacts(
                        customer_id=c,
                        version=1,
                        created_at=now - 60,
                        last_activity_at=now,
                        attributes={"city": city, "name": "Ada Lovelace"},
                    )
                    for c in population
                ]
            )
            await store.commit()
        erased = random.sample(population, RACERS)
        moved = random.sample(sorted(set(population) - set(erased)), RACERS)
        created = await api.CreateSegment(
            pb.CreateSegmentRequest(segment=pb.Segment(name=f"Bath {trial}", condition=_city(city)))
        )
        segment_id = created.segment.segment_id
        # consumed while the build runs: erasures, and changes that move customers away
        away = [consumers.on_changed(engine, [_changed(c, 2, "Elsewhere")]) for c in moved]
        await asyncio.gather(
            *[_late(engine.on_profile_deleted(c)) for c in erased], *[_late(a) for a in away]
        )
        await _ready(api, segment_id)
        async with suite.resources.sessions() as session:
            members = set(
                await session.scalars(
                    select(MembershipRow.customer_id).where(MembershipRow.segment_id == segment_id)
                )
            )
            count = await session.scalar(
                select(SegmentRow.member_count).where(SegmentRow.segment_id == segment_id)
            )
        assert not members & set(erased), f"trial {trial}: erased customers left as members"
        assert not members & set(moved), f"trial {trial}: customers who moved away left as members"
        assert members == set(population) - set(erased) - set(moved), f"trial {trial}"
        assert count == len(members), f"trial {trial}"

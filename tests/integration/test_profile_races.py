"""Concurrent units of work on the profile storage, for real (SQLite and PostgreSQL).

Each call below runs in its own unit of work (its own session and transaction); the calls are
started together with asyncio.gather, so on PostgreSQL they overlap inside the database. Every
race is repeated many times: the defects they guard against showed in a fraction of trials.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from backcrm.profile.v1 import profile_service_pb2 as pb
from sqlalchemy import func, select

from libs.errors import Conflict
from libs.runtime import Resources
from services.profile.app import ProfileApp
from services.profile.domain import CartLine, EventIn, IdentityKey, OrderIn
from services.profile.handlers import (
    CustomerLookup,
    delete_profile,
    get_profile,
    merge_profiles,
    track_events,
)
from services.profile.models import CustomerRow, EventRow, IdentityRow, PurchaseRow
from services.profile.ports import StoredEventRecord
from tests.support import Backend, count_rows, soon

pytestmark = pytest.mark.integration

PARALLEL = 6


def uid() -> str:
    return uuid.uuid4().hex[:12]


def view(who: IdentityKey, *others: IdentityKey) -> EventIn:
    return EventIn(
        event_id=f"v-{uid()}",
        type="PRODUCT_VIEW",
        channel="WEB",
        occurred_at=time.time(),
        identity=who,
        identities=others,
        category="books",
    )


def bought(who: IdentityKey) -> EventIn:
    line = CartLine("sku-1", "books", 1, 9_990_000, "GBP")
    order = OrderIn(f"o-{uid()}", (line,), 9_990_000, "GBP", time.time())
    return EventIn(
        event_id=f"p-{uid()}",
        type="PURCHASE",
        channel="WEB",
        occurred_at=time.time(),
        identity=who,
        order=order,
    )


@dataclass
class World:
    app: ProfileApp
    resources: Resources

    async def owner(self, key: IdentityKey) -> str | None:
        async with self.resources.sessions() as s:
            return await s.scalar(
                select(IdentityRow.customer_id).where(
                    IdentityRow.type == key[0], IdentityRow.value == key[1]
                )
            )

    async def event_owners(self, event_ids: list[str]) -> dict[str, str]:
        async with self.resources.sessions() as s:
            rows = await s.execute(
                select(EventRow.event_id, EventRow.customer_id).where(
                    EventRow.event_id.in_(event_ids)
                )
            )
            return {e: c for e, c in rows}

    async def rows_of(self, customer_id: str) -> int:
        """Identity, event and purchase rows naming the customer."""
        return await count_rows(
            self.resources.sessions, (IdentityRow, EventRow, PurchaseRow), customer_id
        )

    async def orphans(self) -> int:
        """Child rows whose customer does not exist."""
        async with self.resources.sessions() as s:
            total = 0
            for table in (IdentityRow, EventRow, PurchaseRow):
                total += (
                    await s.scalar(
                        select(func.count())
                        .select_from(table)
                        .where(table.customer_id.not_in(select(CustomerRow.customer_id)))
                    )
                    or 0
                )
            return total

    async def customers_without_identity_or_event(self) -> int:
        async with self.resources.sessions() as s:
            return (
                await s.scalar(
                    select(func.count())
                    .select_from(CustomerRow)
                    .where(
                        CustomerRow.customer_id.not_in(select(IdentityRow.customer_id)),
                        CustomerRow.customer_id.not_in(select(EventRow.customer_id)),
                    )
                )
                or 0
            )


@pytest.fixture
async def world(backend: Backend) -> AsyncIterator[World]:
    resources = Resources.open(backend.settings)
    app = ProfileApp.build(resources)
    await app.start()
    try:
        yield World(app, resources)
    finally:
        await app.stop()
        await resources.close()


async def test_parallel_first_events_of_a_new_cookie_make_one_customer(world: World) -> None:
    split = 0
    for _ in range(40):
        cookie = ("COOKIE", f"ck-{uid()}")
        batches = [[view(cookie)] for _ in range(PARALLEL)]
        results = await asyncio.gather(*(soon(track_events(world.app.deps, b)) for b in batches))
        owner = await world.owner(cookie)
        owners = await world.event_owners([b[0].event_id for b in batches])
        said = {r.customer_ids[0] for r in results}
        if set(owners.values()) != {owner} or len(owners) != PARALLEL or said != {owner}:
            split += 1
    assert split == 0, f"{split} of 40 new cookies were split over several customers"
    assert await world.customers_without_identity_or_event() == 0


async def test_a_purchase_batch_resubmitted_at_once_counts_one_order(world: World) -> None:
    wrong = 0
    for _ in range(40):
        who = ("EMAIL", f"{uid()}@example.com")
        batch = [view(who), bought(who)]
        results = await asyncio.gather(
            *(soon(track_events(world.app.deps, batch)) for _ in range(PARALLEL))
        )
        rendered = await get_profile(world.app.deps, CustomerLookup(identity=who))
        profile = pb.GetProfileResponse.FromString(rendered).profile
        accepted = sum(r.accepted for r in results)
        if profile.purchase_summary.orders != 1 or accepted != 2:
            wrong += 1
    assert wrong == 0, f"{wrong} of 40 resubmitted batches did not count exactly one order"
    assert await world.customers_without_identity_or_event() == 0


async def test_delete_racing_track_leaves_no_personal_data(world: World) -> None:
    leftovers, failures = 0, []
    cookies = []
    for _ in range(60):
        who, cookie = ("EMAIL", f"{uid()}@example.com"), ("COOKIE", f"ck-{uid()}")
        cookies.append(cookie)
        await track_events(world.app.deps, [view(who, cookie)])
        outcome = await asyncio.gather(
            soon(delete_profile(world.app.deps, CustomerLookup(identity=who))),
            soon(track_events(world.app.deps, [view(cookie, who) for _ in range(5)])),
            return_exceptions=True,
        )
        failures += [repr(o) for o in outcome if isinstance(o, BaseException)]
        deleted = outcome[0]
        if isinstance(deleted, str) and await world.rows_of(deleted):
            leftovers += 1
    assert failures == []
    assert leftovers == 0, f"{leftovers} of 60 deleted customers kept rows"
    assert await world.orphans() == 0
    # Every cookie works afterwards (a fresh customer, or the one the track created).
    later = await track_events(world.app.deps, [view(c) for c in cookies])
    assert later.accepted == len(cookies) and later.rejected == []


async def test_track_racing_merge_loses_no_event(world: World) -> None:
    failures: list[str] = []
    lost = 0
    for _ in range(30):
        cookie, who = ("COOKIE", f"ck-{uid()}"), ("EMAIL", f"{uid()}@example.com")
        await track_events(world.app.deps, [view(cookie)])
        await track_events(world.app.deps, [view(who)])
        batch = [view(cookie) for _ in range(5)]
        outcome = await asyncio.gather(
            soon(
                merge_profiles(
                    world.app.deps,
                    CustomerLookup(identity=who),
                    CustomerLookup(identity=cookie),
                    "test",
                    "race",
                )
            ),
            soon(track_events(world.app.deps, batch)),
            return_exceptions=True,
        )
        failures += [repr(o) for o in outcome if isinstance(o, BaseException)]
        target = await world.owner(who)
        owners = await world.event_owners([e.event_id for e in batch])
        if await world.owner(cookie) != target or set(owners.values()) != {target}:
            lost += 1
        if len(owners) != len(batch):
            lost += 1
    assert failures == []
    assert lost == 0, f"{lost} of 30 merges raced by TrackEvents lost or stranded events"
    assert await world.orphans() == 0


async def test_no_row_can_name_a_missing_customer(world: World) -> None:
    """The foreign keys hold on both backends (SQLite enforces them per connection)."""
    with pytest.raises(Conflict):
        async with world.app.deps.uow() as uow:
            await uow.insert_events(
                [StoredEventRecord(view(("COOKIE", uid())), uid(), time.time())]
            )
            await uow.commit()
    with pytest.raises(Conflict):
        async with world.app.deps.uow() as uow:
            await uow.link_identities([(("COOKIE", uid()), uid())], time.time())
            await uow.commit()


async def test_rfm_runs_delivered_out_of_order_and_at_once_leave_the_latest_scores(
    world: World, backend: Backend
) -> None:
    """Segmentation numbers its RFM recomputations; two profile replicas consuming three runs'
    events in every order, at once, end with the last run's scores (an earlier run delivered
    late, e.g. reclaimed from a dead consumer, must not overwrite a later one)."""
    import itertools
    import random

    from backcrm.common.v1.common_pb2 import EventEnvelope

    from services.segmentation.rfm import RfmResult
    from services.segmentation.translate import encode_rfm

    # A second process on PostgreSQL + Redis; the embedded default is one process (its cache
    # is in-process), so there the "replica" is a second app on the same resources.
    other = Resources.open(backend.settings) if backend.name == "postgres" else None
    replica = ProfileApp.build(other or world.resources)
    try:
        who = ("EMAIL", f"{uid()}@example.com")
        (result,) = [await track_events(world.app.deps, [bought(who)])]
        customer = result.customer_ids[0]
        orders = list(itertools.permutations(range(3)))
        rng = random.Random(7)
        wrong = []
        for trial in range(24):
            runs = [3 * trial + k for k in (1, 2, 3)]
            scores = [(1 + k, 5 - k, 1 + (trial + k) % 5) for k in range(3)]
            envelopes = [
                EventEnvelope.FromString(
                    encode_rfm([(customer, *scores[k])], 0.0, RfmResult([], [], [], []), runs[k])[1]
                )
                for k in range(3)
            ]
            order = orders[trial % len(orders)]
            apps = [world.app, replica]
            rng.shuffle(apps)
            # the first two at once from two replicas, the third after them
            await asyncio.gather(
                soon(apps[0]._on_rfm(envelopes[order[0]])),
                soon(apps[1]._on_rfm(envelopes[order[1]])),
            )
            await apps[0]._on_rfm(envelopes[order[2]])
            rendered = await get_profile(world.app.deps, CustomerLookup(customer_id=customer))
            rfm = pb.GetProfileResponse.FromString(rendered).profile.rfm
            got = (rfm.recency_score, rfm.frequency_score, rfm.monetary_score)
            if got != scores[2]:
                wrong.append((order, got, scores[2]))
        assert not wrong, f"{len(wrong)} of 24 trials kept an earlier run's scores: {wrong[:3]}"
    finally:
        if other is not None:
            await other.close()

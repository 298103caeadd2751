"""Segmentation's per-request read of one customer (`SegStore.customer_read`, ready-made
statements) answers what the general queries answer, on both backends."""

from __future__ import annotations

import pytest

from libs.runtime import Resources
from services.segmentation.facts import CustomerFacts, FactEvent
from services.segmentation.ports import SegmentationUnitOfWork
from services.segmentation.records import MembershipChange
from services.segmentation.store import SegStore
from services.segmentation.translate import encode_membership_change

pytestmark = pytest.mark.integration

T0 = 1_700_000_000.0


def _store(resources: Resources) -> SegStore:
    return SegStore(resources.sessions, encode_membership_change)


async def _general(
    store: SegmentationUnitOfWork, customer_id: str, types: list[str], since: float | None
) -> tuple[set[str], CustomerFacts | None, list[FactEvent]]:
    # the port's own answer, from the general queries
    members, facts, events = await SegmentationUnitOfWork.customer_read(
        store, customer_id, memberships=True, facts=True, types=types, since=since
    )
    assert members is not None and events is not None
    return members, facts, events


async def test_the_read_of_one_customer_agrees_with_the_general_queries(
    resources: Resources,
) -> None:
    ann = CustomerFacts(
        customer_id="read-ann",
        version=3,
        created_at=T0 - 86_400,
        last_activity_at=T0,
        orders=2,
        revenue=12.5,
        interests={"books": 2.0},
        attributes={"region": "North"},
    )
    events = [
        FactEvent("read-e1", "read-ann", "PRODUCT_VIEW", "WEB", T0 - 100, "books", "b1"),
        FactEvent("read-e2", "read-ann", "PRODUCT_VIEW", "WEB", T0 - 10, "books", "b2"),
        FactEvent("read-e3", "read-ann", "PURCHASE", "WEB", T0 - 5, "books", order_total=9.5),
        FactEvent("read-e4", "read-bob", "PRODUCT_VIEW", "WEB", T0 - 5, "toys"),
    ]
    async with _store(resources) as store:
        await store.upsert_profiles([ann])
        await store.insert_events(events)
        await store.apply(
            [
                MembershipChange("seg-a", "read-ann", "ENTERED", T0, "test"),
                MembershipChange("seg-b", "read-ann", "ENTERED", T0, "test"),
                MembershipChange("seg-a", "read-bob", "ENTERED", T0, "test"),
            ],
            publish=False,
        )
        await store.commit()
    cases: list[tuple[str, list[str], float | None]] = [
        ("read-ann", ["PRODUCT_VIEW"], None),
        ("read-ann", ["PRODUCT_VIEW", "PURCHASE"], T0 - 50),
        ("read-ann", ["PURCHASE"], T0 - 1),
        ("read-ann", [], None),
        ("read-bob", ["PRODUCT_VIEW"], None),  # events and memberships, no projection
        ("read-nobody", ["PRODUCT_VIEW"], None),
    ]
    async with _store(resources) as store:
        for customer_id, types, since in cases:
            members, facts, found = await store.customer_read(
                customer_id, memberships=True, facts=True, types=types, since=since
            )
            assert found is not None
            general = await _general(store, customer_id, types, since)
            assert (members, facts, sorted(found, key=lambda e: e.event_id)) == (
                general[0],
                general[1],
                sorted(general[2], key=lambda e: e.event_id),
            )
        members, facts, found = await store.customer_read(
            "read-ann", memberships=True, facts=True, types=["PRODUCT_VIEW", "PURCHASE"], since=None
        )
        assert members == {"seg-a", "seg-b"}
        assert facts == ann
        assert found is not None and {e.event_id for e in found} == {
            "read-e1",
            "read-e2",
            "read-e3",
        }
        # each part only when asked
        assert await store.customer_read(
            "read-ann", memberships=False, facts=False, types=["PURCHASE"], since=None
        ) == (None, None, None)
        members, facts, found = await store.customer_read(
            "read-ann", memberships=False, facts=True, types=["PURCHASE"], since=None
        )
        assert members is None and facts == ann and found is not None and len(found) == 1


async def test_a_read_leaves_the_connection_transactional_for_the_next_unit_of_work(
    resources: Resources,
) -> None:
    for n in range(12):  # more than the pool's connections
        async with _store(resources) as store:
            await store.customer_read(
                f"tx-{n}", memberships=True, facts=True, types=["PURCHASE"], since=None
            )
        async with _store(resources) as store:
            await store.upsert_profiles([CustomerFacts(customer_id=f"tx-{n}", version=1)])
            # left without commit: rolled back
        async with _store(resources) as store:
            assert await store.load_facts([f"tx-{n}"]) == {}


async def test_events_are_read_per_type_from_its_own_cutoff(resources: Resources) -> None:
    """`load_events` with a cutoff per type: views of the last week, purchases of the last
    quarter, searches of all time — on both backends, exactly those."""
    day = 86_400.0
    rows = [
        FactEvent("cut-v1", "cut-ann", "PRODUCT_VIEW", "WEB", T0 - 2 * day, "books"),
        FactEvent("cut-v2", "cut-ann", "PRODUCT_VIEW", "WEB", T0 - 10 * day, "books"),
        FactEvent("cut-p1", "cut-ann", "PURCHASE", "WEB", T0 - 10 * day, "books"),
        FactEvent("cut-p2", "cut-ann", "PURCHASE", "WEB", T0 - 100 * day, "books"),
        FactEvent("cut-s1", "cut-ann", "SEARCH", "WEB", T0 - 400 * day),
        FactEvent("cut-c1", "cut-ann", "ADD_TO_CART", "WEB", T0 - day, "books"),
        FactEvent("cut-v3", "cut-bob", "PRODUCT_VIEW", "WEB", T0 - day, "toys"),
    ]
    async with _store(resources) as store:
        await store.insert_events(rows)
        await store.commit()
    cutoffs: dict[str, float | None] = {
        "PRODUCT_VIEW": T0 - 7 * day,
        "PURCHASE": T0 - 90 * day,
        "SEARCH": None,
    }
    async with _store(resources) as store:
        found = await store.load_events(["cut-ann", "cut-bob"], cutoffs)
        single = await store.load_events(["cut-ann"], {"PURCHASE": T0 - 90 * day})
        none = await store.load_events(["cut-ann"], {})
    assert {e.event_id for e in found["cut-ann"]} == {"cut-v1", "cut-p1", "cut-s1"}
    assert {e.event_id for e in found["cut-bob"]} == {"cut-v3"}
    assert {e.event_id for e in single["cut-ann"]} == {"cut-p1"}
    assert none == {}

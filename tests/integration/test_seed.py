"""`backcrm seed`: a deterministic, idempotent demo population."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from backcrm.profile.v1 import profile_service_pb2 as pb
from sqlalchemy import func, select

from libs.config import Settings
from libs.db.migrate import upgrade
from libs.runtime import Resources
from services.profile.app import ProfileApp
from services.profile.handlers import CustomerLookup, get_profiles
from services.profile.identities import normalise_identity
from services.profile.models import CustomerRow, EventRow, IdentityRow
from services.recommend.models import ItemRow
from services.registry import SERVICES
from services.tools.seed import count_customers, seed

pytestmark = pytest.mark.integration


@pytest.fixture
async def resources(tmp_path: Path) -> AsyncIterator[Resources]:
    url = f"sqlite+aiosqlite:///{tmp_path}/t.db"
    await asyncio.to_thread(upgrade, url, SERVICES)
    settings = Settings(
        database_url=url, redis_url="", var_dir=tmp_path, auth_tokens_file=tmp_path / "tokens.json"
    )
    res = Resources.open(settings)
    yield res
    await res.close()


async def _counts(resources: Resources) -> tuple[int, int, list[str]]:
    async with resources.sessions() as session:
        customers = await session.scalar(select(func.count()).select_from(CustomerRow))
        events = await session.scalar(select(func.count()).select_from(EventRow))
        ids = list(await session.scalars(select(EventRow.event_id).order_by(EventRow.event_id)))
    return int(customers or 0), int(events or 0), ids


async def test_seed_is_idempotent_and_plausible(resources: Resources) -> None:
    first = await seed(resources, customers=30, rng_seed=7, progress=False)
    assert first.customers == 30
    assert first.events == first.events_accepted > 30
    assert first.orders > 0
    counts = await _counts(resources)
    assert counts[:2] == (30, first.events)
    assert all(i.startswith("seed:7:") for i in counts[2])

    again = await seed(resources, customers=30, rng_seed=7, progress=False)
    assert (again.events, again.orders) == (first.events, first.orders)
    assert again.events_accepted == 0
    assert again.duplicates == first.events
    assert await _counts(resources) == counts
    assert first.items == again.items == 500  # the recommend catalogue, upserted again
    async with resources.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(ItemRow)) == 500

    skipped = await seed(resources, customers=30, rng_seed=8, if_empty=True, progress=False)
    assert skipped.skipped and skipped.existing_customers == 30
    assert "skipped" in skipped.report()
    assert await count_customers(resources) == 30

    deps = ProfileApp.build(resources).deps
    lookups = [CustomerLookup(identity=("EMAIL", "demo@example.com"))] + [
        CustomerLookup(identity=("EMAIL", f"customer{n}@example.com")) for n in range(1, 30)
    ]
    blobs = await get_profiles(deps, lookups)
    assert all(blob is not None for blob in blobs)
    profiles = [pb.GetProfileResponse.FromString(b).profile for b in blobs if b is not None]
    demo = profiles[0]
    assert demo.attributes.email == "demo@example.com"
    assert demo.attributes.name and demo.attributes.region and demo.attributes.city
    assert demo.attributes.language
    assert sum(1 for p in profiles if p.interests) >= 25
    buyers = [p for p in profiles if p.purchase_summary.orders]
    assert len(buyers) >= 5
    assert all(p.purchase_summary.revenue.currency == "GBP" for p in buyers)
    # a few orders are sent back later, sometimes whole: never more than was bought
    assert all(p.purchase_summary.revenue.units_micros >= 0 for p in buyers)
    assert sum(1 for p in buyers if p.purchase_summary.revenue.units_micros > 0) >= 5

    async with resources.sessions() as session:
        phones = list(
            await session.scalars(select(IdentityRow.value).where(IdentityRow.type == "PHONE"))
        )
    assert phones
    assert all(normalise_identity("PHONE", p, "phone") == p for p in phones)


async def test_same_seed_same_population(tmp_path: Path, resources: Resources) -> None:
    await seed(resources, customers=5, rng_seed=3, progress=False)
    first = await _counts(resources)
    url = f"sqlite+aiosqlite:///{tmp_path}/other.db"
    await asyncio.to_thread(upgrade, url, SERVICES)
    other = Resources.open(
        Settings(
            database_url=url,
            redis_url="",
            var_dir=tmp_path,
            auth_tokens_file=tmp_path / "tokens.json",
        )
    )
    try:
        await seed(other, customers=5, rng_seed=3, progress=False)
        assert (await _counts(other))[1:] == first[1:]
    finally:
        await other.close()

"""A batch of changes reads the catalogue version and locks its customers in one statement on
PostgreSQL (`SegStore.catalog_version_and_lock`): both holds must last until the unit of work
ends, as the two statements' did."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from libs.runtime import Resources
from services.segmentation.store import CUSTOMER_LOCKS, SegStore, _lock_key
from services.segmentation.translate import encode_membership_change
from tests.support import Backend

pytestmark = pytest.mark.integration

CUSTOMERS = ("hold-ann", "hold-bob")


async def _held_elsewhere(resources: Resources) -> tuple[bool, list[bool]]:
    """From another connection: whether a definition change would wait for the catalogue
    row, and whether each customer's lock is taken (without waiting for either)."""
    async with resources.sessions() as other:
        try:
            await other.execute(
                text("SELECT version FROM seg_catalog WHERE id = 1 FOR UPDATE NOWAIT")
            )
            catalog_held = False
        except DBAPIError:  # lock_not_available
            catalog_held = True
        await other.rollback()
        taken = [
            await other.scalar(
                text("SELECT pg_try_advisory_xact_lock_shared(:space, :key)"),
                {"space": CUSTOMER_LOCKS, "key": _lock_key(c)},
            )
            for c in CUSTOMERS
        ]
        await other.rollback()
    return catalog_held, [not t for t in taken]


async def test_the_version_and_the_customers_are_held_until_the_unit_of_work_ends(
    resources: Resources, backend: Backend
) -> None:
    async with SegStore(resources.sessions, encode_membership_change) as store:
        version = await store.catalog_version_and_lock(CUSTOMERS)
        assert version == await store.catalog_version()
        # locked already: asking again issues nothing and changes nothing
        assert await store.catalog_version_and_lock(CUSTOMERS) == version
        if backend.name == "postgres":  # SQLite runs one unit of work at a time
            assert await _held_elsewhere(resources) == (True, [True, True])
    if backend.name == "postgres":
        assert await _held_elsewhere(resources) == (False, [False, False])

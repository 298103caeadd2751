"""Read-after-write across replicas: a write through one profile process is seen by the very
next read through another, even while that process has cache reads in flight (its reads
share round trips to Redis, libs/cache/coalesce.py) and cache fills racing the write (a
reader that read storage before the commit must not cache it after the invalidation:
libs/cache/port.py; before the generations this failed about one run in three).

On PostgreSQL + Redis the two apps have their own engines and Redis clients, as two processes
do; the embedded default runs in one process only, so there the two apps share its resources.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator

import pytest
from backcrm.profile.v1 import profile_service_pb2 as pb

from libs.runtime import Resources
from services.profile.app import ProfileApp
from services.profile.domain import EventIn
from services.profile.handlers import CustomerLookup, get_profile, track_events
from tests.support import Backend

pytestmark = pytest.mark.integration

TRIALS = 20
READERS = 4


@pytest.fixture
async def replicas(backend: Backend) -> AsyncIterator[tuple[ProfileApp, ProfileApp]]:
    opened = [Resources.open(backend.settings)]
    if backend.name == "postgres":
        opened.append(Resources.open(backend.settings))
    apps = [ProfileApp.build(opened[0]), ProfileApp.build(opened[-1])]
    for app in apps:
        await app.start()
    try:
        yield apps[0], apps[1]
    finally:
        for app in apps:
            await app.stop()
        for resources in opened:
            await resources.close()


def viewed(email: str, category: str) -> EventIn:
    return EventIn(
        event_id=uuid.uuid4().hex,
        type="PRODUCT_VIEW",
        channel="WEB",
        occurred_at=time.time(),
        identity=("EMAIL", email),
        category=category,
    )


async def test_a_write_on_one_replica_is_read_on_the_other(
    replicas: tuple[ProfileApp, ProfileApp],
) -> None:
    writer, reader = replicas
    email = f"{uuid.uuid4().hex[:12]}@example.com"
    created = await track_events(writer.deps, [viewed(email, "start")])
    who = CustomerLookup(customer_id=created.customer_ids[0])

    async def read() -> pb.Profile:
        return pb.GetProfileResponse.FromString(await get_profile(reader.deps, who)).profile

    stop = asyncio.Event()

    async def keep_reading() -> None:
        # keeps the reader's cache reads in flight, so the checked reads join batches
        while not stop.is_set():
            await read()

    background = [asyncio.ensure_future(keep_reading()) for _ in range(READERS)]
    try:
        for trial in range(TRIALS):
            before = await read()  # cached on the reader now
            await track_events(writer.deps, [viewed(email, f"c{trial}")])
            after = await read()
            assert after.version > before.version, trial
            assert f"c{trial}" in after.interests, trial
    finally:
        stop.set()
        for task in background:
            with contextlib.suppress(asyncio.CancelledError):
                await task

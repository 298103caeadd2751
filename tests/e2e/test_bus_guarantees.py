"""What the bus promises across a shutdown and to watchers, through the served suite.

The suite stops with and without waiting for consumers (`bus_drain_seconds`): whatever
segmentation had not acknowledged when the suite stopped must reach it after the restart,
from the outbox, and not be lost with the in-process bus.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import grpc
import pytest
from backcrm.profile.v1 import profile_service_pb2 as pb
from sqlalchemy import text

from tests.e2e.conftest import Suite
from tests.e2e.helpers import email, event, rpc_error
from tests.support import BACKENDS, Backend, backend_settings, eventually

pytestmark = pytest.mark.e2e

CUSTOMERS = 2_000
MAX_WATCHERS = 3


@pytest.fixture(scope="module", params=BACKENDS)
def backend(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Backend]:
    with backend_settings(
        request.param,
        tmp_path_factory.mktemp(request.param),
        bus_drain_seconds=0,
        watch_max_watchers=MAX_WATCHERS,
    ) as b:
        yield b


async def _count(suite: Suite, table: str) -> int:
    async with suite.resources.sessions() as session:
        return int(await session.scalar(text(f"SELECT count(*) FROM {table}")) or 0)


@pytest.mark.parametrize("drain", [0.0, 10.0], ids=["no-drain", "drain"])
async def test_a_stop_while_segmentation_lags_loses_no_customer(
    backend: Backend, drain: float
) -> None:
    settings = backend.settings.model_copy(update={"bus_drain_seconds": drain})
    suite = Suite(Backend(backend.name, settings))
    await suite.start()
    try:
        await _stop_while_segmentation_lags(suite)
    finally:
        await suite.stop()


async def _stop_while_segmentation_lags(suite: Suite) -> None:
    before = await _count(suite, "seg_profiles")
    shop = suite.client("shop").profile
    run = uuid.uuid4().hex[:8]
    for start in range(0, CUSTOMERS, 500):
        reply = await shop.TrackEvents(
            pb.TrackEventsRequest(
                events=[
                    event(f"{run}-{i}", email(f"{run}-{i}@example.com"))
                    for i in range(start, start + 500)
                ]
            )
        )
        assert reply.accepted == 500

    # As SIGTERM does (services/cli.py): the server stops, then the suite, at once, while
    # segmentation is still working through the backlog.
    await suite.restart()

    async def arrived() -> bool:
        return await _count(suite, "seg_profiles") >= before + CUSTOMERS

    await eventually(arrived, f"all {CUSTOMERS} customers to arrive", timeout=60, interval=0.1)
    assert await _count(suite, "seg_profiles") == before + CUSTOMERS


async def test_watchers_past_the_limit_are_refused_with_resource_exhausted(suite: Suite) -> None:
    profile = suite.client().profile
    watches = [profile.WatchProfileChanges(pb.WatchProfileChangesRequest()) for _ in range(3)]
    try:
        for watch in watches:
            assert ("x-watch", "subscribed") in tuple(await watch.initial_metadata())
        refused = profile.WatchProfileChanges(pb.WatchProfileChangesRequest())
        err = await asyncio.wait_for(rpc_error(refused.read()), 10)
        assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert f"already serves {MAX_WATCHERS} watch streams" in (err.details() or "")

        watches.pop().cancel()  # a place frees up: the next watcher is served
        watches.append(profile.WatchProfileChanges(pb.WatchProfileChangesRequest()))

        async def served() -> bool:
            # the freed place is released once the server sees the cancellation
            try:
                assert ("x-watch", "subscribed") in tuple(await watches[-1].initial_metadata())
                return True
            except grpc.aio.AioRpcError as refused:
                assert refused.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
                watches[-1] = profile.WatchProfileChanges(pb.WatchProfileChangesRequest())
                return False

        await eventually(served, "the cancelled watch to be released")
    finally:
        for watch in watches:
            watch.cancel()

"""Health says NOT_SERVING while storage is unreachable."""

from __future__ import annotations

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from libs.config import Settings
from libs.rpc.server import Server
from libs.runtime import Resources
from services.profile.app import ProfileApp
from tests.support import eventually

pytestmark = pytest.mark.e2e


async def test_not_serving_until_storage_answers(tmp_path: object) -> None:
    settings = Settings(
        database_url="postgresql+asyncpg://postgres@127.0.0.1:1/none",
        redis_url="",
        var_dir=tmp_path,
    )
    resources = Resources.open(settings)
    app = ProfileApp.build(resources)
    checks = 0

    async def storage_ready() -> bool:
        nonlocal checks
        ready = await resources.storage_ready()
        checks += 1
        return ready

    server = Server([app.rpc], settings, readiness=[storage_ready])
    port = await server.start("127.0.0.1:0")
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            # Health is set from one answer before the next check runs.
            await eventually(lambda: checks >= 2, "the readiness check to answer twice")
            for name in ("", "backcrm.profile.v1.ProfileService"):
                reply = await stub.Check(health_pb2.HealthCheckRequest(service=name))
                assert reply.status == health_pb2.HealthCheckResponse.NOT_SERVING
    finally:
        await server.stop(0)
        await resources.close()

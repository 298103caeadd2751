"""Health says NOT_SERVING while storage is unreachable."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from libs.config import Settings
from libs.rpc.server import Server
from libs.runtime import Resources
from services.profile.app import ProfileApp

pytestmark = pytest.mark.e2e


async def test_not_serving_until_storage_answers(tmp_path: object) -> None:
    settings = Settings(
        database_url="postgresql+asyncpg://postgres@127.0.0.1:1/none",
        redis_url="",
        var_dir=tmp_path,
    )
    resources = Resources.open(settings)
    app = ProfileApp.build(resources)
    server = Server([app.rpc], settings, readiness=[resources.storage_ready])
    port = await server.start("127.0.0.1:0")
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            await asyncio.sleep(0.5)
            for name in ("", "backcrm.profile.v1.ProfileService"):
                reply = await stub.Check(health_pb2.HealthCheckRequest(service=name))
                assert reply.status == health_pb2.HealthCheckResponse.NOT_SERVING
    finally:
        await server.stop(0)
        await resources.close()

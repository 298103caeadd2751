"""Server bootstrap: one grpc.aio server hosting one or several services on one port.

Health (the library servicer) says NOT_SERVING until every readiness check passes, keeps
watching them, and turns NOT_SERVING again on shutdown; reflection lists every service.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from libs.auth import TokenRegistry
from libs.config import Settings
from libs.rpc.guard import CallGuard
from libs.rpc.service import RpcService
from libs.telemetry import server_interceptors, tracing

__all__ = ["ReadinessCheck", "Server"]

log = logging.getLogger(__name__)
ReadinessCheck = Callable[[], Awaitable[bool]]
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class Server:
    def __init__(
        self,
        services: Sequence[RpcService],
        settings: Settings,
        readiness: Sequence[ReadinessCheck] = (),
        tokens: TokenRegistry | None = None,
        reuse_port: bool = False,
    ) -> None:
        self.settings = settings
        self.services = list(services)
        self._readiness = list(readiness)
        self.health = health.aio.HealthServicer()
        guard = CallGuard(tokens if settings.auth_enabled else None, carry_trace=not tracing())
        options: list[tuple[str, Any]] = [
            ("grpc.max_receive_message_length", settings.max_message_bytes),
            ("grpc.max_send_message_length", settings.max_message_bytes),
            # gRPC sets SO_REUSEPORT by default on Linux: a second server started on a port
            # in use would then bind silently and take half of its connections (a stale
            # process, a mistyped address). Off, a port in use is an error; on only for the
            # worker processes `backcrm serve --workers N` starts to share one address.
            ("grpc.so_reuseport", 1 if reuse_port else 0),
        ]
        self.server = grpc.aio.server(interceptors=server_interceptors() or None, options=options)
        for service in self.services:
            self.server.add_generic_rpc_handlers((service.generic_handler(guard),))
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        names = [s.full_name for s in self.services]
        reflection.enable_server_reflection(
            [*names, health.SERVICE_NAME, reflection.SERVICE_NAME], self.server
        )
        self._watch: asyncio.Task[None] | None = None
        self._stopped = False
        self.port = 0

    async def start(self, address: str | None = None) -> int:
        address = address or self.settings.address
        try:
            self.port = self.server.add_insecure_port(address)
        except RuntimeError as exc:  # grpc's "Failed to bind"
            raise OSError(f"cannot bind {address}: is the port in use? ({exc})") from exc
        if self.port == 0:
            raise OSError(f"cannot bind {address}")
        await self._set_all(NOT_SERVING)
        await self.server.start()
        self._watch = asyncio.create_task(self._watch_readiness(), name="health-watch")
        return self.port

    async def wait_serving(self, timeout: float = 30.0) -> None:
        async with asyncio.timeout(timeout):
            while not await self._ready():
                await asyncio.sleep(0.1)
        await self._set_all(SERVING)

    async def _ready(self) -> bool:
        for check in self._readiness:
            try:
                if not await check():
                    return False
            except Exception:
                return False
        return True

    async def _watch_readiness(self) -> None:
        serving: bool | None = None
        while True:
            ready = await self._ready()
            if ready != serving:
                await self._set_all(SERVING if ready else NOT_SERVING)
                log.info("health: %s", "SERVING" if ready else "NOT_SERVING")
                serving = ready
            await asyncio.sleep(0.2 if not ready else 2.0)

    async def _set_all(self, status: int) -> None:
        for name in ["", *(s.full_name for s in self.services)]:
            await self.health.set(name, status)

    async def stop(self, grace: float | None = None) -> None:
        if self._stopped:
            return
        self._stopped = True
        if self._watch is not None:
            self._watch.cancel()
        await self.health.enter_graceful_shutdown()
        await self.server.stop(self.settings.shutdown_grace_seconds if grace is None else grace)

    async def serve_until_signal(self) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        log.info("shutting down: draining for up to %.0fs", self.settings.shutdown_grace_seconds)
        await self.stop()

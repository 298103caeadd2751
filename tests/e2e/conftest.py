"""A real server on port 0, per backend (embedded SQLite + in-process; PostgreSQL + Redis)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from libs.auth import TokenRegistry
from libs.client import Client
from libs.rpc.server import Server
from libs.runtime import Resources
from services.profile.app import ProfileApp
from tests.support import BACKENDS, TOKENS, Backend, backend_settings


@pytest.fixture(scope="module", params=BACKENDS)
def backend(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Backend]:
    with backend_settings(request.param, tmp_path_factory.mktemp(request.param)) as b:
        yield b


@dataclass
class Suite:
    """The profile service serving on 127.0.0.1:<port>, restartable on the same storage."""

    backend: Backend
    server: Server | None = None
    resources: Resources | None = None
    app: ProfileApp | None = None
    clients: list[Client] = field(default_factory=list)
    port: int = 0

    async def start(self) -> None:
        settings = self.backend.settings
        self.resources = Resources.open(settings)
        self.app = ProfileApp.build(self.resources)
        tokens = TokenRegistry.from_sources(settings.auth_tokens, Path("/nonexistent"))
        self.server = Server(
            [self.app.rpc], settings, readiness=[self.resources.storage_ready], tokens=tokens
        )
        self.port = await self.server.start("127.0.0.1:0")
        await self.app.start()
        await self.server.wait_serving()

    async def stop(self) -> None:
        for client in self.clients:
            await client.close()
        self.clients.clear()
        if self.server is not None:
            await self.server.stop(0.5)
        if self.app is not None:
            await self.app.stop()
        if self.resources is not None:
            await self.resources.close()

    async def restart(self) -> None:
        await self.stop()
        await self.start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def client(self, who: str | None = "admin") -> Client:
        token = TOKENS[who][0] if who else ""
        client = Client(self.address, token, deadline=10.0)
        self.clients.append(client)
        return client


@pytest.fixture(scope="module")
async def suite(backend: Backend) -> AsyncIterator[Suite]:
    running = Suite(backend)
    await running.start()
    try:
        yield running
    finally:
        await running.stop()

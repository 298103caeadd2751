"""A real server on port 0, per backend (embedded SQLite + in-process; PostgreSQL + Redis)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from libs.auth import TokenRegistry
from libs.client import Client
from libs.runtime import Resources
from services.profile.app import ProfileApp
from services.registry import SERVICES
from services.segmentation.app import SegmentationApp
from services.suite import Suite as ServedSuite
from tests.support import BACKENDS, TOKENS, Backend, backend_settings, eventually


@pytest.fixture(scope="module", params=BACKENDS)
def backend(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Backend]:
    with backend_settings(request.param, tmp_path_factory.mktemp(request.param)) as b:
        yield b


@dataclass
class Suite:
    """Every registered service serving on 127.0.0.1:<port>, restartable on the same storage."""

    backend: Backend
    running: ServedSuite | None = None
    clients: list[Client] = field(default_factory=list)
    port: int = 0

    async def start(self) -> None:
        settings = self.backend.settings
        tokens = TokenRegistry.from_sources(settings.auth_tokens, Path("/nonexistent"))
        self.running = ServedSuite(settings, tuple(SERVICES), tokens)
        self.port = await self.running.start("127.0.0.1:0")

    async def stop(self) -> None:
        for client in self.clients:
            await client.close()
        self.clients.clear()
        if self.running is not None:
            await self.running.stop(0.5)
            self.running = None

    async def restart(self) -> None:
        await self.stop()
        await self.start()

    @property
    def resources(self) -> Resources:
        assert self.running is not None and self.running.resources is not None
        return self.running.resources

    @property
    def profile(self) -> ProfileApp:
        assert self.running is not None
        return self.running.app(ProfileApp)  # type: ignore[no-any-return]

    @property
    def segmentation(self) -> SegmentationApp:
        assert self.running is not None
        return self.running.app(SegmentationApp)  # type: ignore[no-any-return]

    async def settled(self, timeout: float = 20) -> None:
        """Wait until everything the services wrote is published and consumed: every outbox
        drained, and every consumer group of the suite done with every message (which may
        write more: an RFM score changes a profile, which segmentation then consumes)."""
        assert self.running is not None
        relays = [app.relay for app in self.running.apps]
        bus = self.resources.bus

        async def quiet() -> bool:
            published = 0
            for relay in relays:
                while sent := await relay.drain_once():
                    published += sent
            # Consumed, then nothing new to publish (a consumer may have written to an outbox).
            return (
                published == 0
                and await bus.consumers_idle()
                and not any([await relay.drain_once() for relay in relays])
            )

        await eventually(quiet, "every published event to be consumed", timeout=timeout)

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

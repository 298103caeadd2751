"""The service registry is the one list: every registered service is complete and consistent.

Each builds with the common factory signature, serves the contract it is registered with
under its registered name, declares a scope for every RPC of it and implements all of them;
the typed client, the migrations and the deployment know exactly the registered services.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from libs import client
from libs.config import Settings
from libs.rpc.guard import CallGuard
from libs.runtime import Peers, Resources
from services.registry import SERVICES, contracts, names

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def resources(tmp_path: Path) -> AsyncIterator[Resources]:
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/unused.db", redis_url="", var_dir=tmp_path
    )
    opened = Resources.open(settings)  # builds engines and pools; connects to nothing
    yield opened
    await opened.close()


@pytest.mark.parametrize("name", names())
async def test_every_registered_service_builds_and_serves_its_contract(
    resources: Resources, name: str
) -> None:
    entry = SERVICES[name]
    peers = Peers(resources.settings, "token", lambda: "127.0.0.1:1")
    app = entry.build(resources, peers)
    assert app.rpc.descriptor is entry.contract
    assert app.rpc.short_name == name  # the ErrorInfo domain and the bus producer
    rpcs = {method.name for method in entry.contract.methods}
    assert set(app.rpc.scopes) == rpcs, "every RPC declares a scope, and only RPCs do"
    assert all(app.rpc.scopes.values())
    # raises when the servicer lacks an RPC of the contract
    app.rpc.generic_handler(CallGuard(None, carry_trace=False))
    await peers.close()


def test_the_client_has_a_stub_for_every_registered_service_and_no_other() -> None:
    assert {name: c.full_name for name, c in client.CONTRACTS.items()} == {
        name: entry.contract.full_name for name, entry in SERVICES.items()
    }
    assert set(client.SERVICES) == {c.full_name for c in contracts()}


def test_service_packages_are_the_registered_ones_and_the_tools() -> None:
    packages = {p.parent.name for p in (ROOT / "services").glob("*/__init__.py")}
    assert packages == {*names(), "tools"}, "a service package is registered once implemented"

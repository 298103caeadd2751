"""Shared fixtures of the integration tests: each backend (embedded, PostgreSQL + Redis), where
the real Redis is, and whether it must be."""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator, Iterator
from urllib.parse import urlsplit

import pytest

from libs.runtime import Resources
from tests.support import BACKENDS, Backend, backend_settings

__all__ = ["backend", "redis_url", "resources", "services_required"]


def services_required() -> bool:
    """In CI (or when asked) a missing service is a failure, never a silent skip."""
    return bool(os.environ.get("CI")) or os.environ.get("BACKCRM_REQUIRE_SERVICES") == "1"


@pytest.fixture(scope="session")
def redis_url() -> str:
    url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 6379), 2):
            pass
    except OSError as exc:
        message = f"Redis unreachable at {url}: {exc}"
        if services_required():
            pytest.fail(message)
        pytest.skip(message)
    return url


@pytest.fixture(scope="module", params=BACKENDS)
def backend(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Backend]:
    """A fresh, migrated store of each backend, for the module's tests."""
    with backend_settings(request.param, tmp_path_factory.mktemp(request.param)) as b:
        yield b


@pytest.fixture
async def resources(backend: Backend) -> AsyncIterator[Resources]:
    """The backend's resources (storage, bus, cache), opened for one test."""
    opened = Resources.open(backend.settings)
    try:
        yield opened
    finally:
        await opened.close()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Leave out the combinations that do not exist instead of skipping them: the ads races'
    "sql-*" variants race the SQL counters on PostgreSQL without Redis; on the embedded
    default the plain variants already count in SQL."""
    dropped = [item for item in items if _not_a_combination(item)]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [item for item in items if item not in dropped]


def _not_a_combination(item: pytest.Item) -> bool:
    params = getattr(getattr(item, "callspec", None), "params", {})
    return params.get("backend") != "postgres" and str(params.get("racing", "")).startswith("sql")

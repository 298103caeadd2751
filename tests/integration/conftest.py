"""Shared fixtures of the integration tests: where the real Redis is, and whether it must be."""

from __future__ import annotations

import os
import socket
from urllib.parse import urlsplit

import pytest

__all__ = ["redis_url", "services_required"]


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

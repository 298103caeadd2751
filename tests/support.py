"""Shared by the integration and e2e tests: the real backends, fresh per test module."""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import random
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import asyncpg
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from libs.auth import hash_token
from libs.config import Settings
from libs.db.migrate import upgrade
from services.registry import SERVICES

__all__ = [
    "BACKENDS",
    "TOKENS",
    "Backend",
    "backend_settings",
    "count_rows",
    "eventually",
    "require",
    "services_required",
    "soon",
]

T = TypeVar("T")

PG_URL = os.environ.get("TEST_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
BACKENDS = ("embedded", "postgres")

# name -> (token, scopes): the callers the e2e tests play
TOKENS = {
    "admin": ("tok-admin", ["admin"]),
    "shop": ("tok-shop", ["profile:read", "profile:write", "bonus:read", "bonus:write"]),
    "bonus": ("tok-bonus", ["profile:read", "profile:write"]),
    "reader": ("tok-reader", ["profile:read", "segments:read"]),
    "merger": ("tok-merger", ["profile:read", "profile:merge"]),
    "segments": ("tok-segments", ["segments:read"]),
    # a web shop asking for ads and shelves, and feeding its catalogue
    "channel": (
        "tok-channel",
        ["ads:read", "ads:write", "recommend:read", "recommend:write"],
    ),
    "nobody": ("tok-nobody", []),  # authenticated, allowed nothing
}


async def soon(call: Awaitable[T]) -> T:
    """Start after a random few milliseconds: the racers' steps interleave differently each
    trial (all at once, they tend to run in lockstep and miss the windows race tests probe)."""
    await asyncio.sleep(random.uniform(0, 0.02))
    return await call


async def eventually(
    check: Callable[[], bool | Awaitable[bool]],
    what: str,
    *,
    timeout: float = 10.0,
    interval: float = 0.05,
) -> None:
    """Poll `check` (plain or async) until it is true; fail, naming `what`, after `timeout` s.

    How tests wait for what happens in the background (deliveries, projections, expiry):
    timeouts are generous, so a slow machine makes a test slower, never red.
    """
    deadline = time.monotonic() + timeout
    while True:
        done = check()
        if inspect.isawaitable(done):
            done = await done
        if done:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        await asyncio.sleep(interval)


def services_required() -> bool:
    """In CI (or when asked) a missing PostgreSQL or Redis fails the run; never a silent skip."""
    return bool(os.environ.get("CI")) or os.environ.get("BACKCRM_REQUIRE_SERVICES") == "1"


def _reachable(url: str, default_port: int) -> bool:
    parts = urlsplit(url.replace("+asyncpg", ""))
    try:
        with socket.create_connection(
            (parts.hostname or "127.0.0.1", parts.port or default_port), 2
        ):
            return True
    except OSError:
        return False


def require(url: str, port: int, what: str) -> None:
    if not _reachable(url, port):
        message = f"{what} unreachable at {url}"
        if services_required():
            pytest.fail(message)
        pytest.skip(message)


@dataclass
class Backend:
    name: str
    settings: Settings


def tokens_json() -> str:
    return json.dumps(
        [{"name": n, "sha256": hash_token(t), "scopes": s} for n, (t, s) in TOKENS.items()]
    )


async def _pg_admin(sql: str) -> None:
    conn = await asyncpg.connect(PG_URL.replace("+asyncpg", ""))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _drop_redis_prefix(prefix: str) -> None:
    from redis.asyncio import Redis

    client = Redis.from_url(REDIS_URL)
    try:
        keys = [k async for k in client.scan_iter(match=f"{prefix}*", count=1000)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@contextmanager
def backend_settings(name: str, tmp: Path, **overrides: object) -> Iterator[Backend]:
    """Settings for a fresh, migrated store of the named backend; dropped afterwards.

    Call it outside a running event loop (migrations run their own).
    """
    common: dict[str, object] = {
        "var_dir": tmp,
        "auth_tokens": tokens_json(),
        "auth_tokens_file": tmp / "tokens.json",
        "outbox_poll_seconds": 0.05,
    }
    common.update(overrides)
    if name == "embedded":
        url = f"sqlite+aiosqlite:///{tmp}/backcrm.db"
        upgrade(url, SERVICES)
        yield Backend(name, Settings(database_url=url, redis_url="", **common))  # type: ignore[arg-type]
        return
    require(PG_URL, 5432, "PostgreSQL")
    require(REDIS_URL, 6379, "Redis")
    db = f"backcrm_t_{uuid.uuid4().hex[:12]}"
    asyncio.run(_pg_admin(f'CREATE DATABASE "{db}"'))
    url = PG_URL.rsplit("/", 1)[0] + f"/{db}"
    prefix = f"t{uuid.uuid4().hex[:8]}:"
    common.setdefault("redis_url", REDIS_URL)
    try:
        upgrade(url, SERVICES)
        yield Backend(name, Settings(database_url=url, redis_prefix=prefix, **common))  # type: ignore[arg-type]
    finally:
        asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))
        asyncio.run(_drop_redis_prefix(prefix))


async def count_rows(
    sessions: async_sessionmaker[AsyncSession], tables: tuple[Any, ...], customer_id: str
) -> int:
    """How many rows of these tables (mapped classes with a customer_id) name the customer."""
    async with sessions() as session:
        total = 0
        for table in tables:
            query = select(func.count()).select_from(table).where(table.customer_id == customer_id)
            total += await session.scalar(query) or 0
        return total

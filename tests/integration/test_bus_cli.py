"""`backcrm bus replay-dead` against a real Redis: dead letters go back on their topic."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from backcrm.common.v1.common_pb2 import EventEnvelope, Identity, IdentityType

from libs.bus import new_envelope, unpack
from libs.bus.redis_streams import RedisStreamsBus
from tests.support import eventually

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services.cli", *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": f"{ROOT}:{ROOT / 'libs' / 'gen'}", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def _event(value: str) -> EventEnvelope:
    return new_envelope(Identity(type=IdentityType.IDENTITY_TYPE_EMAIL, value=value), "test")


@pytest.fixture
def prefix(redis_url: str) -> Iterator[str]:
    prefix = f"test:{uuid.uuid4().hex}:"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=prefix + "*"))
    if keys:
        client.delete(*keys)
    client.close()


async def _bury(url: str, prefix: str, names: list[str]) -> None:
    """Publish the events to a consumer that always fails, until all are dead letters."""
    bus = RedisStreamsBus(url, prefix=prefix, reclaim_idle_ms=100, max_deliveries=1)
    raw = redis.asyncio.Redis.from_url(url)

    async def broken(_envelope: EventEnvelope) -> None:
        raise RuntimeError("poison")

    try:
        await bus.subscribe("orders", "g", "c1", broken)
        await bus.publish("orders", [_event(n) for n in names])

        async def buried() -> bool:
            return bool(await raw.xlen(prefix + "orders.dead") >= len(names))

        await eventually(buried, "the events to reach the dead topic")
    finally:
        await bus.close()
        await raw.aclose()


def _values(client: redis.Redis, key: str) -> list[str]:
    return [
        unpack(EventEnvelope.FromString(fields[b"e"]), Identity).value
        for _id, fields in client.xrange(key)
    ]


def test_replay_dead_requeues_dead_letters_onto_their_topic(redis_url: str, prefix: str) -> None:
    asyncio.run(_bury(redis_url, prefix, ["a", "b", "c"]))
    client = redis.Redis.from_url(redis_url)
    env = {"REDIS_URL": redis_url, "BACKCRM_REDIS_PREFIX": prefix}
    try:
        first = _cli("bus", "replay-dead", "orders", "--limit", "2", env=env)
        assert first.returncode == 0, first.stderr
        assert "replayed 2 dead letters onto orders" in first.stdout
        assert _values(client, prefix + "orders.dead") == ["c"]
        assert _values(client, prefix + "orders")[-2:] == ["a", "b"]

        rest = _cli("bus", "replay-dead", "orders", env=env)
        assert rest.returncode == 0, rest.stderr
        assert "replayed 1 dead letters onto orders" in rest.stdout
        assert client.xlen(prefix + "orders.dead") == 0
        assert _values(client, prefix + "orders")[-3:] == ["a", "b", "c"]
    finally:
        client.close()


def test_replay_dead_explains_that_the_embedded_bus_keeps_none(tmp_path: Path) -> None:
    done = _cli(
        "bus", "replay-dead", "orders", env={"REDIS_URL": "", "BACKCRM_VAR_DIR": str(tmp_path)}
    )
    assert done.returncode == 2
    assert "they live in the serving process only" in done.stderr


def test_replay_dead_rejects_a_limit_below_one(redis_url: str) -> None:
    done = _cli("bus", "replay-dead", "orders", "--limit", "0", env={"REDIS_URL": redis_url})
    assert done.returncode == 2
    assert "--limit: must be at least 1" in done.stderr

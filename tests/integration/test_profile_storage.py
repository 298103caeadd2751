"""The profile service's storage adapters for real: SQLite and PostgreSQL, in-process bus and
Redis, including a Redis outage in the middle of the traffic."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from backcrm.common.v1.common_pb2 import EventEnvelope
from backcrm.profile.v1 import profile_service_pb2 as pb

from libs.runtime import Resources
from libs.topics import PROFILE_CHANGED
from services.profile.app import ProfileApp
from services.profile.domain import EventIn
from services.profile.handlers import CustomerLookup, get_profile, track_events
from tests.support import Backend, backend_settings, eventually, services_required

pytestmark = pytest.mark.integration


def view(event_id: str, email: str, at: float | None = None) -> EventIn:
    return EventIn(
        event_id=event_id,
        type="PRODUCT_VIEW",
        channel="WEB",
        occurred_at=at or time.time(),
        identity=("EMAIL", email),
        category="books",
    )


@pytest.fixture
async def app(backend: Backend) -> AsyncIterator[ProfileApp]:
    resources = Resources.open(backend.settings)
    built = ProfileApp.build(resources)
    await built.start()
    try:
        yield built
    finally:
        await built.stop()
        await resources.close()


async def test_concurrent_batches_for_one_new_identity_make_one_customer(app: ProfileApp) -> None:
    email = f"race-{time.time_ns()}@example.com"
    results = await asyncio.gather(
        *(track_events(app.deps, [view(f"race-{i}-{email}", email)]) for i in range(8))
    )
    customers = {r.customer_ids[0] for r in results}
    assert len(customers) == 1
    assert sum(r.accepted for r in results) == 8
    rendered = await get_profile(app.deps, CustomerLookup(identity=("EMAIL", email)))
    profile = pb.GetProfileResponse.FromString(rendered).profile
    assert profile.version == 8
    assert len(profile.recent_events) == 8


async def test_the_outbox_reaches_the_bus_in_order(app: ProfileApp, backend: Backend) -> None:
    bus = app.relay._bus  # the app's own bus: the relay publishes to it
    email = f"outbox-{time.time_ns()}@example.com"
    tail = bus.tail(PROFILE_CHANGED.name)
    events = tail.__aiter__()
    # The Redis tail starts reading when first iterated: publish probes until it sees one.
    first = asyncio.ensure_future(events.__anext__())
    versions = []
    for i in range(3):
        await track_events(app.deps, [view(f"ob-{i}-{email}", email)])
    change = PROFILE_CHANGED.unpack(await asyncio.wait_for(first, 10))
    versions.append(change.version)
    while len(versions) < 3 or versions[-1] < 3:
        change = PROFILE_CHANGED.unpack(await asyncio.wait_for(events.__anext__(), 10))
        versions.append(change.version)
    assert versions[-3:] == [1, 2, 3] or versions == sorted(versions)
    await tail.aclose()  # type: ignore[attr-defined]


async def test_one_unit_of_work_numbers_its_outbox_rows_in_the_order_written(
    app: ProfileApp,
) -> None:
    """write_outbox sends many rows as one INSERT: their ids, the order the relay publishes
    in, must still follow the order the unit of work wrote them (a merge before a change)."""
    from sqlalchemy import delete, select

    from services.profile.models import OutboxRow

    await app.relay.stop()  # the rows stay in the table to be read back
    marker = f"order-{time.time_ns()}"
    payloads = [b"%d" % i for i in range(150)]
    async with app.deps.uow() as uow:
        await uow.write_outbox(("t", p, marker) for p in payloads)
        await uow.commit()
    t = OutboxRow.__table__
    async with app.deps.uow() as uow:
        mine = t.c.customer_id == marker
        rows = (await uow.s.execute(select(t.c.payload).where(mine).order_by(t.c.id))).all()
        await uow.s.execute(delete(t).where(mine))
        await uow.commit()
    assert [bytes(r.payload) for r in rows] == payloads


async def test_one_read_finds_the_stored_events_and_the_identities_owners(
    app: ProfileApp,
) -> None:
    """TrackEvents' first read (one statement on PostgreSQL) answers as the two reads it
    replaces: stored event ids, and the owner of each held identity, nothing for the rest."""
    email, stamp = f"read-{time.time_ns()}@example.com", time.time_ns()
    stored = f"stored-{stamp}"
    customer = (await track_events(app.deps, [view(stored, email)])).customer_ids[0]
    ids = [stored, f"unknown-{stamp}", stored]
    keys = [("EMAIL", email), ("COOKIE", f"nobody-{stamp}")]
    async with app.deps.uow() as uow:
        both = await uow.known_events_and_owners(ids, keys)
        apart = (await uow.known_event_ids(ids), await uow.owners_of(keys))
    assert both == apart == ({stored}, {("EMAIL", email): customer})


async def test_a_batch_saves_its_customers_and_writes_its_outbox_rows_in_emitted_order(
    app: ProfileApp,
) -> None:
    """The end of a batch (one statement on PostgreSQL: the customers' UPDATE with the outbox
    INSERT): every customer saved at the version its ProfileChanged carries, and the rows in
    the order emitted — the stitch's ProfilesMerged and snapshot first, then one change per
    customer in the order of the batch."""
    from sqlalchemy import func, select

    from libs.topics import PROFILE_MERGED
    from services.profile.models import CustomerRow, OutboxRow

    stamp = time.time_ns()
    known, first, second = (f"{n}-{stamp}@example.com" for n in ("known", "first", "second"))
    cookie = ("COOKIE", f"cookie-{stamp}")
    owner = (await track_events(app.deps, [view(f"k-{stamp}", known)])).customer_ids[0]
    anonymous = EventIn(f"a-{stamp}", "PAGE_VIEW", "WEB", time.time(), identity=cookie)
    stitched = (await track_events(app.deps, [anonymous])).customer_ids[0]
    await app.relay.stop()  # the rows stay in the table to be read back
    t, c = OutboxRow.__table__, CustomerRow.__table__
    async with app.deps.uow() as uow:  # rows of the calls above may not be published yet
        before = await uow.s.scalar(select(func.coalesce(func.max(t.c.id), 0)))
    logged_in = EventIn(
        f"l-{stamp}",
        "PAGE_VIEW",
        "WEB",
        time.time(),
        identity=("EMAIL", known),
        identities=(cookie,),
    )
    batch = [view(f"f-{stamp}", first), logged_in, view(f"s-{stamp}", second)]
    result = await track_events(app.deps, batch)
    assert result.accepted == 3 and result.customer_ids[1] == owner
    new_first, new_second = result.customer_ids[0], result.customer_ids[2]
    async with app.deps.uow() as uow:
        batch_rows = select(t.c.topic, t.c.payload).where(t.c.id > before).order_by(t.c.id)
        rows = (await uow.s.execute(batch_rows)).all()
        versions = dict((await uow.s.execute(select(c.c.customer_id, c.c.version))).all())
    written = []
    for topic, payload in rows:
        envelope = EventEnvelope.FromString(payload)
        if topic == PROFILE_MERGED.name:
            merged = PROFILE_MERGED.unpack(envelope)
            written.append((topic, merged.source_customer_id, merged.target_customer_id))
        else:
            change = PROFILE_CHANGED.unpack(envelope)
            written.append((topic, change.customer_id, change.version))
    changed = PROFILE_CHANGED.name
    assert written == [
        (PROFILE_MERGED.name, stitched, owner),
        (changed, owner, 2),
        (changed, new_first, 1),
        (changed, owner, 3),
        (changed, new_second, 1),
    ]
    assert (versions[owner], versions[new_first], versions[new_second]) == (3, 1, 1)
    assert stitched not in versions


async def test_the_relay_publishes_the_stored_envelopes_and_empties_the_outbox(
    app: ProfileApp,
) -> None:
    """On Redis the rows' bytes go out as stored, on the in-process bus as parsed envelopes:
    either way every consumer gets each envelope as written, once, and no row is left."""
    from sqlalchemy import func, select

    from libs.bus.envelope import new_envelope
    from services.profile.models import OutboxRow

    await app.relay.stop()  # drained by hand below
    topic, marker = f"test.relay-{time.time_ns()}", f"relay-{time.time_ns()}"
    sent = [new_envelope(pb.ProfileDeleted(customer_id=str(i)), "test") for i in range(5)]
    got = []
    all_in = asyncio.Event()

    async def consume(envelope: object) -> None:
        got.append(envelope)
        if len(got) >= len(sent):
            all_in.set()

    subscription = await app.bus.subscribe(topic, "relay-test", "c1", consume)  # type: ignore[arg-type]
    try:
        async with app.deps.uow() as uow:
            await uow.write_outbox((topic, e.SerializeToString(), marker) for e in sent)
            await uow.commit()
        while await app.relay.drain_once():
            pass
        await asyncio.wait_for(all_in.wait(), 10)
        await eventually(app.bus.consumers_idle, "the consumer acknowledged every envelope")
        await app.relay.drain_once(publish=False)  # in-process: rows go once acknowledged
    finally:
        await subscription.stop()
    assert got == sent
    async with app.deps.uow() as uow:
        t = OutboxRow.__table__
        left = await uow.s.scalar(select(func.count()).where(t.c.customer_id == marker))
    assert left == 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_redis(port: int, workdir: Path) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
        ],
        stdout=subprocess.DEVNULL,
    )
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), 0.1).close()
            return process
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("redis-server did not start")


def test_a_redis_outage_loses_nothing(tmp_path: Path) -> None:
    """Writes keep being accepted while Redis is down; the events reach the bus afterwards."""
    if shutil.which("redis-server") is None:
        if services_required():
            pytest.fail("redis-server is not installed")
        pytest.skip("redis-server is not installed")
    port = _free_port()
    redis = _start_redis(port, tmp_path)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        with backend_settings("postgres", tmp_path, redis_url=url) as backend:
            # Its own loop: the backend is set up (and dropped) outside any running loop.
            asyncio.run(_outage_scenario(backend, tmp_path, port))
    finally:
        redis.kill()
        redis.wait()


async def _outage_scenario(backend: Backend, tmp_path: Path, port: int) -> None:
    resources = Resources.open(backend.settings)
    app = ProfileApp.build(resources)
    await app.start()
    seen: list[str] = []

    async def consume(envelope: object) -> None:
        change = PROFILE_CHANGED.unpack(envelope)  # type: ignore[arg-type]
        seen.extend(e.event_id for e in change.events)

    subscription = await resources.bus.subscribe(PROFILE_CHANGED.name, "outage-test", "c1", consume)
    redis: subprocess.Popen[bytes] | None = None
    try:
        email = "outage@example.com"
        await track_events(app.deps, [view("before", email)])
        await eventually(lambda: "before" in seen, "the event published before the outage")

        stop = ["redis-cli", "-p", str(port), "shutdown", "nosave"]
        await asyncio.to_thread(subprocess.run, stop, check=False)
        during = [view(f"during-{i}", email) for i in range(5)]
        result = await track_events(app.deps, during)
        assert result.accepted == 5  # durable in PostgreSQL, queued in the outbox
        rendered = await get_profile(app.deps, CustomerLookup(identity=("EMAIL", email)))
        assert len(pb.GetProfileResponse.FromString(rendered).profile.recent_events) == 6

        redis = _start_redis(port, tmp_path)
        await eventually(
            lambda: all(e.event_id in seen for e in during),
            "every event tracked during the outage",
            timeout=30,
        )
        assert seen.count("during-0") >= 1
    finally:
        await subscription.stop()
        await app.stop()
        await resources.close()
        if redis is not None:
            redis.kill()
            redis.wait()

"""The segmentation part of `make bench` (`--suites profile,segmentation`).

Per backend, one `bench_server --suite profile,segmentation` process (services.suite.Suite, as
`backcrm serve all`) with 50 typical segments and ~1,000 customers tracked through the profile
service: EvaluateSegments and GetMemberships under closed-loop load (ratios against the same
run's echo server), and the lag from TrackEvents returning to ENTERED arriving on
WatchMembershipChanges under a paced ~1,000 events/s. In the bench process: building 50
segments over 1,000,000 synthetic customers loaded straight into the projection (PostgreSQL),
and the cost of one profile change with 10 and with 500 segments defined
(`Engine.on_profile_changes`). See docs/benchmarks.md.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from backcrm.common.v1 import common_pb2
from backcrm.profile.v1 import profile_service_pb2 as ppb
from backcrm.segmentation.v1 import condition_pb2 as cpb
from backcrm.segmentation.v1 import segmentation_service_pb2 as pb
from backcrm.segmentation.v1 import segmentation_service_pb2_grpc as pb_grpc

from libs.config import Settings
from tests.load.loadgen import Measurement, Target, measure, open_channel, percentile, process_cpu
from tests.load.payloads import cycle
from tests.load.report import verdict
from tests.load.segments import (
    CATEGORIES,
    DAY,
    event,
    prop,
    typical_segments,
)

__all__ = [
    "BuildResult",
    "CostResult",
    "LagResult",
    "SegmentationResults",
    "run_segmentation",
]

SEG = "/backcrm.segmentation.v1.SegmentationService"
EVALUATE = f"{SEG}/EvaluateSegments"
MEMBERSHIPS = f"{SEG}/GetMemberships"
TRACK_EVENTS = "/backcrm.profile.v1.ProfileService/TrackEvents"
HISTORY_EVENTS = 10  # per customer, besides the first PAGE_VIEW
LAG_CALLS_PER_SECOND = 10
LAG_BATCH = 100
LAG_TRIGGERS = 5  # events per lag batch that make a fresh customer enter a watched segment
LAG_SEGMENTS = 5
LAG_MAX_IN_FLIGHT = 32
SETTLE_TIMEOUT = 240.0


@dataclass
class LagResult:
    backend: str
    seconds: float
    calls: int
    events: int
    expected: int
    lags: list[float] = field(default_factory=list)  # sorted, seconds
    call_latencies: list[float] = field(default_factory=list)  # sorted, seconds
    server_cpu: float = 0.0
    errors: int = 0
    note: str = ""

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0

    def lag_ms(self, pct: float) -> float:
        return percentile(self.lags, pct) * 1000


@dataclass
class BuildResult:
    customers: int
    events: int
    load_seconds: float
    total_seconds: float
    segments: list[tuple[str, str, float, int]] = field(default_factory=list)
    # (name, kind, seconds from create to READY, members)
    note: str = ""


@dataclass
class CostResult:
    backend: str
    segments: int
    affected: int
    updates: int
    seconds: float

    @property
    def ms_per_update(self) -> float:
        return self.seconds / self.updates * 1000 if self.updates else 0.0


@dataclass
class SegmentationResults:
    rows: list[Any] = field(default_factory=list)  # bench.Row
    lags: list[LagResult] = field(default_factory=list)
    builds: list[BuildResult] = field(default_factory=list)
    costs: list[CostResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _progress(message: str) -> None:
    from tests.load.bench import _progress as progress

    progress(message)


def _auth() -> tuple[tuple[str, str], ...]:
    from tests.load.bench import _auth as auth

    return auth()


# ---------------------------------------------------------------- segments over gRPC


async def create_segments(
    api: pb_grpc.SegmentationServiceStub, defs: Sequence[tuple[str, cpb.Condition]]
) -> list[pb.Segment]:
    created = []
    for name, condition in defs:
        request = pb.CreateSegmentRequest(segment=pb.Segment(name=name, condition=condition))
        created.append((await api.CreateSegment(request, metadata=_auth())).segment)
    return created


async def wait_ready(
    api: pb_grpc.SegmentationServiceStub, ids: Sequence[str], timeout: float = 120.0
) -> None:
    deadline = time.monotonic() + timeout
    for segment_id in ids:
        while True:
            request = pb.GetSegmentRequest(segment_id=segment_id)
            segment = (await api.GetSegment(request, metadata=_auth())).segment
            if segment.state == pb.SEGMENT_STATE_READY:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"segment {segment_id} never became READY")
            await asyncio.sleep(0.05)


# ---------------------------------------------------------------- customers


def _email(who: str) -> common_pb2.CustomerRef:
    return common_pb2.CustomerRef(
        identity=common_pb2.Identity(type=common_pb2.IDENTITY_TYPE_EMAIL, value=who)
    )


def _money(units: float) -> common_pb2.Money:
    return common_pb2.Money(currency="EUR", units_micros=int(units * 1_000_000))


def shop_event(rng: random.Random, event_id: str, who: str, now: float, spread: float) -> ppb.Event:
    """A PRODUCT_VIEW (65%), ADD_TO_CART (25%) or PURCHASE (10%) within `spread` seconds."""
    kind = rng.choices(("PRODUCT_VIEW", "ADD_TO_CART", "PURCHASE"), (65, 25, 10))[0]
    category = rng.choice(CATEGORIES)
    sku = f"SKU-{category[:3].upper()}-{rng.randint(1, 300):04d}"
    out = ppb.Event(
        event_id=event_id,
        customer=_email(who),
        type=f"EVENT_TYPE_{kind}",
        channel=rng.choice((common_pb2.CHANNEL_WEB, common_pb2.CHANNEL_MOBILE_APP)),
        sku=sku,
        category=category,
    )
    out.occurred_at.FromNanoseconds(int((now - rng.uniform(0, spread)) * 1e9))
    if kind == "ADD_TO_CART":
        out.quantity = rng.choice((1, 1, 2))
        out.unit_price.CopyFrom(_money(rng.choice((4.99, 12.5, 19.99, 49.0))))
    elif kind == "PURCHASE":
        price = rng.choice((4.99, 12.5, 19.99, 49.0, 120.0))
        out.order.order_id = f"o-{event_id}"
        out.order.lines.append(
            common_pb2.CartLine(sku=sku, category=category, quantity=1, unit_price=_money(price))
        )
        out.order.total.CopyFrom(_money(price))
        out.order.placed_at.CopyFrom(out.occurred_at)
    return out


async def _track(channel: grpc.aio.Channel, request: ppb.TrackEventsRequest) -> list[str]:
    call = channel.unary_unary(TRACK_EVENTS)
    body = await call(request.SerializeToString(), metadata=_auth(), timeout=60)
    answer = ppb.TrackEventsResponse.FromString(body)
    if answer.rejected:
        raise RuntimeError(f"TrackEvents rejected: {answer.rejected[:3]}")
    return list(answer.customer_ids)


async def track_customers(channel: grpc.aio.Channel, run: str, count: int) -> list[str]:
    """Create `count` customers (a PAGE_VIEW each), then ~10 shop events each over 10 days."""
    emails = [f"seg{run}-{k}@bench.example" for k in range(count)]
    now = time.time()

    async def register(share: list[int]) -> list[str]:
        ids = []
        for start in share:
            events = [
                ppb.Event(
                    event_id=f"reg-{run}-{k}",
                    customer=_email(emails[k]),
                    type=ppb.EVENT_TYPE_PAGE_VIEW,
                    channel=common_pb2.CHANNEL_WEB,
                )
                for k in range(start, min(start + 100, count))
            ]
            ids += await _track(channel, ppb.TrackEventsRequest(events=events))
        return ids

    starts = list(range(0, count, 100))
    shares = await asyncio.gather(*(register(starts[i::4]) for i in range(4)))
    ids = [c for share in shares for c in share]
    rng = random.Random(11)
    history = [
        shop_event(rng, f"h-{run}-{k}-{n}", emails[k], now, 10 * DAY)
        for k in range(count)
        for n in range(HISTORY_EVENTS)
    ]
    rng.shuffle(history)
    batches = [history[i : i + 100] for i in range(0, len(history), 100)]

    async def send(share: list[list[ppb.Event]]) -> None:
        for batch in share:
            await _track(channel, ppb.TrackEventsRequest(events=batch))

    await asyncio.gather(*(send(batches[i::4]) for i in range(4)))
    return sorted(set(ids))


async def wait_settled(settings: Settings, customers: int) -> float:
    """Until the profile outbox is empty and segmentation's projection stopped changing."""
    from sqlalchemy import func, select

    from libs.runtime import Resources
    from services.profile.models import OutboxRow
    from services.segmentation.models import SegProfileRow

    started = time.perf_counter()
    resources = Resources.open(settings)
    previous: tuple[int, int] | None = None
    try:
        while time.perf_counter() - started < SETTLE_TIMEOUT:
            async with resources.sessions() as session:
                backlog = await session.scalar(select(func.count()).select_from(OutboxRow))
                state = (
                    await session.execute(
                        select(func.count(), func.coalesce(func.sum(SegProfileRow.version), 0))
                    )
                ).one()
            current = (int(state[0]), int(state[1]))
            if not backlog and current[0] >= customers and current == previous:
                break
            previous = current
            await asyncio.sleep(1.0)
    finally:
        await resources.close()
    return time.perf_counter() - started


# ---------------------------------------------------------------- request bodies


def _context(rng: random.Random) -> common_pb2.Context:
    lines = [
        common_pb2.CartLine(
            sku=f"SKU-{cat[:3].upper()}-{rng.randint(1, 300):04d}",
            category=cat,
            quantity=rng.choice((1, 1, 2)),
            unit_price=_money(rng.choice((4.99, 19.99, 49.0))),
        )
        for cat in rng.sample(CATEGORIES, rng.randint(0, 3))
    ]
    return common_pb2.Context(
        channel=rng.choice((common_pb2.CHANNEL_WEB, common_pb2.CHANNEL_MOBILE_APP)),
        placement=rng.choice(("home.top", "product.page", "cart.side")),
        cart=lines,
    )


def evaluate_requests(customer_ids: Sequence[str], segment_ids: Sequence[str]) -> list[bytes]:
    rng = random.Random(5)
    return [
        pb.EvaluateSegmentsRequest(
            customer=common_pb2.CustomerRef(customer_id=c),
            context=_context(rng),
            segment_ids=list(segment_ids),
        ).SerializeToString()
        for c in customer_ids
    ]


def membership_requests(customer_ids: Sequence[str]) -> list[bytes]:
    return [
        pb.GetMembershipsRequest(customer=common_pb2.CustomerRef(customer_id=c)).SerializeToString()
        for c in customer_ids
    ]


# ---------------------------------------------------------------- closed-loop reads


async def _probe(channel: grpc.aio.Channel, method: str, body: bytes, parse: Any) -> Any:
    call = channel.unary_unary(method)
    return parse(await call(body, metadata=_auth(), timeout=30))


async def measure_reads(
    opts: Any,
    backend: str,
    channel: grpc.aio.Channel,
    server_pid: int,
    customers: Sequence[str],
    segments: Sequence[pb.Segment],
) -> list[Any]:
    """EvaluateSegments (all / the behavioural ones) at each concurrency; GetMemberships c=1, 16."""
    from tests.load.bench import Row

    all_ids = [s.segment_id for s in segments]
    behavioural = [s.segment_id for s in segments if s.kind == pb.SEGMENT_KIND_BEHAVIORAL]
    plans: list[tuple[str, str, list[bytes], Any, list[int], str]] = [
        (
            f"EvaluateSegments all {len(all_ids)}",
            EVALUATE,
            evaluate_requests(customers, all_ids),
            pb.EvaluateSegmentsResponse.FromString,
            opts.concurrency,
            f"{len(all_ids) - len(behavioural)} contextual/combined evaluated per request "
            "(projection + events read from storage) + cached membership",
        ),
        (
            f"EvaluateSegments {len(behavioural)} behavioural",
            EVALUATE,
            evaluate_requests(customers, behavioural),
            pb.EvaluateSegmentsResponse.FromString,
            opts.concurrency,
            "segment_ids = the behavioural ones only: a pure membership-cache read",
        ),
        (
            "GetMemberships",
            MEMBERSHIPS,
            membership_requests(customers),
            pb.GetMembershipsResponse.FromString,
            # c=1: the store's own latency; c=16: under load, where even echo's p99 is higher
            [1, 16],
            "precomputed memberships, cache first",
        ),
    ]
    rows = []
    for name, method, bodies, parse, levels, note in plans:
        answers = [await _probe(channel, method, b, parse) for b in bodies[:50]]
        matched = sum(len(a.segment_ids) for a in answers) / len(answers)
        size = sum(len(a.SerializeToString()) for a in answers) // len(answers)
        target = Target(name, method, cycle(bodies), _auth())
        for c in levels:
            _progress(f"[{backend}] {name} c={c} ...")
            m = await measure(
                channel,
                target,
                concurrency=c,
                duration=opts.duration,
                warmup=opts.warmup,
                server_pid=server_pid,
            )
            rows.append(
                Row(backend, m, size, note=f"{note}; {matched:.1f} segments matched on average")
            )
    return rows


# ---------------------------------------------------------------- lag


def _lag_segments(run: str) -> list[tuple[str, cpb.Condition]]:
    return [
        (f"lag {k}", event("PRODUCT_VIEW", DAY, 1, category=f"bench-{run}-{k}"))
        for k in range(LAG_SEGMENTS)
    ]


def lag_batches(run: str, calls: int, known: Sequence[str]) -> list[tuple[bytes, dict[int, int]]]:
    """Per call: the body and {event index: watched segment number} of its trigger events."""
    rng = random.Random(3)
    now = time.time()
    out = []
    for i in range(calls):
        events = [
            shop_event(rng, f"lag-{run}-{i}-{n}", rng.choice(known), now, 3600)
            for n in range(LAG_BATCH - LAG_TRIGGERS)
        ]
        triggers: dict[int, int] = {}
        for j in range(LAG_TRIGGERS):
            index = rng.randrange(len(events) + 1)
            segment = (i * LAG_TRIGGERS + j) % LAG_SEGMENTS
            fresh = ppb.Event(
                event_id=f"lagt-{run}-{i}-{j}",
                customer=_email(f"fresh-{run}-{i}-{j}@bench.example"),
                type=ppb.EVENT_TYPE_PRODUCT_VIEW,
                channel=common_pb2.CHANNEL_WEB,
                sku=f"SKU-B-{j}",
                category=f"bench-{run}-{segment}",
            )
            fresh.occurred_at.FromNanoseconds(int(now * 1e9))
            events.insert(index, fresh)
            triggers = {k + (k >= index): v for k, v in triggers.items()}
            triggers[index] = segment
        body = ppb.TrackEventsRequest(events=events).SerializeToString()
        out.append((body, triggers))
    return out


@dataclass
class _LagState:
    returned: dict[str, float] = field(default_factory=dict)
    entered: dict[str, float] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    events: int = 0
    errors: int = 0
    first_error: str = ""


async def _watch(stream: Any, state: _LagState) -> None:
    async for message in stream:
        if message.change.change == pb.MEMBERSHIP_CHANGE_TYPE_ENTERED:
            state.entered.setdefault(message.change.customer_id, time.perf_counter())


async def _lag_call(
    channel: grpc.aio.Channel, body: bytes, triggers: dict[int, int], state: _LagState
) -> None:
    call = channel.unary_unary(TRACK_EVENTS)
    started = time.perf_counter()
    try:
        answer = await call(body, metadata=_auth(), timeout=60)
    except grpc.aio.AioRpcError as error:
        state.errors += 1
        state.first_error = state.first_error or f"{error.code().name}: {error.details()}"
        return
    done = time.perf_counter()
    state.latencies.append(done - started)
    reply = ppb.TrackEventsResponse.FromString(answer)
    state.events += reply.accepted
    for index in triggers:
        state.returned[reply.customer_ids[index]] = done


async def measure_lag(
    backend: str,
    channel: grpc.aio.Channel,
    server_pid: int,
    customers_emails: Sequence[str],
    seconds: float,
) -> LagResult:
    api = pb_grpc.SegmentationServiceStub(channel)
    run = uuid.uuid4().hex[:6]
    watched = await create_segments(api, _lag_segments(run))
    ids = [s.segment_id for s in watched]
    await wait_ready(api, ids)
    calls = int(seconds * LAG_CALLS_PER_SECOND)
    batches = lag_batches(run, calls, customers_emails)
    stream = api.WatchMembershipChanges(
        pb.WatchMembershipChangesRequest(segment_ids=ids), metadata=_auth()
    )
    await stream.initial_metadata()
    state = _LagState()
    watcher = asyncio.create_task(_watch(stream, state))
    slots = asyncio.Semaphore(LAG_MAX_IN_FLIGHT)
    tasks: list[asyncio.Task[None]] = []

    async def paced(body: bytes, triggers: dict[int, int]) -> None:
        async with slots:
            await _lag_call(channel, body, triggers, state)

    _progress(f"[{backend}] lag: {LAG_CALLS_PER_SECOND} x {LAG_BATCH} events/s for {seconds:g} s")
    t0, cpu0 = time.perf_counter(), process_cpu(server_pid)
    for i, (body, triggers) in enumerate(batches):
        await asyncio.sleep(max(0.0, t0 + i / LAG_CALLS_PER_SECOND - time.perf_counter()))
        tasks.append(asyncio.create_task(paced(body, triggers)))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - t0
    cpu = (process_cpu(server_pid) - cpu0) / elapsed
    expected = calls * LAG_TRIGGERS
    deadline = time.perf_counter() + 30
    while len(state.entered.keys() & state.returned.keys()) < len(state.returned):
        if time.perf_counter() > deadline:
            break
        await asyncio.sleep(0.1)
    stream.cancel()
    watcher.cancel()
    await asyncio.gather(watcher, return_exceptions=True)
    lags = sorted(
        max(0.0, state.entered[c] - t) for c, t in state.returned.items() if c in state.entered
    )
    missing = len(state.returned) - len(lags)
    note = f"{len(lags):,} of {expected:,} expected ENTERED matched"
    if missing:
        note += f"; {missing} not seen within 30 s after the last call"
    if state.first_error:
        note += f"; first error {state.first_error}"
    return LagResult(
        backend,
        elapsed,
        calls,
        state.events,
        expected,
        lags,
        sorted(state.latencies),
        cpu,
        state.errors,
        note,
    )


# ---------------------------------------------------------------- per backend, via the suite


async def _suite_measurements(
    opts: Any, backend: str, settings: Settings, server: Any
) -> tuple[list[Any], LagResult | None, list[str]]:
    channel = open_channel(server.address)
    notes = []
    try:
        api = pb_grpc.SegmentationServiceStub(channel)
        started = time.perf_counter()
        segments = await create_segments(api, typical_segments())
        await wait_ready(api, [s.segment_id for s in segments])
        notes.append(
            f"{backend}: 50 segments created and READY over the empty projection in "
            f"{time.perf_counter() - started:.1f} s"
        )
        run = uuid.uuid4().hex[:6]
        _progress(f"[{backend}] tracking {opts.seg_customers:,} customers ...")
        started = time.perf_counter()
        customers = await track_customers(channel, run, opts.seg_customers)
        tracked = time.perf_counter() - started
        settled = await wait_settled(settings, len(customers))
        notes.append(
            f"{backend}: {len(customers):,} customers with {HISTORY_EVENTS + 1} events each "
            f"tracked in {tracked:.1f} s; segmentation settled {settled:.1f} s later"
        )
        rows = await measure_reads(opts, backend, channel, server.pid, customers, segments)
        lag = None
        if opts.lag_seconds > 0:
            emails = [f"seg{run}-{k}@bench.example" for k in range(opts.seg_customers)]
            lag = await measure_lag(backend, channel, server.pid, emails, opts.lag_seconds)
    finally:
        await channel.close()
    return rows, lag, notes


def bench_suite(
    opts: Any, backend: str, workdir: Path, echo: dict[int, Measurement]
) -> tuple[list[Any], LagResult | None, list[str]]:
    from tests.load.bench import fresh_store, server_process

    with fresh_store(backend, workdir) as settings:
        suite = ["--suite", "profile,segmentation"]
        with server_process(f"{backend}-suite", settings, workdir, opts.cprofile_dir, suite) as s:
            _progress(f"[{backend}] segmentation suite (server pid {s.pid}) ...")
            rows, lag, notes = asyncio.run(_suite_measurements(opts, backend, settings, s))
            if any(r.m.errors for r in rows) or (lag and lag.errors):
                _progress(f"[{backend}] calls failed; server log:\n{s.tail(60)}")
    for row in rows:
        row.echo = echo.get(row.m.concurrency)
    return rows, lag, notes


# ---------------------------------------------------------------- 1M customers on PostgreSQL

_LOAD_PROFILES = """
INSERT INTO seg_profiles (customer_id, version, created_at, last_activity_at, orders, returns,
  revenue, first_purchase_at, last_purchase_at, engagement_score, recency_score,
  frequency_score, monetary_score, doc)
SELECT 'c' || lpad(g::text, 9, '0'), 1, :now - r1 * 400 * 86400, :now - r2 * 120 * 86400,
  o, 0, o * (5 + r3 * 60), CASE WHEN o > 0 THEN :now - r1 * 300 * 86400 END,
  CASE WHEN o > 0 THEN :now - r2 * 100 * 86400 END, round((r3 * 5)::numeric, 2)::float,
  CASE WHEN o > 0 THEN 1 + (g % 5) ELSE 0 END, CASE WHEN o > 0 THEN 1 + ((g / 5) % 5) ELSE 0 END,
  CASE WHEN o > 0 THEN 1 + ((g / 25) % 5) ELSE 0 END,
  json_build_object(
    'attributes', json_build_object('region',
      (ARRAY['London','North','Scotland','Wales','South','Midlands'])[1 + g % 6]),
    'interests', json_build_object('books', round((r1 * 4)::numeric, 1),
      'garden', round((r2 * 3)::numeric, 1), 'kitchen', round((r3 * 3)::numeric, 1),
      'toys', round(((1 - r1) * 2)::numeric, 1), 'sports', round(((1 - r2) * 3)::numeric, 1),
      'music', round(((1 - r3) * 2)::numeric, 1)),
    'traits', '{}'::json, 'consents', json_build_object('EMAIL', 'GRANTED'))
FROM (SELECT g, random() AS r1, random() AS r2, random() AS r3,
        (floor(power(random(), 3) * 8))::int AS o
      FROM generate_series(1, :n) AS g) AS s
"""

_LOAD_EVENTS = """
INSERT INTO seg_events (event_id, customer_id, type, channel, category, sku, occurred_at,
  quantity, order_total, properties)
SELECT 'e' || g || '-' || k, 'c' || lpad(g::text, 9, '0'), t,
  CASE WHEN random() < 0.6 THEN 'WEB' ELSE 'MOBILE_APP' END, cat, 'SKU-' || (g % 500),
  :now - power(random(), 2) * 60 * 86400, CASE WHEN t = 'PRODUCT_VIEW' THEN 0 ELSE 1 END,
  CASE WHEN t = 'PURCHASE' THEN 5 + random() * 100 END, '{}'::json
FROM (SELECT g, k,
        (ARRAY['PRODUCT_VIEW','PRODUCT_VIEW','PRODUCT_VIEW','ADD_TO_CART','PURCHASE',
               'PAGE_VIEW'])[1 + floor(random() * 6)::int] AS t,
        (ARRAY['books','garden','kitchen','toys','sports','beauty','music','outdoor'])
          [1 + floor(random() * 8)::int] AS cat
      FROM generate_series(1, :n) AS g, generate_series(1, 3) AS k) AS s
"""


async def _load_projection(settings: Settings, customers: int) -> tuple[int, float]:
    from sqlalchemy import text

    from libs.runtime import Resources

    resources = Resources.open(settings)
    started = time.perf_counter()
    try:
        async with resources.sessions() as session:
            await session.execute(text("SELECT setseed(0.42)"))
            now = time.time()
            await session.execute(text(_LOAD_PROFILES), {"now": now, "n": customers})
            await session.execute(text(_LOAD_EVENTS), {"now": now, "n": customers})
            await session.commit()
        async with resources.sessions() as session:
            events = int(await session.scalar(text("SELECT count(*) FROM seg_events")) or 0)
        engine = resources.sessions.kw["bind"]
        async with engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text("ANALYZE seg_profiles"))
            await conn.execute(text("ANALYZE seg_events"))
    finally:
        await resources.close()
    return events, time.perf_counter() - started


def _build_app(settings: Settings) -> Any:
    from libs.runtime import Peers, Resources
    from services.segmentation.app import SegmentationApp

    # No request here names a customer by identity, so no peer is ever called.
    peers = Peers(settings, token="", own_address=lambda: "127.0.0.1:1")
    return SegmentationApp.build(Resources.open(settings), peers)


async def _create_all(deps: Any, defs: Sequence[tuple[str, cpb.Condition]]) -> list[Any]:
    from services.segmentation.conditions import decode_condition
    from services.segmentation.handlers import create_segment

    records = []
    for name, condition in defs:
        body = condition.SerializeToString()
        records.append(await create_segment(deps, name, "", body, decode_condition(body)))
    return records


async def _time_builds(settings: Settings, customers: int, events: int, load: float) -> BuildResult:
    from services.segmentation.handlers import get_segment, reload_catalog

    app = _build_app(settings)
    deps = app.deps
    try:
        await reload_catalog(deps)
        created: dict[str, float] = {}
        finished: dict[str, float] = {}
        t0 = time.perf_counter()
        records = await _create_all(deps, typical_segments())
        for record in records:
            created[record.segment_id] = t0
            task = deps.builds.running.get(record.segment_id)
            if task is not None:
                task.add_done_callback(
                    lambda _t, s=record.segment_id: finished.__setitem__(s, time.perf_counter())
                )
        outcomes = await asyncio.gather(*deps.builds.running.values(), return_exceptions=True)
        total = time.perf_counter() - t0
        result = BuildResult(customers, events, load, total)
        failed = [repr(o) for o in outcomes if isinstance(o, BaseException)]
        if failed:
            result.note = f"{len(failed)} builds failed, first: {failed[0][:200]};"
        for record in records:
            stored = await get_segment(deps, record.segment_id)
            seconds = finished.get(record.segment_id, t0) - t0
            result.segments.append((record.name, stored.kind, seconds, stored.member_count))
            if stored.state != "READY":
                result.note += f" {record.name} is {stored.state};"
    finally:
        await app.resources.close()
    return result


def bench_build(customers: int, workdir: Path) -> BuildResult:
    from tests.load.bench import fresh_store

    with fresh_store("postgres", workdir) as settings:
        _progress(f"[postgres] loading {customers:,} synthetic customers into the projection ...")
        events, load = asyncio.run(_load_projection(settings, customers))
        _progress(f"[postgres] building 50 segments over {customers:,} customers ...")
        result: BuildResult = asyncio.run(_time_builds(settings, customers, events, load))
        return result


# ---------------------------------------------------------------- cost per changed profile

TARGET_PATH = "interests.bench_target"


def _readers() -> list[tuple[str, cpb.Condition]]:
    return [
        ("reader interest 1", prop(TARGET_PATH, "GT", 1)),
        ("reader interest 2", prop(TARGET_PATH, "GT", 2)),
        ("reader interest 3", prop(TARGET_PATH, "BETWEEN", [1.0, 4.0])),
        ("reader search 1d", event("SEARCH", DAY, 1)),
        ("reader search 3+ 7d", event("SEARCH", 7 * DAY, 3)),
    ]


def _others(count: int) -> list[tuple[str, cpb.Condition]]:
    """Segments that read other fields: the behavioural mix with varied thresholds."""
    makers: list[Callable[[int], cpb.Condition]] = [
        lambda i: prop("purchase_summary.orders", "GTE", 1 + i % 7),
        lambda i: prop("attributes.region", "EQ", f"Region-{i}"),
        lambda i: prop(f"interests.{CATEGORIES[i % 8]}", "GT", i % 5),
        lambda i: prop("rfm.frequency_score", "GTE", 1 + i % 5),
        lambda i: event("PRODUCT_VIEW", DAY * (1 + i % 30), 1 + i % 3, category=f"cat-{i}"),
        lambda i: event("PURCHASE", DAY * (1 + i % 90), 1 + i % 2),
        lambda i: prop("status", "EQ", ("NEW", "ACTIVE", "CHURN_RISK", "LAPSED")[i % 4]),
        lambda i: prop("purchase_summary.revenue", "GTE", 10 * i),
    ]
    return [(f"other {i}", makers[i % len(makers)](i)) for i in range(count)]


def _updates(round_no: int, customers: int) -> list[Any]:
    from services.segmentation.engine import ProfileUpdate
    from services.segmentation.facts import CustomerFacts, FactEvent

    now = time.time()
    out = []
    for k in range(customers):
        customer = f"cost{k:06d}"
        facts = CustomerFacts(
            customer_id=customer,
            version=round_no,
            created_at=now - 30 * DAY,
            last_activity_at=now,
            interests={TARGET_PATH.split(".")[1]: float((k + round_no) % 5), "books": 1.0},
            attributes={"region": "London"},
        )
        search = FactEvent(f"s-{round_no}-{k}", customer, "SEARCH", "WEB", now - k % 60)
        out.append(ProfileUpdate(customer, (TARGET_PATH,), ("SEARCH",), facts, (search,), "bench"))
    return out


async def _time_updates(settings: Settings, segments: int, updates: int) -> CostResult:
    from services.segmentation.handlers import reload_catalog

    app = _build_app(settings)
    deps = app.deps
    try:
        await reload_catalog(deps)
        await _create_all(deps, _readers() + _others(segments - len(_readers())))
        await asyncio.gather(*deps.builds.running.values())
        affected = len(deps.catalogs.catalog.affected((TARGET_PATH,), ("SEARCH",)))
        customers = updates // 2
        await _apply(deps.engine, _updates(1, customers))  # first sight: not measured
        started = time.perf_counter()
        for round_no in (2, 3):
            await _apply(deps.engine, _updates(round_no, customers))
        seconds = time.perf_counter() - started
    finally:
        await app.resources.close()
    return CostResult("", segments, affected, 2 * customers, seconds)


async def _apply(engine: Any, updates: Sequence[Any], batch: int = 100) -> None:
    for start in range(0, len(updates), batch):
        await engine.on_profile_changes(updates[start : start + batch])


def bench_cost(backend: str, workdir: Path, updates: int = 2000) -> list[CostResult]:
    from tests.load.bench import fresh_store

    out = []
    for segments in (10, 500):
        with fresh_store(backend, workdir) as settings:
            _progress(f"[{backend}] cost per changed profile, {segments} segments ...")
            result = asyncio.run(_time_updates(settings, segments, updates))
        result.backend = backend
        out.append(result)
    return out


# ---------------------------------------------------------------- all of it


def run_segmentation(opts: Any, workdir: Path, echo: dict[int, Measurement]) -> SegmentationResults:
    results = SegmentationResults()
    for backend in opts.backends:
        rows, lag, notes = bench_suite(opts, backend, workdir, echo)
        results.rows += rows
        results.notes += notes
        if lag is not None:
            results.lags.append(lag)
    for backend in opts.backends:
        results.costs += bench_cost(backend, workdir)
    if "postgres" in opts.backends and opts.build_customers > 0:
        results.builds.append(bench_build(opts.build_customers, workdir))
    return results


# ---------------------------------------------------------------- report

EVALUATE_RATIO_TARGET = 0.4
MEMBERSHIPS_P99_TARGET_MS = 5.0
LAG_P99_TARGET_MS = 1000.0
BUILD_TARGET_SECONDS = 60.0
COST_RATIO_TARGET = 1.5  # 500 vs 10 segments, the same 5 reading the change


def _cost_pairs(results: SegmentationResults) -> list[tuple[CostResult, CostResult]]:
    by_backend: dict[str, dict[int, CostResult]] = {}
    for cost in results.costs:
        by_backend.setdefault(cost.backend, {})[cost.segments] = cost
    return [(v[10], v[500]) for v in by_backend.values() if 10 in v and 500 in v]


def segmentation_targets(results: SegmentationResults) -> list[str]:
    lines = []
    for row in results.rows:
        m, e = row.m, row.echo
        if m.name.startswith("EvaluateSegments") and e is not None:
            ratio = m.calls_per_second / e.calls_per_second if e.calls_per_second else 0.0
            lines.append(
                f"- {m.name} ≥ {EVALUATE_RATIO_TARGET}x echo throughput, {row.backend}, "
                f"c={m.concurrency}: {ratio:.2f}x — {verdict(ratio >= EVALUATE_RATIO_TARGET)}"
            )
        if m.name == "GetMemberships":
            lines.append(
                f"- GetMemberships p99 ≤ {MEMBERSHIPS_P99_TARGET_MS:g} ms under load, "
                f"{row.backend}, c={m.concurrency}: {m.p99_ms:.2f} ms — "
                f"{verdict(m.p99_ms <= MEMBERSHIPS_P99_TARGET_MS)}"
            )
    for lag in results.lags:
        ok = (
            bool(lag.lags) and lag.lag_ms(99) <= LAG_P99_TARGET_MS and len(lag.lags) == lag.expected
        )
        lines.append(
            f"- TrackEvents → ENTERED lag p99 ≤ {LAG_P99_TARGET_MS:,.0f} ms at "
            f"{LAG_CALLS_PER_SECOND * LAG_BATCH:,} events/s offered, {lag.backend}: "
            f"{lag.lag_ms(99):,.0f} ms ({lag.events_per_second:,.0f} events/s achieved, "
            f"{len(lag.lags):,}/{lag.expected:,} seen) — {verdict(ok)}"
        )
    for build in results.builds:
        lines.append(
            f"- 50 segments built over {build.customers:,} customers ≤ "
            f"{BUILD_TARGET_SECONDS:.0f} s, postgres: {build.total_seconds:.1f} s — "
            f"{verdict(build.total_seconds <= BUILD_TARGET_SECONDS)}"
        )
    for few, many in _cost_pairs(results):
        ratio = many.ms_per_update / few.ms_per_update if few.ms_per_update else 0.0
        lines.append(
            f"- Cost per changed profile grows with the segments reading the change, not with "
            f"all segments (500 vs 10 segments, {many.affected} vs {few.affected} affected, "
            f"ratio ≤ {COST_RATIO_TARGET}), {few.backend}: {few.ms_per_update:.2f} → "
            f"{many.ms_per_update:.2f} ms/update, {ratio:.2f}x — "
            f"{verdict(ratio <= COST_RATIO_TARGET)}"
        )
    return lines


def _lag_table(results: SegmentationResults) -> list[str]:
    lines = [
        "| backend | offered events/s | achieved events/s | calls | TrackEvents p50 ms "
        "| TrackEvents p99 ms | lag p50 ms | lag p99 ms | lag max ms | ENTERED seen "
        "| errors | server CPU |",
        "|" + "---|" * 12,
    ]
    for lag in results.lags:
        latency = lag.call_latencies
        lines.append(
            f"| {lag.backend} | {LAG_CALLS_PER_SECOND * LAG_BATCH:,} "
            f"| {lag.events_per_second:,.0f} | {lag.calls} "
            f"| {percentile(latency, 50) * 1000:.1f} | {percentile(latency, 99) * 1000:.1f} "
            f"| {lag.lag_ms(50):.1f} | {lag.lag_ms(99):.1f} | {lag.lag_ms(100):.1f} "
            f"| {len(lag.lags):,}/{lag.expected:,} | {lag.errors} | {lag.server_cpu:.0%} |"
        )
    return lines


def _build_table(build: BuildResult) -> list[str]:
    lines = [
        f"Build over {build.customers:,} customers and {build.events:,} events (projection "
        f"loaded in {build.load_seconds:.1f} s, not part of the target): all 50 READY after "
        f"**{build.total_seconds:.1f} s** (created at once, built concurrently).",
        "",
        "| segment | kind | READY after s | members |",
        "|---|---|---|---|",
    ]
    for name, kind, seconds, members in sorted(build.segments, key=lambda s: -s[2]):
        shown = f"{members:,}" if kind == "BEHAVIORAL" else "(per request)"
        lines.append(f"| {name} | {kind.lower()} | {seconds:.1f} | {shown} |")
    return lines


def _cost_table(results: SegmentationResults) -> list[str]:
    lines = [
        "| backend | segments defined | segments reading the change | updates "
        "| ms per update | updates/s |",
        "|---|---|---|---|---|---|",
    ]
    for cost in results.costs:
        rate = cost.updates / cost.seconds if cost.seconds else 0.0
        lines.append(
            f"| {cost.backend} | {cost.segments} | {cost.affected} | {cost.updates:,} "
            f"| {cost.ms_per_update:.3f} | {rate:,.0f} |"
        )
    return lines


def render_segmentation(results: SegmentationResults) -> list[str]:
    lines = ["### Segmentation", ""]
    if results.lags:
        lines += [
            "Lag from TrackEvents returning to ENTERED on WatchMembershipChanges "
            f"({LAG_CALLS_PER_SECOND} calls/s x {LAG_BATCH} events, {LAG_TRIGGERS} per call "
            "make a fresh customer enter one of 5 watched segments):",
            "",
            *_lag_table(results),
            "",
        ]
    if results.costs:
        lines += [
            "Cost per changed profile (`Engine.on_profile_changes`, in-process, batches of "
            "100, each update changes `interests.bench_target` and adds a SEARCH event):",
            "",
            *_cost_table(results),
            "",
        ]
    for build in results.builds:
        lines += [*_build_table(build), ""]
    return lines


def segmentation_json(results: SegmentationResults) -> dict[str, Any]:
    return {
        "lags": [
            {
                "backend": lag.backend,
                "seconds": lag.seconds,
                "calls": lag.calls,
                "events_per_second": lag.events_per_second,
                "expected": lag.expected,
                "seen": len(lag.lags),
                "lag_p50_ms": lag.lag_ms(50),
                "lag_p99_ms": lag.lag_ms(99),
                "lag_max_ms": lag.lag_ms(100),
                "server_cpu": lag.server_cpu,
                "errors": lag.errors,
                "note": lag.note,
            }
            for lag in results.lags
        ],
        "builds": [
            {
                "customers": b.customers,
                "events": b.events,
                "load_seconds": b.load_seconds,
                "total_seconds": b.total_seconds,
                "segments": [
                    {"name": n, "kind": k, "seconds": s, "members": c} for n, k, s, c in b.segments
                ],
            }
            for b in results.builds
        ],
        "costs": [{**c.__dict__, "ms_per_update": c.ms_per_update} for c in results.costs],
        "notes": results.notes,
    }

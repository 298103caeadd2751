"""The segmentation part of `make bench` (`--suites profile,segmentation`).

Per backend, one `bench_server --suite profile,segmentation` process (services.suite.Suite, as
`backcrm serve all`) with 50 typical segments and ~1,000 customers tracked through the profile
service: EvaluateSegments and GetMemberships under closed-loop load (ratios against the same
run's echo server), then the lag curve: the server CPU per event of the whole path, measured
saturated, and the lag from TrackEvents returning to ENTERED arriving on
WatchMembershipChanges at offered 100 ... 5,000 events/s until it falls behind, with its knee.
`lag_sweep(address, ...)` / `lag_curve(address, settings, ...)` take any server address (one
process or several); `python -m tests.load.segbench` runs the lag curve alone. In the bench
process: building 50 segments over 1,000,000 synthetic customers loaded straight into the
projection (PostgreSQL), and the cost of one profile change (`Engine.on_profile_changes`) with
10 and 500 segments defined and in a shop's mix. See docs/benchmarks.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
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
from libs.gc_tuning import tune_for_serving
from tests.load.loadgen import (
    Measurement,
    Target,
    open_channel,
    percentile,
    process_tree_cpu,
)
from tests.load.payloads import cycle
from tests.load.report import ADMIN_AUTH, progress, verdict
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
    "LagCurve",
    "LagStep",
    "SegmentationResults",
    "lag_curve",
    "lag_sweep",
    "run_segmentation",
]

SEG = "/backcrm.segmentation.v1.SegmentationService"
EVALUATE = f"{SEG}/EvaluateSegments"
MEMBERSHIPS = f"{SEG}/GetMemberships"
TRACK_EVENTS = "/backcrm.profile.v1.ProfileService/TrackEvents"
HISTORY_EVENTS = 10  # per customer, besides the first PAGE_VIEW
LAG_RATES = (100, 300, 1000, 2000, 5000)  # offered events/s, one step each
LAG_STEP_SECONDS = 10.0
LAG_BATCH = 100  # events per TrackEvents call at most
LAG_SEGMENTS = 5
LAG_MAX_IN_FLIGHT = 64
LAG_DRAIN_SECONDS = 15.0  # after a step's last call, how long its ENTERED may take
LAG_ACHIEVED_SHARE = 0.9  # below this share of the offered rate, the step fell behind
LAG_BEHIND_MS = 5000.0  # a p99 past this: fell behind
LAG_GROWTH_SECONDS = 1.0  # last quarter's mean lag this much above the first's: growing
LAG_P99_TARGET_MS = 1000.0
KNEE_TARGET = 2000  # events/s
PATH_EVENTS = 10_000  # events sent saturated to measure the server CPU per event
PATH_IDLE_MAX = 0.05  # cores: an idle rate above this is leftover work, not idle loops
SETTLE_TIMEOUT = 240.0


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
    cpu_seconds: float = 0.0  # of the bench process (the engine's Python side, not the database)
    # "": every update changes interests.bench_target and adds a SEARCH (10 or 500 segments);
    # "shop": the 50 typical segments, 30-event histories, one shop event per update
    scenario: str = ""

    @property
    def ms_per_update(self) -> float:
        return self.seconds / self.updates * 1000 if self.updates else 0.0

    @property
    def cpu_ms_per_update(self) -> float:
        return self.cpu_seconds / self.updates * 1000 if self.updates else 0.0


@dataclass
class SegmentationResults:
    rows: list[Any] = field(default_factory=list)  # bench.Row
    lags: list[LagCurve] = field(default_factory=list)
    builds: list[BuildResult] = field(default_factory=list)
    costs: list[CostResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


# ---------------------------------------------------------------- segments over gRPC


async def create_segments(
    api: pb_grpc.SegmentationServiceStub, defs: Sequence[tuple[str, cpb.Condition]]
) -> list[pb.Segment]:
    created = []
    for name, condition in defs:
        request = pb.CreateSegmentRequest(segment=pb.Segment(name=name, condition=condition))
        created.append((await api.CreateSegment(request, metadata=ADMIN_AUTH)).segment)
    return created


async def wait_ready(
    api: pb_grpc.SegmentationServiceStub, ids: Sequence[str], timeout: float = 120.0
) -> None:
    deadline = time.monotonic() + timeout
    for segment_id in ids:
        while True:
            request = pb.GetSegmentRequest(segment_id=segment_id)
            segment = (await api.GetSegment(request, metadata=ADMIN_AUTH)).segment
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
    body = await call(request.SerializeToString(), metadata=ADMIN_AUTH, timeout=60)
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
    return parse(await call(body, metadata=ADMIN_AUTH, timeout=30))


async def measure_reads(
    opts: Any,
    backend: str,
    channel: grpc.aio.Channel,
    server_pid: int,
    customers: Sequence[str],
    segments: Sequence[pb.Segment],
) -> list[Any]:
    """EvaluateSegments (all / the behavioural ones) at each concurrency; GetMemberships c=1, 16."""
    from tests.load.bench import measure_rows

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
        target = Target(name, method, cycle(bodies), ADMIN_AUTH)
        note = f"{note}; {matched:.1f} segments matched on average"
        rows += await measure_rows(channel, target, opts, backend, server_pid, size, note, levels)
    return rows


# ---------------------------------------------------------------- lag curve


def _lag_segments(prefix: str) -> list[tuple[str, cpb.Condition]]:
    """Segments "PRODUCT_VIEW of category <prefix>-<k> at least once within a day"."""
    return [
        (f"lag {k}", event("PRODUCT_VIEW", DAY, 1, category=f"{prefix}-{k}"))
        for k in range(LAG_SEGMENTS)
    ]


def step_shape(offered: int) -> tuple[int, int, int]:
    """(events per call, calls per second, trigger events per call) for an offered rate:
    batches of up to 100 events at least 10 calls/s, about 5% of the events triggers."""
    batch = max(1, min(LAG_BATCH, offered // 10))
    return batch, max(1, round(offered / batch)), max(1, batch // 20)


def lag_batches(
    run: str, prefix: str, calls: int, batch: int, triggers_per_call: int, known: Sequence[str]
) -> list[tuple[bytes, dict[int, int]]]:
    """Per call: the body and {event index: watched segment number} of its trigger events
    (a PRODUCT_VIEW of a fresh customer in a watched category); the rest are shop events
    of known customers (by email)."""
    rng = random.Random(3)
    now = time.time()
    out = []
    for i in range(calls):
        events = [
            shop_event(rng, f"lag-{run}-{i}-{n}", rng.choice(known), now, 3600)
            for n in range(batch - triggers_per_call)
        ]
        triggers: dict[int, int] = {}
        for j in range(triggers_per_call):
            index = rng.randrange(len(events) + 1)
            segment = (i * triggers_per_call + j) % LAG_SEGMENTS
            fresh = ppb.Event(
                event_id=f"lagt-{run}-{i}-{j}",
                customer=_email(f"fresh-{run}-{i}-{j}@bench.example"),
                type=ppb.EVENT_TYPE_PRODUCT_VIEW,
                channel=common_pb2.CHANNEL_WEB,
                sku=f"SKU-B-{j}",
                category=f"{prefix}-{segment}",
            )
            fresh.occurred_at.FromNanoseconds(int(now * 1e9))
            events.insert(index, fresh)
            triggers = {k + (k >= index): v for k, v in triggers.items()}
            triggers[index] = segment
        body = ppb.TrackEventsRequest(events=events).SerializeToString()
        out.append((body, triggers))
    return out


@dataclass
class LagStep:
    """One offered rate of the sweep."""

    offered: int
    seconds: float = 0.0  # from the first call to the last answer
    calls: int = 0
    events: int = 0  # accepted
    expected: int = 0  # trigger events sent
    lags: list[float] = field(default_factory=list)  # sorted, seconds
    call_latencies: list[float] = field(default_factory=list)  # sorted, seconds
    server_cpu: float = 0.0  # cores busy while the step's calls were sent
    cpu_seconds: float = 0.0  # server CPU from the first call until its ENTERED were all seen
    errors: int = 0
    growing: bool = False  # the last quarter's lags far above the first quarter's
    note: str = ""

    @property
    def achieved(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0

    @property
    def cpu_ms_per_event(self) -> float:
        """Server CPU (all its processes) per accepted event, from the first call until the
        last ENTERED: TrackEvents, the relay and segmentation's consumption together, plus
        the idle loops' share (which dominates at low rates). Less sensitive to a shared
        machine than lag; complete only for a step that did not fall behind."""
        return self.cpu_seconds / self.events * 1000 if self.events else 0.0

    def lag_ms(self, pct: float) -> float:
        return percentile(self.lags, pct) * 1000

    @property
    def fell_behind(self) -> bool:
        return (
            self.achieved < LAG_ACHIEVED_SHARE * self.offered
            or len(self.lags) < self.expected
            or self.lag_ms(99) > LAG_BEHIND_MS
            or self.growing
            or self.errors > 0
        )

    @property
    def within_target(self) -> bool:
        return not self.fell_behind and self.lag_ms(99) <= LAG_P99_TARGET_MS


@dataclass
class LagCurve:
    """The sweep of one server: a step per offered rate until it fell behind."""

    backend: str
    steps: list[LagStep] = field(default_factory=list)
    note: str = ""
    processes: int = 1  # worker processes serving profile and segmentation
    # the cost of the whole event path, measured saturated (see path_cost)
    path_events: int = 0
    path_cpu_seconds: float = 0.0  # server CPU above its idle rate, until segmentation drained
    path_seconds: float = 0.0
    path_idle_cores: float = 0.0  # the server's CPU rate when idle, subtracted

    @property
    def cpu_ms_per_event(self) -> float:
        return self.path_cpu_seconds / self.path_events * 1000 if self.path_events else 0.0

    @property
    def label(self) -> str:
        return (
            self.backend if self.processes == 1 else f"{self.backend}, {self.processes} processes"
        )

    @property
    def knee(self) -> int:
        """The highest offered events/s whose lag p99 stayed ≤ 1 s (0: none)."""
        return max((s.offered for s in self.steps if s.within_target), default=0)


@dataclass
class _LagState:
    returned: dict[str, float] = field(default_factory=dict)
    entered: dict[str, float] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    events: int = 0
    errors: int = 0
    first_error: str = ""

    def next_step(self) -> None:
        """Forget the previous step's calls (ENTERED of its customers stay known)."""
        self.returned.clear()
        self.latencies.clear()
        self.events = self.errors = 0
        self.first_error = ""


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
        answer = await call(body, metadata=ADMIN_AUTH, timeout=60)
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


def _cpu(pids: Sequence[int]) -> float:
    """CPU seconds of the servers, their worker processes included (`serve --workers`)."""
    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError):
            total += process_tree_cpu(pid)
    return total


async def _lag_step(
    channel: grpc.aio.Channel,
    state: _LagState,
    run: str,
    prefix: str,
    offered: int,
    seconds: float,
    known: Sequence[str],
    server_pids: Sequence[int],
) -> LagStep:
    batch, per_second, triggers = step_shape(offered)
    calls = max(1, int(seconds * per_second))
    batches = lag_batches(run, prefix, calls, batch, triggers, known)
    slots = asyncio.Semaphore(LAG_MAX_IN_FLIGHT)
    tasks: list[asyncio.Task[None]] = []

    async def paced(body: bytes, triggers: dict[int, int]) -> None:
        async with slots:
            await _lag_call(channel, body, triggers, state)

    t0, cpu0 = time.perf_counter(), _cpu(server_pids)
    for i, (body, trig) in enumerate(batches):
        await asyncio.sleep(max(0.0, t0 + i / per_second - time.perf_counter()))
        tasks.append(asyncio.create_task(paced(body, trig)))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - t0
    cpu = (_cpu(server_pids) - cpu0) / elapsed
    deadline = time.perf_counter() + LAG_DRAIN_SECONDS
    while len(state.entered.keys() & state.returned.keys()) < len(state.returned):
        if time.perf_counter() > deadline:
            break
        await asyncio.sleep(0.05)
    cpu_seconds = _cpu(server_pids) - cpu0
    entered = state.entered
    seen = sorted((t, max(0.0, entered[c] - t)) for c, t in state.returned.items() if c in entered)
    lags = sorted(lag for _, lag in seen)
    quarter = max(1, len(seen) // 4)
    first = [lag for _, lag in seen[:quarter]]
    last = [lag for _, lag in seen[-quarter:]]
    growing = bool(seen) and sum(last) / len(last) - sum(first) / len(first) > LAG_GROWTH_SECONDS
    expected = calls * triggers
    step = LagStep(
        offered,
        elapsed,
        calls,
        state.events,
        expected,
        lags,
        sorted(state.latencies),
        cpu,
        cpu_seconds,
        state.errors,
        growing,
    )
    notes = [f"{batch} events x {per_second} calls/s, {len(lags):,}/{expected:,} ENTERED seen"]
    if len(lags) < expected:
        missing = expected - len(lags)
        notes.append(f"{missing:,} not seen {LAG_DRAIN_SECONDS:g} s after the last call")
    if growing:
        notes.append("lag growing through the step")
    if state.first_error:
        notes.append(f"first error {state.first_error}")
    step.note = "; ".join(notes)
    return step


async def path_cost(
    channel: grpc.aio.Channel,
    state: _LagState,
    prefix: str,
    known: Sequence[str],
    server_pids: Sequence[int],
    curve: LagCurve,
    events: int = PATH_EVENTS,
) -> None:
    """Server CPU per event of the whole path (TrackEvents, relay, segmentation consuming
    every change, ENTERED published), saturated: `events` in calls of 100 sent closed-loop
    by 8 workers, the clock stopped when every trigger's ENTERED has arrived; the server's
    idle CPU rate (the quietest of four 0.5 s windows before) is subtracted. On a shared
    machine this is steadier than lag: it is CPU spent, not time waited."""
    if not server_pids:
        return
    rates = []
    for _ in range(4):  # the quietest of four 0.5 s windows: a burst is not the idle rate
        idle0 = _cpu(server_pids)
        await asyncio.sleep(0.5)
        rates.append((_cpu(server_pids) - idle0) / 0.5)
    idle_rate = min(rates)
    if idle_rate > PATH_IDLE_MAX:  # still busy with earlier work: subtract nothing, say so
        curve.note += f"; path cost: the server was not idle before ({idle_rate:.0%} of a core)"
        idle_rate = 0.0
    batch, _, triggers = step_shape(1000)
    work = lag_batches(f"{prefix}-path", prefix, max(1, events // batch), batch, triggers, known)
    queue = list(reversed(work))
    t0, cpu0 = time.perf_counter(), _cpu(server_pids)

    async def worker() -> None:
        while queue:
            body, trig = queue.pop()
            await _lag_call(channel, body, trig, state)

    await asyncio.gather(*(worker() for _ in range(8)))
    deadline = time.perf_counter() + 120
    while len(state.entered.keys() & state.returned.keys()) < len(state.returned):
        if time.perf_counter() > deadline:
            curve.note += "; path cost: not every ENTERED arrived within 120 s"
            break
        await asyncio.sleep(0.05)
    elapsed = time.perf_counter() - t0
    curve.path_events = state.events
    curve.path_seconds = elapsed
    curve.path_cpu_seconds = max(0.0, _cpu(server_pids) - cpu0 - idle_rate * elapsed)
    curve.path_idle_cores = idle_rate
    if state.errors:
        curve.note += f"; path cost: {state.errors} calls failed, first {state.first_error}"


async def lag_sweep(
    address: str,
    known_emails: Sequence[str],
    *,
    backend: str = "",
    server_pids: Sequence[int] = (),
    rates: Sequence[int] = LAG_RATES,
    step_seconds: float = LAG_STEP_SECONDS,
    path_events: int = PATH_EVENTS,
) -> LagCurve:
    """The lag curve of the server at `address` (profile and segmentation, one or more
    processes): five fresh watched segments, one WatchMembershipChanges stream, then for each
    offered rate a paced (open-loop) step of TrackEvents — shop events of `known_emails` and
    ~5% PRODUCT_VIEWs of fresh customers in a watched category — measuring, per fresh
    customer, the time from its TrackEvents returning to its ENTERED. Stops after the first
    step that fell behind (achieved < 90% of offered, an ENTERED missing after the drain,
    p99 past 5 s, lags growing through the step, or errors). `server_pids`: the server's
    processes, for their CPU; with them and `path_events`, the CPU per event of the whole
    path is measured first (`path_cost`)."""
    channel = open_channel(address)
    curve = LagCurve(backend)
    try:
        api = pb_grpc.SegmentationServiceStub(channel)
        sweep = f"bench-{uuid.uuid4().hex[:6]}"
        watched = await create_segments(api, _lag_segments(sweep))
        ids = [s.segment_id for s in watched]
        await wait_ready(api, ids)
        stream = api.WatchMembershipChanges(
            pb.WatchMembershipChangesRequest(segment_ids=ids), metadata=ADMIN_AUTH
        )
        await stream.initial_metadata()
        state = _LagState()
        watcher = asyncio.create_task(_watch(stream, state))
        try:
            if path_events:
                progress(f"[{backend}] event path cost: {path_events:,} events saturated ...")
                await path_cost(
                    channel, state, sweep, known_emails, server_pids, curve, path_events
                )
                state.next_step()
            for offered in rates:
                progress(f"[{backend}] lag at {offered:,} events/s for {step_seconds:g} s ...")
                step = await _lag_step(
                    channel,
                    state,
                    f"{sweep}-{offered}",
                    sweep,
                    offered,
                    step_seconds,
                    known_emails,
                    server_pids,
                )
                curve.steps.append(step)
                state.next_step()
                if step.fell_behind:
                    curve.note += f"; stopped after {offered:,} events/s: it fell behind"
                    break
        finally:
            stream.cancel()
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)
    finally:
        await channel.close()
    return curve


# ---------------------------------------------------------------- per backend, via the suite


async def _suite_measurements(
    opts: Any, backend: str, settings: Settings, server: Any
) -> tuple[list[Any], LagCurve | None, list[str]]:
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
        progress(f"[{backend}] tracking {opts.seg_customers:,} customers ...")
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
            lag = await lag_sweep(
                server.address,
                emails,
                backend=backend,
                server_pids=[server.pid],
                step_seconds=opts.lag_seconds,
            )
    finally:
        await channel.close()
    return rows, lag, notes


def bench_suite(
    opts: Any, backend: str, workdir: Path, echo: dict[int, Measurement]
) -> tuple[list[Any], LagCurve | None, list[str]]:
    from tests.load.bench import fresh_store, server_process

    with fresh_store(backend, workdir) as settings:
        suite = ["--suite", "profile,segmentation"]
        with server_process(f"{backend}-suite", settings, workdir, opts.cprofile_dir, suite) as s:
            progress(f"[{backend}] segmentation suite (server pid {s.pid}) ...")
            rows, lag, notes = asyncio.run(_suite_measurements(opts, backend, settings, s))
            if any(r.m.errors for r in rows) or (lag and any(s.errors for s in lag.steps)):
                progress(f"[{backend}] calls failed; server log:\n{s.tail(60)}")
    for row in rows:
        row.echo = echo.get(row.m.concurrency)
    return rows, lag, notes


def bench_scaled(opts: Any, workdir: Path, workers: int) -> LagCurve:
    """The lag curve again with `workers` processes serving profile and segmentation
    (`serve --workers`: one address, one consumer group, PostgreSQL + Redis), for the
    scale-out ratio of the knees."""
    from tests.load.bench import fresh_store, server_process

    with fresh_store("postgres", workdir) as settings:
        suite = ["--suite", "profile,segmentation"]
        with server_process(
            f"postgres-suite-{workers}w", settings, workdir, None, suite, workers=workers
        ) as s:
            progress(f"[postgres] lag curve with {workers} worker processes (pid {s.pid}) ...")
            curve = asyncio.run(
                lag_curve(
                    s.address,
                    settings,
                    backend="postgres",
                    server_pids=[s.pid],
                    customers=opts.seg_customers,
                    step_seconds=opts.lag_seconds,
                )
            )
            if any(step.errors for step in curve.steps):
                progress(f"[postgres, {workers} workers] calls failed; log:\n{s.tail(60)}")
    curve.processes = workers
    return curve


def scale_out(results: SegmentationResults) -> tuple[LagCurve, LagCurve] | None:
    """(one process, several) on PostgreSQL + Redis when both were measured."""
    one = [c for c in results.lags if c.backend == "postgres" and c.processes == 1]
    more = [c for c in results.lags if c.backend == "postgres" and c.processes > 1]
    return (one[0], more[0]) if one and more else None


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
        progress(f"[postgres] loading {customers:,} synthetic customers into the projection ...")
        events, load = asyncio.run(_load_projection(settings, customers))
        progress(f"[postgres] building 50 segments over {customers:,} customers ...")
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
        tune_for_serving()  # the process has started, as `backcrm serve` does then
        affected = len(deps.catalogs.catalog.affected((TARGET_PATH,), ("SEARCH",)))
        customers = updates // 2
        await _apply(deps.engine, _updates(1, customers))  # first sight: not measured
        rounds = [_updates(round_no, customers) for round_no in (2, 3)]
        started, cpu = time.perf_counter(), time.process_time()
        for updates in rounds:
            await _apply(deps.engine, updates)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    finally:
        gc.unfreeze()  # this process goes on with other apps: let this one be collected
        await app.resources.close()
    return CostResult("", segments, affected, 2 * customers, seconds, cpu)


SHOP_HISTORY = 30  # events per customer before the timed "shop" updates


def _shop_updates(round_no: int, customers: int) -> list[Any]:
    """A shop's changes under the 50 typical segments: round 1 gives each customer a history
    of SHOP_HISTORY shop events over 30 days (not timed); later rounds one shop event each,
    with the paths the profile service reports for it."""
    from services.segmentation.engine import ProfileUpdate
    from services.segmentation.facts import CustomerFacts, FactEvent

    rng = random.Random(round_no)
    now = time.time()
    out = []
    for k in range(customers):
        customer = f"shop{k:06d}"
        count = SHOP_HISTORY if round_no == 1 else 1
        events = []
        for n in range(count):
            kind = rng.choices(("PRODUCT_VIEW", "ADD_TO_CART", "PURCHASE"), (65, 25, 10))[0]
            category = rng.choice(CATEGORIES)
            at = now - (rng.uniform(0, 30 * DAY) if round_no == 1 else rng.uniform(0, 60))
            events.append(
                FactEvent(
                    f"sh-{round_no}-{k}-{n}",
                    customer,
                    kind,
                    "WEB",
                    at,
                    category=category,
                    sku=f"SKU-{category[:3].upper()}-{rng.randint(1, 300):04d}",
                    quantity=0 if kind == "PRODUCT_VIEW" else 1,
                    order_total=rng.choice((4.99, 19.99, 49.0)) if kind == "PURCHASE" else None,
                )
            )
        orders = k % 5 + round_no
        facts = CustomerFacts(
            customer_id=customer,
            version=round_no,
            created_at=now - 90 * DAY,
            last_activity_at=now,
            orders=orders,
            revenue=orders * 25.0,
            last_purchase_at=now - (k % 40) * DAY,
            engagement_score=float(k % 60),
            interests={c: float((k + i + round_no) % 5) for i, c in enumerate(CATEGORIES[:4])},
            attributes={"region": ("London", "North", "Wales")[k % 3]},
        )
        paths = {"last_activity_at", "engagement_score", "recent_events"}
        paths |= {f"interests.{e.category}" for e in events}
        if any(e.type == "PURCHASE" for e in events):
            paths |= {"purchase_summary.orders", "purchase_summary.revenue"}
        types = tuple(sorted({e.type for e in events}))
        out.append(
            ProfileUpdate(customer, tuple(sorted(paths)), types, facts, tuple(events), "bench")
        )
    return out


async def _time_shop(settings: Settings, updates: int) -> CostResult:
    """The 50 typical segments, customers with a 30-event history, one shop event each."""
    from services.segmentation.handlers import reload_catalog

    app = _build_app(settings)
    deps = app.deps
    try:
        await reload_catalog(deps)
        await _create_all(deps, typical_segments())
        await asyncio.gather(*deps.builds.running.values())
        tune_for_serving()  # the process has started, as `backcrm serve` does then
        customers = updates // 2
        await _apply(deps.engine, _shop_updates(1, customers))  # the histories: not measured
        rounds = [_shop_updates(round_no, customers) for round_no in (2, 3)]
        catalog = deps.catalogs.catalog
        affected = sum(len(catalog.affected(u.paths, u.event_types)) for u in rounds[0])
        started, cpu = time.perf_counter(), time.process_time()
        for batch in rounds:
            await _apply(deps.engine, batch)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    finally:
        gc.unfreeze()  # this process goes on with other apps: let this one be collected
        await app.resources.close()
    segments = len(typical_segments())
    return CostResult("", segments, affected // customers, 2 * customers, seconds, cpu, "shop")


async def _apply(engine: Any, updates: Sequence[Any], batch: int = 100) -> None:
    for start in range(0, len(updates), batch):
        await engine.on_profile_changes(updates[start : start + batch])


def bench_cost(backend: str, workdir: Path, updates: int = 2000) -> list[CostResult]:
    from tests.load.bench import fresh_store

    out = []
    for segments in (10, 500):
        with fresh_store(backend, workdir) as settings:
            progress(f"[{backend}] cost per changed profile, {segments} segments ...")
            result = asyncio.run(_time_updates(settings, segments, updates))
        result.backend = backend
        out.append(result)
    with fresh_store(backend, workdir) as settings:
        progress(f"[{backend}] cost per changed profile, a shop's changes, typical segments ...")
        result = asyncio.run(_time_shop(settings, updates))
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
    workers = opts.scale_workers
    if "postgres" in opts.backends and opts.lag_seconds > 0 and workers > 1:
        results.lags.append(bench_scaled(opts, workdir, workers))
    for backend in opts.backends:
        results.costs += bench_cost(backend, workdir)
    if "postgres" in opts.backends and opts.build_customers > 0:
        results.builds.append(bench_build(opts.build_customers, workdir))
    return results


# ---------------------------------------------------------------- report

EVALUATE_RATIO_TARGET = 0.4
MEMBERSHIPS_P99_TARGET_MS = 5.0
BUILD_TARGET_SECONDS = 60.0
COST_RATIO_TARGET = 1.5  # 500 vs 10 segments, the same 5 reading the change
COST_TARGET_MS = 0.2  # per changed profile, wall time of Engine.on_profile_changes


def _cost_pairs(results: SegmentationResults) -> list[tuple[CostResult, CostResult]]:
    by_backend: dict[str, dict[int, CostResult]] = {}
    for cost in results.costs:
        if not cost.scenario:
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
    for curve in results.lags:
        if curve.processes > 1:
            continue  # the target is per process; the scale-out line below reports it
        lines.append(
            f"- Knee (highest offered events/s with TrackEvents → ENTERED lag p99 ≤ "
            f"{LAG_P99_TARGET_MS:,.0f} ms, one process serving profile and segmentation) ≥ "
            f"{KNEE_TARGET:,} events/s, {curve.backend}: {curve.knee:,} events/s — "
            f"{verdict(curve.knee >= KNEE_TARGET)}"
        )
    pair = scale_out(results)
    if pair is not None:
        one, more = pair
        ratio = f"{more.knee / one.knee:.2f}x" if one.knee else "n/a (no knee with 1 process)"
        lines.append(
            f"- Scale-out (a report, no target; 2 cores shared by the load generator): knee "
            f"with {more.processes} processes / 1 process, postgres: {more.knee:,} / "
            f"{one.knee:,} events/s = {ratio}; CPU per event {more.cpu_ms_per_event:.2f} vs "
            f"{one.cpu_ms_per_event:.2f} ms"
        )
    for build in results.builds:
        lines.append(
            f"- 50 segments built over {build.customers:,} customers ≤ "
            f"{BUILD_TARGET_SECONDS:.0f} s, postgres: {build.total_seconds:.1f} s — "
            f"{verdict(build.total_seconds <= BUILD_TARGET_SECONDS)}"
        )
    for cost in results.costs:
        lines.append(
            f"- Segmentation ≤ {COST_TARGET_MS} ms per changed profile, {cost.backend}, "
            f"{cost.segments} segments{' (shop)' if cost.scenario else ''}: "
            f"{cost.ms_per_update:.3f} ms "
            f"({cost.cpu_ms_per_update:.3f} ms of CPU in the engine's process) — "
            f"{verdict(cost.ms_per_update <= COST_TARGET_MS)}"
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


def lag_table(curves: Sequence[LagCurve]) -> list[str]:
    """The lag curve(s): one row per step, the knee per curve."""
    lines = [
        "| backend | offered events/s | achieved events/s | calls | TrackEvents p50 ms "
        "| TrackEvents p99 ms | lag p50 ms | lag p99 ms | lag max ms | ENTERED seen "
        "| errors | server CPU | server CPU ms/event | |",
        "|" + "---|" * 14,
    ]
    for curve in curves:
        for step in curve.steps:
            latency = step.call_latencies
            state = (
                "≤ 1 s" if step.within_target else "fell behind" if step.fell_behind else "> 1 s"
            )
            lines.append(
                f"| {curve.label} | {step.offered:,} | {step.achieved:,.0f} | {step.calls:,} "
                f"| {percentile(latency, 50) * 1000:.1f} | {percentile(latency, 99) * 1000:.1f} "
                f"| {step.lag_ms(50):.1f} | {step.lag_ms(99):.1f} | {step.lag_ms(100):.1f} "
                f"| {len(step.lags):,}/{step.expected:,} | {step.errors} "
                f"| {step.server_cpu:.0%} | {step.cpu_ms_per_event:.2f} | {state} |"
            )
    lines.append("")
    for curve in curves:
        if curve.path_events:
            ms = curve.cpu_ms_per_event
            lines.append(
                f"Event path cost, {curve.label}: **{ms:.3f} ms of server CPU per event** "
                f"({curve.path_events:,} events sent saturated, every ENTERED seen after "
                f"{curve.path_seconds:.1f} s; idle CPU {curve.path_idle_cores:.0%} of a core "
                "subtracted): one core's ceiling "
                f"≈ {1000 / ms if ms else 0:,.0f} events/s."
            )
        lines.append(
            f"Knee, {curve.label}: **{curve.knee:,} events/s** "
            f"(target ≥ {KNEE_TARGET:,}: {verdict(curve.knee >= KNEE_TARGET)})"
            + (f"; {curve.note.strip('; ')}" if curve.note else "")
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
        "| backend | scenario | segments defined | segments reading the change | updates "
        "| ms per update | CPU ms per update | updates/s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for cost in results.costs:
        rate = cost.updates / cost.seconds if cost.seconds else 0.0
        lines.append(
            f"| {cost.backend} | {cost.scenario or 'bench_target'} | {cost.segments} "
            f"| {cost.affected} | {cost.updates:,} "
            f"| {cost.ms_per_update:.3f} | {cost.cpu_ms_per_update:.3f} | {rate:,.0f} |"
        )
    return lines


def render_segmentation(results: SegmentationResults) -> list[str]:
    lines = ["### Segmentation", ""]
    if results.lags:
        lines += [
            "Lag curve: from TrackEvents returning to ENTERED on WatchMembershipChanges, "
            "per offered rate (paced; ~5% of the events make a fresh customer enter one of "
            f"{LAG_SEGMENTS} watched segments), until it falls behind:",
            "",
            *lag_table(results.lags),
            "",
        ]
    if results.costs:
        lines += [
            "Cost per changed profile (`Engine.on_profile_changes`, in-process, batches of "
            "100; bench_target: each update changes `interests.bench_target` and adds a "
            "SEARCH event; shop: the 50 typical segments, customers with a 30-event history, "
            "each update one shop event; 'segments reading the change' is the mean):",
            "",
            *_cost_table(results),
            "",
        ]
    for build in results.builds:
        lines += [*_build_table(build), ""]
    return lines


def lag_json(curve: LagCurve) -> dict[str, Any]:
    return {
        "backend": curve.backend,
        "processes": curve.processes,
        "knee": curve.knee,
        "note": curve.note,
        "path_events": curve.path_events,
        "path_seconds": curve.path_seconds,
        "path_cpu_seconds": curve.path_cpu_seconds,
        "cpu_ms_per_event": curve.cpu_ms_per_event,
        "steps": [
            {
                "offered": step.offered,
                "achieved": step.achieved,
                "seconds": step.seconds,
                "calls": step.calls,
                "expected": step.expected,
                "seen": len(step.lags),
                "lag_p50_ms": step.lag_ms(50),
                "lag_p99_ms": step.lag_ms(99),
                "lag_max_ms": step.lag_ms(100),
                "server_cpu": step.server_cpu,
                "server_cpu_ms_per_event": step.cpu_ms_per_event,
                "errors": step.errors,
                "fell_behind": step.fell_behind,
                "note": step.note,
            }
            for step in curve.steps
        ],
    }


def segmentation_json(results: SegmentationResults) -> dict[str, Any]:
    return {
        "lags": [lag_json(curve) for curve in results.lags],
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
        "costs": [
            {**c.__dict__, "ms_per_update": c.ms_per_update, "cpu_ms": c.cpu_ms_per_update}
            for c in results.costs
        ],
        "notes": results.notes,
    }


# ---------------------------------------------------------------- the lag curve alone


async def lag_curve(
    address: str,
    settings: Settings,
    *,
    backend: str = "",
    server_pids: Sequence[int] = (),
    customers: int = 1000,
    rates: Sequence[int] = LAG_RATES,
    step_seconds: float = LAG_STEP_SECONDS,
    path_events: int = PATH_EVENTS,
) -> LagCurve:
    """The whole lag measurement against a fresh suite at `address` (one or more processes
    serving profile and segmentation over `settings`' store): the 50 typical segments,
    `customers` tracked with their histories until segmentation settled, then `lag_sweep`."""
    channel = open_channel(address)
    try:
        api = pb_grpc.SegmentationServiceStub(channel)
        segments = await create_segments(api, typical_segments())
        await wait_ready(api, [s.segment_id for s in segments])
        run = uuid.uuid4().hex[:6]
        progress(f"[{backend}] tracking {customers:,} customers ...")
        await track_customers(channel, run, customers)
        await wait_settled(settings, customers)
    finally:
        await channel.close()
    emails = [f"seg{run}-{k}@bench.example" for k in range(customers)]
    return await lag_sweep(
        address,
        emails,
        backend=backend,
        server_pids=server_pids,
        rates=rates,
        step_seconds=step_seconds,
        path_events=path_events,
    )


def main(argv: Sequence[str] | None = None) -> None:
    """`python -m tests.load.segbench`: the lag curve alone, on a fresh store per backend,
    with the 50 typical segments and `--customers` tracked first, as `make bench` does."""
    import argparse
    import tempfile

    from tests.load.bench import fresh_store, server_process

    p = argparse.ArgumentParser(description=main.__doc__)
    p.add_argument("--backends", default="postgres")
    p.add_argument("--customers", type=int, default=1000)
    p.add_argument("--rates", default=",".join(str(r) for r in LAG_RATES))
    p.add_argument("--step-seconds", type=float, default=LAG_STEP_SECONDS)
    p.add_argument("--path-events", type=int, default=PATH_EVENTS, help="0: skip the path cost")
    a = p.parse_args(argv)
    rates = [int(r) for r in a.rates.split(",")]
    curves = []
    with tempfile.TemporaryDirectory(prefix="segbench-") as tmp:
        workdir = Path(tmp)
        for backend in a.backends.split(","):
            with fresh_store(backend, workdir) as settings:
                suite = ["--suite", "profile,segmentation"]
                with server_process(f"{backend}-suite", settings, workdir, None, suite) as s:
                    progress(f"[{backend}] suite server pid {s.pid}")
                    curve = lag_curve(
                        s.address,
                        settings,
                        backend=backend,
                        server_pids=[s.pid],
                        customers=a.customers,
                        rates=rates,
                        step_seconds=a.step_seconds,
                        path_events=a.path_events,
                    )
                    curves.append(asyncio.run(curve))
    print("\n".join(lag_table(curves)))
    for curve in curves:
        for step in curve.steps:
            print(f"- {curve.label}, {step.offered:,} events/s: {step.note}")


if __name__ == "__main__":
    main()

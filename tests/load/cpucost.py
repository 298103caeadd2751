"""CPU seconds per event and per request of the whole suite: the input of docs/scaling.md.

    python -m tests.load.cpucost [--backend postgres] [--workers 1] [--rate 100]
                                 [--event-rate 200] [--calls 300] [--batch 10]
                                 [--output FILE.md] [--json FILE.json]

Serves every registered service (tests.load.bench_server --suite, as `backcrm serve all`;
`--workers N` under the supervisor of `backcrm serve --workers`) on a fresh store, sets up
what the main RPCs need (50 segments, tracked customers, campaigns, a loyalty program with
promotions, a catalogue and a showcase: the setups of adsbench and bonusbench), then, for each
RPC, issues `--calls` calls at `--rate` a second (TrackEvents: `--batch` shop events a call
over the tracked customers, `--event-rate` events a second) (open loop, a moderate load: far from
saturating, so the figure is the steady cost of a call, not of queueing) and reads the CPU
time of the server's process tree (/proc: the supervisor, its workers and any reaped ones)
before the first call and once the server is idle again, so what a call sets off in the
background counts too: for TrackEvents, the outbox relay and every consumer of
`profile.changed` (segmentation's projection and memberships, bonus, recommend). The idle
cost (background loops) measured before is subtracted.

CPU seconds are a far steadier figure than throughput on a shared machine (other processes
take cores, not this process's CPU time), but caches, frequency scaling and contention still
move them: take them to ±20 %. It is a report, not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import grpc
from backcrm.common.v1 import common_pb2
from backcrm.profile.v1 import profile_service_pb2 as ppb
from backcrm.recommend.v1 import recommend_service_pb2 as rpb
from backcrm.recommend.v1 import recommend_service_pb2_grpc as rpb_grpc

from libs.config import Settings
from services.registry import SERVICES
from tests.load.bench import (
    GET_PROFILE,
    TRACK_EVENTS,
    _machine,
    fresh_store,
    server_process,
)
from tests.load.loadgen import Paced, Target, open_channel, paced, process_tree_cpu
from tests.load.payloads import cycle, get_profile_requests
from tests.load.report import ADMIN_AUTH

__all__ = ["Cost", "main"]

RECOMMEND = "/backcrm.recommend.v1.RecommendService/GetRecommendations"
IDLE_SAMPLES = 8
SETTLE_TIMEOUT = 180.0
CATEGORIES = ("books", "garden", "kitchen", "toys", "sports", "beauty", "music", "outdoor")


@dataclass
class Cost:
    rpc: str
    calls: int
    errors: int
    items: int  # events for TrackEvents, else calls
    offered_rate: float
    seconds: float  # issuing the calls
    settle_seconds: float  # after the last answer, until the server was idle again
    cpu_seconds: float  # of the server's process tree, idle cost subtracted
    first_error: str = ""

    @property
    def ms_per_item(self) -> float:
        return self.cpu_seconds / self.items * 1000 if self.items else 0.0


def _progress(message: str) -> None:
    print(f"[cpucost {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


async def _idle_rate(pid: int, samples: int = IDLE_SAMPLES) -> float:
    """Cores the server tree uses doing nothing asked (its background loops): the least of a
    few one-second samples, so a background job's burst (a model training, a reconcile) is
    not taken for the floor."""
    rates = []
    for _ in range(samples):
        before, started = process_tree_cpu(pid), time.perf_counter()
        await asyncio.sleep(1.0)
        rates.append((process_tree_cpu(pid) - before) / (time.perf_counter() - started))
    return min(rates)


async def backlog(settings: Settings) -> int:
    """Work the suite still has to do: rows in every outbox table, and stream entries some
    consumer group has not had delivered or not acknowledged (PostgreSQL + Redis)."""
    from redis.asyncio import Redis
    from sqlalchemy import text

    from libs.db import make_engine

    engine = make_engine(settings.database_url)
    try:
        async with engine.connect() as connection:
            tables = await connection.scalars(
                text(
                    "SELECT table_name FROM information_schema.tables "
                    "WHERE table_schema = 'public' AND table_name LIKE '%outbox'"
                )
            )
            rows = 0
            for table in list(tables):
                rows += int(await connection.scalar(text(f'SELECT count(*) FROM "{table}"')) or 0)
    finally:
        await engine.dispose()
    redis = Redis.from_url(settings.redis_url)
    try:
        entries = 0
        async for key in redis.scan_iter(match=f"{settings.redis_prefix}*", _type="STREAM"):
            last = (await redis.xinfo_stream(key))["last-generated-id"]
            for group in await redis.xinfo_groups(key):
                entries += int(group["pending"])
                if _stream_id(group["last-delivered-id"]) < _stream_id(last):
                    entries += int(group.get("lag") or 1)
    finally:
        await redis.aclose()
    return rows + entries


def _stream_id(value: bytes | str) -> tuple[int, int]:
    text = value.decode() if isinstance(value, bytes) else value
    millis, _, seq = text.partition("-")
    return int(millis), int(seq or 0)


async def _settle(pid: int, idle: float, settings: Settings | None) -> float:
    """Wait until the suite has no work left (PostgreSQL + Redis: empty outboxes, every
    consumer group caught up; a busy machine can make a working server look quiet) and the
    server tree is back at its idle rate for a second; the seconds waited."""
    started = time.perf_counter()
    while time.perf_counter() - started < SETTLE_TIMEOUT:
        before = process_tree_cpu(pid)
        await asyncio.sleep(1.0)
        quiet = process_tree_cpu(pid) - before <= idle + 0.03
        if quiet and (settings is None or settings.embedded_bus or not await backlog(settings)):
            break
    return time.perf_counter() - started


async def _catalogue(channel: grpc.aio.Channel) -> str:
    """The skus the load's events name (payloads, segbench), and one showcase mixing every
    non-personal strategy; its id."""
    api = rpb_grpc.RecommendServiceStub(channel)
    items = [
        rpb.Item(
            sku=f"SKU-{category[:3].upper()}-{n:04d}",
            title=f"{category} {n}",
            category=category,
            available=True,
            price=common_pb2.Money(currency="EUR", units_micros=12_500_000),
        )
        for category in CATEGORIES
        for n in range(1, 501)
    ]
    for start in range(0, len(items), 500):
        await api.UpsertItems(
            rpb.UpsertItemsRequest(items=items[start : start + 500]), metadata=ADMIN_AUTH
        )
    showcase = rpb.Showcase(
        name="home",
        strategies=[
            rpb.StrategyWeight(strategy=rpb.STRATEGY_PERSONAL, weight=2.0),
            rpb.StrategyWeight(strategy=rpb.STRATEGY_BOUGHT_TOGETHER, weight=1.0),
            rpb.StrategyWeight(strategy=rpb.STRATEGY_POPULAR, weight=1.0),
        ],
        filters=rpb.ShowcaseFilters(only_available=True),
    )
    reply = await api.CreateShowcase(
        rpb.CreateShowcaseRequest(showcase=showcase), metadata=ADMIN_AUTH
    )
    return str(reply.showcase.showcase_id)


def recommend_requests(showcase_id: str, customers: Sequence[str]) -> list[bytes]:
    rng = random.Random(5)
    out = []
    for customer in customers:
        category = rng.choice(CATEGORIES)
        out.append(
            rpb.GetRecommendationsRequest(
                customer=common_pb2.CustomerRef(customer_id=customer),
                showcase_id=showcase_id,
                context=common_pb2.Context(
                    current_sku=f"SKU-{category[:3].upper()}-{rng.randint(1, 300):04d}"
                ),
                limit=10,
            ).SerializeToString()
        )
    return out


def track_requests(run: str, customers: int, batch: int, calls: int) -> list[bytes]:
    """`calls` TrackEvents bodies of `batch` shop events each, over the known customers
    adsbench's setup tracked (segbench.track_customers' emails): a web shop's mix."""
    from tests.load.segbench import shop_event

    rng = random.Random(13)
    now = time.time()
    return [
        ppb.TrackEventsRequest(
            events=[
                shop_event(
                    rng,
                    f"cost-{run}-{n}-{k}",
                    f"seg{run}-{rng.randrange(customers)}@bench.example",
                    now,
                    3600.0,
                )
                for k in range(batch)
            ]
        ).SerializeToString()
        for n in range(calls)
    ]


async def _targets(
    channel: grpc.aio.Channel, run: str, batch: int, calls: int, names: Sequence[str]
) -> list[Target]:
    from tests.load.adsbench import CUSTOMERS, SELECT, select_requests
    from tests.load.adsbench import _setup as ads_setup
    from tests.load.bonusbench import ACCRUE, QUOTE, accrue_requests, quote_requests
    from tests.load.bonusbench import _setup as bonus_setup
    from tests.load.segbench import EVALUATE, evaluate_requests, track_customers

    auth = ADMIN_AUTH
    if set(names) != set(SERVICES):
        # a part of the suite: what TrackEvents costs with these consumers of its events
        _progress("setup: customers")
        await track_customers(channel, run, CUSTOMERS)
        track = cycle(track_requests(run, CUSTOMERS, batch, calls))
        return [Target(f"TrackEvents ({batch} events a call)", TRACK_EVENTS, track, auth, batch)]
    _progress("setup: 50 segments, customers, campaigns")
    customers = await ads_setup(channel, run)
    _progress("setup: loyalty program, promotions, more customers")
    program_id, bonus_customers = await bonus_setup(channel, run + "b")
    _progress("setup: catalogue and showcase")
    showcase_id = await _catalogue(channel)
    return [
        Target(
            f"TrackEvents ({batch} events a call)",
            TRACK_EVENTS,
            cycle(track_requests(run, len(customers), batch, calls)),
            auth,
            batch,
        ),
        Target("GetProfile", GET_PROFILE, get_profile_requests(customers), auth),
        Target(
            "EvaluateSegments (all 53)", EVALUATE, cycle(evaluate_requests(customers, [])), auth
        ),
        Target(
            "QuoteOffer (5 lines)", QUOTE, cycle(quote_requests(program_id, bonus_customers)), auth
        ),
        Target("SelectAds", SELECT, cycle(select_requests(customers)), auth),
        Target(
            "GetRecommendations", RECOMMEND, cycle(recommend_requests(showcase_id, customers)), auth
        ),
        Target("Accrue", ACCRUE, accrue_requests(program_id, bonus_customers, run), auth),
    ]


async def measure_costs(
    address: str,
    pid: int,
    settings: Settings | None,
    *,
    rate: float,
    event_rate: float,
    calls: int,
    batch: int,
    names: Sequence[str] = tuple(SERVICES),
) -> tuple[list[Cost], float]:
    """Every main RPC's cost; and the idle rate (cores) subtracted."""
    channel = open_channel(address)
    try:
        targets = await _targets(channel, uuid.uuid4().hex[:6], batch, calls, names)
        await _settle(pid, 0.05, settings)
        idle = await _idle_rate(pid)
        await _settle(pid, idle, settings)
        _progress(f"idle: {idle:.3f} cores")
        costs = []
        for target in targets:
            before, started = process_tree_cpu(pid), time.perf_counter()
            # events at `event_rate` a second; other calls at `rate`
            pace = event_rate / target.items_per_call if target.items_per_call > 1 else rate
            run: Paced = await paced(channel, target, rate=pace, calls=calls)
            settle = await _settle(pid, idle, settings)
            elapsed = time.perf_counter() - started
            cpu = process_tree_cpu(pid) - before - idle * elapsed
            cost = Cost(
                rpc=target.name,
                calls=run.calls,
                errors=run.errors,
                items=run.calls * target.items_per_call,
                offered_rate=pace,
                seconds=run.seconds,
                settle_seconds=settle,
                cpu_seconds=cpu,
                first_error=run.first_error,
            )
            _progress(
                f"{cost.rpc}: {cpu:.2f} CPU s over {elapsed:.1f} s, "
                f"{cost.ms_per_item:.2f} ms per item, {run.errors} errors"
            )
            costs.append(cost)
        return costs, idle
    finally:
        await channel.close()


def render(
    costs: Sequence[Cost], *, backend: str, workers: int, idle: float, names: Sequence[str]
) -> str:
    lines = [
        f"## CPU cost per call — {backend}, {workers} worker process(es)",
        "",
        f"Machine: {_machine()}. Serving {', '.join(names)} on one address; calls at a fixed "
        "rate, server CPU (process tree, idle cost of "
        f"{idle:.3f} cores subtracted) from the first call until the server is idle again.",
        "",
        "| RPC | calls | errors | rate /s | CPU ms per call | CPU ms per event | settle s |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for cost in costs:
        per_call = cost.cpu_seconds / cost.calls * 1000 if cost.calls else 0.0
        per_event = f"{cost.ms_per_item:.3f}" if cost.items != cost.calls else ""
        lines.append(
            f"| {cost.rpc} | {cost.calls} | {cost.errors} | {cost.offered_rate:g} "
            f"| {per_call:.2f} | {per_event} | {cost.settle_seconds:.1f} |"
        )
    errors = [c for c in costs if c.first_error]
    lines += [f"\n{c.rpc}: first error {c.first_error}" for c in errors]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.load.cpucost")
    parser.add_argument("--backend", choices=["postgres", "embedded"], default="postgres")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--rate", type=float, default=100.0, help="calls a second per RPC")
    parser.add_argument(
        "--event-rate", type=float, default=200.0, help="TrackEvents: events a second"
    )
    parser.add_argument("--calls", type=int, default=300, help="calls per RPC")
    parser.add_argument("--batch", type=int, default=10, help="events per TrackEvents call")
    parser.add_argument("--output", type=Path)
    parser.add_argument("--json", type=Path)
    parser.add_argument(
        "--services",
        default=",".join(SERVICES),
        help="serve only these (then only TrackEvents is measured: the cost of an event with "
        "these consumers of it)",
    )
    args = parser.parse_args(argv)
    names = tuple(n.strip() for n in args.services.split(",") if n.strip())
    if args.workers > 1 and args.backend != "postgres":
        parser.error("--workers above 1 needs --backend postgres")
    workdir = Path(tempfile.mkdtemp(prefix="cpucost-"))
    with (
        fresh_store(args.backend, workdir) as settings,
        server_process(
            "cpucost",
            settings,
            workdir,
            None,
            extra=["--suite", ",".join(names)],
            workers=args.workers,
        ) as server,
    ):
        costs, idle = asyncio.run(
            measure_costs(
                server.address,
                server.pid,
                settings,
                rate=args.rate,
                event_rate=args.event_rate,
                calls=args.calls,
                batch=args.batch,
                names=names,
            )
        )
    text = render(costs, backend=args.backend, workers=args.workers, idle=idle, names=names)
    print(text)
    if args.output:
        args.output.write_text(text)
    if args.json:
        figures: dict[str, Any] = {
            "backend": args.backend,
            "workers": args.workers,
            "services": list(names),
            "idle_cores": idle,
            "costs": [{**asdict(c), "ms_per_item": c.ms_per_item} for c in costs],
        }
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

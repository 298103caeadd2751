"""The ads part of `make bench` (`--suites ...,ads`).

Per backend, one `bench_server --suite profile,segmentation,ads` process (as `backcrm serve
all`) holding the 50 typical segments of tests/load/segments.py (READY), ~200 customers
tracked through the profile service, and 200 active campaigns: a third untargeted, half
targeted at one or two of the segments (some also excluding one), the rest with a context
condition (channel, cart); priorities 0 / 100 / 200; categories; a tenth with a large budget
and a frequency cap (so selections reserve room in the counters); four placements.

- `SelectAds` (limit 3; 90 % known customers, 10 % anonymous; web or app; one of the four
  placements) under closed-loop load, as a ratio against the same run's echo server
  (target ≥ 0.25x and p99 ≤ 25 ms at concurrency 16, both backends);
- freshness: the time from `PauseCampaign` returning on one ads process to the last
  selection of that campaign by *another* ads process (same PostgreSQL and Redis; target
  ≤ 1 s). The embedded default is one process by design (SQLite, in-process bus), so this is
  measured on PostgreSQL + Redis only.

See docs/benchmarks.md.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from backcrm.ads.v1 import ads_service_pb2 as pb
from backcrm.ads.v1 import ads_service_pb2_grpc as pb_grpc
from backcrm.common.v1 import common_pb2
from backcrm.segmentation.v1 import segmentation_service_pb2_grpc as spb_grpc
from google.protobuf import duration_pb2

from libs.config import Settings
from tests.load.loadgen import Measurement, Target, open_channel
from tests.load.report import (
    ADMIN_AUTH,
    PAUSE_TARGET_SECONDS,
    PAUSE_TRIALS,
    PauseResult,
    last_seen,
    pause_json,
    pause_table,
    progress,
    verdict,
)
from tests.load.segments import CATEGORIES, context, typical_segments

__all__ = ["AdsResults", "ads_json", "ads_targets", "render_ads", "run_ads"]

ADS = "/backcrm.ads.v1.AdsService"
SELECT = f"{ADS}/SelectAds"
CUSTOMERS = 200
CAMPAIGNS = 200
LIMIT = 3
PLACEMENTS = ("home.top", "home.side", "product.detail", "cart.top")
PAUSE_PLACEMENT = "bench.pause"
SELECT_RATIO_TARGET = 0.25
SELECT_P99_TARGET_MS = 25.0


@dataclass
class AdsResults:
    rows: list[Any] = field(default_factory=list)  # bench.Row
    pauses: list[PauseResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


# ---------------------------------------------------------------- configuration


def campaigns(segment_ids: Sequence[str], rng: random.Random) -> list[pb.Campaign]:
    """CAMPAIGNS campaigns: 1/3 untargeted, 1/2 targeted at segments, the rest contextual;
    every tenth with a budget and a cap."""
    out = []
    for k in range(CAMPAIGNS):
        placements = rng.sample(PLACEMENTS, rng.randint(1, 2))
        if k % 7 == 0:
            placements = [p.split(".")[0] + ".*" for p in placements]  # prefixes too
        campaign = pb.Campaign(
            name=f"bench campaign {k}",
            brand=rng.choice(("house", "acme", "globex", "initech")),
            creatives=[
                pb.Creative(
                    title=f"creative {k}.{n}",
                    click_url=f"https://shop.example/c/{k}/{n}",
                    placements=placements,
                )
                for n in range(rng.randint(1, 3))
            ],
            priority=rng.choice((0, 100, 100, 200)),
            weight=rng.randint(1, 100),
            categories=rng.sample(CATEGORIES, rng.randint(0, 2)),
        )
        kind = k % 6
        if kind in (1, 2, 3):  # targeted at one or two segments, maybe excluding one
            campaign.targeting.include_segment_ids.extend(
                rng.sample(segment_ids, rng.randint(1, 2))
            )
            if kind == 3:
                campaign.targeting.exclude_segment_ids.append(rng.choice(segment_ids))
        elif kind == 4:  # a context condition on the request
            condition = (
                context("channel", "EQ", "CHANNEL_WEB")
                if k % 2
                else context("cart.total", "GTE", rng.choice((20, 50, 100)))
            )
            campaign.targeting.context.CopyFrom(condition)
        if k % 10 == 5:  # limited: selections reserve room
            campaign.budget.CopyFrom(pb.Budget(total_impressions=10**9))
            campaign.frequency_cap.CopyFrom(
                pb.FrequencyCap(impressions=1000, period=duration_pb2.Duration(seconds=86_400))
            )
        out.append(campaign)
    return out


async def _setup(channel: grpc.aio.Channel, run: str) -> list[str]:
    """The 50 segments (READY), CUSTOMERS tracked customers (their ids) and the campaigns."""
    from tests.load.segbench import create_segments, track_customers, wait_ready

    segmentation = spb_grpc.SegmentationServiceStub(channel)
    segments = await create_segments(segmentation, typical_segments())
    segment_ids = [s.segment_id for s in segments]
    await wait_ready(segmentation, segment_ids)
    customers = await track_customers(channel, run, CUSTOMERS)
    ads = pb_grpc.AdsServiceStub(channel)
    for campaign in campaigns(segment_ids, random.Random(11)):
        await ads.CreateCampaign(pb.CreateCampaignRequest(campaign=campaign), metadata=ADMIN_AUTH)
    return customers


def select_requests(customers: Sequence[str], count: int = 2000) -> list[bytes]:
    rng = random.Random(5)
    out = []
    for _ in range(count):
        request = pb.SelectAdsRequest(
            context=common_pb2.Context(
                placement=rng.choice(PLACEMENTS),
                channel=rng.choice((common_pb2.CHANNEL_WEB, common_pb2.CHANNEL_MOBILE_APP)),
            ),
            limit=LIMIT,
        )
        if rng.random() < 0.9:
            request.customer.customer_id = rng.choice(customers)
        out.append(request.SerializeToString())
    return out


# ---------------------------------------------------------------- measurements


async def _probe(channel: grpc.aio.Channel, body: bytes) -> pb.SelectAdsResponse:
    reply = await channel.unary_unary(SELECT)(body, metadata=ADMIN_AUTH, timeout=30)
    return pb.SelectAdsResponse.FromString(reply)


async def _measurements(opts: Any, backend: str, server: Any) -> tuple[list[Any], list[str]]:
    from tests.load.bench import measure_rows

    channel = open_channel(server.address)
    notes: list[str] = []
    rows: list[Any] = []
    try:
        run = uuid.uuid4().hex[:6]
        started = time.perf_counter()
        customers = await _setup(channel, run)
        notes.append(
            f"ads, {backend}: 50 segments, {len(customers)} customers tracked and "
            f"{CAMPAIGNS} campaigns created in {time.perf_counter() - started:.1f} s"
        )
        bodies = select_requests(customers)
        answers = [await _probe(channel, body) for body in bodies[:50]]
        slots = sum(len(a.slots) for a in answers) / len(answers)
        size = sum(len(a.SerializeToString()) for a in answers) // len(answers)
        degraded = sum(1 for a in answers if a.targeting_degraded)
        note = f"{CAMPAIGNS} campaigns, limit {LIMIT}, {slots:.1f} slots on average"
        if degraded:
            note += f"; {degraded}/50 probes answered with targeting degraded"
        target = Target(f"SelectAds limit {LIMIT}", SELECT, _cycle(bodies), ADMIN_AUTH)
        rows += await measure_rows(channel, target, opts, backend, server.pid, size, note)
    finally:
        await channel.close()
    return rows, notes


def _cycle(bodies: Sequence[bytes]) -> Any:
    return itertools.cycle(bodies).__next__


async def measure_pause(backend: str, writer_address: str, reader_address: str) -> PauseResult:
    """PAUSE_TRIALS times: a fresh campaign that outranks every other on a placement of its
    own, seen in the reader's selections; then PauseCampaign on the writer and selections
    from the reader, back to back, until one no longer has it. The figure is the time from
    the pause returning to the end of the last selection that still had it (0 when none)."""
    result = PauseResult(backend)
    writer, reader = open_channel(writer_address), open_channel(reader_address)
    body = pb.SelectAdsRequest(
        context=common_pb2.Context(placement=PAUSE_PLACEMENT, channel=common_pb2.CHANNEL_WEB)
    ).SerializeToString()
    try:
        ads = pb_grpc.AdsServiceStub(writer)
        for trial in range(PAUSE_TRIALS):
            campaign = pb.Campaign(
                name=f"pause probe {trial}",
                creatives=[pb.Creative(title="probe", placements=[PAUSE_PLACEMENT])],
                priority=1_000_000,
            )
            created = await ads.CreateCampaign(
                pb.CreateCampaignRequest(campaign=campaign), metadata=ADMIN_AUTH
            )
            campaign_id = created.campaign.campaign_id
            if await _last_seen(reader, body, campaign_id, present=True, timeout=30) is None:
                result.note = f"trial {trial}: the reader never selected the new campaign"
                break
            await ads.PauseCampaign(
                pb.PauseCampaignRequest(campaign_id=campaign_id), metadata=ADMIN_AUTH
            )
            paused_at = time.perf_counter()
            last = await _last_seen(reader, body, campaign_id, present=False, timeout=30)
            if last is None:
                result.note = f"trial {trial}: the reader still selected it after 30 s"
                break
            result.seconds.append(max(last - paused_at, 0.0))
    finally:
        await writer.close()
        await reader.close()
    result.seconds.sort()
    return result


async def _last_seen(
    channel: grpc.aio.Channel, body: bytes, campaign_id: str, *, present: bool, timeout: float
) -> float | None:
    """Selects until the campaign's presence is `present` (report.last_seen)."""

    async def shows() -> bool:
        reply = await _probe(channel, body)
        return any(s.campaign_id == campaign_id for s in reply.slots)

    return await last_seen(shows, present=present, timeout=timeout)


def bench_backend(
    opts: Any, backend: str, workdir: Path, echo: dict[int, Measurement]
) -> tuple[list[Any], list[str], PauseResult | None]:
    from tests.load.bench import fresh_store, server_process

    suite = ["--suite", "profile,segmentation,ads"]
    pause = None
    with (
        fresh_store(backend, workdir) as settings,
        server_process(f"{backend}-ads", settings, workdir, opts.cprofile_dir, suite) as s,
    ):
        progress(f"[{backend}] ads suite (server pid {s.pid}) ...")
        rows, notes = asyncio.run(_measurements(opts, backend, s))
        if any(r.m.errors for r in rows):
            progress(f"[{backend}] calls failed; server log:\n{s.tail(60)}")
        if backend == "postgres":
            pause = _bench_pause(settings, workdir, s.address)
    for row in rows:
        row.echo = echo.get(row.m.concurrency)
    return rows, notes, pause


def _bench_pause(settings: Settings, workdir: Path, writer: str) -> PauseResult:
    from tests.load.bench import server_process

    suite = ["--suite", "ads"]
    with server_process("postgres-ads-2", settings, workdir, None, suite) as reader:
        progress(f"[postgres] pause → selection on a second ads process (pid {reader.pid}) ...")
        return asyncio.run(measure_pause("postgres", writer, reader.address))


def run_ads(opts: Any, workdir: Path, echo: dict[int, Measurement]) -> AdsResults:
    results = AdsResults()
    for backend in opts.backends:
        rows, notes, pause = bench_backend(opts, backend, workdir, echo)
        results.rows += rows
        results.notes += notes
        if pause is not None:
            results.pauses.append(pause)
    return results


# ---------------------------------------------------------------- report


def ads_targets(results: AdsResults) -> list[str]:
    lines = []
    for row in results.rows:
        m, e = row.m, row.echo
        if m.name.startswith("SelectAds") and e is not None and m.concurrency == 16:
            ratio = m.calls_per_second / e.calls_per_second if e.calls_per_second else 0.0
            ok = ratio >= SELECT_RATIO_TARGET and m.p99_ms <= SELECT_P99_TARGET_MS
            lines.append(
                f"- {m.name} ≥ {SELECT_RATIO_TARGET}x echo throughput and p99 ≤ "
                f"{SELECT_P99_TARGET_MS:g} ms, {row.backend}, c=16: {ratio:.2f}x "
                f"({m.calls_per_second:,.0f} calls/s), p99 {m.p99_ms:.1f} ms — "
                f"{verdict(ok and not m.errors)}"
            )
    for pause in results.pauses:
        lines.append(
            f"- PauseCampaign → last selection of it by another ads process ≤ "
            f"{PAUSE_TARGET_SECONDS:g} s, {pause.backend}: worst {pause.worst} of "
            f"{len(pause.seconds)} trials — {verdict(pause.passed)}"
        )
    return lines


def render_ads(results: AdsResults) -> list[str]:
    return pause_table("Ads: pause → last selection on another process", results.pauses)


def ads_json(results: AdsResults) -> dict[str, Any]:
    return pause_json(results.pauses, results.notes)

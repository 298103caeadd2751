"""The bonus part of `make bench` (`--suites ...,bonus`).

Per backend, one `bench_server --suite profile,segmentation,bonus` process (as `backcrm serve
all`) holding a program, 3 segments, 20 active promotions (segment, profile and cart
conditions; every effect type) and ~300 customers tracked through the profile service:

- `QuoteOffer` for a 5-line cart under closed-loop load, as a ratio against the same run's echo
  server (target ≥ 0.25x at concurrency 16, both backends);
- `Accrue` throughput, every call a new order of one of the customers (PostgreSQL);
- freshness: the time from `PausePromotion` returning on one bonus process to the first quote
  from *another* bonus process (same PostgreSQL and Redis) that no longer shows it (target
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
from backcrm.bonus.v1 import bonus_service_pb2 as pb
from backcrm.bonus.v1 import bonus_service_pb2_grpc as pb_grpc
from backcrm.common.v1 import common_pb2
from backcrm.segmentation.v1 import condition_pb2 as cpb
from backcrm.segmentation.v1 import segmentation_service_pb2_grpc as spb_grpc

from libs.config import Settings
from tests.load.loadgen import Measurement, Target, open_channel
from tests.load.report import (
    ADMIN_AUTH,
    PAUSE_TARGET_SECONDS,
    PAUSE_TRIALS,
    PauseResult,
    pause_json,
    pause_table,
    progress,
    verdict,
)
from tests.load.segments import CATEGORIES, all_of, context, event, prop

__all__ = ["BonusResults", "bonus_targets", "render_bonus", "run_bonus"]

BONUS = "/backcrm.bonus.v1.BonusService"
QUOTE = f"{BONUS}/QuoteOffer"
ACCRUE = f"{BONUS}/Accrue"
CUSTOMERS = 300
PROMOTIONS = 20
CART_LINES = 5
QUOTE_RATIO_TARGET = 0.25
CURRENCY = "EUR"


@dataclass
class BonusResults:
    rows: list[Any] = field(default_factory=list)  # bench.Row
    pauses: list[PauseResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _money(micros: int) -> common_pb2.Money:
    return common_pb2.Money(currency=CURRENCY, units_micros=micros)


# ---------------------------------------------------------------- configuration


def _program() -> pb.Program:
    return pb.Program(
        name="bench club",
        currency=CURRENCY,
        points_per_unit=1.0,
        category_multipliers={"books": 2.0},
        tiers=[
            pb.Tier(name="silver", threshold_points=200, discount_percent=2),
            pb.Tier(name="gold", threshold_points=1000, discount_percent=5, points_multiplier=1.5),
        ],
        welcome_points=50,
        point_value=_money(10_000),
        max_redeem_percent=30,
    )


def _segments() -> list[tuple[str, cpb.Condition]]:
    return [
        ("bench regulars", prop("purchase_summary.orders", "GTE", 1)),
        ("bench book lovers", event("PRODUCT_VIEW", 30 * 86_400, 2, category="books")),
        ("bench web", context("channel", "EQ", "CHANNEL_WEB")),
    ]


def _segment(segment_id: str) -> cpb.Condition:
    return cpb.Condition(segment=cpb.SegmentCondition(segment_id=segment_id))


def _promotions(program_id: str, segment_ids: Sequence[str]) -> list[pb.Promotion]:
    """20 promotions over every effect type; conditions on segments, profile facts and the
    cart, so a quote evaluates all three kinds."""
    regulars, books, web = segment_ids
    out = []
    for k in range(PROMOTIONS):
        category = CATEGORIES[k % len(CATEGORIES)]
        kind = k % 5
        if kind == 0:
            effect = pb.Effect(
                type=pb.EFFECT_TYPE_PERCENT_OFF, percent=5 + k % 10, categories=[category]
            )
        elif kind == 1:
            effect = pb.Effect(
                type=pb.EFFECT_TYPE_AMOUNT_OFF, amount=_money(1_000_000 + k * 100_000)
            )
        elif kind == 2:
            effect = pb.Effect(
                type=pb.EFFECT_TYPE_POINTS_MULTIPLIER, multiplier=2.0, categories=[category]
            )
        elif kind == 3:
            effect = pb.Effect(type=pb.EFFECT_TYPE_GIFT, gift_sku=f"GIFT-{k}", gift_quantity=1)
        else:
            effect = pb.Effect(
                type=pb.EFFECT_TYPE_FIXED_PRICE, price=_money(3_990_000), categories=[category]
            )
        conditions = [
            _segment(regulars),
            all_of(_segment(books), context("cart.total", "GTE", 30)),
            context("cart.categories", "CONTAINS", category),
            prop("purchase_summary.orders", "GTE", 2),
            all_of(_segment(web), context("cart.quantity", "GTE", 3)),
        ]
        out.append(
            pb.Promotion(
                program_id=program_id,
                name=f"bench promotion {k}",
                condition=conditions[k % len(conditions)],
                effect=effect,
                priority=100 - k,
            )
        )
    return out


async def _setup(channel: grpc.aio.Channel, run: str) -> tuple[str, list[str]]:
    """The program, segments and promotions, and CUSTOMERS tracked customers' ids."""
    from tests.load.segbench import create_segments, track_customers, wait_ready

    segmentation = spb_grpc.SegmentationServiceStub(channel)
    segments = await create_segments(segmentation, _segments())
    await wait_ready(segmentation, [s.segment_id for s in segments])
    customers = await track_customers(channel, run, CUSTOMERS)
    bonus = pb_grpc.BonusServiceStub(channel)
    program = (
        await bonus.CreateProgram(pb.CreateProgramRequest(program=_program()), metadata=ADMIN_AUTH)
    ).program
    for promotion in _promotions(program.program_id, [s.segment_id for s in segments]):
        await bonus.CreatePromotion(
            pb.CreatePromotionRequest(promotion=promotion), metadata=ADMIN_AUTH
        )
    return program.program_id, customers


def _cart(rng: random.Random) -> list[common_pb2.CartLine]:
    lines = []
    for n in range(CART_LINES):
        category = rng.choice(CATEGORIES)
        lines.append(
            common_pb2.CartLine(
                sku=f"SKU-{category[:3].upper()}-{n:04d}",
                category=category,
                quantity=rng.choice((1, 1, 2, 3)),
                unit_price=_money(rng.choice((4_990_000, 12_500_000, 19_990_000, 49_000_000))),
            )
        )
    return lines


def quote_requests(program_id: str, customers: Sequence[str]) -> list[bytes]:
    rng = random.Random(5)
    return [
        pb.QuoteOfferRequest(
            program_id=program_id,
            customer=common_pb2.CustomerRef(customer_id=c),
            context=common_pb2.Context(
                channel=rng.choice((common_pb2.CHANNEL_WEB, common_pb2.CHANNEL_MOBILE_APP)),
                cart=_cart(rng),
            ),
        ).SerializeToString()
        for c in customers
    ]


def accrue_requests(program_id: str, customers: Sequence[str], run: str) -> Any:
    """Every call a new order (and key) of the next customer: 1 to 3 lines."""
    rng = random.Random(7)
    counter = itertools.count()
    carts = [_cart(rng)[: rng.randint(1, 3)] for _ in range(64)]

    def next_request() -> bytes:
        n = next(counter)
        lines = carts[n % len(carts)]
        total = sum(line.quantity * line.unit_price.units_micros for line in lines)
        return pb.AccrueRequest(
            program_id=program_id,
            customer=common_pb2.CustomerRef(customer_id=customers[n % len(customers)]),
            idempotency_key=f"bench-{run}-{n}",
            order=common_pb2.Order(order_id=f"o-{run}-{n}", lines=lines, total=_money(total)),
        ).SerializeToString()

    return next_request


# ---------------------------------------------------------------- measurements


async def _probe_quote(channel: grpc.aio.Channel, body: bytes) -> pb.QuoteOfferResponse:
    reply = await channel.unary_unary(QUOTE)(body, metadata=ADMIN_AUTH, timeout=30)
    return pb.QuoteOfferResponse.FromString(reply)


async def _measurements(opts: Any, backend: str, server: Any) -> tuple[list[Any], list[str], str]:
    from tests.load.bench import measure_rows

    channel = open_channel(server.address)
    notes: list[str] = []
    rows: list[Any] = []
    try:
        run = uuid.uuid4().hex[:6]
        started = time.perf_counter()
        program_id, customers = await _setup(channel, run)
        notes.append(
            f"bonus, {backend}: 3 segments, {len(customers)} customers tracked and "
            f"{PROMOTIONS} promotions created in {time.perf_counter() - started:.1f} s"
        )
        bodies = quote_requests(program_id, customers)
        answers = [await _probe_quote(channel, body) for body in bodies[:50]]
        applied = sum(len(a.applied) for a in answers) / len(answers)
        size = sum(len(a.SerializeToString()) for a in answers) // len(answers)
        degraded = sum(1 for a in answers if getattr(a, "segments_unavailable", False))
        note = f"5-line cart, {PROMOTIONS} active promotions, {applied:.1f} applied on average"
        if degraded:
            note += f"; {degraded}/50 probes answered without segmentation"
        target = Target(f"QuoteOffer {CART_LINES} lines", QUOTE, _cycle(bodies), ADMIN_AUTH)
        rows += await measure_rows(channel, target, opts, backend, server.pid, size, note)
        if backend == "postgres":
            target = Target(
                "Accrue", ACCRUE, accrue_requests(program_id, customers, run), ADMIN_AUTH
            )
            note = f"a new 1-3 line order per call over {len(customers)} accounts"
            rows += await measure_rows(channel, target, opts, backend, server.pid, 0, note)
    finally:
        await channel.close()
    return rows, notes, program_id


def _cycle(bodies: Sequence[bytes]) -> Any:
    return itertools.cycle(bodies).__next__


async def measure_pause(
    backend: str, writer_address: str, reader_address: str, program_id: str
) -> PauseResult:
    """PAUSE_TRIALS times: a fresh promotion everyone gets, seen in the reader's quotes; then
    PausePromotion on the writer and quotes from the reader, back to back, until it is gone."""
    result = PauseResult(backend)
    writer, reader = open_channel(writer_address), open_channel(reader_address)
    try:
        bonus = pb_grpc.BonusServiceStub(writer)
        body = quote_requests(program_id, ["pause-probe"])[0]
        for trial in range(PAUSE_TRIALS):
            promotion = pb.Promotion(
                program_id=program_id,
                name=f"pause probe {trial}",
                effect=pb.Effect(type=pb.EFFECT_TYPE_PERCENT_OFF, percent=1),
                priority=1000,
            )
            created = await bonus.CreatePromotion(
                pb.CreatePromotionRequest(promotion=promotion), metadata=ADMIN_AUTH
            )
            promotion_id = created.promotion.promotion_id
            if not await _until(reader, body, promotion_id, present=True, timeout=30):
                result.note = f"trial {trial}: the reader never showed the new promotion"
                break
            await bonus.PausePromotion(
                pb.PausePromotionRequest(promotion_id=promotion_id), metadata=ADMIN_AUTH
            )
            paused_at = time.perf_counter()
            if not await _until(reader, body, promotion_id, present=False, timeout=30):
                result.note = f"trial {trial}: the reader still showed it after 30 s"
                break
            result.seconds.append(time.perf_counter() - paused_at)
    finally:
        await writer.close()
        await reader.close()
    result.seconds.sort()
    return result


async def _until(
    channel: grpc.aio.Channel, body: bytes, promotion_id: str, *, present: bool, timeout: float
) -> bool:
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        quote = await _probe_quote(channel, body)
        if any(a.promotion_id == promotion_id for a in quote.applied) == present:
            return True
    return False


def bench_backend(
    opts: Any, backend: str, workdir: Path, echo: dict[int, Measurement]
) -> tuple[list[Any], list[str], PauseResult | None]:
    from tests.load.bench import fresh_store, server_process

    suite = ["--suite", "profile,segmentation,bonus"]
    pause = None
    with (
        fresh_store(backend, workdir) as settings,
        server_process(f"{backend}-bonus", settings, workdir, opts.cprofile_dir, suite) as s,
    ):
        progress(f"[{backend}] bonus suite (server pid {s.pid}) ...")
        rows, notes, program_id = asyncio.run(_measurements(opts, backend, s))
        if any(r.m.errors for r in rows):
            progress(f"[{backend}] calls failed; server log:\n{s.tail(60)}")
        if backend == "postgres":
            pause = _bench_pause(settings, workdir, s.address, program_id)
    for row in rows:
        row.echo = echo.get(row.m.concurrency)
    return rows, notes, pause


def _bench_pause(settings: Settings, workdir: Path, writer: str, program_id: str) -> PauseResult:
    from tests.load.bench import server_process

    suite = ["--suite", "bonus"]
    with server_process("postgres-bonus-2", settings, workdir, None, suite) as reader:
        progress(f"[postgres] pause → quote on a second bonus process (pid {reader.pid}) ...")
        return asyncio.run(measure_pause("postgres", writer, reader.address, program_id))


def run_bonus(opts: Any, workdir: Path, echo: dict[int, Measurement]) -> BonusResults:
    results = BonusResults()
    for backend in opts.backends:
        rows, notes, pause = bench_backend(opts, backend, workdir, echo)
        results.rows += rows
        results.notes += notes
        if pause is not None:
            results.pauses.append(pause)
    return results


# ---------------------------------------------------------------- report


def bonus_targets(results: BonusResults) -> list[str]:
    lines = []
    for row in results.rows:
        m, e = row.m, row.echo
        if m.name.startswith("QuoteOffer") and e is not None and m.concurrency == 16:
            ratio = m.calls_per_second / e.calls_per_second if e.calls_per_second else 0.0
            lines.append(
                f"- {m.name} ≥ {QUOTE_RATIO_TARGET}x echo throughput, {row.backend}, c=16: "
                f"{ratio:.2f}x ({m.calls_per_second:,.0f} calls/s) — "
                f"{verdict(ratio >= QUOTE_RATIO_TARGET and not m.errors)}"
            )
    for pause in results.pauses:
        lines.append(
            f"- PausePromotion → first quote from another bonus process without it ≤ "
            f"{PAUSE_TARGET_SECONDS:g} s, {pause.backend}: worst {pause.worst} of "
            f"{len(pause.seconds)} trials — {verdict(pause.passed)}"
        )
    return lines


def render_bonus(results: BonusResults) -> list[str]:
    return pause_table("Bonus: pause → quote on another process", results.pauses)


def bonus_json(results: BonusResults) -> dict[str, Any]:
    return pause_json(results.pauses, results.notes)

"""The recommend part of `make bench` (`--suites ...,recommend`).

Per backend, a fresh store loaded with the whole Online Retail file (the `make eval-reco`
reader, services/tools/eval_reco.py): its catalogue (one item per sku, with the importer's
category and the last unit price) through the service's `upsert_items`, and every purchase
(no cancellations, no non-positive quantities) as the service counts one, in bulk: each
customer's history, the co-occurrence of each invoice's basket (and the basket kept for a
rebuild), popularity per day. The
file's times are shifted so its last invoice is today, so POPULAR's 30-day window holds its
last month. Then:

- training time for the whole file: `backcrm train recommend`'s code (`train_now`: read every
  history, fit ALS, store the model), in this process;
- `GetRecommendations` (limit 10, showcase personal 0.4 / bought together 0.4 / popular 0.2,
  purchased and in-cart items excluded, at most 3 of a category; customers of the file, one
  in three with a 2-item cart) under closed-loop load on one `bench_server --suite recommend`
  process that loaded the stored model at start, as a ratio against the same run's echo
  server (target ≥ 0.25x at concurrency 16, both backends);
- freshness: the time from an `UpsertItems` that makes an item unavailable, returning on one
  recommend process, to the last "bought together" shelf from *another* recommend process
  (same PostgreSQL and Redis) that still shows it (target ≤ 1 s). The embedded default is one
  process by design (SQLite, in-process bus), so this is measured on PostgreSQL + Redis only.

The bulk load writes through the service's repository (`SqlRecommendUnitOfWork`'s additive
upserts) but not through the per-event path (`record_behaviour` claims each event id and
takes the customer's guard row: 18,500 invoices, 3.4 million pair rows, would take far longer
than the measurements); it is setup, not measured. See docs/benchmarks.md.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from backcrm.common.v1 import common_pb2
from backcrm.recommend.v1 import recommend_service_pb2 as pb
from backcrm.recommend.v1 import recommend_service_pb2_grpc as pb_grpc

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

__all__ = [
    "RecommendResults",
    "TrainResult",
    "recommend_json",
    "recommend_targets",
    "render_recommend",
    "run_recommend",
]

RECOMMEND = "/backcrm.recommend.v1.RecommendService"
GET = f"{RECOMMEND}/GetRecommendations"
LIMIT = 10
CUSTOMERS = 500
RATIO_TARGET = 0.25
CURRENCY = "GBP"
# pairs per transaction of the bulk load (each pair is two rows)
PAIRS_PER_TRANSACTION = 50_000
INVOICES_PER_TRANSACTION = 2_000


@dataclass
class TrainResult:
    backend: str
    seconds: float | None
    customers: int = 0
    items: int = 0
    note: str = ""


@dataclass
class RecommendResults:
    rows: list[Any] = field(default_factory=list)  # bench.Row
    pauses: list[PauseResult] = field(default_factory=list)
    trainings: list[TrainResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


# ---------------------------------------------------------------- the file, loaded


@dataclass
class RetailData:
    """The file as the service holds it: the catalogue and every purchase, times shifted."""

    items: list[Any]  # services.recommend.domain.Item
    # invoice -> (customer id, time, {sku: units})
    baskets: list[tuple[str, float, dict[str, float]]]
    customers: list[str]
    shift: float


def read_retail(path: Path, now: float) -> RetailData:
    from services.recommend.domain import Item
    from services.tools.eval_reco import purchases_of, read_invoices

    invoices = read_invoices(path)
    catalogue: dict[str, tuple[str, int]] = {}
    for invoice in invoices.values():
        for sku, category, _quantity, price in invoice.lines:
            catalogue[sku] = (category, price)  # the last price seen
    purchases = purchases_of(invoices)
    shift = now - max(p.at for p in purchases)
    grouped: dict[str, tuple[str, float, dict[str, float]]] = {}
    for p in purchases:
        _, _, units = grouped.setdefault(p.invoice, (p.customer, p.at + shift, {}))
        units[p.sku] = units.get(p.sku, 0.0) + p.quantity
    items = [
        Item(
            sku=sku,
            title=f"{category.title()} {sku}",
            category=category,
            price_micros=price,
            currency=CURRENCY,
            has_price=True,
            released_at=now,
        )
        for sku, (category, price) in sorted(catalogue.items())
    ]
    customers = sorted({customer for customer, _, _ in grouped.values()})
    return RetailData(items, list(grouped.values()), customers, shift)


async def load_retail(settings: Settings, data: RetailData) -> tuple[int, int]:
    """The catalogue through `upsert_items`, the purchases as additive upserts (see the module
    docstring): (history rows written, distinct pairs)."""
    from libs.runtime import Resources
    from services.recommend.app import offline_deps
    from services.recommend.cooccurrence import PURCHASE_WEIGHT, basket_deltas
    from services.recommend.handlers import upsert_items
    from services.recommend.popularity import OVERALL, day_of

    resources = Resources.open(settings)
    try:
        deps = offline_deps(resources)
        for start in range(0, len(data.items), 1000):
            await upsert_items(deps, data.items[start : start + 1000])
        item_counts: dict[str, float] = defaultdict(float)
        pair_counts: dict[tuple[str, str], float] = defaultdict(float)
        popularity: dict[tuple[str, int, str], float] = defaultdict(float)
        history_rows = 0
        for start in range(0, len(data.baskets), INVOICES_PER_TRANSACTION):
            async with deps.uow() as uow:
                part = data.baskets[start : start + INVOICES_PER_TRANSACTION]
                for n, (customer, at, units) in enumerate(part, start):
                    await uow.add_history(customer, {s: (u, 0.0) for s, u in units.items()}, at)
                    await uow.add_basket(f"bench-{n}", customer, sorted(units), [])
                    history_rows += len(units)
                    items, pairs = basket_deltas(units, PURCHASE_WEIGHT)
                    for sku, w in items.items():
                        item_counts[sku] += w
                    for pair, w in pairs.items():
                        pair_counts[pair] += w
                    for sku in units:
                        popularity[(OVERALL, day_of(at), sku)] += 1.0
                await uow.commit()
        pairs_list = list(pair_counts.items())
        for start in range(0, len(pairs_list), PAIRS_PER_TRANSACTION):
            async with deps.uow() as uow:
                part = dict(pairs_list[start : start + PAIRS_PER_TRANSACTION])
                await uow.add_cooccurrence(item_counts if start == 0 else {}, part)
                await uow.commit()
        async with deps.uow() as uow:
            await uow.add_popularity(popularity)
            await uow.commit()
        return history_rows, len(pair_counts)
    finally:
        await resources.close()


async def train_retail(settings: Settings) -> tuple[float, int, int]:
    """`backcrm train recommend` on the loaded store: (seconds, customers, items)."""
    from libs.runtime import Resources
    from services.recommend.app import train_now

    resources = Resources.open(settings)
    try:
        started = time.perf_counter()
        _, model = await train_now(resources)
        return time.perf_counter() - started, len(model.customers), len(model.items)
    finally:
        await resources.close()


# ---------------------------------------------------------------- requests


def _showcase() -> pb.Showcase:
    return pb.Showcase(
        name="bench for you",
        strategies=[
            pb.StrategyWeight(strategy=pb.STRATEGY_PERSONAL, weight=0.4),
            pb.StrategyWeight(strategy=pb.STRATEGY_BOUGHT_TOGETHER, weight=0.4),
            pb.StrategyWeight(strategy=pb.STRATEGY_POPULAR, weight=0.2),
        ],
        filters=pb.ShowcaseFilters(exclude_purchased=True, exclude_in_cart=True),
        max_per_category=3,
        fallback=[pb.STRATEGY_POPULAR, pb.STRATEGY_NEW],
    )


def _together_showcase() -> pb.Showcase:
    return pb.Showcase(
        name="bench bought together",
        strategies=[pb.StrategyWeight(strategy=pb.STRATEGY_BOUGHT_TOGETHER, weight=1.0)],
        filters=pb.ShowcaseFilters(exclude_in_cart=True),
    )


def recommendation_requests(showcase_id: str, data: RetailData) -> list[bytes]:
    """CUSTOMERS customers of the file (seeded sample); one in three with a cart of 2 items of
    the catalogue drawn at random."""
    rng = random.Random(11)
    customers = rng.sample(data.customers, min(CUSTOMERS, len(data.customers)))
    skus = [i.sku for i in data.items]
    bodies = []
    for n, customer in enumerate(customers):
        context = common_pb2.Context(channel=common_pb2.CHANNEL_WEB)
        if n % 3 == 0:
            context.cart.extend(
                common_pb2.CartLine(sku=sku, quantity=1) for sku in rng.sample(skus, 2)
            )
        bodies.append(
            pb.GetRecommendationsRequest(
                customer=common_pb2.CustomerRef(customer_id=customer),
                showcase_id=showcase_id,
                context=context,
                limit=LIMIT,
            ).SerializeToString()
        )
    return bodies


def _cycle(bodies: Sequence[bytes]) -> Any:
    return itertools.cycle(bodies).__next__


async def _probe(channel: grpc.aio.Channel, body: bytes) -> pb.GetRecommendationsResponse:
    reply = await channel.unary_unary(GET)(body, metadata=ADMIN_AUTH, timeout=30)
    return pb.GetRecommendationsResponse.FromString(reply)


async def _create(channel: grpc.aio.Channel, showcase: pb.Showcase) -> str:
    stub = pb_grpc.RecommendServiceStub(channel)
    reply = await stub.CreateShowcase(
        pb.CreateShowcaseRequest(showcase=showcase), metadata=ADMIN_AUTH
    )
    return str(reply.showcase.showcase_id)


# ---------------------------------------------------------------- measurements


async def _measurements(
    opts: Any, backend: str, server: Any, data: RetailData
) -> tuple[list[Any], list[str], str]:
    from tests.load.bench import measure_rows

    channel = open_channel(server.address)
    rows: list[Any] = []
    notes: list[str] = []
    try:
        showcase_id = await _create(channel, _showcase())
        together_id = await _create(channel, _together_showcase())
        bodies = recommendation_requests(showcase_id, data)
        # every body once: each process keeps its seeds' related items; a warm one is measured
        answers = [await _probe(channel, body) for body in bodies]
        size = sum(len(a.SerializeToString()) for a in answers) // len(answers)
        full = sum(1 for a in answers if len(a.items) == LIMIT)
        reasons: dict[str, int] = defaultdict(int)
        for answer in answers:
            for item in answer.items:
                reasons[pb.Strategy.Name(item.reason.strategy).removeprefix("STRATEGY_")] += 1
        mix = ", ".join(f"{k} {v}" for k, v in sorted(reasons.items(), key=lambda kv: -kv[1]))
        note = (
            f"{len(data.items):,} items, {len(bodies)} customers of the file (1/3 with a "
            f"2-item cart), limit {LIMIT}, warm; {full}/{len(answers)} shelves full; reasons: {mix}"
        )
        target = Target(f"GetRecommendations limit {LIMIT}", GET, _cycle(bodies), ADMIN_AUTH)
        rows += await measure_rows(channel, target, opts, backend, server.pid, size, note)
    finally:
        await channel.close()
    return rows, notes, together_id


def _item_message(item: Any, available: bool) -> pb.Item:
    return pb.Item(
        sku=item.sku,
        title=item.title,
        category=item.category,
        price=common_pb2.Money(currency=item.currency, units_micros=item.price_micros),
        available=available,
    )


def _most_bought(data: RetailData) -> str:
    counts: dict[str, int] = defaultdict(int)
    for _, _, units in data.baskets:
        for sku in units:
            counts[sku] += 1
    return min(counts, key=lambda sku: (-counts[sku], sku))


async def measure_unavailable(
    backend: str, writer_address: str, reader_address: str, together_id: str, data: RetailData
) -> PauseResult:
    """PAUSE_TRIALS times: the top item of the reader's "bought together" shelf for a cart of
    the file's most bought item is made available (and seen on the reader's shelf), then
    unavailable by `UpsertItems` on the writer; shelves from the reader, back to back, until
    one no longer has it. The figure is the time from the upsert returning to the end of the
    last shelf that still had it (0 when none)."""
    result = PauseResult(backend)
    writer, reader = open_channel(writer_address), open_channel(reader_address)
    cart = _most_bought(data)
    body = pb.GetRecommendationsRequest(
        showcase_id=together_id,
        context=common_pb2.Context(cart=[common_pb2.CartLine(sku=cart, quantity=1)]),
        limit=LIMIT,
    ).SerializeToString()
    items = {i.sku: i for i in data.items}
    try:
        stub = pb_grpc.RecommendServiceStub(writer)
        first = await _probe(reader, body)
        if not first.items:
            result.note = f"the reader's bought-together shelf for {cart} is empty"
            return result
        probe = first.items[0].sku

        async def shows() -> bool:
            return any(i.sku == probe for i in (await _probe(reader, body)).items)

        for trial in range(PAUSE_TRIALS):
            await stub.UpsertItems(
                pb.UpsertItemsRequest(items=[_item_message(items[probe], True)]),
                metadata=ADMIN_AUTH,
            )
            if await last_seen(shows, present=True, timeout=30) is None:
                result.note = f"trial {trial}: the reader never showed {probe} again"
                break
            await stub.UpsertItems(
                pb.UpsertItemsRequest(items=[_item_message(items[probe], False)]),
                metadata=ADMIN_AUTH,
            )
            upserted_at = time.perf_counter()
            last = await last_seen(shows, present=False, timeout=30)
            if last is None:
                result.note = f"trial {trial}: the reader still showed {probe} after 30 s"
                break
            result.seconds.append(max(last - upserted_at, 0.0))
    finally:
        await writer.close()
        await reader.close()
    result.seconds.sort()
    return result


def bench_backend(
    opts: Any, backend: str, workdir: Path, echo: dict[int, Measurement], data: RetailData
) -> tuple[list[Any], list[str], PauseResult | None, TrainResult]:
    from tests.load.bench import fresh_store, server_process

    suite = ["--suite", "recommend"]
    pause = None
    with fresh_store(backend, workdir) as settings:
        progress(f"[{backend}] loading the Online Retail file into recommend (minutes) ...")
        started = time.perf_counter()
        history_rows, pairs = asyncio.run(load_retail(settings, data))
        notes = [
            f"recommend, {backend}: {len(data.items):,} items, {len(data.baskets):,} invoices "
            f"of {len(data.customers):,} customers ({history_rows:,} history rows, "
            f"{pairs:,} distinct pairs) loaded in {time.perf_counter() - started:.0f} s"
        ]
        progress(f"[{backend}] training the personal model on the whole file ...")
        seconds, customers, items = asyncio.run(train_retail(settings))
        training = TrainResult(
            backend,
            seconds,
            customers,
            items,
            note="read every history + ALS fit (64 factors, 15 iterations, one thread) + store",
        )
        with server_process(
            f"{backend}-recommend", settings, workdir, opts.cprofile_dir, suite
        ) as s:
            progress(f"[{backend}] recommend suite (server pid {s.pid}) ...")
            rows, more, together_id = asyncio.run(_measurements(opts, backend, s, data))
            notes += more
            if any(r.m.errors for r in rows):
                progress(f"[{backend}] calls failed; server log:\n{s.tail(60)}")
            if backend == "postgres":
                pause = _bench_unavailable(settings, workdir, s.address, together_id, data)
    for row in rows:
        row.echo = echo.get(row.m.concurrency)
    return rows, notes, pause, training


def _bench_unavailable(
    settings: Settings, workdir: Path, writer: str, together_id: str, data: RetailData
) -> PauseResult:
    from tests.load.bench import server_process

    suite = ["--suite", "recommend"]
    with server_process("postgres-recommend-2", settings, workdir, None, suite) as reader:
        progress(
            f"[postgres] unavailable → shelf on a second recommend process (pid {reader.pid}) ..."
        )
        return asyncio.run(
            measure_unavailable("postgres", writer, reader.address, together_id, data)
        )


def run_recommend(opts: Any, workdir: Path, echo: dict[int, Measurement]) -> RecommendResults:
    results = RecommendResults()
    if not opts.retail_file.exists():
        results.notes.append(f"recommend: skipped, {opts.retail_file} is missing")
        return results
    progress(f"[recommend] reading {opts.retail_file.name} ...")
    data = read_retail(opts.retail_file, time.time())
    for backend in opts.backends:
        rows, notes, pause, training = bench_backend(opts, backend, workdir, echo, data)
        results.rows += rows
        results.notes += notes
        results.trainings.append(training)
        if pause is not None:
            results.pauses.append(pause)
    return results


# ---------------------------------------------------------------- report


def recommend_targets(results: RecommendResults) -> list[str]:
    lines = []
    for row in results.rows:
        m, e = row.m, row.echo
        if m.name.startswith("GetRecommendations") and e is not None and m.concurrency == 16:
            ratio = m.calls_per_second / e.calls_per_second if e.calls_per_second else 0.0
            lines.append(
                f"- {m.name} ≥ {RATIO_TARGET}x echo throughput, {row.backend}, c=16: "
                f"{ratio:.2f}x ({m.calls_per_second:,.0f} calls/s, p50 {m.p50_ms:.1f} ms, "
                f"p99 {m.p99_ms:.1f} ms) — {verdict(ratio >= RATIO_TARGET and not m.errors)}"
            )
    for pause in results.pauses:
        lines.append(
            f"- UpsertItems (unavailable) → last shelf showing it from another recommend "
            f"process ≤ {PAUSE_TARGET_SECONDS:g} s, {pause.backend}: worst {pause.worst} of "
            f"{len(pause.seconds)} trials — {verdict(pause.passed)}"
        )
    return lines


def render_recommend(results: RecommendResults) -> list[str]:
    lines = []
    if results.trainings:
        lines += [
            "",
            "### Recommend: training the personal model on the whole Online Retail file",
            "",
            "| backend | seconds | customers | items |",
            "|---|---:|---:|---:|",
        ]
        for t in results.trainings:
            seconds = f"{t.seconds:.1f}" if t.seconds is not None else "n/a"
            lines.append(f"| {t.backend} | {seconds} | {t.customers:,} | {t.items:,} |")
    pauses = pause_table("Recommend: unavailable → last shelf on another process", results.pauses)
    return [*lines, *pauses, ""]


def recommend_json(results: RecommendResults) -> dict[str, Any]:
    out = pause_json(results.pauses, results.notes)
    out["trainings"] = [t.__dict__ for t in results.trainings]
    return out

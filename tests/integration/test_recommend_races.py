"""The recommend service for real (SQLite and PostgreSQL + Redis): catalogue changes reaching
every process, behaviour counted exactly once under concurrent consumers and redeliveries,
erasure and merges racing purchases.

Two RecommendApp instances on one database play two recommend processes: on PostgreSQL +
Redis they share the Redis bus; on the embedded default each has its own in-process bus (so
the version check is what tells the second one). Races start their calls together
(asyncio.gather with a random few milliseconds of stagger) and run many trials; after each,
invariants are checked, never times.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from backcrm.common.v1 import common_pb2
from backcrm.profile.v1 import profile_service_pb2 as profile_pb
from sqlalchemy import func, select

from libs.protoutil import ts
from libs.runtime import Peers, Resources
from libs.topics import PROFILE_CHANGED, PROFILE_DELETED, PROFILE_MERGED
from services.recommend import handlers as h
from services.recommend.app import RecommendApp
from services.recommend.cooccurrence import CoOccurrence
from services.recommend.domain import Item, Showcase
from services.recommend.mix import Strategy
from services.recommend.models import HistoryRow, ItemCountRow, ItemRow, ModelRow, PairRow
from services.recommend.ports import Behaviour
from tests.support import Backend, count_rows, eventually, soon

pytestmark = pytest.mark.integration


def uid() -> str:
    return uuid.uuid4().hex[:12]


@dataclass
class World:
    apps: list[RecommendApp]
    resources: Resources

    def deps(self, i: int) -> h.RecommendDeps:
        return self.apps[i % len(self.apps)].deps

    async def serves_new(self, i: int, sku: str, showcase: Showcase) -> bool:
        shelf = await h.recommend(self.deps(i), "", showcase.showcase_id, h.RequestContext(), 100)
        return sku in {m.sku for m in shelf.items}

    async def pair(self, a: str, b: str) -> float:
        async with self.resources.sessions() as s:
            return float(
                await s.scalar(
                    select(func.coalesce(func.sum(PairRow.weight), 0.0)).where(
                        PairRow.sku == a, PairRow.other == b
                    )
                )
                or 0.0
            )

    async def count(self, sku: str) -> float:
        async with self.resources.sessions() as s:
            return float(
                await s.scalar(select(ItemCountRow.weight).where(ItemCountRow.sku == sku)) or 0.0
            )

    async def units(self, customer: str, sku: str) -> float:
        async with self.resources.sessions() as s:
            return float(
                await s.scalar(
                    select(HistoryRow.purchased).where(
                        HistoryRow.customer_id == customer, HistoryRow.sku == sku
                    )
                )
                or 0.0
            )


async def _world(backend: Backend, replicas: int) -> AsyncIterator[World]:
    settings = backend.settings.model_copy(update={"recommend_train_seconds": 0.0})
    opened = [Resources.open(settings) for _ in range(replicas)]
    peers = [Peers(r.settings, "token", lambda: "127.0.0.1:1") for r in opened]
    apps = [RecommendApp.build(r, p) for r, p in zip(opened, peers, strict=True)]
    for app in apps:
        await app.start()
    try:
        yield World(apps, opened[0])
    finally:
        for app in apps:
            await app.stop()
        for p in peers:
            await p.close()
        for r in opened:
            await r.close()


@pytest.fixture
async def two(backend: Backend) -> AsyncIterator[World]:
    """Two recommend processes on one database, in every backend (on the embedded default only
    one of them writes: it is one process by design)."""
    async for world in _world(backend, 2):
        yield world


@pytest.fixture
async def racing(backend: Backend) -> AsyncIterator[World]:
    """Two processes on PostgreSQL; one, with concurrent callers, on the embedded default."""
    async for world in _world(backend, 2 if backend.name == "postgres" else 1):
        yield world


async def test_an_unavailable_item_stops_appearing_in_every_process(two: World) -> None:
    showcase = await h.create_showcase(
        two.deps(0), Showcase("", "new", ((Strategy.NEW, 1.0),), fallback=(Strategy.NEW,))
    )
    for _ in range(3):
        sku = f"sku-{uid()}"
        await h.upsert_items(two.deps(0), [Item(sku, category="c")])
        assert await two.serves_new(0, sku, showcase)  # the writing process: at once
        await eventually(lambda s=sku: two.serves_new(1, s, showcase), "the other to serve it")
        await h.upsert_items(two.deps(0), [Item(sku, category="c", available=False)])
        assert not await two.serves_new(0, sku, showcase)

        async def gone(s: str = sku) -> bool:
            return not await two.serves_new(1, s, showcase)

        await eventually(gone, "the other process to stop serving it")
        await h.upsert_items(two.deps(1), [Item(sku, category="c")])
        await eventually(lambda s=sku: two.serves_new(0, s, showcase), "serving it again")


async def test_concurrent_upserts_create_each_sku_once(racing: World) -> None:
    for _ in range(10):
        batch = [f"race-{uid()}" for _ in range(5)]
        results = await asyncio.gather(
            *(
                soon(h.upsert_items(racing.deps(i), [Item(s, title=f"t{i}") for s in batch]))
                for i in range(6)
            )
        )
        assert sum(created for created, _ in results) == len(batch)
        assert sum(updated for _, updated in results) == len(batch) * 5
        async with racing.resources.sessions() as s:
            rows = await s.scalar(select(func.count()).where(ItemRow.sku.in_(batch)))
        assert rows == len(batch)


async def test_purchases_count_exactly_once_under_concurrent_redelivery(racing: World) -> None:
    for _ in range(8):
        a, b, c = (f"p-{uid()}" for _ in range(3))
        customers = [f"c-{uid()}" for _ in range(6)]
        events = [
            Behaviour(f"ev-{uid()}", who, 1_700_000_000.0, {a: 1.0, b: 2.0, c: 1.0})
            for who in customers
        ]
        # every event delivered three times, to both processes, all at once
        deliveries = [e for e in events for _ in range(3)]
        random.shuffle(deliveries)
        counted = await asyncio.gather(
            *(soon(h.record_behaviour(racing.deps(i), e)) for i, e in enumerate(deliveries))
        )
        assert sum(counted) == len(events)
        assert await racing.pair(a, b) == len(events) == await racing.pair(b, a)
        assert await racing.count(a) == len(events)
        for who in customers:
            assert await racing.units(who, b) == 2.0


async def test_batches_count_each_purchase_once_under_concurrent_redelivery(
    racing: World,
) -> None:
    """As the consumer takes profile.changed: batches (one unit of work each) from both
    processes at once, every event in three of them (twice in some), 8 trials."""
    for _ in range(8):
        a, b = (f"p-{uid()}" for _ in range(2))
        customers = [f"c-{uid()}" for _ in range(4)]
        events = [
            Behaviour(f"ev-{uid()}", who, 1_700_000_000.0 + n, {a: 1.0, b: 2.0})
            for n, who in enumerate(customers * 2)  # each customer twice
        ]
        batches = [random.sample(events, random.randint(1, len(events))) for _ in range(5)]
        batches += [[e, e] for e in events[:2]]  # a redelivery inside one batch
        for e in events:
            batches.append([e])  # so that every event is in at least one batch
        random.shuffle(batches)
        counted = await asyncio.gather(
            *(soon(h.record_behaviours(racing.deps(i), batch)) for i, batch in enumerate(batches))
        )
        assert sum(counted) == len(events)
        assert await racing.pair(a, b) == len(events) == await racing.pair(b, a)
        assert await racing.count(a) == len(events)
        for who in customers:
            assert await racing.units(who, b) == 4.0


async def test_an_erasure_wins_over_purchases_counted_meanwhile(racing: World) -> None:
    for _ in range(8):
        who = f"gone-{uid()}"
        buys = [Behaviour(f"ev-{uid()}", who, 1_700_000_000.0, {f"s{n}": 1.0}) for n in range(5)]
        await asyncio.gather(
            *(soon(h.record_behaviour(racing.deps(i), e)) for i, e in enumerate(buys)),
            soon(h.erase_customer(racing.deps(1), who)),
        )
        assert await count_rows(racing.resources.sessions, (HistoryRow,), who) == 0
        late = Behaviour(f"ev-{uid()}", who, 1_700_000_000.0, {"late": 1.0})
        assert not await h.record_behaviour(racing.deps(0), late)
        assert await count_rows(racing.resources.sessions, (HistoryRow,), who) == 0


async def test_a_merge_racing_purchases_keeps_every_unit(racing: World) -> None:
    for _ in range(8):
        source, target = f"src-{uid()}", f"tgt-{uid()}"
        await h.record_behaviour(racing.deps(0), Behaviour(f"ev-{uid()}", source, 1.0, {"x": 1.0}))
        buys = [
            Behaviour(f"ev-{uid()}", who, 2.0, {"x": 1.0})
            for who in (source, target, source, target)
        ]
        await asyncio.gather(
            *(soon(h.record_behaviour(racing.deps(i), e)) for i, e in enumerate(buys)),
            soon(h.merge_customers(racing.deps(1), source, target)),
            soon(h.merge_customers(racing.deps(0), source, target)),  # redelivered
        )
        assert await racing.units(target, "x") == 5.0
        assert await count_rows(racing.resources.sessions, (HistoryRow,), source) == 0


async def test_profile_events_on_the_bus_feed_the_shelf_and_erasure(two: World) -> None:
    tea, cup = f"tea-{uid()}", f"cup-{uid()}"
    await h.upsert_items(two.deps(0), [Item(tea, category="drinks"), Item(cup, category="k")])
    showcase = await h.create_showcase(
        two.deps(0), Showcase("", "basket", ((Strategy.BOUGHT_TOGETHER, 1.0),), fallback=())
    )
    who = f"c-{uid()}"
    order = profile_pb.Event(
        event_id=f"ev-{uid()}",
        customer=common_pb2.CustomerRef(customer_id=who),
        type=profile_pb.EVENT_TYPE_PURCHASE,
        occurred_at=ts(1_700_000_000.0),
        order=common_pb2.Order(
            order_id="o1",
            lines=[
                common_pb2.CartLine(sku=tea, quantity=1),
                common_pb2.CartLine(sku=cup, quantity=2),
            ],
        ),
    )
    change = profile_pb.ProfileChanged(customer_id=who, events=[order])
    bus = two.apps[0].bus
    await bus.publish(PROFILE_CHANGED.name, [PROFILE_CHANGED.pack(change)])
    await bus.publish(PROFILE_CHANGED.name, [PROFILE_CHANGED.pack(change)])  # redelivered

    async def served() -> bool:
        shelf = await h.recommend(
            two.deps(0), "", showcase.showcase_id, h.RequestContext(cart=(tea,)), 5
        )
        top = shelf.items[0]
        return (top.sku, top.strategy, top.because_sku) == (cup, Strategy.BOUGHT_TOGETHER, tea)

    await eventually(served, "a new pair to be served")
    assert await two.pair(tea, cup) == 1.0 == await two.pair(cup, tea)  # once, redelivered
    other = f"o-{uid()}"
    merged = profile_pb.ProfilesMerged(source_customer_id=who, target_customer_id=other)
    await bus.publish(PROFILE_MERGED.name, [PROFILE_MERGED.pack(merged)])

    async def moved() -> bool:
        return await two.units(other, cup) == 2.0

    await eventually(moved, "the history to move to the merge target")
    deleted = profile_pb.ProfileDeleted(customer_id=other)
    await bus.publish(PROFILE_DELETED.name, [PROFILE_DELETED.pack(deleted)])

    async def erased() -> bool:
        return await count_rows(two.resources.sessions, (HistoryRow,), other) == 0

    await eventually(erased, "the customer's history to go")


async def test_a_trained_model_is_stored_and_loaded_by_another_process(two: World) -> None:
    items = [Item(f"m{n}", category="c") for n in range(6)]
    await h.upsert_items(two.deps(0), items)
    for n in range(10):
        await h.record_behaviour(
            two.deps(0),
            Behaviour(f"ev-{uid()}", f"t{n}", 1.0, {f"m{n % 3}": 1.0, f"m{n % 3 + 1}": 1.0}),
        )
    first, _ = await h.train(two.deps(0))
    second, _ = await h.train(two.deps(0))
    version, _ = await h.train(two.deps(0))
    assert first < second < version
    async with two.resources.sessions() as s:
        kept = list(await s.scalars(select(ModelRow.version).order_by(ModelRow.version)))
    assert kept == [second, version]  # older versions pruned
    assert await h.load_model(two.deps(1))
    assert two.deps(1).models.version == version
    model = two.deps(1).models.model
    assert model is not None and model.knows("t0")


async def test_concurrent_showcase_updates_of_different_fields_both_stick(racing: World) -> None:
    for _ in range(8):
        showcase = await h.create_showcase(
            racing.deps(0), Showcase("", "s", ((Strategy.POPULAR, 1.0),))
        )
        await asyncio.gather(
            soon(h.update_showcase(racing.deps(0), showcase.showcase_id, {"name": "renamed"})),
            soon(h.update_showcase(racing.deps(1), showcase.showcase_id, {"max_per_category": 2})),
            soon(h.update_showcase(racing.deps(0), showcase.showcase_id, {"excludes": ("x",)})),
        )
        got = await h.get_showcase(racing.deps(1), showcase.showcase_id)
        assert (got.name, got.max_per_category, got.excludes) == ("renamed", 2, ("x",))


async def test_one_process_per_period_takes_the_training_lease(racing: World) -> None:
    base = racing.deps(0).clock() + 1_000_000.0  # later than any lease taken so far

    async def take(i: int, now: float) -> bool:
        async with racing.deps(i).uow() as uow:
            taken = await uow.lease_training(now, now + 5_000.0)
            await uow.commit()
            return taken

    for trial in range(8):
        now = base + 10_000.0 * trial
        taken = await asyncio.gather(*(soon(take(i, now)) for i in range(6)))
        assert sum(taken) == 1


async def _cooccurrence(
    world: World, skus: set[str]
) -> tuple[dict[str, float], dict[tuple[str, str], float]]:
    """The stored counts of `skus` and their pairs (other tests share the database)."""
    async with world.resources.sessions() as s:
        counts = {
            sku: float(w)
            for sku, w in await s.execute(select(ItemCountRow.sku, ItemCountRow.weight))
            if sku in skus
        }
        pairs = {
            (a, b): float(w)
            for a, b, w in await s.execute(select(PairRow.sku, PairRow.other, PairRow.weight))
            if a in skus or b in skus
        }
    return counts, pairs


def _incremental(
    baskets: list[dict[str, float]],
) -> tuple[dict[str, float], dict[tuple[str, str], float]]:
    """What counting these purchases one by one adds up to (the pure module's arithmetic)."""
    co = CoOccurrence()
    for basket in baskets:
        co.add_basket(s for s, units in basket.items() if units > 0)
    pairs = {(a, b): w for a, row in co.pairs.items() for b, w in row.items()}
    return co.item_counts, pairs


async def test_a_rebuild_drops_an_erased_customers_pairs_and_equals_the_incremental_counts(
    racing: World,
) -> None:
    """The scheduled full rebuild recounts the co-occurrence from the kept baskets: after an
    erasure the erased customer's pairs are gone, the counts equal counting the others'
    purchases incrementally, and purchases counted while a rebuild runs are neither lost nor
    counted twice (8 trials, the rebuild racing 6 purchases from both processes)."""
    deps = racing.deps(0)
    gone, kept = f"gone-{uid()}", f"kept-{uid()}"
    showcase = await h.create_showcase(
        deps, Showcase("", "basket", ((Strategy.BOUGHT_TOGETHER, 1.0),), fallback=())
    )
    secret, tea, cup = f"secret-{uid()}", f"tea-{uid()}", f"cup-{uid()}"
    await h.upsert_items(deps, [Item(sku, category="c") for sku in (secret, tea, cup)])
    bought: list[dict[str, float]] = []
    for who, basket in ((gone, {secret: 1.0, tea: 1.0}), (kept, {tea: 2.0, cup: 1.0})):
        assert await h.record_behaviour(deps, Behaviour(f"ev-{uid()}", who, 1.0, basket))
        if who == kept:
            bought.append(basket)
    assert (await racing.pair(tea, secret)) == 1.0
    mine = {secret, tea, cup} | {f"s{n}-{tea}" for n in range(3)}
    await h.rebuild_cooccurrence(deps)
    assert await _cooccurrence(racing, mine) == _incremental([{secret: 1.0, tea: 1.0}, *bought])

    await h.erase_customer(deps, gone)
    shelf = await h.recommend(deps, "", showcase.showcase_id, h.RequestContext((tea,)), 10)
    assert secret in {m.sku for m in shelf.items}  # the anonymous counts stay until the rebuild
    await h.rebuild_cooccurrence(deps)
    assert await racing.pair(tea, secret) == 0.0 and await racing.count(secret) == 0.0
    assert await _cooccurrence(racing, mine) == _incremental(bought)
    for i in range(2):  # every process: the moved counts reload the kept lists
        context = h.RequestContext((tea,))
        shelf = await h.recommend(racing.deps(i), "", showcase.showcase_id, context, 10)
        together = [m.sku for m in shelf.items if m.strategy is Strategy.BOUGHT_TOGETHER]
        assert together == [cup]

    for _ in range(8):
        buys = [
            Behaviour(f"ev-{uid()}", f"c-{uid()}", 1.0, {tea: 1.0, f"s{n % 3}-{tea}": 1.0})
            for n in range(6)
        ]
        await asyncio.gather(
            *(soon(h.record_behaviour(racing.deps(i), e)) for i, e in enumerate(buys)),
            soon(h.rebuild_cooccurrence(racing.deps(1))),
        )
        bought += [dict(e.purchased) for e in buys]
        assert await _cooccurrence(racing, mine) == _incremental(bought)

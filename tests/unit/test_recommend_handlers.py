"""The recommend use cases against the in-memory fakes: catalogue, showcases, behaviour,
shelves, similar items, the personal model."""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, field, replace

import pytest
from backcrm.common.v1 import common_pb2
from backcrm.recommend.v1 import recommend_service_pb2 as pb
from google.protobuf import field_mask_pb2

from libs.errors import InvalidArgument, NotFound
from services.recommend import handlers as h
from services.recommend.catalog import CatalogueCache
from services.recommend.domain import Item, Showcase
from services.recommend.mix import Strategy
from services.recommend.personal import Hyper
from services.recommend.ports import Behaviour
from services.recommend.translate import (
    context_in,
    items_in,
    limit_in,
    showcase_in,
    showcase_patch_in,
)
from tests.unit.fakes import FakeClock
from tests.unit.recommend_fakes import FakeRecommendStore, FakeRecommendUnitOfWork, FakeSignals

T0 = 1_700_000_000.0


@dataclass
class World:
    store: FakeRecommendStore = field(default_factory=FakeRecommendStore)
    clock: FakeClock = field(default_factory=lambda: FakeClock(T0))
    signals: FakeSignals = field(default_factory=FakeSignals)
    deps: h.RecommendDeps = field(init=False)
    events: int = 0

    def __post_init__(self) -> None:
        def uow() -> FakeRecommendUnitOfWork:
            return FakeRecommendUnitOfWork(self.store)

        self.deps = h.RecommendDeps(
            uow=uow,
            clock=self.clock,
            signals=self.signals,
            cache=CatalogueCache(uow),
            popular=h.PopularBoard(ttl=0.0),
            hyper=Hyper(factors=2, iterations=10, regularization=0.1),  # two taste groups
        )

    async def items(self, *specs: tuple[str, str], available: bool = True) -> None:
        await h.upsert_items(
            self.deps,
            [Item(sku, title=sku, category=cat, available=available) for sku, cat in specs],
        )

    async def showcase(self, **changes: object) -> Showcase:
        fields: dict[str, object] = {
            "showcase_id": "",
            "name": "for you",
            "strategies": ((Strategy.BOUGHT_TOGETHER, 1.0),),
            **changes,
        }
        return await h.create_showcase(self.deps, Showcase(**fields))  # type: ignore[arg-type]

    async def buy(self, customer: str, *skus: str, event_id: str = "") -> bool:
        self.events += 1
        return await h.record_behaviour(
            self.deps,
            Behaviour(event_id or uuid.uuid4().hex, customer, self.clock(), {s: 1.0 for s in skus}),
        )

    async def view(self, customer: str, sku: str) -> bool:
        self.events += 1
        return await h.record_behaviour(
            self.deps, Behaviour(uuid.uuid4().hex, customer, self.clock(), {}, (sku,))
        )

    async def shelf(
        self,
        customer: str,
        showcase: Showcase,
        cart: tuple[str, ...] = (),
        limit: int = 10,
        current: str = "",
    ) -> h.Shelf:
        context = h.RequestContext(cart=cart, current_sku=current)
        return await h.recommend(self.deps, customer, showcase.showcase_id, context, limit)


def skus(shelf: h.Shelf) -> list[str]:
    return [m.sku for m in shelf.items]


CATALOGUE = [
    ("tea", "drinks"),
    ("cup", "kitchen"),
    ("saucer", "kitchen"),
    ("pen", "office"),
    ("ink", "office"),
    ("pad", "office"),
    ("mug", "kitchen"),
    ("jam", "food"),
    ("bread", "food"),
    ("milk", "drinks"),
    ("lamp", "home"),
    ("rug", "home"),
]


async def stocked() -> World:
    w = World()
    await w.items(*CATALOGUE)
    return w


# ---------------------------------------------------------------------------------- catalogue


async def test_upsert_creates_then_updates_and_keeps_the_release_time() -> None:
    w = World()
    assert await h.upsert_items(w.deps, [Item("a"), Item("b")]) == (2, 0)
    w.clock.advance(60)
    assert await h.upsert_items(w.deps, [Item("a", title="A"), Item("c")]) == (1, 1)
    page, following = await h.list_items(w.deps, "", None, 2)
    assert [i.sku for i in page] == ["a", "b"] and following == "b"
    assert page[0].title == "A" and page[0].released_at == T0 and page[0].updated_at == T0 + 60
    rest, last = await h.list_items(w.deps, "", following, 2)
    assert [i.sku for i in rest] == ["c"] and last is None


def test_items_are_validated_one_by_one_naming_the_field() -> None:
    good = pb.Item(sku="ok", price=common_pb2.Money(currency="GBP", units_micros=1_500_000))
    bad_price = pb.Item(sku="dear", price=common_pb2.Money(currency="GBP", units_micros=-1))
    bad_currency = pb.Item(sku="odd", price=common_pb2.Money(currency="pounds", units_micros=1))
    no_sku = pb.Item(title="nameless")
    accepted, rejected = items_in([good, bad_price, bad_currency, no_sku])
    assert [i.sku for i in accepted] == ["ok"] and accepted[0].price_micros == 1_500_000
    assert [(r.index, r.field) for r in rejected] == [
        (1, "items[1].price.units_micros"),
        (2, "items[2].price.currency"),
        (3, "items[3].sku"),
    ]
    with pytest.raises(InvalidArgument) as err:
        items_in([pb.Item(sku="x"), pb.Item(sku="x")])
    assert err.value.violations[0][0] == "items[1].sku"
    with pytest.raises(InvalidArgument):
        items_in([pb.Item(sku=str(i)) for i in range(1001)])
    with pytest.raises(InvalidArgument) as err:
        items_in([bad_price, no_sku])  # nothing acceptable: wrong as a whole
    assert [f for f, _ in err.value.violations] == ["items[0].price.units_micros", "items[1].sku"]


# ---------------------------------------------------------------------------------- showcases


def _showcase_pb(**changes: object) -> pb.Showcase:
    message = pb.Showcase(
        name="home",
        strategies=[pb.StrategyWeight(strategy=pb.STRATEGY_POPULAR, weight=1.0)],
    )
    for key, value in changes.items():
        setattr(message, key, value)
    return message


@pytest.mark.parametrize(
    ("weight", "field"),
    [
        (math.nan, "showcase.strategies[0].weight"),
        (math.inf, "showcase.strategies[0].weight"),
        (0.0, "showcase.strategies[0].weight"),
        (1e300, "showcase.strategies[0].weight"),
    ],
)
def test_showcase_weights_must_be_finite_and_positive(weight: float, field: str) -> None:
    message = pb.Showcase(
        name="x", strategies=[pb.StrategyWeight(strategy=pb.STRATEGY_POPULAR, weight=weight)]
    )
    with pytest.raises(InvalidArgument) as err:
        showcase_in(message)
    assert err.value.violations[0][0] == field


def test_showcase_validation_names_fields() -> None:
    cases = {
        "showcase.name": pb.Showcase(
            strategies=[pb.StrategyWeight(strategy=pb.STRATEGY_NEW, weight=1)]
        ),
        "showcase.strategies": pb.Showcase(name="x"),
        "showcase.strategies[1].strategy": pb.Showcase(
            name="x",
            strategies=[
                pb.StrategyWeight(strategy=pb.STRATEGY_NEW, weight=1),
                pb.StrategyWeight(strategy=pb.STRATEGY_NEW, weight=2),
            ],
        ),
        "showcase.segment_boosts['vip']": pb.Showcase(
            name="x",
            strategies=[pb.StrategyWeight(strategy=pb.STRATEGY_NEW, weight=1)],
            segment_boosts={"vip": math.nan},
        ),
        "showcase.rules.pins['a']": pb.Showcase(
            name="x",
            strategies=[pb.StrategyWeight(strategy=pb.STRATEGY_NEW, weight=1)],
            rules=pb.ShowcaseRules(pins={"a": 1000}),
        ),
        "showcase.fallback[0]": pb.Showcase(
            name="x",
            strategies=[pb.StrategyWeight(strategy=pb.STRATEGY_NEW, weight=1)],
            fallback=[99],
        ),
    }
    for field_name, message in cases.items():
        with pytest.raises(InvalidArgument) as err:
            showcase_in(message)
        assert err.value.violations[0][0] == field_name, field_name
    with pytest.raises(InvalidArgument) as err:
        limit_in(101)
    assert err.value.violations[0][0] == "limit"


async def test_showcase_crud_and_partial_update() -> None:
    w = World()
    created = await h.create_showcase(w.deps, showcase_in(_showcase_pb()))
    assert created.showcase_id and created.fallback_chain == (Strategy.POPULAR, Strategy.NEW)
    patch = pb.Showcase(
        showcase_id=created.showcase_id,
        name="ignored",
        filters=pb.ShowcaseFilters(exclude_purchased=True, only_available=True),
        max_per_category=2,
    )
    showcase_id, fields = showcase_patch_in(
        patch,
        field_mask_pb2.FieldMask(paths=["filters.exclude_purchased", "max_per_category"]),
    )
    updated = await h.update_showcase(w.deps, showcase_id, fields)
    assert updated.name == "home" and updated.exclude_purchased and not updated.only_available
    assert updated.max_per_category == 2
    assert (await h.get_showcase(w.deps, showcase_id)) == updated
    with pytest.raises(NotFound):
        await h.get_showcase(w.deps, "nope")
    with pytest.raises(InvalidArgument):
        showcase_patch_in(patch, field_mask_pb2.FieldMask(paths=["created_at"]))
    w.clock.advance(1)
    second = await h.create_showcase(w.deps, showcase_in(_showcase_pb(name="two")))
    page, following = await h.list_showcases(w.deps, None, 1)
    assert [s.showcase_id for s in page] == [second.showcase_id] and following is not None
    rest, _ = await h.list_showcases(w.deps, following, 1)
    assert [s.showcase_id for s in rest] == [showcase_id]


# ---------------------------------------------------------------------------------- behaviour


async def test_a_purchase_counts_once_and_a_new_pair_is_served_at_once() -> None:
    w = await stocked()
    showcase = await w.showcase()
    before = await w.shelf("", showcase, cart=("tea",))
    assert Strategy.BOUGHT_TOGETHER not in {m.strategy for m in before.items}
    assert await w.buy("c1", "tea", "cup", event_id="order-1")
    assert not await w.buy("c1", "tea", "cup", event_id="order-1")  # redelivered
    assert w.store.state.pairs[("tea", "cup")] == 1.0
    assert w.store.state.history[("c1", "tea")][0] == 1.0
    shelf = await w.shelf("", showcase, cart=("tea",))
    assert shelf.items[0].sku == "cup"
    assert shelf.items[0].strategy is Strategy.BOUGHT_TOGETHER
    assert shelf.items[0].because_sku == "tea"


async def test_the_cart_changes_the_bought_together_shelf() -> None:
    w = await stocked()
    await w.buy("a", "tea", "cup")
    await w.buy("b", "pen", "ink")
    showcase = await w.showcase(fallback=(Strategy.POPULAR,))
    with_tea = await w.shelf("", showcase, cart=("tea",), limit=1)
    with_pen = await w.shelf("", showcase, cart=("pen",), limit=1)
    assert skus(with_tea) == ["cup"] and skus(with_pen) == ["ink"]
    assert with_pen.items[0].because_sku == "pen"


async def test_views_pair_within_a_session_weighted_lower() -> None:
    w = await stocked()
    await w.view("v", "lamp")
    w.clock.advance(60)
    await w.view("v", "rug")
    assert w.store.state.pairs[("lamp", "rug")] == pytest.approx(0.25)
    w.clock.advance(h.SESSION + 1)
    await w.view("v", "jam")
    assert ("jam", "rug") not in w.store.state.pairs


async def test_related_lists_are_kept_until_the_seeds_count_moves_or_they_age() -> None:
    """A process keeps each seed's related items (PairBoard): a basket or view of the seed
    moves its count and the next request reads its list again; a pair a view session adds to
    an item whose count did not move reaches that item's list when the list ages out."""
    w = await stocked()
    kept = replace(w.deps, pairs=h.PairBoard(ttl=3600.0))
    showcase = await w.showcase()

    async def together(deps: h.RecommendDeps, cart: str) -> list[str]:
        shelf = await h.recommend(deps, "", showcase.showcase_id, h.RequestContext((cart,)), 5)
        return [m.sku for m in shelf.items if m.strategy is Strategy.BOUGHT_TOGETHER]

    await w.view("v", "lamp")
    assert await together(kept, "lamp") == []
    w.clock.advance(60)
    await w.view("v", "rug")  # pairs lamp-rug; moves rug's count, not lamp's
    assert await together(kept, "rug") == ["lamp"]
    assert await together(kept, "lamp") == []
    aged = replace(kept, pairs=h.PairBoard(ttl=0.0))  # the list older than its TTL
    assert await together(aged, "lamp") == ["rug"]
    await w.buy("c", "lamp", "jam")  # moves lamp's count: read again at once
    assert set(await together(kept, "lamp")) == {"rug", "jam"}


async def test_a_rebuild_recounts_baskets_and_view_sessions_without_the_erased() -> None:
    w = await stocked()
    await w.buy("a", "tea", "cup", "saucer")
    await w.buy("b", "tea", "cup")
    await w.view("v", "lamp")
    w.clock.advance(60)
    await w.view("v", "rug")  # joins lamp's session: lamp-rug at a quarter
    await h.record_behaviours(  # a batch, as the consumer takes them
        w.deps,
        [
            Behaviour("batch-1", "c", w.clock(), {"pen": 1.0, "ink": 1.0}),
            Behaviour("batch-2", "b", w.clock(), {"jam": 1.0, "tea": 1.0}),
            Behaviour("batch-1", "c", w.clock(), {"pen": 1.0, "ink": 1.0}),  # redelivered
        ],
    )
    incremental = (dict(w.store.state.counts), dict(w.store.state.pairs))
    assert incremental[1][("pen", "ink")] == 1.0
    # 6 kept: 2 + 2 baskets, 2 views (the first joins an empty session); 6 distinct pairs
    assert await h.rebuild_cooccurrence(w.deps) == (6, 6)
    assert (w.store.state.counts, w.store.state.pairs) == incremental
    await h.erase_customer(w.deps, "a")
    await h.rebuild_cooccurrence(w.deps)
    assert ("tea", "saucer") not in w.store.state.pairs
    assert "saucer" not in w.store.state.counts
    assert w.store.state.pairs[("tea", "cup")] == 1.0  # b's basket stays
    assert w.store.state.pairs[("lamp", "rug")] == pytest.approx(0.25)


async def test_cold_start_gets_a_full_shelf_through_the_fallback_chain() -> None:
    w = await stocked()
    await w.buy("x", "milk")
    await w.buy("y", "milk", "bread")
    showcase = await w.showcase(strategies=((Strategy.PERSONAL, 1.0),))
    shelf = await w.shelf("", showcase, limit=10)
    assert len(shelf.items) == 10
    assert skus(shelf)[:2] == ["milk", "bread"]  # POPULAR first, then NEW
    assert {m.strategy for m in shelf.items} == {Strategy.POPULAR, Strategy.NEW}
    assert len(set(skus(shelf))) == 10


async def test_filters_exclude_purchased_cart_categories_and_unavailable() -> None:
    w = await stocked()
    for customer in ("a", "b", "c"):
        await w.buy(customer, "tea", "cup", "saucer", "mug")
    showcase = await w.showcase(
        exclude_purchased=True, exclude_in_cart=True, categories=("kitchen",), fallback=()
    )
    await w.buy("me", "saucer")
    shelf = await w.shelf("me", showcase, cart=("tea", "cup"))
    assert skus(shelf) == ["mug"]
    await w.items(("mug", "kitchen"), available=False)
    assert skus(await w.shelf("me", showcase, cart=("tea", "cup"))) == []


async def test_a_shelf_is_deterministic_and_explains_itself() -> None:
    w = await stocked()
    await w.buy("a", "tea", "cup", "milk")
    await w.buy("b", "tea", "milk")
    await w.buy("me", "tea")
    showcase = await w.showcase(
        strategies=((Strategy.BOUGHT_TOGETHER, 2.0), (Strategy.POPULAR, 1.0))
    )
    first = await w.shelf("me", showcase)
    assert first.items == (await w.shelf("me", showcase)).items
    assert first.items[0].sku == "milk" and first.items[0].because_sku == "tea"
    assert len(first.items) == len(set(skus(first)))


async def test_popular_in_segment_is_boosted_and_named() -> None:
    w = await stocked()
    showcase = await w.showcase(
        strategies=((Strategy.POPULAR_IN_SEGMENT, 1.0),),
        segment_boosts={"vip": 2.0},
        fallback=(),
    )
    w.signals.members = {"rich": {"vip"}, "me": {"vip"}}
    await w.buy("rich", "lamp")
    await w.buy("poor", "pen")
    shelf = await w.shelf("me", showcase)
    assert skus(shelf)[0] == "lamp" and shelf.items[0].because_segment_id == "vip"
    assert shelf.items[1].strategy is Strategy.POPULAR  # the rest: the default fallback
    w.signals.down = True
    degraded = await w.shelf("me", showcase)
    assert degraded.degraded
    assert Strategy.POPULAR_IN_SEGMENT not in {m.strategy for m in degraded.items}


async def test_rules_pin_and_exclude_and_diversity() -> None:
    w = await stocked()
    for i, sku in enumerate(["cup", "saucer", "mug", "pen"]):
        for n in range(4 - i):
            await w.buy(f"c{sku}{n}", sku)
    showcase = await w.showcase(
        strategies=((Strategy.POPULAR, 1.0),),
        pins={"lamp": 1},
        excludes=("saucer",),
        max_per_category=1,
        fallback=(),
    )
    shelf = await w.shelf("", showcase, limit=3)
    assert skus(shelf) == ["cup", "lamp", "pen"]
    assert shelf.items[1].pinned


async def test_unknown_showcase_and_item() -> None:
    w = await stocked()
    with pytest.raises(NotFound):
        await w.shelf("", Showcase("nope", "x", ()))
    with pytest.raises(NotFound):
        await h.similar_items(w.deps, "nope", 5, Strategy.UNSPECIFIED)


async def test_similar_items_never_itself_nor_unavailable() -> None:
    w = await stocked()
    await w.buy("a", "pen", "ink", "lamp")
    found = await h.similar_items(w.deps, "pen", 10, Strategy.UNSPECIFIED)
    names = [m.sku for m in found.items]
    assert "pen" not in names and names[0] in {"ink", "pad"}
    assert {m.because_sku for m in found.items} == {"pen"}
    assert {"ink", "pad", "lamp"} <= set(names)
    await w.items(("ink", "office"), available=False)
    again = await h.similar_items(w.deps, "pen", 10, Strategy.BOUGHT_TOGETHER)
    assert [m.sku for m in again.items] == ["lamp"]


async def test_erasure_forgets_history_and_wins_over_later_events() -> None:
    w = await stocked()
    await w.buy("gone", "tea", "cup")
    await h.erase_customer(w.deps, "gone")
    assert not any(c == "gone" for c, _ in w.store.state.history)
    assert not await w.buy("gone", "pen", "ink")
    assert not any(c == "gone" for c, _ in w.store.state.history)
    await h.erase_customer(w.deps, "gone")  # idempotent


async def test_merge_joins_histories_and_later_events_follow() -> None:
    w = await stocked()
    await w.buy("cookie", "tea")
    await w.buy("known", "tea", "cup")
    await h.merge_customers(w.deps, "cookie", "known")
    await h.merge_customers(w.deps, "cookie", "known")  # redelivered
    history = w.store.state.history
    assert history[("known", "tea")][0] == 2.0 and ("cookie", "tea") not in history
    await w.buy("cookie", "pen")
    assert w.store.state.history[("known", "pen")][0] == 1.0


def test_context_is_validated() -> None:
    with pytest.raises(InvalidArgument) as err:
        context_in(common_pb2.Context(cart=[common_pb2.CartLine(sku="x" * 201)]))
    assert err.value.violations[0][0] == "context.cart[0].sku"
    assert context_in(common_pb2.Context(current_sku="a")).current_sku == "a"


# ---------------------------------------------------------------------------------- personal


async def test_a_trained_model_serves_and_a_new_customer_is_folded_in() -> None:
    w = World()
    group_a = [f"a{i}" for i in range(8)]
    group_b = [f"b{i}" for i in range(8)]
    await w.items(*[(s, "a") for s in group_a], *[(s, "b") for s in group_b])
    for n in range(12):
        await w.buy(f"ca{n}", *group_a[n % 4 : n % 4 + 4])
        await w.buy(f"cb{n}", *group_b[n % 4 : n % 4 + 4])
    version, model = await h.train(w.deps)
    assert version == 1 and model.knows("ca0")
    other = World(store=w.store)  # another process: loads the stored model
    assert await h.load_model(other.deps) and other.deps.models.version == 1
    assert not await h.load_model(other.deps)
    showcase = await other.showcase(strategies=((Strategy.PERSONAL, 1.0),), fallback=())
    shelf = await other.shelf("ca0", showcase, limit=3)
    assert shelf.items and all(s.startswith("a") for s in skus(shelf))
    await other.buy("newcomer", "b1", "b2")  # new since training: folded in from history
    fresh = await other.shelf("newcomer", showcase, limit=3)
    assert fresh.items and all(s.startswith("b") for s in skus(fresh))
    assert all(m.because_sku in {"b1", "b2"} for m in fresh.items)


async def test_training_lease_lets_one_process_train_per_period() -> None:
    w = await stocked()
    await w.buy("a", "tea", "cup")
    assert await h.train_if_due(w.deps, 3600) == 1
    assert await h.train_if_due(w.deps, 3600) is None
    w.clock.advance(3600)
    assert await h.train_if_due(w.deps, 3600) == 2
    w.clock.advance(3600)
    assert await h.train_if_due(w.deps, 3600) == 3
    assert sorted(w.store.state.models) == [2, 3]  # the previous one kept, older ones pruned

"""The pure recommend model code: co-occurrence, popularity, ALS, the showcase mix."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from services.recommend.cooccurrence import VIEW_WEIGHT, CoOccurrence, basket_deltas
from services.recommend.mix import Candidate, ItemInfo, MixSpec, Rules, Strategy, mix
from services.recommend.personal import Hyper, PersonalModel, fit
from services.recommend.popularity import PopularityCounter, newest, top_from_buckets


def test_cosine_keeps_best_sellers_from_dominating() -> None:
    co = CoOccurrence(shrink=0.0)
    # "milk" is in every basket; "bread" and "butter" go together.
    for _ in range(3):
        co.add_basket(["bread", "butter", "milk"])
    for i in range(30):
        co.add_basket(["milk", f"x{i}"])
    similar = co.similar("bread", 5)
    assert [r.sku for r in similar][:2] == ["butter", "milk"]
    assert similar[0].because_sku == "bread"
    assert co.similarity("bread", "butter") == pytest.approx(1.0)
    assert co.similarity("bread", "milk") < 0.5


def test_incremental_pair_is_served_at_once_and_views_weigh_less() -> None:
    co = CoOccurrence()
    assert co.similar("a", 5) == []
    co.add_basket(["a", "b"])
    assert [r.sku for r in co.similar("a", 5)] == ["b"]
    co.add_basket(["a", "c"], VIEW_WEIGHT)
    ranked = co.similar("a", 5)
    assert [r.sku for r in ranked] == ["b", "c"]


def test_basket_deltas_equal_incremental_counts() -> None:
    items, pairs = basket_deltas(["b", "a", "a", "c", ""])
    assert items == {"a": 1.0, "b": 1.0, "c": 1.0}
    assert pairs == {("a", "b"): 1.0, ("a", "c"): 1.0, ("b", "c"): 1.0}
    left, right = CoOccurrence(), CoOccurrence()
    left.add_basket(["a", "b", "c"])
    right.add_counts(items, pairs)
    assert left == right


def test_recommend_from_seeds_names_the_seed_behind_each_item() -> None:
    co = CoOccurrence()
    co.add_basket(["tea", "cup"])
    co.add_basket(["pen", "ink"])
    out = co.recommend({"tea": 1.0, "pen": 1.0}, 10)
    assert {(r.sku, r.because_sku) for r in out} == {("cup", "tea"), ("ink", "pen")}
    assert co.recommend({"tea": 1.0}, 10, exclude={"cup"}) == []


def test_popularity_window_decay_and_segments() -> None:
    pop = PopularityCounter(window_days=10, half_life_days=1.0)
    pop.add("old", 100, 10.0)  # outside the window on day 120
    pop.add("recent", 119, 2.0, segments=["vip"])
    pop.add("today", 120, 1.5)
    assert [s for s, _ in pop.top(120, 5)] == ["today", "recent"]
    assert [s for s, _ in pop.top(120, 5, "vip")] == ["recent"]
    assert top_from_buckets([("a", 5, 1.0), ("b", 5, 1.0)], 5, 5) == [("a", 1.0), ("b", 1.0)]


def test_newest_ranks_by_release() -> None:
    t = [("a", datetime(2024, 1, 1, tzinfo=UTC)), ("b", datetime(2025, 1, 1, tzinfo=UTC))]
    assert [s for s, _ in newest(t, 5)] == ["b", "a"]


def _triples(seed: int) -> list[tuple[str, str, float]]:
    # Two taste groups: customers c0..c19 buy a*, d0..d19 buy b*.
    rng = random.Random(seed)
    out = []
    for group, prefix in (("c", "a"), ("d", "b")):
        for i in range(20):
            for j in rng.sample(range(10), 5):
                out.append((f"{group}{i}", f"{prefix}{j}", 1.0))
    return out


def test_als_learns_tastes_and_folds_in_new_customers() -> None:
    model = fit(_triples(1), Hyper(factors=8, iterations=10, regularization=0.1))
    assert model.knows("c0") and not model.knows("new")
    for_c0 = model.recommend("c0", {}, 5)
    assert all(r.sku.startswith("a") for r in for_c0)
    # A customer new since training: their history is folded in.
    for_new = model.recommend("new", {"b1": 1.0, "b2": 1.0}, 5, exclude={"b1", "b2"})
    assert all(r.sku.startswith("b") for r in for_new[:3])
    assert all(r.because_sku in {"b1", "b2"} for r in for_new)
    assert model.recommend("nobody", {}, 5) == []


def test_als_model_survives_bytes_and_is_deterministic() -> None:
    hyper = Hyper(factors=8, iterations=5)
    model = fit(_triples(2), hyper)
    again = PersonalModel.from_bytes(model.to_bytes())
    assert again.recommend("d3", {"b0": 1.0}, 5) == model.recommend("d3", {"b0": 1.0}, 5)
    assert fit(_triples(2), hyper).recommend("d3", {}, 5) == model.recommend("d3", {}, 5)


ITEMS = {
    s: ItemInfo(s, category=c, available=a)
    for s, c, a in [
        ("p1", "mugs", True),
        ("p2", "mugs", True),
        ("p3", "mugs", True),
        ("p4", "tea", True),
        ("p5", "tea", False),
        ("p6", "pens", True),
        ("p7", "pens", True),
    ]
}


def test_mix_blends_filters_dedups_and_explains() -> None:
    candidates = {
        Strategy.BOUGHT_TOGETHER: [Candidate("p1", 4.0, because_sku="p6"), Candidate("p2", 3.0)],
        Strategy.POPULAR: [Candidate("p2", 100.0), Candidate("p5", 90.0), Candidate("p4", 50.0)],
    }
    spec = MixSpec(weights={Strategy.BOUGHT_TOGETHER: 2.0, Strategy.POPULAR: 1.0}, fallback=())
    shelf = mix(candidates, spec, ITEMS, 10, cart={"p6"})
    assert [m.sku for m in shelf] == ["p2", "p1", "p4"]  # p5 unavailable
    assert shelf[0].score == pytest.approx(2.5)  # 2 * 3/4 + 1 * 100/100
    assert shelf[1].strategy is Strategy.BOUGHT_TOGETHER and shelf[1].because_sku == "p6"
    assert mix(candidates, spec, ITEMS, 10, cart={"p6"}) == shelf  # deterministic
    excl = MixSpec(weights=spec.weights, exclude_purchased=True, exclude_in_cart=True, fallback=())
    assert [m.sku for m in mix(candidates, excl, ITEMS, 10, {"p2"}, {"p4"})] == ["p1"]
    cats = MixSpec(weights=spec.weights, categories=frozenset({"tea"}), fallback=())
    assert [m.sku for m in mix(candidates, cats, ITEMS, 10)] == ["p4"]


def test_mix_fallback_fills_a_cold_start_shelf_below_the_main_items() -> None:
    candidates = {
        Strategy.PERSONAL: [],
        Strategy.POPULAR: [Candidate(s, 10.0 - i) for i, s in enumerate(["p1", "p4", "p6"])],
        Strategy.NEW: [Candidate(s, 1.0) for s in ["p7", "p2", "p3"]],
    }
    spec = MixSpec(weights={Strategy.PERSONAL: 1.0}, fallback=(Strategy.POPULAR, Strategy.NEW))
    shelf = mix(candidates, spec, ITEMS, 5)
    assert [m.sku for m in shelf] == ["p1", "p4", "p6", "p2", "p3"]
    assert [m.strategy for m in shelf] == [Strategy.POPULAR] * 3 + [Strategy.NEW] * 2
    scores = [m.score for m in shelf]
    assert scores == sorted(scores, reverse=True)


def test_mix_rules_and_diversity() -> None:
    candidates = {
        Strategy.POPULAR: [Candidate(s, 10.0 - i) for i, s in enumerate(["p1", "p2", "p3", "p4"])]
    }
    spec = MixSpec(
        weights={Strategy.POPULAR: 1.0},
        max_per_category=2,
        fallback=(),
        rules=Rules(pins={"p7": 0}, boosts={"p4": 10.0}, excludes=frozenset({"p1"})),
    )
    shelf = mix(candidates, spec, ITEMS, 4)
    assert [m.sku for m in shelf] == ["p7", "p4", "p2", "p3"]
    assert shelf[0].pinned
    capped = mix(candidates, spec, ITEMS, 3)
    assert [m.sku for m in capped] == ["p7", "p4", "p2"]
    # The cap defers the third mug only while something else can fill the place.
    two = MixSpec(weights={Strategy.POPULAR: 1.0}, max_per_category=1, fallback=())
    assert [m.sku for m in mix(candidates, two, ITEMS, 3)] == ["p1", "p4", "p2"]


def test_als_reason_is_never_the_item_itself() -> None:
    model = fit(_triples(3), Hyper(factors=4, iterations=5))
    history = {"a1": 1.0, "a2": 1.0}
    for r in model.recommend("c1", history, 10):
        assert r.because_sku != r.sku and r.because_sku in history

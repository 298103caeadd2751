"""Offline evaluation of the recommend strategies on the Online Retail file (`make eval-reco`).

Method (see docs/recommend-evaluation.md for the figures):

- Data: the UCI Online Retail file, read with the importer's reader
  (`services.tools.importer._read`). Cancellations (InvoiceNo `C...`) and lines of
  non-positive quantity are excluded; guest rows (no CustomerID) are skipped by the reader.
- Split by time: invoices before the cutoff (2011-10-01) are the training data. The test set
  of a customer is the set of items they bought on or after the cutoff that they had NOT
  bought in training; only returning customers (a purchase on each side, and at least one new
  item after) are evaluated.
- Ranking: every strategy scores the WHOLE catalogue (every item bought by anybody in
  training), the customer's training items are removed, and the top 10 are kept. No sampled
  negatives. Test items new to the catalogue stay in the truth (no strategy can hit them):
  they lower recall and NDCG alike for every strategy.
- Metrics (`evaluate`): precision@10 = hits / 10; recall@10 = hits / |truth|;
  NDCG@10 = DCG / ideal DCG with binary gains, DCG = sum over hit ranks r (1-based) of
  1 / log2(r + 1), ideal DCG over min(|truth|, 10) hits; each averaged over customers.
  Catalogue coverage = distinct items shown to anybody / catalogue size.

Strategies are `Strategy` objects: `fit` on the training matrix, then `scores` for a batch
of customers (dense, one row per customer, one column per item; higher is better), or
`Ranker`s that make their own lists (the service's mix). The baselines (random, most-popular,
plain cosine) live here; the service's strategies are driven through its own code in
`services/recommend` (`Service*` below). `--sweep` runs the tuning variants on a validation
split taken from the training period only.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from services.tools.importer import ImportSummary, _Invoice, _read

__all__ = [
    "CUTOFF",
    "DATA_FILE",
    "AlsStrategy",
    "CosineStrategy",
    "K",
    "Metrics",
    "MixStrategy",
    "PopularStrategy",
    "Purchase",
    "RandomStrategy",
    "Ranker",
    "ServiceBoughtTogether",
    "ServiceMix",
    "ServicePersonal",
    "ServicePopular",
    "Split",
    "Strategy",
    "evaluate",
    "main",
    "ndcg_per_user",
    "paired_difference",
    "purchases_of",
    "rank",
    "rank_batch",
    "read_invoices",
    "read_purchases",
    "run",
    "split",
    "strategies",
    "sweep",
]

DATA_FILE = Path(__file__).resolve().parents[3] / "shared/data/online-retail/online_retail.csv.gz"
CUTOFF = datetime(2011, 10, 1, tzinfo=UTC).timestamp()
K = 10
DAY = 86_400.0

Floats = npt.NDArray[np.float32]
Ints = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Purchase:
    customer: str
    invoice: str
    sku: str
    quantity: int
    at: float


def read_invoices(path: Path) -> dict[str, _Invoice]:
    """Every invoice of a known customer (the importer's reader): number -> customer, time and
    lines (sku, category, quantity, unit price micros)."""
    return _read(path, ImportSummary(path=str(path)), progress=False)


def purchases_of(invoices: Mapping[str, _Invoice]) -> list[Purchase]:
    """The bought lines of known customers: no cancellations, no non-positive quantities."""
    return [
        Purchase(invoice.customer, number, sku, quantity, invoice.at)
        for number, invoice in invoices.items()
        if not number.upper().startswith("C")
        for sku, _category, quantity, _price in invoice.lines
        if quantity > 0
    ]


def read_purchases(path: Path) -> list[Purchase]:
    return purchases_of(read_invoices(path))


@dataclass
class Split:
    """Training matrices and test truth over one index of customers and items."""

    customers: list[str]
    items: list[str]  # the catalogue: every item bought in training
    counts: sp.csr_matrix  # customers x items: lines bought in training (>= 1 where bought)
    last_at: sp.csr_matrix  # customers x items: days before the cutoff of the last purchase + 1
    baskets: sp.csr_matrix  # invoices x items, binary (bought together)
    test_rows: Ints  # the evaluated customers (rows of `counts`)
    truth: list[frozenset[int]]  # per evaluated customer: new items after the cutoff
    unknown_test_items: int  # test items outside the catalogue (cannot be hit)
    # Every training line (a purchase of an item by a customer, at a time), as three arrays.
    line_rows: Ints
    line_cols: Ints
    line_at: npt.NDArray[np.float64]
    cutoff: float
    line_units: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))  # quantity

    @property
    def n_items(self) -> int:
        return len(self.items)


def split(purchases: Iterable[Purchase], cutoff: float = CUTOFF) -> Split:
    before = [p for p in purchases if p.at < cutoff]
    after = [p for p in purchases if p.at >= cutoff]
    items = sorted({p.sku for p in before})
    customers = sorted({p.customer for p in before})
    item_of = {sku: i for i, sku in enumerate(items)}
    customer_of = {c: i for i, c in enumerate(customers)}
    rows = np.fromiter((customer_of[p.customer] for p in before), np.int64, len(before))
    cols = np.fromiter((item_of[p.sku] for p in before), np.int64, len(before))
    ages = np.fromiter(((cutoff - p.at) / DAY for p in before), np.float64, len(before))
    shape = (len(customers), len(items))
    counts = sp.csr_matrix((np.ones(len(before), np.float32), (rows, cols)), shape=shape)
    counts.sum_duplicates()
    # The most recent purchase of each pair: the smallest age, stored as age + 1 (> 0).
    order = np.lexsort((-ages, rows * len(items) + cols))
    recent = _last_of_duplicates(rows[order], cols[order], ages[order] + 1, shape)
    invoice_of: dict[str, int] = {}
    basket_rows = np.fromiter(
        (invoice_of.setdefault(p.invoice, len(invoice_of)) for p in before), np.int64, len(before)
    )
    baskets = sp.csr_matrix(
        (np.ones(len(before), np.float32), (basket_rows, cols)),
        shape=(len(invoice_of), len(items)),
    )
    baskets.sum_duplicates()
    baskets.data[:] = 1.0

    bought_before: dict[int, set[str]] = {}
    for p in before:
        bought_before.setdefault(customer_of[p.customer], set()).add(p.sku)
    later: dict[int, set[str]] = {}
    for p in after:
        row = customer_of.get(p.customer)
        if row is not None and p.sku not in bought_before[row]:
            later.setdefault(row, set()).add(p.sku)
    test_rows = np.array(sorted(later), dtype=np.int64)
    unknown = 0
    truth: list[frozenset[int]] = []
    for row in test_rows:
        skus = later[int(row)]
        known = frozenset(item_of[s] for s in skus if s in item_of)
        # Items new to the catalogue stay in the truth as ids past the catalogue's end.
        new = frozenset(len(items) + i for i, _ in enumerate(s for s in skus if s not in item_of))
        unknown += len(new)
        truth.append(known | new)
    at = np.fromiter((p.at for p in before), np.float64, len(before))
    return Split(
        customers,
        items,
        counts,
        recent,
        baskets,
        test_rows,
        truth,
        unknown,
        rows,
        cols,
        at,
        cutoff,
        np.fromiter((float(p.quantity) for p in before), np.float64, len(before)),
    )


def _last_of_duplicates(
    rows: Ints, cols: Ints, values: npt.NDArray[np.float64], shape: tuple[int, int]
) -> sp.csr_matrix:
    """A matrix holding, for each (row, col), the last of its values in the given order."""
    keys = rows * shape[1] + cols
    last = np.r_[keys[1:] != keys[:-1], True]
    return sp.csr_matrix((values[last].astype(np.float32), (rows[last], cols[last])), shape=shape)


# --- metrics ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Metrics:
    precision: float
    recall: float
    ndcg: float
    coverage: float
    users: int


def evaluate(
    ranked: Sequence[Sequence[int]], truth: Sequence[frozenset[int]], n_items: int, k: int = K
) -> Metrics:
    """Precision, recall, NDCG at `k` (averaged over customers) and catalogue coverage.

    `ranked[u]` is customer u's list, best first (only its first `k` count); `truth[u]` the
    items they went on to buy. Coverage is the distinct items in the lists over `n_items`.
    """
    if len(ranked) != len(truth):
        raise ValueError("one ranked list per truth set")
    discounts = [1.0 / math.log2(rank + 2) for rank in range(k)]
    precision = recall = ndcg = 0.0
    shown: set[int] = set()
    for items, bought in zip(ranked, truth, strict=True):
        top = list(items)[:k]
        shown.update(top)
        hits = [rank for rank, item in enumerate(top) if item in bought]
        precision += len(hits) / k
        if bought:
            recall += len(hits) / len(bought)
            ideal = sum(discounts[: min(len(bought), k)])
            ndcg += sum(discounts[rank] for rank in hits) / ideal
    users = len(truth)
    if users == 0:
        return Metrics(0.0, 0.0, 0.0, 0.0, 0)
    return Metrics(
        precision / users,
        recall / users,
        ndcg / users,
        len(shown) / n_items if n_items else 0.0,
        users,
    )


def ndcg_per_user(
    ranked: Sequence[Sequence[int]], truth: Sequence[frozenset[int]], k: int = K
) -> npt.NDArray[np.float64]:
    """Each customer's NDCG@k, as averaged by `evaluate` (for paired comparisons)."""
    discounts = [1.0 / math.log2(rank + 2) for rank in range(k)]
    out = np.zeros(len(truth))
    for u, (items, bought) in enumerate(zip(ranked, truth, strict=True)):
        if bought:
            dcg = sum(discounts[r] for r, item in enumerate(list(items)[:k]) if item in bought)
            out[u] = dcg / sum(discounts[: min(len(bought), k)])
    return out


def paired_difference(
    a: npt.NDArray[np.float64], b: npt.NDArray[np.float64], resamples: int = 2000, seed: int = 7
) -> tuple[float, float, float]:
    """mean(a - b) over customers and its 95% bootstrap interval (customers resampled)."""
    diff = a - b
    rng = np.random.default_rng(seed)
    means = diff[rng.integers(0, len(diff), (resamples, len(diff)))].mean(axis=1)
    low, high = np.quantile(means, [0.025, 0.975])
    return float(diff.mean()), float(low), float(high)


# --- strategies -----------------------------------------------------------------------------


class Strategy(Protocol):
    name: str

    def fit(self, data: Split) -> None: ...

    def scores(self, rows: Ints) -> Floats: ...


@runtime_checkable
class Ranker(Protocol):
    """A strategy that makes its own lists (the service's mix) instead of scoring all items;
    it must leave out the customer's training items itself."""

    name: str

    def fit(self, data: Split) -> None: ...

    def top(self, rows: Ints, k: int) -> list[list[int]]: ...


def rank(strategy: Strategy | Ranker, data: Split, k: int = K, batch: int = 512) -> list[list[int]]:
    """Each evaluated customer's top `k` over the whole catalogue, training items removed.

    Ties are broken by item index, so a run is deterministic.
    """
    if isinstance(strategy, Ranker):
        return strategy.top(data.test_rows, k)
    out: list[list[int]] = []
    for start in range(0, len(data.test_rows), batch):
        rows = data.test_rows[start : start + batch]
        out += [[i for i, _ in found] for found in rank_batch(strategy, data, rows, k)]
    return out


@dataclass
class RandomStrategy:
    seed: int = 7
    name: str = "random"
    _n: int = 0

    def fit(self, data: Split) -> None:
        self._n = data.n_items
        self._rng = np.random.default_rng(self.seed)

    def scores(self, rows: Ints) -> Floats:
        return self._rng.random((len(rows), self._n), dtype=np.float32)


@dataclass
class PopularStrategy:
    """Distinct training buyers per item; `window_days` counts only the last days."""

    window_days: float | None = None
    name: str = "most-popular"
    _pop: Floats = field(default_factory=lambda: np.zeros(0, np.float32))

    def fit(self, data: Split) -> None:
        recent = data.last_at.copy()
        if self.window_days is not None:
            recent.data = (recent.data <= self.window_days + 1).astype(np.float32)
        else:
            recent.data[:] = 1.0
        self._pop = np.asarray(recent.sum(axis=0), dtype=np.float32).ravel()

    def scores(self, rows: Ints) -> Floats:
        return np.broadcast_to(self._pop, (len(rows), len(self._pop)))


@dataclass
class CosineStrategy:
    """Item-to-item similarity from co-occurrence, summed over the customer's history.

    `basket=False`, `alpha=0.5`: the plain baseline, cosine over customers (binary).
    `basket=True`: pairs counted per invoice (bought together). `alpha` is the asymmetric
    cosine exponent: sim(i, j) = c(i, j) / (n(i)^alpha * n(j)^(1 - alpha)), i in history;
    alpha = 0.5 is the cosine, larger values push best-sellers (large n(j)) further down.
    `shrink` adds to the denominator (damps pairs seen once). `recency_days` weighs each
    history item by exp(-age / recency_days).
    """

    name: str = "cosine (plain)"
    basket: bool = False
    alpha: float = 0.5
    shrink: float = 0.0
    recency_days: float | None = None
    _sim: Floats = field(default_factory=lambda: np.zeros((0, 0), np.float32))

    def fit(self, data: Split) -> None:
        source = data.baskets if self.basket else (data.counts > 0).astype(np.float32)
        co = (source.T @ source).toarray().astype(np.float32)
        n = np.diag(co).copy()
        np.fill_diagonal(co, 0.0)
        left = np.power(np.maximum(n, 1.0), self.alpha)[:, None]
        right = np.power(np.maximum(n, 1.0), 1.0 - self.alpha)[None, :]
        self._sim = co / (left * right + self.shrink)
        self._data = data

    def scores(self, rows: Ints) -> Floats:
        history = self._data.last_at[rows].copy()
        if self.recency_days is None:
            history.data[:] = 1.0
        else:
            history.data = np.exp(-(history.data - 1.0) / self.recency_days).astype(np.float32)
        return np.asarray(history @ self._sim, dtype=np.float32)


@dataclass
class AlsStrategy:
    """Implicit-feedback ALS (`implicit`): confidence = 1 + alpha * weight(counts)."""

    name: str = "personal (ALS)"
    factors: int = 64
    regularization: float = 0.05
    iterations: int = 15
    alpha: float = 1.0
    weighting: str = "bm25"  # "binary" | "log" | "bm25"
    recency_days: float | None = None
    seed: int = 7

    def fit(self, data: Split) -> None:
        from implicit.cpu.als import AlternatingLeastSquares
        from implicit.nearest_neighbours import bm25_weight
        from threadpoolctl import threadpool_limits

        matrix = data.counts.copy().astype(np.float32)
        if self.weighting == "binary":
            matrix.data[:] = 1.0
        elif self.weighting == "log":
            matrix.data = np.log1p(matrix.data).astype(np.float32)
        elif self.weighting == "bm25":
            matrix = bm25_weight(matrix, K1=100, B=0.8).tocsr().astype(np.float32)
        else:
            raise ValueError(f"unknown weighting {self.weighting!r}")
        if self.recency_days is not None:
            ages = data.last_at.data - 1.0
            matrix.data *= np.exp(-ages / self.recency_days).astype(np.float32)
        # implicit warns (and runs slower) when BLAS has its own thread pool.
        with threadpool_limits(1, "blas"):
            model = AlternatingLeastSquares(
                factors=self.factors,
                regularization=self.regularization,
                alpha=self.alpha,
                iterations=self.iterations,
                random_state=self.seed,
                num_threads=1,
            )
            model.fit(matrix, show_progress=False)
        self._users = np.asarray(model.user_factors, dtype=np.float32)
        self._items = np.asarray(model.item_factors, dtype=np.float32)

    def scores(self, rows: Ints) -> Floats:
        return self._users[rows] @ self._items.T


@dataclass
class MixStrategy:
    """Weighted blend: each part's scores scaled to [0, 1] per customer, then summed."""

    parts: list[tuple[Any, float]]
    name: str = "showcase mix"

    def fit(self, data: Split) -> None:
        for strategy, _ in self.parts:
            strategy.fit(data)

    def scores(self, rows: Ints) -> Floats:
        total = np.zeros(0, np.float32)
        for strategy, weight in self.parts:
            s = np.asarray(strategy.scores(rows), dtype=np.float32)
            low = s.min(axis=1, keepdims=True)
            span = s.max(axis=1, keepdims=True) - low
            part = weight * (s - low) / np.where(span > 0, span, 1.0)
            total = part if total.size == 0 else total + part
        return total


# --- the service's models (services/recommend), driven through their own code -----------------


def _basket_skus(data: Split) -> Iterable[list[str]]:
    for b in range(data.baskets.shape[0]):
        start, end = data.baskets.indptr[b], data.baskets.indptr[b + 1]
        yield [data.items[j] for j in data.baskets.indices[start:end]]


@dataclass
class ServiceBoughtTogether:
    """`services.recommend.cooccurrence.CoOccurrence` fed every training invoice; a customer's
    list is `CoOccurrence.recommend` seeded with their whole training history (weight 1 each).

    Its `recommend` sums `similarity(seed, item)` over the seeds; the same sum is computed
    here for all customers at once, as history x (the model's similarity of every counted
    pair), which `test_eval_reco` checks against `recommend` itself.
    """

    name: str = "bought-together"
    shrink: float | None = None  # None: the service's default

    def fit(self, data: Split) -> None:
        from services.recommend.cooccurrence import CoOccurrence

        model = CoOccurrence() if self.shrink is None else CoOccurrence(shrink=self.shrink)
        for basket in _basket_skus(data):
            model.add_basket(basket)
        index = {sku: i for i, sku in enumerate(data.items)}
        rows: list[int] = []
        cols: list[int] = []
        values: list[float] = []
        for a, related in model.pairs.items():
            for b in related:
                rows.append(index[a])
                cols.append(index[b])
                values.append(model.similarity(a, b))
        self.model = model
        self._sim = sp.csr_matrix(
            (np.array(values, np.float32), (rows, cols)), shape=(data.n_items, data.n_items)
        )
        self._history = (data.counts > 0).astype(np.float32).tocsr()

    def scores(self, rows: Ints) -> Floats:
        return np.asarray((self._history[rows] @ self._sim).toarray(), dtype=np.float32)


@dataclass
class ServicePersonal:
    """`services.recommend.personal.fit` on one triple per training customer-item pair,
    weighted as the service weighs it in training (`personal.interaction_weight` of the units
    bought: 1 for a bought item), scored with the customer's trained factors (no request-time
    history: nothing happened since). `weighting` "lines" (1.0 per invoice line: repeat
    purchases weigh more) and "units" (the quantities) are the variants compared to choose it."""

    name: str = "personal (ALS)"
    hyper: dict[str, Any] = field(default_factory=dict)  # overrides of personal.Hyper
    weighting: str = "service"  # "service", "lines" or "units"

    def fit(self, data: Split) -> None:
        from services.recommend.personal import Hyper, fit, interaction_weight

        if self.weighting == "lines":
            per_line = np.ones(len(data.line_rows), np.float32)
        else:
            per_line = data.line_units.astype(np.float32)
        pairs = sp.csr_matrix((per_line, (data.line_rows, data.line_cols)), shape=data.counts.shape)
        pairs.sum_duplicates()
        coo = pairs.tocoo()
        weights = coo.data.tolist()
        if self.weighting == "service":
            weights = [interaction_weight(units, 0.0) for units in weights]
        triples = (
            (data.customers[r], data.items[c], w)
            for r, c, w in zip(coo.row.tolist(), coo.col.tolist(), weights, strict=True)
        )
        model = fit(triples, Hyper(**self.hyper))
        self.model = model
        mine = {sku: i for i, sku in enumerate(data.items)}
        order = np.array([mine[sku] for sku in model.items], dtype=np.int64)
        items = np.zeros((data.n_items, model.item_factors.shape[1]), np.float32)
        items[order] = model.item_factors
        theirs = {c: i for i, c in enumerate(model.customers)}
        self._users = model.user_factors[[theirs[c] for c in data.customers]]
        self._items = items

    def scores(self, rows: Ints) -> Floats:
        return self._users[rows] @ self._items.T


@dataclass
class ServicePopular:
    """`services.recommend.popularity.PopularityCounter` (its window and half-life) fed every
    training line on its day; the list is its `top` on the cutoff day."""

    name: str = "popular"

    def fit(self, data: Split) -> None:
        from services.recommend.popularity import PopularityCounter, day_of

        counter = PopularityCounter()
        for c, at in zip(data.line_cols.tolist(), data.line_at.tolist(), strict=True):
            counter.add(data.items[c], day_of(at))
        top = counter.top(day_of(data.cutoff), data.n_items)
        index = {sku: i for i, sku in enumerate(data.items)}
        self._pop = np.zeros(data.n_items, np.float32)
        for sku, score in top:
            self._pop[index[sku]] = score

    def scores(self, rows: Ints) -> Floats:
        return np.broadcast_to(self._pop, (len(rows), len(self._pop)))


@dataclass
class ServiceMix:
    """`services.recommend.mix.mix` over the three service strategies' candidate lists (the
    top `candidates` of each, the customer's training items left out), purchased items
    excluded, POPULAR as the fallback; weights per strategy as in a showcase."""

    weights: dict[str, float] = field(
        default_factory=lambda: {"PERSONAL": 0.4, "BOUGHT_TOGETHER": 0.4, "POPULAR": 0.2}
    )
    name: str = "showcase mix"
    candidates: int = 100
    personal: dict[str, Any] = field(default_factory=dict)
    personal_weighting: str = "service"

    def fit(self, data: Split) -> None:
        from services.recommend.mix import ItemInfo

        self._data = data
        self._parts: dict[str, Strategy] = {
            "PERSONAL": ServicePersonal(hyper=self.personal, weighting=self.personal_weighting),
            "BOUGHT_TOGETHER": ServiceBoughtTogether(),
            "POPULAR": ServicePopular(),
        }
        for name, part in self._parts.items():
            if self.weights.get(name, 0.0) > 0 or name == "POPULAR":
                part.fit(data)
        self._info = {sku: ItemInfo(sku) for sku in data.items}

    def top(self, rows: Ints, k: int) -> list[list[int]]:
        from services.recommend.mix import Candidate, MixSpec, Strategy, mix

        data = self._data
        spec = MixSpec(
            weights={Strategy[name]: w for name, w in self.weights.items()},
            exclude_purchased=True,
            fallback=(Strategy.POPULAR,),
        )
        index = {sku: i for i, sku in enumerate(data.items)}
        out: list[list[int]] = []
        for start in range(0, len(rows), 256):
            batch = rows[start : start + 256]
            lists = {
                name: rank_batch(part, data, batch, self.candidates)
                for name, part in self._parts.items()
                if self.weights.get(name, 0.0) > 0 or name == "POPULAR"
            }
            for r, row in enumerate(batch):
                bought = data.counts.indices[data.counts.indptr[row] : data.counts.indptr[row + 1]]
                candidates = {
                    Strategy[name]: [Candidate(data.items[i], s) for i, s in found[r]]
                    for name, found in lists.items()
                }
                shelf = mix(
                    candidates, spec, self._info, k, purchased={data.items[i] for i in bought}
                )
                out.append([index[m.sku] for m in shelf])
        return out


def rank_batch(
    strategy: Strategy, data: Split, rows: Ints, k: int
) -> list[list[tuple[int, float]]]:
    """The top `k` (item, score) of each customer of `rows`, their training items left out."""
    scores = np.asarray(strategy.scores(rows), dtype=np.float64).copy()
    scores[data.counts[rows].nonzero()] = -np.inf
    k = min(k, data.n_items - 1)
    top = np.argpartition(-scores, k, axis=1)[:, :k]
    out: list[list[tuple[int, float]]] = []
    for r, cand in enumerate(top):
        order = np.lexsort((cand, -scores[r, cand]))
        out.append(
            [(int(i), float(scores[r, i])) for i in cand[order] if np.isfinite(scores[r, i])]
        )
    return out


# --- the report -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    name: str
    kind: str
    metrics: Metrics
    seconds: float
    ndcg: npt.NDArray[np.float64]  # per evaluated customer


Chosen = Sequence[tuple[str, "Strategy | Ranker"]]

# The first slice's personal model (alpha 20, weighing units), evaluated beside the service's
# defaults, which took the alpha `--sweep` found best on the validation split (1.0) and weigh
# a bought item 1 (`personal.interaction_weight`).
FIRST_SLICE_PERSONAL: dict[str, Any] = {"alpha": 20.0}


def strategies() -> list[tuple[str, Strategy | Ranker]]:
    """What `make eval-reco` compares: the baselines, the service's strategies (its own code,
    services/recommend) and the showcase mix, then the variants tried here that the service's
    models cannot express yet (marked "tried")."""
    return [
        ("baseline", RandomStrategy()),
        ("baseline", PopularStrategy()),
        ("baseline", CosineStrategy()),
        ("service", ServiceBoughtTogether()),
        ("service", ServicePersonal(name="personal (ALS, service defaults)")),
        (
            "service",
            ServicePersonal(
                name="personal (ALS, first slice: alpha 20, units)",
                hyper=FIRST_SLICE_PERSONAL,
                weighting="units",
            ),
        ),
        ("service", ServicePersonal(name="personal (ALS, alpha 1, units)", weighting="units")),
        (
            "service",
            ServicePersonal(name="personal (ALS, alpha 1, 1 per invoice line)", weighting="lines"),
        ),
        ("service", ServicePopular()),
        ("service", ServiceMix(name="showcase mix (service defaults)")),
        (
            "service",
            ServiceMix(
                name="showcase mix (first slice personal)",
                personal=FIRST_SLICE_PERSONAL,
                personal_weighting="units",
            ),
        ),
        ("tried", AlsStrategy(name="ALS, BM25 weighting + 90-day recency", recency_days=90.0)),
        (
            "tried",
            MixStrategy(
                [
                    (CosineStrategy(basket=True), 0.4),
                    (AlsStrategy(recency_days=90.0), 0.4),
                    (PopularStrategy(window_days=30), 0.2),
                ],
                name="mix of bought-together + ALS (BM25, recency) + popular",
            ),
        ),
    ]


def run(data: Split, chosen: Chosen, *, out: Callable[[str], None] = print) -> list[Row]:
    rows: list[Row] = []
    for kind, strategy in chosen:
        started = time.perf_counter()
        strategy.fit(data)
        ranked = rank(strategy, data)
        metrics = evaluate(ranked, data.truth, data.n_items)
        per_user = ndcg_per_user(ranked, data.truth)
        rows.append(Row(strategy.name, kind, metrics, time.perf_counter() - started, per_user))
        out(f"  {strategy.name}: ndcg@{K} {metrics.ndcg:.4f} ({rows[-1].seconds:.1f}s)")
    return rows


def table(rows: Sequence[Row]) -> str:
    lines = [
        f"| strategy | kind | precision@{K} | recall@{K} | NDCG@{K} | coverage | seconds |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        m = row.metrics
        lines.append(
            f"| {row.name} | {row.kind} | {m.precision:.4f} | {m.recall:.4f} | {m.ndcg:.4f} "
            f"| {m.coverage:.1%} | {row.seconds:.1f} |"
        )
    return "\n".join(lines)


def describe(data: Split) -> str:
    truth = sum(len(t) for t in data.truth)
    return (
        f"catalogue {data.n_items:,} items; training {len(data.customers):,} customers, "
        f"{data.counts.nnz:,} customer-item pairs, {data.baskets.shape[0]:,} invoices; "
        f"evaluated {len(data.test_rows):,} returning customers, {truth:,} new test items "
        f"({data.unknown_test_items:,} of them not in the catalogue)"
    )


VALIDATION_CUTOFF = "2011-07-01"


def sweep() -> list[tuple[str, Strategy | Ranker]]:
    """The variants `--sweep` tries, one knob at a time around the defaults."""
    out: list[tuple[str, Strategy | Ranker]] = []
    for knobs in (
        {},
        {"alpha": 1.0},
        {"alpha": 5.0},
        {"alpha": 40.0},
        {"factors": 32},
        {"factors": 128},
        {"regularization": 1.0},
        {"iterations": 30},
        {"alpha": 1.0, "factors": 128},
        {"alpha": 1.0, "regularization": 1.0},
    ):
        # around the first slice's defaults (alpha 20), as the sweep that chose alpha 1 ran
        label = ", ".join(f"{k}={v}" for k, v in knobs.items()) or "alpha 20 (first slice)"
        hyper = {**FIRST_SLICE_PERSONAL, **knobs}
        model = ServicePersonal(name=f"service ALS {label}", hyper=hyper, weighting="lines")
        out.append(("service ALS", model))
    out += [  # how a customer's item weighs, at alpha 1 (the service's choice: bought or not)
        ("service ALS", ServicePersonal(name="service ALS alpha=1.0, 1 per bought item")),
        ("service ALS", ServicePersonal(name="service ALS alpha=1.0, units", weighting="units")),
    ]
    for als in (
        {},
        {"weighting": "binary"},
        {"weighting": "log"},
        {"weighting": "binary", "alpha": 10.0},
        {"alpha": 3.0},
        {"factors": 128},
        {"regularization": 5.0},
        {"recency_days": 90.0},
        {"recency_days": 180.0},
    ):
        label = ", ".join(f"{k}={v}" for k, v in als.items()) or "defaults"
        out.append(("ALS, BM25", AlsStrategy(name=f"ALS bm25 {label}", **als)))
    out += [
        ("service co-occurrence", ServiceBoughtTogether(name="service, shrink=0", shrink=0.0)),
        ("service co-occurrence", ServiceBoughtTogether(name="service, shrink=1 (default)")),
        ("service co-occurrence", ServiceBoughtTogether(name="service, shrink=5", shrink=5.0)),
        ("co-occurrence", CosineStrategy(name="customers, cosine (baseline)")),
        ("co-occurrence", CosineStrategy(name="customers, alpha=0.7", alpha=0.7)),
        ("co-occurrence", CosineStrategy(name="invoices, cosine", basket=True)),
        ("co-occurrence", CosineStrategy(name="invoices, alpha=0.7", basket=True, alpha=0.7)),
        (
            "co-occurrence",
            CosineStrategy(name="invoices, recency 90d", basket=True, recency_days=90.0),
        ),
    ]
    for personal, bt, pop in ((0.4, 0.4, 0.2), (0.6, 0.3, 0.1), (0.3, 0.6, 0.1), (0.5, 0.5, 0.0)):
        weights = {"PERSONAL": personal, "BOUGHT_TOGETHER": bt, "POPULAR": pop}
        for knobs, label in (({}, "alpha 1"), (FIRST_SLICE_PERSONAL, "alpha 20")):
            out.append(
                (
                    "service mix",
                    ServiceMix(
                        weights=weights,
                        personal=knobs,
                        personal_weighting="lines",  # as the sweep that chose the weights ran
                        name=f"mix P/BT/POP {personal}/{bt}/{pop}, personal {label}",
                    ),
                )
            )
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="eval_reco", description=__doc__.splitlines()[0])
    parser.add_argument("--file", type=Path, default=Path(os.environ.get("EVAL_FILE", DATA_FILE)))
    parser.add_argument("--cutoff", default="2011-10-01", help="first test day (UTC)")
    parser.add_argument(
        "--sweep",
        action="store_true",
        help=f"try the variants of `sweep()` on a validation split: training data before "
        f"the cutoff, split again at {VALIDATION_CUTOFF} (the test period is never looked at)",
    )
    args = parser.parse_args(argv)
    if not args.file.is_file():
        parser.error(f"{args.file} is not a file (the Online Retail csv, plain or gzip)")
    cutoff = datetime.fromisoformat(args.cutoff).replace(tzinfo=UTC).timestamp()
    started = time.perf_counter()
    purchases = read_purchases(args.file)
    if args.sweep:
        purchases = [p for p in purchases if p.at < cutoff]
        cutoff = datetime.fromisoformat(VALIDATION_CUTOFF).replace(tzinfo=UTC).timestamp()
    data = split(purchases, cutoff)
    print(
        f"read and split in {time.perf_counter() - started:.1f}s: {describe(data)}", file=sys.stderr
    )
    chosen = sweep() if args.sweep else strategies()
    rows = run(data, chosen, out=lambda text: print(text, file=sys.stderr))
    print(table(rows))
    if not args.sweep:
        print(comparisons(rows))
    return 0


COMPARED = (
    ("showcase mix (service defaults)", "cosine (plain)"),
    ("showcase mix (first slice personal)", "cosine (plain)"),
    ("personal (ALS, service defaults)", "bought-together"),
    ("personal (ALS, first slice: alpha 20, units)", "bought-together"),
    ("cosine (plain)", "most-popular"),
)


def comparisons(rows: Sequence[Row]) -> str:
    """Paired NDCG@K differences with 95% bootstrap intervals, as a markdown table."""
    by_name = {row.name: row for row in rows}
    lines = [
        "",
        f"| A | B | NDCG@{K} A - B | 95% bootstrap interval |",
        "|---|---|---:|---|",
    ]
    for a, b in COMPARED:
        if a in by_name and b in by_name:
            mean, low, high = paired_difference(by_name[a].ndcg, by_name[b].ndcg)
            lines.append(f"| {a} | {b} | {mean:+.4f} | [{low:+.4f}, {high:+.4f}] |")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())

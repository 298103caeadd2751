"""The personal model: implicit-feedback matrix factorisation (ALS, `implicit`), pure (no I/O).

`fit` takes (customer, sku, weight) triples (weights of a pair add up), builds the customer x
item matrix and trains `implicit`'s CPU ALS. Confidence is `alpha * weight`, as in
`implicit`. The service weighs a customer's item with `interaction_weight`: 1 when bought at
all (however many units: wholesale quantities would swamp the matrix), a quarter per view up
to 1 when only viewed - the weighting the offline evaluation supports.

Serving (`PersonalModel.recommend`):
- a customer known at training time uses their trained factors, plus the fold-in of the
  recent history passed at request time (events since training, the cart), weighted by
  `history_weight` - so today's behaviour blends in without retraining;
- a customer new since training gets the fold-in of their history alone: the exact ALS user
  step, (YtY + Yt (C - I) Y + reg I) x = Yt C p, solved against the frozen item factors;
- scores are dot products with the item factors; the reason ("because you bought X") is the
  history item whose factors are most similar (cosine) to the recommended item.

`to_bytes` / `from_bytes` serialise a model (numpy .npz, no pickle), so a stored model serves
after a restart without retraining.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.sparse import csr_matrix

__all__ = ["Hyper", "PersonalModel", "Scored", "fit", "interaction_weight"]

Floats = npt.NDArray[np.float32]


# A view says a quarter of what a purchase says; views alone count at most as much as a purchase.
VIEW_WEIGHT = 0.25


def interaction_weight(purchased: float, viewed: float) -> float:
    """How much a customer's history of one item weighs in training and in the request-time
    fold-in: 1 when bought (units do not matter: on Online Retail, weighing units gave NDCG@10
    0.0870 against 0.1037 for bought-or-not, and 0.1032 vs 0.1248 on the validation split),
    otherwise a quarter per view, at most 1."""
    if purchased > 0:
        return 1.0
    return min(1.0, max(0.0, viewed) * VIEW_WEIGHT)


@dataclass(frozen=True, slots=True)
class Hyper:
    factors: int = 64
    regularization: float = 0.05
    # Confidence per unit of weight. 1.0 is what the offline evaluation supports (make
    # eval-reco: NDCG@10 0.1025 vs 0.0795 for 20, the first slice's value; see
    # docs/recommend-evaluation.md).
    alpha: float = 1.0
    iterations: int = 15
    random_state: int = 42
    # Weight of the request-time history fold-in for customers known at training.
    history_weight: float = 0.5


@dataclass(frozen=True, slots=True)
class Scored:
    sku: str
    score: float
    because_sku: str


@dataclass
class PersonalModel:
    customers: list[str]
    items: list[str]
    user_factors: Floats
    item_factors: Floats
    hyper: Hyper

    def __post_init__(self) -> None:
        self._customer_index = {c: i for i, c in enumerate(self.customers)}
        self._item_index = {s: i for i, s in enumerate(self.items)}
        norms = np.linalg.norm(self.item_factors, axis=1)
        norms[norms == 0] = 1.0
        self._unit_items = (self.item_factors / norms[:, None]).astype(np.float32)
        # What every fold-in starts from (computed once per model, not per request).
        y = self.item_factors.astype(np.float64)
        self._y = y
        self._gram = y.T @ y + self.hyper.regularization * np.eye(y.shape[1])

    def knows(self, customer: str) -> bool:
        return customer in self._customer_index

    def fold_in(self, history: Mapping[str, float]) -> Floats | None:
        """The ALS user step for `history` against the trained item factors (None when no
        history item is in the model)."""
        rows = [
            (self._item_index[s], w)
            for s, w in sorted(history.items())
            if w > 0 and s in self._item_index
        ]
        if not rows:
            return None
        index = np.array([i for i, _ in rows], dtype=np.int64)
        c = self.hyper.alpha * np.array([w for _, w in rows], dtype=np.float64)
        y = self._y[index]
        a = self._gram + y.T @ ((c - 1.0)[:, None] * y)
        b = y.T @ c
        return np.linalg.solve(a, b).astype(np.float32)

    def user_vector(self, customer: str, history: Mapping[str, float]) -> Floats | None:
        folded = self.fold_in(history)
        index = self._customer_index.get(customer)
        if index is None:
            return folded
        trained: Floats = np.asarray(self.user_factors[index], dtype=np.float32)
        if folded is None:
            return trained
        w = self.hyper.history_weight
        blended: Floats = ((1.0 - w) * trained + w * folded).astype(np.float32)
        return blended

    def recommend(
        self,
        customer: str,
        history: Mapping[str, float],
        limit: int,
        exclude: Iterable[str] = (),
    ) -> list[Scored]:
        """Best `limit` items for the customer, best first, ties by sku; never an excluded
        sku. Empty when neither the customer nor any history item is in the model."""
        vector = self.user_vector(customer, history)
        if vector is None or limit <= 0:
            return []
        scores = (self.item_factors @ vector).astype(np.float64)
        skip = [self._item_index[s] for s in exclude if s in self._item_index]
        if skip:
            scores[skip] = -np.inf
        eligible = len(self.items) - len(set(skip))
        k = min(limit, eligible)
        if k <= 0:
            return []
        # The k best by score, then every item tied with the k-th (so the tie-break by sku
        # sees all of them), ordered by (score desc, sku).
        kth = -np.partition(-scores, k - 1)[k - 1]
        near = (
            np.flatnonzero(scores >= kth)
            if np.isfinite(kth)
            else np.flatnonzero(np.isfinite(scores))
        )
        order = sorted(near.tolist(), key=lambda i: (-float(scores[i]), self.items[i]))[:limit]
        seeds = [self._item_index[s] for s in sorted(history) if s in self._item_index]
        because = [""] * len(order)
        if seeds:
            sims = self._unit_items[order] @ self._unit_items[seeds].T  # one row per item
            sims[np.array(order)[:, None] == np.array(seeds)[None, :]] = -np.inf
            best = np.argmax(sims, axis=1)  # the first best seed, as seeds are ordered
            for r, j in enumerate(best.tolist()):
                if np.isfinite(sims[r, j]):  # never "because of" the item itself
                    because[r] = self.items[seeds[j]]
        return [
            Scored(self.items[i], float(scores[i]), b) for i, b in zip(order, because, strict=True)
        ]

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        meta = {
            "customers": self.customers,
            "items": self.items,
            "hyper": _hyper_dict(self.hyper),
        }
        np.savez_compressed(
            buffer,
            meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8),
            user_factors=self.user_factors,
            item_factors=self.item_factors,
        )
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> PersonalModel:
        with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
            meta = json.loads(arrays["meta"].tobytes().decode())
            return cls(
                customers=list(meta["customers"]),
                items=list(meta["items"]),
                user_factors=arrays["user_factors"].astype(np.float32),
                item_factors=arrays["item_factors"].astype(np.float32),
                hyper=Hyper(**meta["hyper"]),
            )


def _hyper_dict(hyper: Hyper) -> dict[str, float | int]:
    return {name: getattr(hyper, name) for name in Hyper.__slots__}


def fit(
    triples: Iterable[tuple[str, str, float]],
    hyper: Hyper = Hyper(),
    progress: Callable[[int], None] | None = None,
    num_threads: int = 1,
) -> PersonalModel:
    """Train on (customer, sku, weight) triples (weights of repeated pairs add up).
    `progress(iteration)` is called after each ALS iteration (for a progress bar)."""
    from implicit.cpu.als import AlternatingLeastSquares  # heavy import, only when training
    from threadpoolctl import threadpool_limits

    totals: dict[tuple[str, str], float] = {}
    for customer, sku, weight in triples:
        if weight > 0 and customer and sku:
            totals[(customer, sku)] = totals.get((customer, sku), 0.0) + weight
    customers = sorted({c for c, _ in totals})
    items = sorted({s for _, s in totals})
    if not totals:
        empty = np.zeros((0, hyper.factors), dtype=np.float32)
        return PersonalModel([], [], empty, empty, hyper)
    ci = {c: i for i, c in enumerate(customers)}
    ii = {s: i for i, s in enumerate(items)}
    keys = sorted(totals)
    matrix = csr_matrix(
        (
            np.array([totals[k] for k in keys], dtype=np.float32),
            (np.array([ci[c] for c, _ in keys]), np.array([ii[s] for _, s in keys])),
        ),
        shape=(len(customers), len(items)),
    )

    def callback(iteration: int, _elapsed: float, _loss: float) -> None:
        if progress is not None:
            progress(iteration)

    # implicit parallelises itself; a BLAS thread pool underneath only contends with it.
    with threadpool_limits(1, "blas"):
        model = AlternatingLeastSquares(
            factors=hyper.factors,
            regularization=hyper.regularization,
            alpha=hyper.alpha,
            iterations=hyper.iterations,
            random_state=hyper.random_state,
            num_threads=num_threads,
        )
        model.fit(matrix, show_progress=False, callback=callback)
    return PersonalModel(
        customers,
        items,
        np.asarray(model.user_factors, dtype=np.float32),
        np.asarray(model.item_factors, dtype=np.float32),
        hyper,
    )

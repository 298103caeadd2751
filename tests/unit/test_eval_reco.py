"""The offline evaluation of recommendations (`make eval-reco`), reduced to run in the suite.

- the metric code on a hand-made example (the expected values are worked out in comments);
- the split on a hand-made file (cancellations, non-positive quantities, returning customers,
  only items new to the customer in the truth, items new to the catalogue kept as misses);
- the ranking: over the whole catalogue, the customer's training items removed;
- trained models on a slice of the real file (its first 150,000 rows) beat random.
"""

from __future__ import annotations

import gzip
import itertools
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from services.tools.eval_reco import (
    DATA_FILE,
    ServiceBoughtTogether,
    Split,
    evaluate,
    main,
    paired_difference,
    rank,
    rank_batch,
    read_purchases,
    split,
    strategies,
)


def test_metrics_on_a_hand_made_example() -> None:
    ranked = [
        list(range(1, 11)),  # A: hits item 2 at rank 2 and item 5 at rank 5
        list(range(20, 30)),  # B: hits item 20 at rank 1
        list(range(1, 11)),  # C: no hit
    ]
    truth = [frozenset({2, 5, 11}), frozenset({20}), frozenset({30})]
    m = evaluate(ranked, truth, n_items=40)
    # precision: A 2/10, B 1/10, C 0 -> 0.3 / 3 = 0.1
    assert m.precision == pytest.approx(0.1)
    # recall: A 2/3, B 1/1, C 0 -> (2/3 + 1) / 3 = 5/9
    assert m.recall == pytest.approx(5 / 9)
    # NDCG, gain 1 / log2(rank + 1):
    #   A: DCG = 1/log2(3) + 1/log2(6) = 0.630930 + 0.386853 = 1.017783
    #      ideal (3 items) = 1/log2(2) + 1/log2(3) + 1/log2(4) = 1 + 0.630930 + 0.5 = 2.130930
    #      -> 0.477622
    #   B: 1/log2(2) / 1 = 1;  C: 0  -> (0.477622 + 1 + 0) / 3 = 0.492541
    assert m.ndcg == pytest.approx(0.492541, abs=1e-6)
    # coverage: items 1..10 and 20..29 shown, 20 of 40
    assert m.coverage == pytest.approx(0.5)
    assert m.users == 3


def test_only_the_first_k_count_and_the_ideal_is_capped_at_k() -> None:
    # 12 items in the truth, the list holds 12 of them: only the first 10 count, ideal DCG
    # is over 10 hits, so the list is perfect.
    ranked = [list(range(12))]
    m = evaluate(ranked, [frozenset(range(12))], n_items=100)
    assert (m.precision, m.ndcg) == (pytest.approx(1.0), pytest.approx(1.0))
    assert m.recall == pytest.approx(10 / 12)
    assert m.coverage == pytest.approx(0.10)


HEADER = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
ROWS = [
    # customer 1: A, B before; A again (not new), C, D (new to the catalogue) after
    "1,A,a,1,2011-09-01 10:00:00,1.0,1.0,UK",
    "1,B,b,2,2011-09-01 10:00:00,1.0,1.0,UK",
    "5,A,a,1,2011-10-02 10:00:00,1.0,1.0,UK",
    "5,C,c,1,2011-10-02 10:00:00,1.0,1.0,UK",
    "5,D,d,1,2011-10-02 10:00:00,1.0,1.0,UK",
    # customer 2: B, C before; a cancellation of E and a zero line of F are not purchases
    "2,B,b,1,2011-09-02 10:00:00,1.0,2.0,UK",
    "2,C,c,1,2011-09-02 10:00:00,1.0,2.0,UK",
    "C3,E,e,-1,2011-09-03 10:00:00,1.0,2.0,UK",
    "4,F,f,0,2011-09-04 10:00:00,1.0,2.0,UK",
    # after: only B, which customer 2 already had: nothing new, not evaluated
    "6,B,b,1,2011-10-03 10:00:00,1.0,2.0,UK",
    # customer 3: only after the cutoff, not a returning customer
    "7,A,a,1,2011-10-04 10:00:00,1.0,3.0,UK",
    # a guest
    "8,C,c,1,2011-09-05 10:00:00,1.0,,UK",
]


def write(path: Path, rows: list[str]) -> Path:
    path.write_text(HEADER + "\n".join(rows) + "\n")
    return path


def test_the_split(tmp_path: Path) -> None:
    purchases = read_purchases(write(tmp_path / "f.csv", ROWS))
    assert {p.sku for p in purchases} == {"A", "B", "C", "D"}  # no E (cancelled), no F (zero)
    data = split(purchases, datetime(2011, 10, 1, tzinfo=UTC).timestamp())
    assert data.items == ["A", "B", "C"]  # the catalogue: bought in training
    assert data.customers == ["1", "2"]
    assert data.counts.toarray().tolist() == [[1, 1, 0], [0, 1, 1]]
    assert data.baskets.shape == (2, 3)  # invoices 1 and 2
    assert data.test_rows.tolist() == [0]  # customer 1 only
    # C is new to customer 1 and in the catalogue; D is a miss nobody can hit; A is not new
    assert data.truth == [frozenset({2, 3})]
    assert data.unknown_test_items == 1


@dataclass
class Fixed:
    """Scores every customer the same: item i scores i (the last item is the best)."""

    name: str = "fixed"
    n: int = 0

    def fit(self, data: Split) -> None:
        self.n = data.n_items

    def scores(self, rows: np.ndarray) -> np.ndarray:
        return np.tile(np.arange(self.n, dtype=np.float32), (len(rows), 1))


def test_rank_covers_the_catalogue_and_skips_what_was_bought(tmp_path: Path) -> None:
    skus = [f"S{i:02d}" for i in range(15)]
    rows = [f"1,{sku},x,1,2011-09-01 10:00:00,1.0,9.0,UK" for sku in skus[13:]]  # 13, 14
    rows += [f"2,{sku},x,1,2011-09-01 10:00:00,1.0,8.0,UK" for sku in skus[:13]]
    rows += ["3,S00,x,1,2011-10-02 10:00:00,1.0,9.0,UK"]
    data = split(read_purchases(write(tmp_path / "f.csv", rows)))
    strategy = Fixed()
    strategy.fit(data)
    # customer 9 bought 13 and 14 (the two best): the list goes on from 12 downwards
    assert rank(strategy, data) == [[12, 11, 10, 9, 8, 7, 6, 5, 4, 3]]


SLICE_CUTOFF = "2011-03-15"


@pytest.fixture(scope="module")
def slice_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not DATA_FILE.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{DATA_FILE} is missing")
        pytest.skip(f"{DATA_FILE} is missing")
    path = tmp_path_factory.mktemp("reco") / "slice.csv.gz"
    # The first 150,000 rows: December 2010 to late April 2011.
    with gzip.open(DATA_FILE, "rt") as src, gzip.open(path, "wt") as dst:
        dst.writelines(itertools.islice(src, 150_001))
    return path


@pytest.fixture(scope="module")
def slice_of_the_file(slice_path: Path) -> Split:
    cutoff = datetime.fromisoformat(SLICE_CUTOFF).replace(tzinfo=UTC).timestamp()
    return split(read_purchases(slice_path), cutoff)


def test_bought_together_scores_are_the_services_own(slice_of_the_file: Split) -> None:
    """The evaluation scores all customers at once; the service answers one at a time with
    `CoOccurrence.recommend`: both give the same list."""
    data = slice_of_the_file
    strategy = ServiceBoughtTogether()
    strategy.fit(data)
    rows = data.test_rows[:25]
    ours = rank_batch(strategy, data, rows, 10)
    for row, found in zip(rows, ours, strict=True):
        history = {data.items[i]: 1.0 for i in data.counts[row].indices}
        theirs = strategy.model.recommend(history, 10)
        assert [r.score for r in theirs] == pytest.approx([score for _, score in found], rel=1e-4)
        # equal scores may be ordered differently (sku here, item index there: the same order)
        assert [r.sku for r in theirs] == [data.items[i] for i, _ in found]


def test_paired_difference() -> None:
    a = np.array([0.5, 0.2, 0.0, 1.0])
    assert paired_difference(a, a) == (0.0, 0.0, 0.0)
    mean, low, high = paired_difference(a, a - 0.1)
    assert mean == pytest.approx(0.1)
    assert low == pytest.approx(0.1) and high == pytest.approx(0.1)


def test_trained_models_beat_random_on_a_slice_of_the_file(
    slice_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """What `make eval-reco` runs, on the slice: every strategy of the table (the service's
    through its own code) beats random, and the mix beats the best-sellers."""
    assert main(["--file", str(slice_path), "--cutoff", SLICE_CUTOFF]) == 0
    printed = capsys.readouterr().out
    ndcg: dict[str, float] = {}
    for line in printed.splitlines():
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if len(cells) == 7 and cells[1] in {"baseline", "service", "tried"}:
            ndcg[cells[0]] = float(cells[4])
    assert set(ndcg) == {strategy.name for _, strategy in strategies()}
    random = ndcg.pop("random")
    assert random < 0.02
    for name, value in ndcg.items():
        assert value > 3 * random, (name, ndcg, random)
    assert ndcg["showcase mix (service defaults)"] > ndcg["most-popular"], ndcg
    assert "| showcase mix (service defaults) | cosine (plain) |" in printed  # the comparisons

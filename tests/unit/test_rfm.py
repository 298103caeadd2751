"""RFM scoring by quintiles: ties share a score, recent is good, everyone gets 1-5."""

from __future__ import annotations

from services.segmentation.rfm import DAY, cut_points, score_population
from services.segmentation.templates import TEMPLATES

NOW = 1_700_000_000.0


def test_cut_points_are_nearest_rank_percentiles() -> None:
    assert cut_points([float(v) for v in range(1, 11)]) == [2.0, 4.0, 6.0, 8.0]
    assert cut_points([]) == []
    assert cut_points([7.0]) == [7.0, 7.0, 7.0, 7.0]


def test_scores_follow_the_quintiles() -> None:
    rows = [(f"c{i}", NOW - i * DAY, i, float(i * 10)) for i in range(1, 11)]
    result = score_population(rows, NOW)
    scores = {c: (r, f, m) for c, r, f, m in result.scores}
    assert scores["c1"] == (5, 1, 1)  # bought yesterday, once, little
    assert scores["c10"] == (1, 5, 5)  # long ago, often, a lot
    assert scores["c5"] == (3, 3, 3)
    assert all(1 <= v <= 5 for s in scores.values() for v in s)


def test_equal_values_get_equal_scores() -> None:
    rows = [(f"c{i}", NOW - 3 * DAY, 2, 50.0) for i in range(20)]
    result = score_population(rows, NOW)
    assert {(r, f, m) for _, r, f, m in result.scores} == {(5, 1, 1)}


def test_templates_partition_the_score_grid() -> None:
    def covers(key: str, r: int, f: int) -> bool:
        t = TEMPLATES[key]
        inside = t.r[0] <= r <= t.r[1] and t.f[0] <= f <= t.f[1]
        return inside and not any(covers(other, r, f) for other in t.unless)

    for r in range(1, 6):
        for f in range(1, 6):
            labels = [key for key in TEMPLATES if covers(key, r, f)]
            assert len(labels) == 1, (r, f, labels)

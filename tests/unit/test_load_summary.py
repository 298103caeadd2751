"""`make load`'s verdict and budget multiples (tests/load/report.py `load_summary`), and the
host list and caller shares of the mix (tests/load/mix.py)."""

from __future__ import annotations

from collections import Counter

import pytest

from tests.load.mix import (
    CALLERS,
    AdServer,
    Desk,
    Marketing,
    WebShop,
    addresses,
    service_routes,
    shares,
)
from tests.load.report import LoadRow, load_summary


def row(service: str, rpc: str, requests: int, failures: int = 0) -> LoadRow:
    return LoadRow(service, rpc, requests, failures, 10.0, 20.0, 30.0)


def test_the_budget_multiple_is_per_node_and_per_group() -> None:
    rows = [
        row("profile", "TrackEvents", 3000),
        row("bonus", "QuoteOffer", 1800),
        row("ads", "SelectAds", 1200),
    ]
    lines, ok = load_summary(rows, seconds=60, nodes=2, max_error_rate=0.01)
    assert ok
    # CRM 4,800 / 60 s = 80 rps on 2 nodes = 40 per node = 2x 20; ads 20 rps = 1x 10 per node
    assert "CRM (bonus, profile): 80.0 rps over 60 s on 2 node(s) = 2.0 x" in "\n".join(lines)
    assert "ads: 20.0 rps over 60 s on 2 node(s) = 1.0 x" in "\n".join(lines)
    table = [line.split() for line in lines]
    assert ["profile", "TrackEvents", "3000", "0", "50.0", "10", "20", "30"] in table


@pytest.mark.parametrize(
    ("failures", "passes"), [(0, True), (10, True), (11, False), (1000, False)]
)
def test_the_error_rate_gate(failures: int, passes: bool) -> None:
    rows = [row("profile", "GetProfile", 600, failures), row("ads", "SelectAds", 400)]
    lines, ok = load_summary(rows, seconds=10, nodes=1, max_error_rate=0.01)
    assert ok is passes
    assert lines[-1].endswith("PASS" if passes else "FAIL")


def test_expected_refusals_are_listed_not_counted() -> None:
    refusals = Counter({"Accrue PROMOTION_BUDGET_SPENT": 7})
    lines, ok = load_summary(
        [row("bonus", "Accrue", 10)], seconds=1, nodes=1, max_error_rate=0.0, refusals=refusals
    )
    assert ok
    assert "expected refusals (not errors): Accrue PROMOTION_BUDGET_SPENT: 7" in lines


def test_a_run_without_requests_fails() -> None:
    lines, ok = load_summary([], seconds=0, nodes=1, max_error_rate=0.5)
    assert not ok and lines[-1].endswith("no request was made")


def test_hosts_are_comma_separated_with_an_optional_scheme() -> None:
    assert addresses("grpc://a:1, b:2,,") == ["a:1", "b:2"]
    with pytest.raises(ValueError, match="no address"):
        addresses(" , ")


@pytest.mark.parametrize("users", [1, 4, 12, 20, 32, 100])
def test_shares_follow_the_callers_weights(users: int) -> None:
    kinds = Counter(shares(users))
    assert sum(kinds.values()) == users
    if users >= len(CALLERS):
        assert set(kinds) == {WebShop, AdServer, Desk, Marketing}
    if users >= 20:  # within one user of the weights
        total = sum(CALLERS.values())
        for kind, weight in CALLERS.items():
            assert abs(kinds[kind] - users * weight / total) <= 1


def test_service_routes_name_registered_services_only() -> None:
    assert service_routes("") == {}
    assert service_routes("segmentation=127.0.0.1:1, bonus=grpc://h:2") == {
        "segmentation": "127.0.0.1:1",
        "bonus": "h:2",
    }
    for bad in ("segmentation", "nosuch=h:1", "bonus="):
        with pytest.raises(ValueError, match="bad route"):
            service_routes(bad)

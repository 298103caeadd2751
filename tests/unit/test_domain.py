"""The profile's pure domain: how events fold into aggregates, status, and merging."""

from __future__ import annotations

import pytest

from services.profile.domain import (
    DAY,
    RECENT_EVENTS,
    CartLine,
    Customer,
    EventIn,
    OrderIn,
    apply_event,
    decayed,
    engagement_score,
    merge_data,
    status_of,
)

T0 = 1_700_000_000.0


def customer(created_at: float = T0, **data: object) -> Customer:
    return Customer("c1", created_at=created_at, updated_at=created_at, data=dict(data))


def event(kind: str, at: float = T0, event_id: str = "e1", **kw: object) -> EventIn:
    return EventIn(event_id=event_id, type=kind, channel="WEB", occurred_at=at, **kw)  # type: ignore[arg-type]


def order(total: int, *lines: CartLine, order_id: str = "o1", placed_at: float = T0) -> OrderIn:
    return OrderIn(order_id, tuple(lines), total, "GBP", placed_at)


def line(sku: str, quantity: int, price: int = 10_000_000, category: str = "shoes") -> CartLine:
    return CartLine(sku, category, quantity, price, "GBP")


def interest(c: Customer, category: str, now: float) -> float:
    value, ref = c.data["interests"][category]
    return decayed(value, ref, now)


# ---------------------------------------------------------------- interests


def test_interests_accumulate_by_event_weight() -> None:
    c = customer()
    changed = apply_event(c, event("PRODUCT_VIEW", category="shoes"))
    apply_event(c, event("ADD_TO_CART", category="shoes", sku="s1", event_id="e2"))
    apply_event(c, event("PAGE_VIEW", category="hats", event_id="e3"))
    assert "interests.shoes" in changed
    assert interest(c, "shoes", T0) == pytest.approx(1.0 + 3.0)
    assert interest(c, "hats", T0) == pytest.approx(0.2)


def test_interest_halves_after_thirty_days() -> None:
    c = customer()
    apply_event(c, event("PURCHASE", category="shoes"))
    assert interest(c, "shoes", T0 + 30 * DAY) == pytest.approx(2.5)
    assert interest(c, "shoes", T0 + 60 * DAY) == pytest.approx(1.25)
    # a newer event adds its full weight to the decayed value
    apply_event(c, event("PRODUCT_VIEW", at=T0 + 30 * DAY, category="shoes", event_id="e2"))
    assert interest(c, "shoes", T0 + 30 * DAY) == pytest.approx(3.5)


def test_late_event_is_decayed_back_to_the_reference_time() -> None:
    on_time, late = customer(), customer()
    apply_event(on_time, event("PRODUCT_VIEW", at=T0 - 30 * DAY, category="shoes"))
    apply_event(on_time, event("PRODUCT_VIEW", at=T0, category="shoes", event_id="e2"))
    # the same two events, arriving newest first
    apply_event(late, event("PRODUCT_VIEW", at=T0, category="shoes", event_id="e2"))
    apply_event(late, event("PRODUCT_VIEW", at=T0 - 30 * DAY, category="shoes"))
    assert interest(late, "shoes", T0) == pytest.approx(1.5)
    assert interest(late, "shoes", T0) == pytest.approx(interest(on_time, "shoes", T0))
    assert late.data["interests"]["shoes"][1] == T0  # the reference stays at the newest event
    assert late.data["last_activity_at"] == T0


def test_order_lines_categories_count_once_each() -> None:
    c = customer()
    purchase = order(20_000_000, line("a", 1, category="shoes"), line("b", 1, category="shoes"))
    apply_event(c, event("PURCHASE", order=purchase))
    assert interest(c, "shoes", T0) == pytest.approx(5.0)


def test_events_without_interest_weight_leave_interests_alone() -> None:
    c = customer()
    changed = apply_event(c, event("EMAIL_OPEN", category="news"))
    assert "interests" not in c.data
    assert not any(p.startswith("interests.") for p in changed)


# ---------------------------------------------------------------- engagement


def test_engagement_is_between_0_and_100_and_grows_with_activity() -> None:
    c = customer()
    assert engagement_score(c.data.get("engagement"), T0) == 0.0
    scores = []
    for i in range(60):
        apply_event(c, event("STORE_VISIT", event_id=f"e{i}"))
        scores.append(engagement_score(c.data["engagement"], T0))
    assert all(0.0 < s <= 100.0 for s in scores)
    assert scores == sorted(scores)
    assert scores[0] < scores[-1]
    assert scores[-1] == pytest.approx(100.0, abs=0.01)


def test_engagement_decays_with_time_and_ignores_unweighted_events() -> None:
    c = customer()
    changed = apply_event(c, event("AD_IMPRESSION"))
    assert "engagement_score" not in changed
    apply_event(c, event("EMAIL_CLICK", event_id="e2"))
    now, later = (engagement_score(c.data["engagement"], T0 + d * DAY) for d in (0, 30))
    assert 0.0 < later < now


# ---------------------------------------------------------------- cart and orders


def test_cart_add_remove_and_purchase_clears_bought_skus() -> None:
    c = customer()
    apply_event(c, event("ADD_TO_CART", sku="s1", category="shoes", quantity=2, event_id="a1"))
    apply_event(c, event("ADD_TO_CART", sku="s1", quantity=1, event_id="a2"))
    apply_event(
        c,
        event(
            "ADD_TO_CART", sku="s2", quantity=1, unit_price_micros=5, currency="GBP", event_id="a3"
        ),
    )
    apply_event(c, event("ADD_TO_CART", sku="s3", event_id="a4"))  # quantity 0 means one
    assert {sku: line["quantity"] for sku, line in c.data["cart"].items()} == {
        "s1": 3,
        "s2": 1,
        "s3": 1,
    }
    assert c.data["cart"]["s2"]["price"] == 5
    changed = apply_event(c, event("REMOVE_FROM_CART", sku="s1", quantity=1, event_id="r1"))
    assert changed >= {"cart"}
    assert c.data["cart"]["s1"]["quantity"] == 2
    apply_event(c, event("REMOVE_FROM_CART", sku="s3", quantity=5, event_id="r2"))
    assert "s3" not in c.data["cart"]
    apply_event(c, event("REMOVE_FROM_CART", sku="nope", event_id="r3"))  # not in the cart
    changed = apply_event(c, event("PURCHASE", order=order(10, line("s1", 2)), event_id="p1"))
    assert "cart" in changed
    assert set(c.data["cart"]) == {"s2"}


def test_purchase_updates_summary_and_return_does_not_count_an_order() -> None:
    c = customer()
    changed = apply_event(c, event("PURCHASE", order=order(30_000_000, line("s1", 3))))
    assert changed >= {"purchase_summary", "rfm"}
    later = T0 + 5 * DAY
    apply_event(
        c,
        event(
            "PURCHASE",
            at=later,
            order=order(10_000_000, line("s2", 1), order_id="o2", placed_at=later),
            event_id="e2",
        ),
    )
    assert (c.orders, c.revenue_micros) == (2, 40_000_000)
    assert c.data["first_purchase_at"] == T0
    assert c.last_purchase_at == later
    assert c.data["currency"] == "GBP"
    returned = order(-10_000_000, line("s1", -1), placed_at=later + DAY)
    assert returned.is_return
    apply_event(c, event("PURCHASE", at=later + DAY, order=returned, event_id="e3"))
    assert c.orders == 2
    assert c.revenue_micros == 30_000_000
    assert c.data["returns"] == 1
    assert c.last_purchase_at == later  # a return is not a purchase


def test_count_order_false_records_the_event_but_not_the_order_again() -> None:
    c = customer()
    apply_event(c, event("PURCHASE", order=order(30_000_000, line("s1", 3))))
    changed = apply_event(
        c, event("PURCHASE", order=order(30_000_000, line("s1", 3)), event_id="e2"), False
    )
    assert (c.orders, c.revenue_micros) == (1, 30_000_000)
    assert "purchase_summary" not in changed
    assert {e["id"] for e in c.data["recent"]} == {"e1", "e2"}  # the event itself is recorded


def test_revenue_saturates_at_the_int64_bound_and_orders_still_count() -> None:
    top = 2**63 - 1
    c = customer()
    for i in range(3):
        big = order(top, line("s1", 1, top), order_id=f"o{i}")
        apply_event(c, event("PURCHASE", order=big, event_id=f"e{i}"))
    assert (c.orders, c.revenue_micros) == (3, top)
    merged = {"orders": 1, "revenue_micros": top}
    merge_data(merged, {"orders": 1, "revenue_micros": top})
    assert (merged["orders"], merged["revenue_micros"]) == (2, top)
    # stored before the bound existed: still readable
    assert customer(revenue_micros=top * 4).revenue_micros == top


def test_recent_events_keep_the_20_newest_first() -> None:
    c = customer()
    order_of_arrival = [7, 3, 29, 0, 15] + [i for i in range(30) if i not in (7, 3, 29, 0, 15)]
    for i in order_of_arrival:
        apply_event(c, event("PAGE_VIEW", at=T0 + i, event_id=f"e{i}"))
    assert [e["id"] for e in c.data["recent"]] == [f"e{i}" for i in range(29, 9, -1)]
    assert len(c.data["recent"]) == RECENT_EVENTS


def test_last_activity_only_moves_forward() -> None:
    c = customer()
    assert apply_event(c, event("PAGE_VIEW", at=T0 + 10)) >= {"last_activity_at"}
    changed = apply_event(c, event("PAGE_VIEW", at=T0 + 5, event_id="e2"))
    assert "last_activity_at" not in changed
    assert c.last_activity_at == T0 + 10


# ---------------------------------------------------------------- status


@pytest.mark.parametrize(
    ("idle_days", "status"),
    [
        (0, "ACTIVE"),
        (90, "ACTIVE"),
        (90.01, "CHURN_RISK"),
        (180, "CHURN_RISK"),
        (180.01, "LAPSED"),
        (400, "LAPSED"),
    ],
)
def test_status_by_days_since_last_activity(idle_days: float, status: str) -> None:
    now = T0 + 1000 * DAY
    c = customer(created_at=T0, last_activity_at=now - idle_days * DAY)
    assert status_of(c, now) == status


def test_status_new_while_first_seen_at_most_30_days_ago_with_at_most_one_order() -> None:
    c = customer(created_at=T0)
    assert status_of(c, T0) == "NEW"
    assert status_of(c, T0 + 30 * DAY) == "NEW"
    assert status_of(c, T0 + 30.01 * DAY) == "ACTIVE"  # last activity = created
    c.data["orders"] = 1
    assert status_of(c, T0 + DAY) == "NEW"
    c.data["orders"] = 2
    assert status_of(c, T0 + DAY) == "ACTIVE"


# ---------------------------------------------------------------- merge


def test_merge_data_sums_counts_and_takes_min_and_max_dates() -> None:
    target = {
        "orders": 2,
        "returns": 1,
        "revenue_micros": 100,
        "first_purchase_at": T0,
        "last_purchase_at": T0 + 10,
        "last_activity_at": T0 + 10,
        "interests": {"shoes": [1.0, T0]},
        "engagement": [2.0, T0],
        "cart": {"s1": {"category": "", "quantity": 1, "price": 0, "currency": ""}},
        "attributes": {"name": "Ann"},
        "recent": [{"id": "t", "at": T0 + 10}],
    }
    source = {
        "orders": 3,
        "revenue_micros": 50,
        "currency": "GBP",
        "first_purchase_at": T0 - 100,
        "last_purchase_at": T0 + 5,
        "last_activity_at": T0 + 20,
        "interests": {"shoes": [2.0, T0], "hats": [1.0, T0]},
        "engagement": [1.0, T0],
        "cart": {
            "s1": {"category": "", "quantity": 2, "price": 0, "currency": ""},
            "s2": {"category": "", "quantity": 1, "price": 0, "currency": ""},
        },
        "attributes": {"name": "Bob", "city": "Leeds"},
        "recent": [{"id": "s", "at": T0 + 20}],
    }
    merge_data(target, source)
    assert (target["orders"], target["returns"], target["revenue_micros"]) == (5, 1, 150)
    assert target["currency"] == "GBP"
    assert target["first_purchase_at"] == T0 - 100
    assert target["last_purchase_at"] == T0 + 10
    assert target["last_activity_at"] == T0 + 20
    assert target["interests"] == {"shoes": [3.0, T0], "hats": [1.0, T0]}
    assert target["engagement"] == [3.0, T0]
    assert {k: v["quantity"] for k, v in target["cart"].items()} == {"s1": 3, "s2": 1}
    assert target["attributes"] == {"name": "Ann", "city": "Leeds"}  # the target's own win
    assert [e["id"] for e in target["recent"]] == ["s", "t"]


def test_merge_data_into_an_empty_profile() -> None:
    target: dict[str, object] = {}
    merge_data(target, {"last_purchase_at": T0, "orders": 1})
    assert target["orders"] == 1
    assert target["last_purchase_at"] == T0
    assert "first_purchase_at" not in target

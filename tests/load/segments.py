"""Segment definitions for the segmentation benchmark: a realistic mix of conditions.

`typical_segments()` returns 50 (name, Condition): 40 behavioural ones (profile properties —
status, purchase_summary, interests.<cat>, attributes.region, rfm — and event conditions with
windows) and 10 contextual or combined ones (channel, cart.total, placement, ...).
"""

from __future__ import annotations

from backcrm.segmentation.v1 import condition_pb2 as c
from google.protobuf import duration_pb2, struct_pb2

__all__ = [
    "BEHAVIOURAL",
    "CATEGORIES",
    "CONTEXTUAL",
    "all_of",
    "context",
    "event",
    "prop",
    "typical_segments",
    "value",
]

CATEGORIES = ("books", "garden", "kitchen", "toys", "sports", "beauty", "music", "outdoor")
DAY = 86_400
BEHAVIOURAL = 40
CONTEXTUAL = 10
Scalar = str | float | int | list[float] | list[str]


def value(v: Scalar) -> struct_pb2.Value:
    if isinstance(v, str):
        return struct_pb2.Value(string_value=v)
    if isinstance(v, list):
        out = struct_pb2.Value()
        out.list_value.extend(v)
        return out
    return struct_pb2.Value(number_value=float(v))


def _op(name: str) -> str:
    return f"OPERATOR_{name}"


def prop(path: str, op: str, v: Scalar) -> c.Condition:
    return c.Condition(property=c.PropertyCondition(path=path, op=_op(op), value=value(v)))


def context(path: str, op: str, v: Scalar) -> c.Condition:
    return c.Condition(context=c.ContextCondition(path=path, op=_op(op), value=value(v)))


def event(
    kind: str, within: int, count: int = 1, *, category: str = "", op: str = "GTE"
) -> c.Condition:
    filters = (
        [c.PropertyCondition(path="category", op=_op("EQ"), value=value(category))]
        if category
        else []
    )
    return c.Condition(
        event=c.EventCondition(
            type=f"EVENT_TYPE_{kind}",
            filters=filters,
            within=duration_pb2.Duration(seconds=within),
            count_op=_op(op),
            count=count,
        )
    )


def all_of(*conditions: c.Condition) -> c.Condition:
    return c.Condition(all_of=c.ConditionGroup(conditions=list(conditions)))


def none_of(*conditions: c.Condition) -> c.Condition:
    return c.Condition(none_of=c.ConditionGroup(conditions=list(conditions)))


def _behavioural() -> list[tuple[str, c.Condition]]:
    out: list[tuple[str, c.Condition]] = [
        ("status active", prop("status", "EQ", "ACTIVE")),
        ("status new", prop("status", "EQ", "NEW")),
        ("status churn risk", prop("status", "IN", ["CHURN_RISK", "LAPSED"])),
        ("buyers", prop("purchase_summary.orders", "GTE", 1)),
        ("repeat buyers", prop("purchase_summary.orders", "GTE", 2)),
        ("frequent buyers", prop("purchase_summary.orders", "GTE", 5)),
        ("revenue 50+", prop("purchase_summary.revenue", "GTE", 50)),
        ("revenue 200+", prop("purchase_summary.revenue", "GTE", 200)),
        ("region London", prop("attributes.region", "EQ", "London")),
        ("region North", prop("attributes.region", "IN", ["North", "Scotland"])),
        (
            "rfm champions",
            all_of(prop("rfm.recency_score", "GTE", 4), prop("rfm.frequency_score", "GTE", 4)),
        ),
        ("rfm big spenders", prop("rfm.monetary_score", "BETWEEN", [4.0, 5.0])),
        ("recent buyers", prop("rfm.recency_days", "LT", 30)),
    ]
    for cat in CATEGORIES:
        out.append((f"interest {cat}", prop(f"interests.{cat}", "GT", 0.5)))
    for cat in CATEGORIES[:6]:
        out.append((f"viewed {cat} 7d", event("PRODUCT_VIEW", 7 * DAY, category=cat)))
    out += [
        ("viewers 3+ 1d", event("PRODUCT_VIEW", DAY, 3)),
        ("carted 1d", event("ADD_TO_CART", DAY)),
        ("carted 2+ 7d", event("ADD_TO_CART", 7 * DAY, 2)),
        ("bought 30d", event("PURCHASE", 30 * DAY)),
        ("bought books 30d", event("PURCHASE", 30 * DAY, category="books")),
        ("bought toys 90d", event("PURCHASE", 90 * DAY, category="toys")),
        (
            "cart abandoners",
            all_of(event("ADD_TO_CART", DAY), none_of(event("PURCHASE", DAY))),
        ),
        (
            "buyers browsing kitchen",
            all_of(
                prop("purchase_summary.orders", "GTE", 1),
                event("PRODUCT_VIEW", 7 * DAY, category="kitchen"),
            ),
        ),
        (
            "lookers not buyers",
            all_of(event("PRODUCT_VIEW", 7 * DAY, 2), prop("purchase_summary.orders", "EQ", 0)),
        ),
        ("engaged", prop("engagement_score", "GT", 1)),
        (
            "active sports fans",
            all_of(prop("status", "EQ", "ACTIVE"), prop("interests.sports", "GT", 1)),
        ),
        (
            "music or outdoor",
            c.Condition(
                any_of=c.ConditionGroup(
                    conditions=[
                        prop("interests.music", "GT", 1),
                        prop("interests.outdoor", "GT", 1),
                    ]
                )
            ),
        ),
        ("web browsers 7d", event("PAGE_VIEW", 7 * DAY)),
    ]
    assert len(out) == BEHAVIOURAL, len(out)
    return out


def _contextual() -> list[tuple[str, c.Condition]]:
    out = [
        ("on mobile", context("channel", "EQ", "MOBILE_APP")),
        ("home top", context("placement", "EQ", "home.top")),
        ("big cart", context("cart.total", "GTE", 50)),
        ("toys in cart", context("cart.categories", "CONTAINS", "toys")),
        ("evening", context("now.hour", "BETWEEN", [18.0, 23.0])),
        (
            "web buyers",
            all_of(context("channel", "EQ", "WEB"), prop("purchase_summary.orders", "GTE", 1)),
        ),
        (
            "big cart kitchen fans",
            all_of(context("cart.total", "GTE", 100), prop("interests.kitchen", "GT", 0.5)),
        ),
        (
            "mobile repeat buyers",
            all_of(
                context("channel", "EQ", "MOBILE_APP"), prop("purchase_summary.orders", "GTE", 2)
            ),
        ),
        (
            "home viewers",
            all_of(context("placement", "PREFIX", "home"), event("PRODUCT_VIEW", DAY)),
        ),
        (
            "big cart carted",
            all_of(context("cart.quantity", "GTE", 3), event("ADD_TO_CART", 7 * DAY)),
        ),
    ]
    assert len(out) == CONTEXTUAL
    return out


def typical_segments() -> list[tuple[str, c.Condition]]:
    """40 behavioural then 10 contextual/combined (name, condition)."""
    return _behavioural() + _contextual()

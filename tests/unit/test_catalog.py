"""The index from changes to segments: only segments that read what changed are re-evaluated."""

from __future__ import annotations

from backcrm.profile.v1 import profile_service_pb2 as ppb
from backcrm.segmentation.v1 import condition_pb2 as c
from google.protobuf import duration_pb2, struct_pb2

from services.segmentation.catalog import Catalog
from services.segmentation.records import SegmentRecord


def prop(path: str, op: int, value: struct_pb2.Value) -> c.Condition:
    return c.Condition(property=c.PropertyCondition(path=path, op=op, value=value))


def num(x: float) -> struct_pb2.Value:
    return struct_pb2.Value(number_value=x)


def text(x: str) -> struct_pb2.Value:
    return struct_pb2.Value(string_value=x)


def record(segment_id: str, condition: c.Condition, kind: str = "BEHAVIORAL") -> SegmentRecord:
    return SegmentRecord(segment_id, segment_id, "", condition.SerializeToString(), kind, "READY")


def views(category: str, within: int = 0) -> c.Condition:
    return c.Condition(
        event=c.EventCondition(
            type=ppb.EVENT_TYPE_PRODUCT_VIEW,
            filters=[c.PropertyCondition(path="category", op=c.OPERATOR_EQ, value=text(category))],
            within=duration_pb2.Duration(seconds=within),
            count_op=c.OPERATOR_GTE,
            count=1,
        )
    )


def catalog() -> Catalog:
    nested = c.Condition(
        all_of=c.ConditionGroup(
            conditions=[
                c.Condition(segment=c.SegmentCondition(segment_id="books")),
                prop("attributes.city", c.OPERATOR_EQ, text("Leeds")),
            ]
        )
    )
    mobile = c.Condition(
        context=c.ContextCondition(path="channel", op=c.OPERATOR_EQ, value=text("MOBILE_APP"))
    )
    return Catalog.load(
        [
            record("books", prop("interests.books", c.OPERATOR_GT, num(1))),
            record("music", prop("interests.music", c.OPERATOR_GT, num(1))),
            record("buyers", prop("purchase_summary.orders", c.OPERATOR_GTE, num(2))),
            record("active", prop("status", c.OPERATOR_EQ, text("ACTIVE"))),
            record("recent", prop("rfm.recency_days", c.OPERATOR_LT, num(30))),
            record("viewers", views("tv", 86_400)),
            record("leeds_books", nested),
            record("mobile", mobile, kind="CONTEXTUAL"),
        ]
    )


def test_a_change_selects_only_the_segments_that_read_it() -> None:
    cat = catalog()
    assert cat.affected(["interests.books"], []) == {"books", "leeds_books"}
    assert cat.affected(["interests.music"], []) == {"music"}
    assert cat.affected(["interests"], []) == {"books", "music", "leeds_books"}
    assert cat.affected(["cart"], []) == set()
    assert cat.affected(["attributes.city"], []) == {"leeds_books"}


def test_derived_fields_follow_what_they_are_computed_from() -> None:
    cat = catalog()
    assert "active" in cat.affected(["last_activity_at"], [])
    assert {"buyers", "active", "recent"} <= cat.affected(["purchase_summary", "rfm"], [])


def test_events_select_by_type_and_contextual_segments_are_never_maintained() -> None:
    cat = catalog()
    assert cat.affected([], ["PRODUCT_VIEW"]) == {"viewers"}
    assert cat.affected([], ["EMAIL_OPEN"]) == set()
    assert "mobile" not in cat.affected(["*"], [])
    assert cat.affected(["*"], []) == set(cat.entries) - {"mobile"}


def test_references_come_before_the_segments_that_use_them() -> None:
    cat = catalog()
    assert cat.ordered({"leeds_books", "books"}) == ["books", "leeds_books"]
    types, window = cat.event_needs({"viewers", "books"})
    assert (types, window) == ({"PRODUCT_VIEW"}, 86_400)


def bought(within: int = 0) -> c.Condition:
    return c.Condition(
        event=c.EventCondition(
            type=ppb.EVENT_TYPE_PURCHASE,
            within=duration_pb2.Duration(seconds=within),
            count_op=c.OPERATOR_GTE,
            count=1,
        )
    )


def test_events_are_read_per_type_as_far_back_as_a_condition_on_the_type_looks() -> None:
    """A week of views and a quarter of purchases, not a quarter of both; a condition over
    all history makes its type read whole; a type no segment reads is not read."""
    week, quarter = 7 * 86_400, 90 * 86_400
    cat = Catalog.load(
        [
            record("views", views("books", week)),
            record("buyers", bought(quarter)),
            record("ever", bought()),
        ]
    )
    assert cat.event_windows({"views", "buyers"}) == {"PRODUCT_VIEW": week, "PURCHASE": quarter}
    assert cat.event_windows({"views", "buyers", "ever"}) == {
        "PRODUCT_VIEW": week,
        "PURCHASE": None,
    }
    assert cat.event_cutoffs({"views", "buyers"}, 1e9) == {
        "PRODUCT_VIEW": 1e9 - week,
        "PURCHASE": 1e9 - quarter,
    }
    assert cat.event_needs({"views", "buyers"}) == ({"PRODUCT_VIEW", "PURCHASE"}, quarter)
    assert cat.event_needs({"views", "ever"}) == ({"PRODUCT_VIEW", "PURCHASE"}, None)
    assert cat.event_windows(set()) == {}

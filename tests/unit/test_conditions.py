"""The condition engine without storage: validation, round trips, kinds, reads, the
per-customer evaluator and its next_change_at, and hostile input."""

from __future__ import annotations

import math
from typing import Any

import pytest
from backcrm.common.v1 import common_pb2
from backcrm.profile.v1 import profile_service_pb2
from backcrm.segmentation.v1 import condition_pb2
from google.protobuf import json_format, struct_pb2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from libs.errors import InvalidArgument
from services.segmentation.conditions import (
    MAX_DEPTH,
    ContextCond,
    EventCond,
    Group,
    Node,
    Property,
    SegmentRef,
    evaluate,
    fields,
    kind_of,
    parse_condition,
    reads_of,
    segment_refs,
    to_proto,
    to_sql,
)
from services.segmentation.conditions.evaluate import status_at
from services.segmentation.facts import CartItem, ContextFacts, CustomerFacts, FactEvent
from services.segmentation.models import SegProfileRow

DAY = 86_400.0
NOW = 1_714_521_600.0  # 2024-05-01T00:00:00Z, a Wednesday
F = "segment.condition"


def cond(d: dict[str, Any]) -> condition_pb2.Condition:
    return json_format.ParseDict(d, condition_pb2.Condition())


def prop(path: str, op: str, value: Any = None) -> dict[str, Any]:
    p: dict[str, Any] = {"path": path, "op": f"OPERATOR_{op}"}
    if value is not None:
        p["value"] = value
    return {"property": p}


def ctx(path: str, op: str, value: Any = None) -> dict[str, Any]:
    return {"context": prop(path, op, value)["property"]}


def event(**kw: Any) -> dict[str, Any]:
    return {"event": {"type": "EVENT_TYPE_PRODUCT_VIEW", **kw}}


def parse(d: dict[str, Any], **kw: Any) -> Node:
    return parse_condition(cond(d), F, **kw)


def violation(d: dict[str, Any] | condition_pb2.Condition, **kw: Any) -> str:
    message = d if isinstance(d, condition_pb2.Condition) else cond(d)
    with pytest.raises(InvalidArgument) as info:
        parse_condition(message, F, **kw)
    [(field, _)] = info.value.violations
    return field


def nested(inner: dict[str, Any], levels: int) -> dict[str, Any]:
    for _ in range(levels):
        inner = {"all_of": {"conditions": [inner]}}
    return inner


# ---------------------------------------------------------------- validation

BAD = [
    ({}, F),
    ({"all_of": {}}, f"{F}.all_of.conditions"),
    ({"none_of": {"conditions": [{}]}}, f"{F}.none_of.conditions[0]"),
    (prop("purchase_summary.nope", "EQ", 1), f"{F}.property.path"),
    (prop("attributes.shoe_size", "EQ", "x"), f"{F}.property.path"),
    (prop("traits.bonus", "EQ", "x"), f"{F}.property.path"),
    (prop("consents.FAX", "EQ", "GRANTED"), f"{F}.property.path"),
    (prop("identities.EMAIL", "EXISTS"), f"{F}.property.path"),
    (prop("", "EXISTS"), f"{F}.property.path"),
    (prop("attributes.city\n", "EXISTS"), f"{F}.property.path"),
    (prop("purchase_summary.orders", "PREFIX", "1"), f"{F}.property.op"),
    (prop("status", "LT", "NEW"), f"{F}.property.op"),
    (prop("purchase_summary.orders", "UNSPECIFIED", 1), f"{F}.property.op"),
    ({"property": {"path": "status", "op": 99, "value": "NEW"}}, f"{F}.property.op"),
    (prop("traits.bonus.vip", "LT", True), f"{F}.property.value"),
    (prop("traits.bonus.vip", "PREFIX", 1), f"{F}.property.value"),
    (prop("purchase_summary.orders", "GT", "2"), f"{F}.property.value"),
    (prop("purchase_summary.orders", "GT", True), f"{F}.property.value"),
    (prop("purchase_summary.orders", "EQ"), f"{F}.property.value"),
    (prop("purchase_summary.orders", "IN", 2), f"{F}.property.value"),
    (prop("purchase_summary.orders", "IN", []), f"{F}.property.value"),
    (prop("purchase_summary.orders", "IN", [1, "2"]), f"{F}.property.value"),
    (prop("purchase_summary.orders", "IN", list(range(1001))), f"{F}.property.value"),
    (prop("purchase_summary.orders", "BETWEEN", [1, 2, 3]), f"{F}.property.value"),
    (prop("purchase_summary.orders", "BETWEEN", [5, 1]), f"{F}.property.value"),
    (prop("traits.a.b", "BETWEEN", [1, "z"]), f"{F}.property.value"),
    (prop("purchase_summary.revenue", "GT", "NaN"), f"{F}.property.value"),
    (prop("status", "EQ", "PLATINUM"), f"{F}.property.value"),
    (prop("status", "EQ", "PROFILE_STATUS_UNSPECIFIED"), f"{F}.property.value"),
    (prop("consents.EMAIL", "EQ", "CHANNEL_WEB"), f"{F}.property.value"),
    (prop("created_at", "GT", "2024-05-01"), f"{F}.property.value"),
    (prop("created_at", "GT", "2024-02-30T00:00:00Z"), f"{F}.property.value"),
    (prop("created_at", "GT", "2024-05-01T00:00:00"), f"{F}.property.value"),
    (prop("created_at", "GT", 1714521600), f"{F}.property.value"),
    (prop("attributes.city", "EQ", "Ber\x00lin"), f"{F}.property.value"),
    (prop("attributes.city", "EQ", "B" * 257), f"{F}.property.value"),
    (prop("attributes.city", "IN", ["ok", "x\x1b"]), f"{F}.property.value"),
    (prop("interests.books", "EQ", {"a": 1}), f"{F}.property.value"),
    (event(type=0), f"{F}.event.type"),
    (event(type=99), f"{F}.event.type"),
    (event(count=-1, count_op="OPERATOR_GTE"), f"{F}.event.count"),
    (event(count=2), f"{F}.event.count_op"),
    (event(count=2, count_op="OPERATOR_CONTAINS"), f"{F}.event.count_op"),
    (event(within="-1s"), f"{F}.event.within"),
    (event(within=f"{3654 * 86400}s"), f"{F}.event.within"),
    (
        event(filters=[prop("purchase_summary.orders", "GT", 1)["property"]]),
        f"{F}.event.filters[0].path",
    ),
    (event(filters=[prop("quantity", "CONTAINS", "1")["property"]]), f"{F}.event.filters[0].op"),
    (event(filters=[prop("channel", "EQ", "FAX")["property"]]), f"{F}.event.filters[0].value"),
    ({"segment": {}}, f"{F}.segment.segment_id"),
    ({"segment": {"segment_id": "s\t1"}}, f"{F}.segment.segment_id"),
    (ctx("cart.skus", "EQ", "A1"), f"{F}.context.op"),
    (ctx("cart.total", "GT", "1"), f"{F}.context.value"),
    (ctx("weather", "EQ", "rain"), f"{F}.context.path"),
    (
        {
            "all_of": {
                "conditions": [
                    prop("status", "EQ", "NEW"),
                    event(),
                    event(
                        filters=[
                            prop("quantity", "GT", 1)["property"],
                            prop("category", "EQ", 3)["property"],
                        ]
                    ),
                ]
            }
        },
        f"{F}.all_of.conditions[2].event.filters[1].value",
    ),
]


@pytest.mark.parametrize(("bad", "field"), BAD)
def test_bad_input_names_the_node(bad: dict[str, Any], field: str) -> None:
    assert violation(bad) == field


def test_invalid_duration_is_invalid_argument() -> None:
    message = cond(event())
    message.event.within.seconds, message.event.within.nanos = 5, -3
    assert violation(message) == f"{F}.event.within"


def test_unknown_segment_named_only_when_a_lookup_is_given() -> None:
    d = {"any_of": {"conditions": [prop("status", "EQ", "NEW"), {"segment": {"segment_id": "s9"}}]}}
    assert parse(d) == Group("any_of", (Property("status", "EQ", "NEW"), SegmentRef("s9")))
    assert (
        violation(d, segment_exists=lambda s: s == "s1")
        == f"{F}.any_of.conditions[1].segment.segment_id"
    )
    assert parse(d, segment_exists=lambda s: s == "s9")


def test_depth_limit() -> None:
    leaf = prop("status", "EQ", "NEW")
    assert isinstance(parse(nested(leaf, MAX_DEPTH - 1)), Group)  # 32 levels
    field = violation(nested(leaf, MAX_DEPTH))  # 33 levels: the leaf is too deep
    assert field == F + ".all_of.conditions[0]" * MAX_DEPTH


def test_node_limit_counts_filters() -> None:
    leaf = prop("status", "EQ", "NEW")
    assert parse({"any_of": {"conditions": [leaf] * 999}})
    assert violation({"any_of": {"conditions": [leaf] * 1000}}) == F
    many_filters = event(filters=[prop("quantity", "GT", 1)["property"]] * 1000)
    assert violation(many_filters) == F


def test_enum_values_match_the_generated_enums() -> None:
    def short(enum: Any, prefix: str) -> set[str]:
        return {n.removeprefix(prefix) for n in list(enum.keys()) if not n.endswith("UNSPECIFIED")}

    assert short(profile_service_pb2.ProfileStatus, "PROFILE_STATUS_") == set(
        fields.PROFILE_STATUSES
    )
    assert short(common_pb2.Channel, "CHANNEL_") == set(fields.CHANNELS)
    assert short(profile_service_pb2.ConsentState, "CONSENT_STATE_") == set(fields.CONSENT_STATES)


# ---------------------------------------------------------------- normalisation and round trip


def test_values_are_normalised() -> None:
    tree = parse(
        {
            "all_of": {
                "conditions": [
                    prop("status", "IN", ["PROFILE_STATUS_ACTIVE", "NEW"]),
                    prop("consents.EMAIL", "EQ", "CONSENT_STATE_GRANTED"),
                    prop(
                        "created_at",
                        "BETWEEN",
                        ["2024-05-01T02:00:00+02:00", "2024-05-01T00:00:00.25Z"],
                    ),
                    prop("purchase_summary.orders", "GT", 1),
                    prop("attributes.city", "EXISTS", "ignored"),
                    event(type="EVENT_TYPE_PURCHASE"),
                    event(
                        within="0s",
                        count_op="OPERATOR_LT",
                        count=2,
                        filters=[prop("channel", "EQ", "CHANNEL_WEB")["property"]],
                    ),
                ]
            }
        }
    )
    assert tree == Group(
        "all_of",
        (
            Property("status", "IN", ("ACTIVE", "NEW")),
            Property("consents.EMAIL", "EQ", "GRANTED"),
            Property("created_at", "BETWEEN", (NOW, NOW + 0.25)),
            Property("purchase_summary.orders", "GT", 1.0),
            Property("attributes.city", "EXISTS", None),
            EventCond("PURCHASE", (), None, "GTE", 1),
            EventCond("PRODUCT_VIEW", (Property("channel", "EQ", "WEB"),), None, "LT", 2),
        ),
    )


GOOD = [
    Property("traits.bonus.tier", "IN", ("gold", 2.0, True)),
    Property("purchase_summary.last_purchase_at", "LT", 1_714_521_600.123456),
    Property("created_at", "GTE", -86_400.5),
    Property("interests.home & garden.tools", "GT", 0.5),
    ContextCond("cart.categories", "CONTAINS", "books"),
    ContextCond("now.hour", "BETWEEN", (9.0, 17.0)),
    EventCond("ADD_TO_CART", (Property("properties.size", "EQ", "XL"),), 2_592_000.5, "NE", 0),
    EventCond("PURCHASE", (), 315_000_000.999999999, "GTE", 1_000_000_000),
    Group("none_of", (SegmentRef("seg1"), Property("traits.a.b", "PREFIX", "x"))),
]


@pytest.mark.parametrize("node", GOOD)
def test_round_trip(node: Node) -> None:
    assert parse_condition(to_proto(node), F) == node


@given(
    seconds=st.integers(0, 3653 * 86_400 - 1),
    nanos=st.integers(0, 999_999_999),
    micros=st.integers(-62_135_596_800 * 10**6, 253_402_300_799 * 10**6),
)
def test_round_trip_durations_and_timestamps(seconds: int, nanos: int, micros: int) -> None:
    message = cond(event())
    message.event.within.seconds, message.event.within.nanos = seconds, nanos
    node = parse_condition(message, F)
    assert parse_condition(to_proto(node), F) == node
    stamp = Property("created_at", "EQ", micros / 10**6)
    assert parse_condition(to_proto(stamp), F) == stamp


# ---------------------------------------------------------------- kind and reads


def test_kind_of() -> None:
    kinds = {"b": "BEHAVIORAL", "c": "CONTEXTUAL", "m": "COMBINED"}.__getitem__
    behavioral = Property("status", "EQ", "NEW")
    contextual = ContextCond("channel", "EQ", "WEB")
    assert kind_of(behavioral, kinds) == "BEHAVIORAL"
    assert kind_of(EventCond("PURCHASE", (), None, "GTE", 1), kinds) == "BEHAVIORAL"
    assert kind_of(Group("none_of", (contextual,)), kinds) == "CONTEXTUAL"
    assert kind_of(Group("all_of", (behavioral, contextual)), kinds) == "COMBINED"
    assert kind_of(Group("all_of", (contextual, SegmentRef("b"))), kinds) == "COMBINED"
    assert kind_of(Group("all_of", (contextual, SegmentRef("c"))), kinds) == "CONTEXTUAL"
    assert kind_of(SegmentRef("m"), kinds) == "COMBINED"


def test_reads_of() -> None:
    tree = Group(
        "all_of",
        (
            Property("interests.books", "GT", 1.0),
            Property("purchase_summary.orders", "GT", 1.0),
            EventCond("PURCHASE", (Property("category", "EQ", "x"),), None, "GTE", 1),
            SegmentRef("s1"),
            Group("none_of", (SegmentRef("s2"),)),
        ),
    )
    reads = reads_of(tree)
    assert reads.paths == {"interests.books", "purchase_summary.orders"}
    assert reads.event_types == {"PURCHASE"}
    assert reads.segments == {"s1", "s2"} == segment_refs(tree)
    assert not reads.time_dependent and not reads.contextual
    for timed in (
        EventCond("PURCHASE", (), DAY, "GTE", 1),
        Property("rfm.recency_days", "LT", 3.0),
        Property("status", "EQ", "NEW"),
    ):
        assert reads_of(Group("any_of", (tree, timed))).time_dependent
    assert reads_of(ContextCond("region", "EQ", "EU")).contextual


# ---------------------------------------------------------------- evaluate


def facts(**kw: Any) -> CustomerFacts:
    base: dict[str, Any] = {
        "customer_id": "c1",
        "created_at": NOW - 400 * DAY,
        "last_activity_at": NOW - DAY,
    }
    return CustomerFacts(**{**base, **kw})


def ev(type_: str = "PRODUCT_VIEW", ago: float = DAY, **kw: Any) -> FactEvent:
    return FactEvent(f"e{ago}{type_}{kw}", "c1", type_, kw.pop("channel", "WEB"), NOW - ago, **kw)


def check(
    node: Node,
    f: CustomerFacts | None = None,
    events: tuple[FactEvent, ...] = (),
    context: ContextFacts | None = None,
    now: float = NOW,
) -> bool:
    return evaluate(node, f or facts(), events, context, now, lambda s: s == "member").matched


RINGTONES = parse(
    event(
        filters=[prop("category", "EQ", "ringtones")["property"]],
        within="2592000s",
        count_op="OPERATOR_GTE",
        count=2,
    )
)


def test_viewed_ringtones_at_least_twice_in_30_days() -> None:
    inside = [ev(ago=d * DAY, category="ringtones") for d in (1, 29.9)]
    assert check(RINGTONES, events=tuple(inside))
    assert not check(RINGTONES, events=(inside[0],))
    assert not check(RINGTONES, events=(inside[0], ev(ago=30 * DAY, category="ringtones")))
    assert not check(RINGTONES, events=(inside[0], ev(ago=DAY, category="books")))
    assert not check(RINGTONES, events=(inside[0], ev("PURCHASE", DAY, category="ringtones")))


def test_count_below_matches_customers_without_events() -> None:
    assert check(EventCond("PURCHASE", (), None, "LT", 2))
    assert not check(EventCond("PURCHASE", (), None, "GTE", 1))


def test_absent_values() -> None:
    f = facts(attributes={"city": "", "region": "EU"})
    assert check(Property("attributes.city", "NE", "Berlin"), f)
    assert not check(Property("attributes.city", "EQ", "Berlin"), f)
    assert not check(Property("attributes.city", "EXISTS", None), f)
    assert check(Property("attributes.region", "EXISTS", None), f)
    assert not check(Property("attributes.city", "LT", "zzz"), f)
    assert check(Group("none_of", (Property("attributes.city", "LT", "zzz"),)), f)
    assert not check(Property("rfm.recency_days", "GTE", 0.0), f)
    assert check(Property("rfm.recency_days", "NE", 0.0), f)


def test_between_is_inclusive() -> None:
    f = facts(orders=3)
    assert check(Property("purchase_summary.orders", "BETWEEN", (3.0, 5.0)), f)
    assert check(Property("purchase_summary.orders", "BETWEEN", (1.0, 3.0)), f)
    assert not check(Property("purchase_summary.orders", "BETWEEN", (3.5, 5.0)), f)


def test_strings_are_case_sensitive_and_literal() -> None:
    f = facts(attributes={"city": "Berlin"}, traits={"a.b": "50%_off"})
    assert not check(Property("attributes.city", "EQ", "berlin"), f)
    assert check(Property("attributes.city", "PREFIX", "Ber"), f)
    assert not check(Property("attributes.city", "PREFIX", "ber"), f)
    assert check(Property("attributes.city", "CONTAINS", "rli"), f)
    assert check(Property("attributes.city", "LT", "berlin"), f)  # code point order: "B" < "b"
    assert check(Property("traits.a.b", "CONTAINS", "%_"), f)
    assert not check(Property("traits.a.b", "CONTAINS", "5%off"), f)


@pytest.mark.parametrize(
    ("created_days", "idle_days", "orders", "status"),
    [
        (30, 0, 1, "NEW"),
        (30.0001, 0, 1, "ACTIVE"),
        (5, 0, 2, "ACTIVE"),
        (400, 90, 0, "ACTIVE"),
        (400, 90.0001, 0, "CHURN_RISK"),
        (400, 180, 0, "CHURN_RISK"),
        (400, 180.0001, 0, "LAPSED"),
        (5, 200, 0, "NEW"),
    ],
)
def test_status_thresholds(created_days: float, idle_days: float, orders: int, status: str) -> None:
    f = facts(
        created_at=NOW - created_days * DAY, last_activity_at=NOW - idle_days * DAY, orders=orders
    )
    assert status_at(f, NOW) == status
    assert check(Property("status", "EQ", status), f)
    assert not check(Property("status", "NE", status), f)


def test_recency_days() -> None:
    f = facts(last_purchase_at=NOW - 2.5 * DAY)
    assert check(Property("rfm.recency_days", "EQ", 2.0), f)
    assert check(Property("rfm.recency_days", "LT", 2.5), f)
    assert not check(Property("rfm.recency_days", "GT", 2.0), f)
    assert check(Property("rfm.recency_days", "EQ", 3.0), f, now=NOW + 0.5 * DAY)


def test_traits_type_mismatch_is_absent() -> None:
    f = facts(traits={"loyalty.points": "10", "bonus.vip": True, "bonus.n": 1})
    assert not check(Property("traits.loyalty.points", "EQ", 10.0), f)
    assert not check(Property("traits.loyalty.points", "GT", 1.0), f)
    assert check(Property("traits.loyalty.points", "NE", 10.0), f)
    assert check(Property("traits.loyalty.points", "EQ", "10"), f)
    assert check(Property("traits.bonus.vip", "EQ", True), f)
    assert not check(Property("traits.bonus.vip", "EQ", 1.0), f)  # a bool is not a number
    assert not check(Property("traits.bonus.n", "EQ", True), f)  # nor a number a bool
    assert check(Property("traits.bonus.n", "IN", ("1", 1.0)), f)


def test_context_paths() -> None:
    context = ContextFacts(
        channel="WEB",
        cart=[CartItem("A1", "books", 2, 10.5), CartItem("B2", "", 1, 4.0)],
        attributes={"utm": "spring"},
        now=NOW + 13.5 * 3600,  # Wednesday 13:30 UTC
    )
    for node, expected in [
        (ContextCond("cart.total", "EQ", 25.0), True),
        (ContextCond("cart.quantity", "GTE", 3.0), True),
        (ContextCond("cart.skus", "CONTAINS", "B2"), True),
        (ContextCond("cart.categories", "CONTAINS", ""), False),
        (ContextCond("cart.categories", "IN", ("toys", "books")), True),
        (ContextCond("cart.categories", "IN", ("toys",)), False),
        (ContextCond("now.hour", "EQ", 13.0), True),
        (ContextCond("now.weekday", "EQ", 3.0), True),
        (ContextCond("channel", "EQ", "WEB"), True),
        (ContextCond("placement", "NE", "home"), True),
        (ContextCond("placement", "EXISTS", None), False),
        (ContextCond("attributes.utm", "PREFIX", "spr"), True),
    ]:
        assert check(node, context=context) is expected, node
    assert not check(ContextCond("cart.skus", "EXISTS", None), context=ContextFacts())
    with pytest.raises(ValueError, match="context"):
        check(Group("any_of", (SegmentRef("member"), ContextCond("region", "EXISTS", None))))


def test_segment_refs_use_the_callback() -> None:
    assert check(SegmentRef("member"))
    assert check(Group("none_of", (SegmentRef("other"),)))


# ---------------------------------------------------------------- next_change_at


def next_change(
    node: Node, f: CustomerFacts | None = None, events: tuple[FactEvent, ...] = ()
) -> float | None:
    return evaluate(node, f or facts(), events, None, NOW, lambda _: False).next_change_at


def test_next_change_at() -> None:
    assert next_change(Property("purchase_summary.orders", "GT", 1.0)) is None
    assert next_change(EventCond("PRODUCT_VIEW", (), None, "GTE", 1), events=(ev(),)) is None
    views = (ev(ago=DAY), ev(ago=10 * DAY), ev("PURCHASE", ago=20 * DAY), ev(ago=40 * DAY))
    window = EventCond("PRODUCT_VIEW", (), 30 * DAY, "GTE", 1)
    assert next_change(window, events=views) == NOW + 20 * DAY  # the 10-day-old view leaves first
    assert next_change(window) is None
    recency = Property("rfm.recency_days", "LT", 7.0)
    assert next_change(recency, facts(last_purchase_at=NOW - 2.25 * DAY)) == NOW + 0.75 * DAY
    assert next_change(recency) is None
    status = Property("status", "EQ", "ACTIVE")
    f = facts(created_at=NOW - 10 * DAY, last_activity_at=NOW - 50 * DAY)
    assert next_change(status, f) == pytest.approx(NOW + 20 * DAY, abs=1e-6)
    f = facts(last_activity_at=NOW - 100 * DAY)
    assert next_change(status, f) == pytest.approx(NOW + 80 * DAY, abs=1e-6)
    f = facts(last_activity_at=NOW - 200 * DAY)
    assert next_change(status, f) is None
    tree = Group("any_of", (recency, Group("none_of", (window,))))
    assert next_change(tree, facts(last_purchase_at=NOW - 2.25 * DAY), views) == NOW + 0.75 * DAY


@settings(max_examples=200, deadline=None)
@given(
    last=st.floats(0, 400).map(lambda d: NOW - d * DAY),
    created=st.floats(0, 60).map(lambda d: NOW - d * DAY),
    ago=st.floats(-1, 60).map(lambda d: d * DAY),
)
def test_nothing_changes_before_next_change_at(last: float, created: float, ago: float) -> None:
    """Never late: just before next_change_at every atom still answers as it did at now."""
    f = facts(created_at=created, last_activity_at=last, last_purchase_at=last, orders=1)
    atoms = [Property("status", "EQ", s) for s in fields.PROFILE_STATUSES]
    atoms += [Property("rfm.recency_days", "EQ", float(d)) for d in range(0, 402)]
    atoms += [EventCond("PRODUCT_VIEW", (), 30 * DAY, "GTE", 1)]
    tree = Group("any_of", tuple(atoms))
    events = (ev(ago=ago),)
    due = next_change(tree, f, events)
    assert due is not None and due > NOW

    def answers(at: float) -> list[bool]:
        return [evaluate(a, f, events, None, at, lambda _: False).matched for a in atoms]

    before = math.nextafter(due, -math.inf)
    assert answers(before) == answers(NOW)


# ---------------------------------------------------------------- SQL compilation


def test_sql_rejects_context_and_compiles_per_dialect() -> None:
    with pytest.raises(ValueError, match="per request"):
        to_sql(Group("all_of", (ContextCond("region", "EQ", "EU"),)), NOW, lambda s: None)  # type: ignore[arg-type,return-value]
    query = select(SegProfileRow.customer_id).where(
        to_sql(
            Group(
                "all_of",
                (
                    Property("attributes.city", "LT", "M"),
                    Property("attributes.city", "CONTAINS", "%"),
                ),
            ),
            NOW,
            lambda s: None,
        )  # type: ignore[arg-type,return-value]
    )
    pg = str(query.compile(dialect=postgresql.dialect()))
    lite = str(query.compile(dialect=sqlite.dialect()))
    assert 'COLLATE "C"' in pg and "strpos(" in pg and "LIKE" not in pg
    assert "COLLATE" not in lite and "instr(" in lite and "LIKE" not in lite
    assert "json_each(seg_profiles.doc" in lite


# ---------------------------------------------------------------- hostile input

_TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=300)
_NUMBER = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([1e308, -1e308, 2.0**63])
)
_VALUE = st.recursive(
    st.one_of(
        st.builds(lambda: struct_pb2.Value()),
        st.builds(lambda n: struct_pb2.Value(number_value=n), _NUMBER),
        st.builds(lambda s: struct_pb2.Value(string_value=s), _TEXT),
        st.builds(lambda b: struct_pb2.Value(bool_value=b), st.booleans()),
        st.builds(lambda: struct_pb2.Value(null_value=struct_pb2.NULL_VALUE)),
    ),
    lambda inner: st.builds(
        lambda items: struct_pb2.Value(list_value=struct_pb2.ListValue(values=items)),
        st.lists(inner, max_size=4),
    ),
    max_leaves=6,
)
_PATH = st.one_of(
    _TEXT,
    st.sampled_from(
        [
            "status",
            "created_at",
            "traits.a.b",
            "attributes.city",
            "interests.x",
            "rfm.recency_days",
            "cart.skus",
            "now.hour",
            "category",
            "properties.k",
            "order.total",
            "consents.EMAIL",
        ]
    ),
)
_OP = st.integers(-3, 14)
_INT64 = st.integers(-(2**63), 2**63 - 1)


def _test_msg(cls: Any) -> st.SearchStrategy[Any]:
    return st.builds(lambda p, o, v: cls(path=p, op=o, value=v), _PATH, _OP, _VALUE)


def _event_msg() -> st.SearchStrategy[condition_pb2.Condition]:
    def build(
        t: int, filters: list[Any], within: tuple[int, int] | None, op: int, count: int
    ) -> Any:
        e = condition_pb2.EventCondition(type=t, filters=filters, count_op=op, count=count)
        if within is not None:
            e.within.seconds, e.within.nanos = within
        return condition_pb2.Condition(event=e)

    return st.builds(
        build,
        st.integers(-2, 20),
        st.lists(_test_msg(condition_pb2.PropertyCondition), max_size=3),
        st.none() | st.tuples(st.integers(-(2**40), 2**40), st.integers(-(2**31), 2**31 - 1)),
        _OP,
        _INT64,
    )


_LEAVES = st.one_of(
    st.builds(condition_pb2.Condition),
    st.builds(
        lambda p: condition_pb2.Condition(property=p), _test_msg(condition_pb2.PropertyCondition)
    ),
    st.builds(
        lambda p: condition_pb2.Condition(context=p), _test_msg(condition_pb2.ContextCondition)
    ),
    st.builds(
        lambda s: condition_pb2.Condition(segment=condition_pb2.SegmentCondition(segment_id=s)),
        _TEXT,
    ),
    _event_msg(),
)


def _group(op: str, children: list[condition_pb2.Condition]) -> condition_pb2.Condition:
    c = condition_pb2.Condition()
    getattr(c, op).CopyFrom(condition_pb2.ConditionGroup(conditions=children))
    return c


_TREES = st.recursive(
    _LEAVES,
    lambda inner: st.builds(
        _group, st.sampled_from(["all_of", "any_of", "none_of"]), st.lists(inner, max_size=4)
    ),
    max_leaves=12,
)


def _parses_or_invalid(message: condition_pb2.Condition) -> None:
    try:
        node = parse_condition(message, F, segment_exists=lambda s: len(s) % 2 == 0)
    except InvalidArgument as exc:
        assert exc.violations and exc.violations[0][0].startswith(F)
        return
    assert parse_condition(to_proto(node), F, segment_exists=lambda s: True) == node


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(message=_TREES)
def test_hostile_trees_parse_or_are_invalid(message: condition_pb2.Condition) -> None:
    _parses_or_invalid(message)


@given(leaf=_LEAVES, op=st.sampled_from(["all_of", "any_of", "none_of"]))
@settings(max_examples=30, deadline=None)
def test_hostile_deep_and_wide_trees(leaf: condition_pb2.Condition, op: str) -> None:
    deep = leaf
    for _ in range(40):
        deep = _group(op, [deep])
    _parses_or_invalid(deep)
    _parses_or_invalid(_group(op, [leaf] * 2000))
    _parses_or_invalid(_group(op, [_group(op, [leaf] * 40)] * 50))


def test_a_context_condition_without_context_is_refused_even_when_short_circuited() -> None:
    """evaluate() refuses a context condition without the request's context even where
    matching would never reach it (an any_of already true): the maintained memberships
    must never be computed from a contextual segment."""
    view = EventCond("PRODUCT_VIEW", (), None, "GTE", 1)
    tree = Group("any_of", (view, ContextCond("channel", "EQ", "WEB")))
    with pytest.raises(ValueError, match="needs the request's context"):
        evaluate(tree, facts(), (ev(),), None, NOW, lambda _: False)
    with pytest.raises(ValueError, match="needs the request's context"):
        evaluate(ContextCond("channel", "EQ", "WEB"), facts(), (), None, NOW, lambda _: False)


def test_next_change_at_is_the_earliest_window_exit_among_many_events() -> None:
    """With many counted events the window's next change is when the oldest leaves."""
    window = EventCond("PRODUCT_VIEW", (), 30 * DAY, "GTE", 3)
    views = tuple(ev(ago=d * DAY) for d in (29.5, 1, 12, 7, 29.25, 3))
    assert next_change(window, events=views) == pytest.approx(NOW + 0.5 * DAY, abs=1e-6)

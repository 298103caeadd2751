"""The two condition evaluators agree: for random behavioural trees over a random population,
`to_sql` selects exactly the customers for which `evaluate` matches, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from sqlalchemy import ColumnElement, insert, select

from libs.db import make_engine
from services.segmentation.conditions import (
    EventCond,
    Group,
    Node,
    Property,
    SegmentRef,
    evaluate,
    parse_condition,
    to_proto,
    to_sql,
)
from services.segmentation.facts import CustomerFacts, FactEvent
from services.segmentation.models import SegEventRow, SegProfileRow
from tests.support import backend_settings

pytestmark = pytest.mark.integration

DAY = 86_400.0
NOW = 1_700_000_000.0
# Whole seconds, several on the boundaries the engine cares about (30/90/180 days, windows).
AGES = (
    0.0,
    0.5 * DAY,
    DAY,
    29.9 * DAY,
    30 * DAY,
    31 * DAY,
    90 * DAY,
    90.5 * DAY,
    180 * DAY,
    200 * DAY,
    400 * DAY,
    -DAY,
)
STRINGS = ("Berlin", "berlin", "Ber", "Moscow", "Zürich", "A%b_c", "", "gold", "Gold", "10")
NUMBERS = (0.0, 1.0, 2.0, 3.0, 5.0, 0.5, 2.5, 10.0, 10.5, 30.0, 45.0, 49.99, 100.0, -1.0)
JSON_VALUES: tuple[Any, ...] = (
    "gold",
    "silver",
    "Gold",
    "",
    "10",
    1,
    2.5,
    10,
    10.5,
    0,
    True,
    False,
    None,
    [1],
    {"a": 1},
)
CATEGORIES = ("ringtones", "books", "Books", "", "a.b")
EVENT_TYPES = ("PRODUCT_VIEW", "PURCHASE", "ADD_TO_CART")
CHANNELS = ("WEB", "MOBILE_APP", "EMAIL", "")
ATTRIBUTES = ("name", "email", "phone", "region", "city", "birth_date", "language")
WINDOWS = (None, DAY, 30 * DAY, 100 * DAY)

SEGMENTS: dict[str, Node] = {
    "seg_buyers": Property("purchase_summary.orders", "GTE", 2.0),
    "seg_recent": EventCond("PURCHASE", (), 30 * DAY, "GTE", 1),
}


# ---------------------------------------------------------------- the population


@dataclass
class Customer:
    facts: CustomerFacts
    events: list[FactEvent]


def _population(seed: int = 7, size: int = 30) -> list[Customer]:
    rng = random.Random(seed)
    customers = []
    for i in range(size):
        cid = f"c{i:03d}"
        purchased = rng.random() < 0.7
        facts = CustomerFacts(
            customer_id=cid,
            created_at=NOW - rng.choice(AGES),
            last_activity_at=NOW - rng.choice(AGES),
            orders=rng.choice((0, 1, 2, 5)),
            returns=rng.choice((0, 1)),
            revenue=rng.choice((0.0, 49.99, 100.0, 250.5)),
            first_purchase_at=NOW - rng.choice(AGES) if purchased else None,
            last_purchase_at=NOW - rng.choice(AGES) if purchased else None,
            engagement_score=rng.choice((0.0, 1.5, 3.0, 10.0)),
            recency_score=rng.randint(0, 5),
            frequency_score=rng.randint(0, 5),
            monetary_score=rng.randint(0, 5),
            attributes={a: rng.choice(STRINGS) for a in ATTRIBUTES if rng.random() < 0.6},
            interests={
                c: rng.choice((0.0, 0.5, 2.0, 2.0, "2.0"))
                for c in CATEGORIES
                if c and rng.random() < 0.5
            },
            traits={
                k: rng.choice(JSON_VALUES)
                for k in ("bonus.tier", "loyalty.points", "loyalty.card.no")
                if rng.random() < 0.7
            },
            consents={
                ch: rng.choice(("GRANTED", "DENIED", ""))
                for ch in ("EMAIL", "SMS", "WEB")
                if rng.random() < 0.6
            },
        )
        events = [
            FactEvent(
                event_id=f"{cid}-e{j}",
                customer_id=cid,
                type=rng.choice(EVENT_TYPES),
                channel=rng.choice(CHANNELS),
                occurred_at=NOW - rng.choice(AGES),
                category=rng.choice(CATEGORIES),
                sku=rng.choice(("A1", "B2", "")),
                quantity=rng.choice((0, 1, 3)),
                order_total=rng.choice((None, 9.99, 100.0)),
                properties={
                    k: rng.choice(JSON_VALUES) for k in ("color", "n", "a.b") if rng.random() < 0.6
                },
            )
            for j in range(rng.randint(0, 6))
        ]
        customers.append(Customer(facts, events))
    return customers


def _profile_row(f: CustomerFacts) -> dict[str, Any]:
    row = asdict(f)
    row["doc"] = {k: row.pop(k) for k in ("attributes", "interests", "traits", "consents")}
    return row


def _event_row(e: FactEvent) -> dict[str, Any]:
    return asdict(e)


@dataclass
class Store:
    name: str
    runner: asyncio.Runner
    engine: Any
    customers: list[Customer]

    def select_ids(self, node: Node) -> set[str]:
        query = select(SegProfileRow.customer_id).where(to_sql(node, NOW, _segment_sql))

        async def run() -> set[str]:
            async with self.engine.connect() as conn:
                return set((await conn.execute(query)).scalars())

        return self.runner.run(run())


def _segment_sql(segment_id: str) -> ColumnElement[bool]:
    return to_sql(SEGMENTS[segment_id], NOW, _segment_sql)


@pytest.fixture(scope="module", params=["embedded", "postgres"])
def store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Store]:
    tmp: Path = tmp_path_factory.mktemp(f"cond-{request.param}")
    customers = _population()
    with backend_settings(request.param, tmp) as backend, asyncio.Runner() as runner:
        engine = make_engine(backend.settings.database_url)

        async def load() -> None:
            async with engine.begin() as conn:
                await conn.execute(
                    insert(SegProfileRow), [_profile_row(c.facts) for c in customers]
                )
                rows = [_event_row(e) for c in customers for e in c.events]
                if rows:
                    await conn.execute(insert(SegEventRow), rows)

        runner.run(load())
        try:
            yield Store(request.param, runner, engine, customers)
        finally:
            runner.run(engine.dispose())


# ---------------------------------------------------------------- random trees


def _values(kind: str, op: str, dynamic_pool: tuple[Any, ...] = ()) -> st.SearchStrategy[Any]:
    if kind == "number":
        scalar: st.SearchStrategy[Any] = st.sampled_from(NUMBERS)
    elif kind == "timestamp":
        scalar = st.sampled_from([NOW - a for a in AGES])
    elif kind == "string":
        scalar = st.sampled_from(STRINGS)
    elif kind == "status":
        scalar = st.sampled_from(("NEW", "ACTIVE", "CHURN_RISK", "LAPSED"))
    elif kind == "consent":
        scalar = st.sampled_from(("GRANTED", "DENIED"))
    elif kind == "channel":
        scalar = st.sampled_from(("WEB", "MOBILE_APP", "EMAIL"))
    else:  # dynamic: the operator decides which JSON types may be compared
        if op in ("CONTAINS", "PREFIX"):
            scalar = st.sampled_from(STRINGS)
        elif op in ("LT", "LTE", "GT", "GTE", "BETWEEN"):
            scalar = st.one_of(st.sampled_from(NUMBERS), st.sampled_from(STRINGS))
        else:
            scalar = st.sampled_from(
                ("gold", "Gold", "", "10", 1.0, 2.5, 10.0, 10.5, 0.0, True, False)
            )
    if op == "EXISTS":
        return st.none()
    if op == "IN":
        return st.lists(scalar, min_size=1, max_size=3).map(tuple)
    if op == "BETWEEN":
        pair = st.tuples(scalar, scalar).filter(lambda p: type(p[0]) is type(p[1]))
        return pair.map(lambda p: tuple(sorted(p)))
    return scalar


ORDERED = ("EQ", "NE", "LT", "LTE", "GT", "GTE", "IN", "BETWEEN", "EXISTS")
OPS = {
    "number": ORDERED,
    "timestamp": ORDERED,
    "string": (*ORDERED, "CONTAINS", "PREFIX"),
    "dynamic": (*ORDERED, "CONTAINS", "PREFIX"),
    "status": ("EQ", "NE", "IN", "EXISTS"),
    "consent": ("EQ", "NE", "IN", "EXISTS"),
    "channel": ("EQ", "NE", "IN", "EXISTS"),
}
PROFILE_PATHS = {
    **{
        p: "number"
        for p in (
            "purchase_summary.orders",
            "purchase_summary.returns",
            "purchase_summary.revenue",
            "rfm.recency_days",
            "rfm.frequency",
            "rfm.monetary",
            "rfm.recency_score",
            "rfm.frequency_score",
            "rfm.monetary_score",
            "engagement_score",
            "interests.books",
            "interests.ringtones",
            "interests.a.b",
            "interests.none",
        )
    },
    **{
        p: "timestamp"
        for p in (
            "created_at",
            "last_activity_at",
            "purchase_summary.first_purchase_at",
            "purchase_summary.last_purchase_at",
        )
    },
    **{f"attributes.{a}": "string" for a in ATTRIBUTES},
    "status": "status",
    "consents.EMAIL": "consent",
    "consents.SMS": "consent",
    "consents.STORE": "consent",
    **{
        p: "dynamic"
        for p in (
            "traits.bonus.tier",
            "traits.loyalty.points",
            "traits.loyalty.card.no",
            "traits.no.such",
        )
    },
}
EVENT_PATHS = {
    "category": "string",
    "sku": "string",
    "channel": "channel",
    "order.total": "number",
    "quantity": "number",
    "properties.color": "dynamic",
    "properties.n": "dynamic",
    "properties.a.b": "dynamic",
}


@st.composite
def _test(draw: st.DrawFn, paths: dict[str, str]) -> Property:
    path = draw(st.sampled_from(sorted(paths)))
    kind = paths[path]
    op = draw(st.sampled_from(OPS[kind]))
    return Property(path, op, draw(_values(kind, op)))


@st.composite
def _event(draw: st.DrawFn) -> EventCond:
    filters = draw(st.lists(_test(EVENT_PATHS), max_size=2))
    return EventCond(
        type=draw(st.sampled_from(EVENT_TYPES)),
        filters=tuple(filters),
        within_seconds=draw(st.sampled_from(WINDOWS)),
        count_op=draw(st.sampled_from(("EQ", "NE", "LT", "LTE", "GT", "GTE"))),
        count=draw(st.integers(0, 3)),
    )


ATOMS: st.SearchStrategy[Node] = st.one_of(
    _test(PROFILE_PATHS),
    _test(PROFILE_PATHS),
    _event(),
    st.sampled_from(sorted(SEGMENTS)).map(SegmentRef),
)
TREES: st.SearchStrategy[Node] = st.recursive(
    ATOMS,
    lambda children: st.builds(
        Group,
        st.sampled_from(("all_of", "any_of", "none_of")),
        st.lists(children, min_size=1, max_size=3).map(tuple),
    ),
    max_leaves=8,
)


def _depth(node: Node) -> int:
    return 1 + max(map(_depth, node.children)) if isinstance(node, Group) else 1


def _matching(store: Store, node: Node) -> set[str]:
    def member(segment_id: str, c: Customer) -> bool:
        return evaluate(SEGMENTS[segment_id], c.facts, c.events, None, NOW, lambda _: False).matched

    return {
        c.facts.customer_id
        for c in store.customers
        if evaluate(node, c.facts, c.events, None, NOW, lambda s, c=c: member(s, c)).matched
    }


def test_population_hits_both_sides(store: Store) -> None:
    """The pools are small enough that equality tests hit (the property test is not vacuous)."""
    for node in (
        Property("attributes.city", "EQ", "Berlin"),
        Property("traits.bonus.tier", "EQ", "gold"),
        Property("status", "EQ", "NEW"),
        EventCond("PRODUCT_VIEW", (Property("category", "EQ", "ringtones"),), 30 * DAY, "GTE", 1),
    ):
        selected = store.select_ids(node)
        assert selected == _matching(store, node)
        assert 0 < len(selected) < len(store.customers), node


@settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(node=TREES)
def test_sql_agrees_with_evaluate(store: Store, node: Node) -> None:
    assume(_depth(node) <= 4)
    assert parse_condition(to_proto(node), "condition") == node  # the generator makes valid trees
    assert store.select_ids(node) == _matching(store, node), node

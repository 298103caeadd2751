"""The set-wise evaluator: a condition compiled to one boolean SQLAlchemy Core expression
over `seg_profiles` (event conditions as one grouped pass over `seg_events` each).

Usable as `select(SegProfileRow.customer_id).where(to_sql(node, now, segment_sql))` on SQLite
and PostgreSQL alike, and must agree exactly with `evaluate.py`:

- every atom is guarded to be strictly two-valued (`CASE WHEN <test> THEN true ELSE false
  END`), so `none_of` over an absent value answers as Python does;
- JSON values are typed before they are compared (a trait holding a string never compares
  as a number) with a few dialect-specific constructs compiled below: `json_each` on SQLite
  (keys are matched as values, never spliced into a JSON path), `->`/`->>` on PostgreSQL;
- strings order by code point: SQLite's BINARY collation does, on PostgreSQL `COLLATE "C"`;
  substring and prefix tests use `instr`/`strpos` and `substr`, never `LIKE` (which is
  case-insensitive on SQLite and treats `%` and `_` as wildcards);
- the same float arithmetic as Python for status and recency, so boundaries agree.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    ColumnElement,
    Float,
    FromClause,
    String,
    and_,
    case,
    false,
    func,
    literal,
    not_,
    or_,
    select,
    true,
    type_coerce,
)
from sqlalchemy.exc import CompileError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from services.segmentation.conditions.ast import (
    ContextCond,
    EventCond,
    Group,
    Node,
    Property,
    SegmentRef,
)
from services.segmentation.conditions.evaluate import (
    ACTIVE_DAYS,
    CHURN_RISK_DAYS,
    NEW_DAYS,
    count_matches,
)
from services.segmentation.conditions.fields import (
    DAY,
    FieldSpec,
    event_field,
    profile_field,
)
from services.segmentation.models import SegEventRow, SegProfileRow

__all__ = ["to_sql"]

PROFILES: FromClause = SegProfileRow.__table__  # type: ignore[assignment]
EVENTS: FromClause = SegEventRow.__table__  # type: ignore[assignment]

Expr = ColumnElement[Any]
Test = ColumnElement[bool]


def to_sql(
    node: Node, now: float, segment_sql: Callable[[str], ColumnElement[bool]]
) -> ColumnElement[bool]:
    """`node` as a boolean expression over seg_profiles, evaluated at `now`.

    Context conditions raise ValueError: set-wise evaluation is behavioural only.
    """
    return _Compiler(float(now), segment_sql).node(node)


class _Compiler:
    def __init__(self, now: float, segment_sql: Callable[[str], ColumnElement[bool]]) -> None:
        self.now, self.segment_sql = now, segment_sql

    def node(self, node: Node) -> Test:
        if isinstance(node, Group):
            parts = [self.node(c) for c in node.children]
            if node.op == "all_of":
                return and_(*parts)
            return or_(*parts) if node.op == "any_of" else not_(or_(*parts))
        if isinstance(node, Property):
            return _atom(self.profile_value(_spec(profile_field, node.path)), node.op, node.value)
        if isinstance(node, EventCond):
            return self.event(node)
        if isinstance(node, SegmentRef):
            return _guard(self.segment_sql(node.segment_id))
        assert isinstance(node, ContextCond)
        raise ValueError("context conditions are evaluated per request, never set-wise")

    def event(self, node: EventCond) -> Test:
        """One grouped pass over the events, not a counting subquery per customer.

        f(count) holds for a customer with no matching event exactly when f(0) does: then the
        customers to drop are those whose non-zero count fails; otherwise the customers to keep
        are those whose count passes. Either set is one GROUP BY over `seg_events`.
        """
        ev = EVENTS.alias()
        where: list[Test] = [ev.c.type == literal(node.type, String())]
        if node.within_seconds is not None:
            where.append(ev.c.occurred_at > literal(self.now - node.within_seconds, Float()))
        for f in node.filters:
            where.append(_atom(_event_value(_spec(event_field, f.path), ev), f.op, f.value))
        counted = func.count()
        count = literal(node.count, BigInteger())
        passes = {
            "EQ": counted == count,
            "NE": counted != count,
            "LT": counted < count,
            "LTE": counted <= count,
            "GT": counted > count,
            "GTE": counted >= count,
        }[node.count_op]
        grouped = select(ev.c.customer_id).where(*where).group_by(ev.c.customer_id)
        if count_matches(0, node.count_op, node.count):
            return PROFILES.c.customer_id.not_in(grouped.having(not_(passes)))
        return PROFILES.c.customer_id.in_(grouped.having(passes))

    def profile_value(self, spec: FieldSpec) -> _Value:
        source, p = spec.source, PROFILES.c
        now = literal(self.now, Float())
        if source[0] == "column":
            column = p[source[1]]
            return _Value(present=column.is_not(None), num=type_coerce(column, Float()))
        if source[0] == "status":
            age = (now - p.created_at) / literal(DAY, Float())
            idle = (now - p.last_activity_at) / literal(DAY, Float())
            status = case(
                (and_(age <= literal(NEW_DAYS, Float()), p.orders <= 1), "NEW"),
                (idle <= literal(ACTIVE_DAYS, Float()), "ACTIVE"),
                (idle <= literal(CHURN_RISK_DAYS, Float()), "CHURN_RISK"),
                else_="LAPSED",
            )
            return _Value(present=true(), text=type_coerce(status, String()))
        if source[0] == "recency_days":
            days = (now - p.last_purchase_at) / literal(DAY, Float())
            return _Value(present=p.last_purchase_at.is_not(None), floor_of=days)
        return _json_value(spec, p.doc, source[1], source[2])


@dataclass
class _Value:
    """A field as SQL sees it: one expression per JSON type it can hold (NULL = absent)."""

    present: Test
    text: Expr | None = None
    num: Expr | None = None
    flag: Expr | None = None
    floor_of: Expr | None = None  # the value is floor(floor_of) (rfm.recency_days)


def _spec(resolve: Callable[[str], FieldSpec | None], path: str) -> FieldSpec:
    spec = resolve(path)
    if spec is None:  # the parser only builds known paths
        raise ValueError(f"unknown field path {path!r}")
    return spec


def _event_value(spec: FieldSpec, ev: FromClause) -> _Value:
    if spec.source[0] == "properties":
        return _json_value(spec, ev.c.properties, None, spec.source[1])
    column = ev.c[spec.source[1]]
    if spec.kind in ("string", "enum"):
        text = func.nullif(column, literal("", String()))
        return _Value(present=text.is_not(None), text=text)
    return _Value(present=column.is_not(None), num=type_coerce(column, Float()))


def _json_value(spec: FieldSpec, column: Expr, section: str | None, key: str) -> _Value:
    args = [column] if section is None else [column, literal(section, String())]
    args.append(literal(key, String()))
    if spec.kind in ("string", "enum"):
        text = func.nullif(_json_text(*args), literal("", String()))
        return _Value(present=text.is_not(None), text=text)
    if spec.kind == "number":
        num = _json_num(*args)
        return _Value(present=num.is_not(None), num=num)
    return _Value(
        present=_json_present(*args),
        text=_json_text(*args),
        num=_json_num(*args),
        flag=_json_bool(*args),
    )


def _guard(test: Test) -> Test:
    """Two-valued: NULL (an absent value somewhere in `test`) becomes false."""
    return case((test, true()), else_=false())


def _atom(value: _Value, op: str, operand: Any) -> Test:
    return _guard(_test(value, op, operand))


def _test(value: _Value, op: str, operand: Any) -> Test:
    if op == "EXISTS":
        return value.present
    if op == "NE":
        return not_(_atom(value, "EQ", operand))
    if op == "IN":
        if value.floor_of is not None:
            return or_(*[_test(value, "EQ", item) for item in operand])
        parts: list[Test] = []
        for wanted, field, sql_type in (
            (bool, value.flag, Boolean()),
            (float, value.num, Float()),
            (str, value.text, String()),
        ):
            items = [i for i in operand if type(i) is wanted]
            if items and field is not None:
                parts.append(type_coerce(field, sql_type).in_(items))
        return or_(false(), *parts)
    if op == "BETWEEN":
        low, high = operand
        return and_(_test(value, "GTE", low), _test(value, "LTE", high))
    if value.floor_of is not None:
        return _floor_test(value.floor_of, op, float(operand))
    if isinstance(operand, bool):
        field, bound = value.flag, literal(operand, Boolean())
    elif isinstance(operand, float):
        field, bound = value.num, literal(operand, Float())
    else:
        field, bound = value.text, literal(operand, String())
    if field is None:  # this field never holds a value of the operand's type
        return false()
    if op == "EQ":
        return field == bound
    if op == "CONTAINS":
        return _strpos(field, bound) > 0
    if op == "PREFIX":
        return func.substr(field, 1, func.length(bound)) == bound
    if isinstance(operand, str):
        field = _collate_c(field)
    return {"LT": field < bound, "LTE": field <= bound, "GT": field > bound, "GTE": field >= bound}[
        op
    ]


_EXACT = 2.0**52  # from here on every float is an integer


def _floor_test(x: Expr, op: str, v: float) -> Test:
    """floor(x) <op> v, without floor() (SQLite builds may lack math functions)."""
    ceil_v, floor_v = float(math.ceil(v)), float(math.floor(v))

    def below_next(n: float) -> Test:  # floor(x) <= n, i.e. x < n + 1
        return x < literal(n + 1, Float()) if abs(n) < _EXACT else x <= literal(n, Float())

    if op == "EQ":
        return and_(x >= literal(v, Float()), below_next(v)) if v == floor_v else false()
    if op == "LT":
        return x < literal(ceil_v, Float())
    if op == "GTE":
        return x >= literal(ceil_v, Float())
    if op == "LTE":
        return below_next(floor_v)
    if op == "GT":
        return not_(below_next(floor_v))
    raise ValueError(f"{op} does not apply to a number")


# ---------------------------------------------------------------- dialect-specific constructs


class _JsonFunction(FunctionElement[Any]):
    """(column[, section], key): the JSON value at column[section][key], typed or NULL."""

    inherit_cache = True
    json_kind = ""


class _json_text(_JsonFunction):
    type = String()
    name = "json_text"
    inherit_cache = True
    json_kind = "text"


class _json_num(_JsonFunction):
    type = Float()
    name = "json_num"
    inherit_cache = True
    json_kind = "num"


class _json_bool(_JsonFunction):
    type = Boolean()
    name = "json_bool"
    inherit_cache = True
    json_kind = "bool"


class _json_present(_JsonFunction):
    type = Boolean()
    name = "json_present"
    inherit_cache = True
    json_kind = "present"


class _strpos(FunctionElement[Any]):
    """1-based position of the second string in the first (0: not found)."""

    type = BigInteger()
    name = "strpos"
    inherit_cache = True


class _collate_c(FunctionElement[Any]):
    """A string in code-point order (binary collation)."""

    type = String()
    name = "collate_c"
    inherit_cache = True


_SQLITE_VALUES = {
    "text": "CASE WHEN je.type = 'text' THEN je.value END",
    "num": "CASE WHEN je.type IN ('integer', 'real') THEN CAST(je.value AS REAL) END",
    "bool": "CASE je.type WHEN 'true' THEN 1 WHEN 'false' THEN 0 END",
}
_PG_TYPES = {"text": "string", "num": "number", "bool": "boolean"}
_PG_VALUES = {"text": "{}", "num": "CAST({} AS DOUBLE PRECISION)", "bool": "CAST({} AS BOOLEAN)"}


def _json_args(element: _JsonFunction, compiler: SQLCompiler, **kw: Any) -> list[str]:
    return [compiler.process(c, **kw) for c in element.clauses]


def _json_sqlite(element: _JsonFunction, compiler: SQLCompiler, **kw: Any) -> str:
    args = _json_args(element, compiler, **kw)
    source = (
        f"json_each({args[0]}, '$.' || {args[1]})" if len(args) == 3 else f"json_each({args[0]})"
    )
    key = args[-1]
    # Only compiled fragments (columns, bound parameters) are spliced in: keys stay parameters.
    if element.json_kind == "present":
        where = f"je.key = {key} AND je.type != 'null'"
        return f"EXISTS (SELECT 1 FROM {source} AS je WHERE {where})"  # noqa: S608
    value = _SQLITE_VALUES[element.json_kind]
    return f"(SELECT {value} FROM {source} AS je WHERE je.key = {key} LIMIT 1)"  # noqa: S608


def _json_postgresql(element: _JsonFunction, compiler: SQLCompiler, **kw: Any) -> str:
    args = _json_args(element, compiler, **kw)
    container = f"({args[0]} -> {args[1]})" if len(args) == 3 else f"({args[0]})"
    key = args[-1]
    # seg_profiles.doc and seg_events.properties are jsonb on PostgreSQL (see models.py)
    json_type = f"jsonb_typeof({container} -> {key})"
    if element.json_kind == "present":
        return f"COALESCE({json_type} <> 'null', false)"
    value = _PG_VALUES[element.json_kind].format(f"({container} ->> {key})")
    return f"(CASE WHEN {json_type} = '{_PG_TYPES[element.json_kind]}' THEN {value} END)"


def _unsupported(element: FunctionElement[Any], compiler: SQLCompiler, **kw: Any) -> str:
    raise CompileError(f"{type(element).__name__} has no {compiler.dialect.name} form")


for _cls in (_json_text, _json_num, _json_bool, _json_present):
    compiles(_cls, "sqlite")(_json_sqlite)
    compiles(_cls, "postgresql")(_json_postgresql)
    compiles(_cls)(_unsupported)


@compiles(_strpos, "sqlite")
def _strpos_sqlite(element: _strpos, compiler: SQLCompiler, **kw: Any) -> str:
    return f"instr({compiler.process(element.clauses, **kw)})"


@compiles(_strpos, "postgresql")
def _strpos_postgresql(element: _strpos, compiler: SQLCompiler, **kw: Any) -> str:
    return f"strpos({compiler.process(element.clauses, **kw)})"


@compiles(_collate_c, "postgresql")
def _collate_c_postgresql(element: _collate_c, compiler: SQLCompiler, **kw: Any) -> str:
    return f'({compiler.process(element.clauses, **kw)} COLLATE "C")'


@compiles(_collate_c)
def _collate_c_default(element: _collate_c, compiler: SQLCompiler, **kw: Any) -> str:
    return f"({compiler.process(element.clauses, **kw)})"  # SQLite: BINARY is code-point order


compiles(_strpos)(_unsupported)

"""Condition messages in and out: `parse_condition` validates a `Condition` into the AST,
`to_proto` writes the AST back (`parse_condition(to_proto(n), ...) == n`).

Validation is total: anything a caller can put in a `Condition` either parses or raises
`InvalidArgument` naming the offending node ("segment.condition.all_of.conditions[2].event.
count_op"), never another exception. Strings are data that is only ever compared: no
regular expressions, templates or path expressions are interpreted.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from backcrm.profile.v1 import profile_service_pb2
from backcrm.segmentation.v1 import condition_pb2
from google.protobuf import duration_pb2, struct_pb2

from libs.errors import InvalidArgument
from libs.validation import check_enum
from services.segmentation.conditions.ast import (
    COUNT_OPS,
    ContextCond,
    EventCond,
    Group,
    GroupOp,
    Node,
    Property,
    SegmentRef,
)
from services.segmentation.conditions.fields import (
    DAY,
    FieldSpec,
    context_field,
    event_field,
    profile_field,
)

__all__ = [
    "MAX_COUNT",
    "MAX_DEPTH",
    "MAX_LIST_ITEMS",
    "MAX_NODES",
    "MAX_NUMBER",
    "MAX_STRING",
    "MAX_TOTAL_LIST_ITEMS",
    "MAX_WITHIN_SECONDS",
    "count_nodes",
    "decode_condition",
    "format_timestamp",
    "parse_condition",
    "parse_timestamp",
    "to_proto",
]

MAX_DEPTH = 32
MAX_NODES = 1000  # Condition messages plus event filters
MAX_STRING = 256
MAX_LIST_ITEMS = 1000  # per IN list
# All list items of one tree together: keeps the compiled SQL under PostgreSQL's
# 32,767 bind parameters per statement whatever the tree's shape.
MAX_TOTAL_LIST_ITEMS = 10_000
MAX_WITHIN_SECONDS = 3653 * DAY  # ten years, leap days included
# Beyond 2^53 floats skip integers, so a comparison there is no longer exact; nothing a
# profile holds (counts, money in whole units, scores, JSON traits) needs more.
MAX_NUMBER = 2.0**53
MAX_COUNT = 1_000_000_000  # events of one kind per customer; more is a typo or an attack

_GROUPS: tuple[GroupOp, ...] = ("all_of", "any_of", "none_of")
_BRANCHES = "all_of, any_of, none_of, property, event, segment or context"
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_RFC3339 = re.compile(
    r"(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?([Zz]|[+-]\d{2}:\d{2})"
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)
_ORDERING = frozenset({"LT", "LTE", "GT", "GTE", "BETWEEN"})

Resolver = Callable[[str], FieldSpec | None]


def parse_condition(
    condition: condition_pb2.Condition,
    field: str,
    *,
    segment_exists: Callable[[str], bool] | None = None,
) -> Node:
    """The validated AST of `condition`; `field` names it in errors ("segment.condition")."""
    count_nodes(condition, field)
    return _Parser(segment_exists).node(condition, field, 1)


def decode_condition(condition: bytes) -> Node:
    """A stored condition (serialized as the caller sent it, validated then) back as its AST."""
    return parse_condition(condition_pb2.Condition.FromString(condition), "condition")


def count_nodes(root: condition_pb2.Condition, field: str, limit: int = MAX_NODES) -> int:
    """The nodes of a tree (Condition messages plus event filters); InvalidArgument naming
    `field` as soon as they pass `limit`, so an oversized tree is never walked to its end."""
    # Iterative, so a hostile tree thousands of levels deep cannot exhaust the stack.
    stack, nodes = [root], 0
    while stack:
        condition = stack.pop()
        nodes += 1
        which = condition.WhichOneof("node")
        if which in _GROUPS:
            stack.extend(getattr(condition, which).conditions)
        elif which == "event":
            nodes += len(condition.event.filters)
        if nodes > limit:
            raise InvalidArgument(field, f"has more than {limit} nodes")
    return nodes


class _Parser:
    def __init__(self, segment_exists: Callable[[str], bool] | None) -> None:
        self.segment_exists = segment_exists
        self.list_items = 0

    def node(self, condition: condition_pb2.Condition, field: str, depth: int) -> Node:
        if depth > MAX_DEPTH:
            raise InvalidArgument(field, f"is nested deeper than {MAX_DEPTH} levels")
        which = condition.WhichOneof("node")
        if which is None:
            raise InvalidArgument(field, f"must set one of {_BRANCHES}")
        where = f"{field}.{which}"
        if which == "all_of" or which == "any_of" or which == "none_of":
            children = getattr(condition, which).conditions
            if not children:
                raise InvalidArgument(f"{where}.conditions", "must not be empty")
            return Group(
                which,
                tuple(
                    self.node(child, f"{where}.conditions[{i}]", depth + 1)
                    for i, child in enumerate(children)
                ),
            )
        if which == "property":
            path, op, value = self.test(condition.property, where, profile_field)
            return Property(path, op, value)
        if which == "context":
            path, op, value = self.test(condition.context, where, context_field)
            return ContextCond(path, op, value)
        if which == "segment":
            segment_id = _text(condition.segment.segment_id, f"{where}.segment_id", "")
            if not segment_id:
                raise InvalidArgument(f"{where}.segment_id", "is required")
            if self.segment_exists is not None and not self.segment_exists(segment_id):
                raise InvalidArgument(f"{where}.segment_id", "names no segment")
            return SegmentRef(segment_id)
        return self.event(condition.event, where)

    def event(self, event: condition_pb2.EventCondition, where: str) -> EventCond:
        type_ = check_enum(event.type, profile_service_pb2.EventType, f"{where}.type")
        filters = []
        for i, f in enumerate(event.filters):
            path, op, value = self.test(f, f"{where}.filters[{i}]", event_field)
            filters.append(Property(path, op, value))
        within = _within(event, f"{where}.within") if event.HasField("within") else None
        if not 0 <= event.count <= MAX_COUNT:
            raise InvalidArgument(f"{where}.count", f"must be between 0 and {MAX_COUNT:,}")
        if event.count_op == condition_pb2.OPERATOR_UNSPECIFIED:
            if event.count != 0:
                raise InvalidArgument(f"{where}.count_op", "is required when count is set")
            count_op, count = "GTE", 1
        else:
            count_op = check_enum(event.count_op, condition_pb2.Operator, f"{where}.count_op")
            if count_op not in COUNT_OPS:
                raise InvalidArgument(f"{where}.count_op", f"must be one of {', '.join(COUNT_OPS)}")
            count = event.count
        return EventCond(type_, tuple(filters), within, count_op, count)

    def test(
        self,
        test: condition_pb2.PropertyCondition | condition_pb2.ContextCondition,
        where: str,
        resolve: Resolver,
    ) -> tuple[str, str, Any]:
        path = _text(test.path, f"{where}.path", "")
        if not path:
            raise InvalidArgument(f"{where}.path", "is required")
        spec = resolve(path)
        if spec is None:
            raise InvalidArgument(f"{where}.path", f"names no field: {path!r}")
        op = check_enum(test.op, condition_pb2.Operator, f"{where}.op")
        if op not in spec.ops:
            raise InvalidArgument(f"{where}.op", f"{op} does not apply to the {spec.kind} {path}")
        if op == "EXISTS":
            return path, op, None
        if not test.HasField("value"):
            raise InvalidArgument(f"{where}.value", f"is required by {op}")
        return path, op, self.value(spec, op, test.value, f"{where}.value")

    def value(self, spec: FieldSpec, op: str, value: struct_pb2.Value, where: str) -> Any:
        if op not in ("IN", "BETWEEN"):
            return _scalar(spec, op, value, where, "")
        if value.WhichOneof("kind") != "list_value":
            shape = "a list of values" if op == "IN" else "a list [low, high]"
            raise InvalidArgument(where, f"{op} takes {shape}")
        items = value.list_value.values
        if op == "IN" and not items:
            raise InvalidArgument(where, "IN takes a non-empty list")
        if op == "IN" and len(items) > MAX_LIST_ITEMS:
            raise InvalidArgument(where, f"IN takes at most {MAX_LIST_ITEMS} values")
        if op == "BETWEEN" and len(items) != 2:
            raise InvalidArgument(where, "BETWEEN takes a list [low, high] of two values")
        self.list_items += len(items)
        if self.list_items > MAX_TOTAL_LIST_ITEMS:
            raise InvalidArgument(
                where, f"the condition holds more than {MAX_TOTAL_LIST_ITEMS} list values"
            )
        values = tuple(
            _scalar(spec, op, item, where, f"element {i}: ") for i, item in enumerate(items)
        )
        if op == "BETWEEN":
            low, high = values
            if type(low) is not type(high):
                raise InvalidArgument(where, "BETWEEN bounds must have the same type")
            if low > high:
                raise InvalidArgument(where, "BETWEEN needs low <= high")
        return values


def _scalar(spec: FieldSpec, op: str, value: struct_pb2.Value, where: str, label: str) -> Any:
    kind = value.WhichOneof("kind")
    if spec.kind in ("number", "timestamp", "string", "enum", "list"):
        wanted = "number" if spec.kind == "number" else "string"
        if kind != f"{wanted}_value":
            described = "an RFC 3339 timestamp string" if spec.kind == "timestamp" else wanted
            raise InvalidArgument(where, f"{label}{spec.path} takes a {described}")
        if spec.kind == "number":
            return _number(value.number_value, where, label)
        text = _text(value.string_value, where, label)
        if spec.kind == "timestamp":
            return parse_timestamp(text, where, label)
        if spec.kind == "enum":
            name = text.removeprefix(spec.enum_prefix)
            if name not in spec.enum_values:
                known = ", ".join(spec.enum_values)
                raise InvalidArgument(where, f"{label}{text!r} is not one of {known}")
            return name
        return text
    # dynamic (a JSON value): the condition's value decides how it compares
    if op in ("CONTAINS", "PREFIX") and kind != "string_value":
        raise InvalidArgument(where, f"{label}{op} takes a string")
    if kind == "number_value":
        return _number(value.number_value, where, label)
    if kind == "string_value":
        return _text(value.string_value, where, label)
    if kind == "bool_value":
        if op in _ORDERING:
            raise InvalidArgument(where, f"{label}{op} does not apply to a bool")
        return value.bool_value
    raise InvalidArgument(where, f"{label}must be a number, string or bool")


def _number(number: float, where: str, label: str) -> float:
    if not math.isfinite(number) or abs(number) > MAX_NUMBER:
        raise InvalidArgument(where, f"{label}must be a finite number between -2^53 and 2^53")
    return float(number)


def _text(text: str, where: str, label: str) -> str:
    if len(text) > MAX_STRING:
        raise InvalidArgument(where, f"{label}is longer than {MAX_STRING} characters")
    if _CONTROL.search(text):
        raise InvalidArgument(where, f"{label}must not contain control characters")
    return text


def _within(event: condition_pb2.EventCondition, where: str) -> float | None:
    seconds, nanos = event.within.seconds, event.within.nanos
    if abs(nanos) > 999_999_999 or (seconds > 0 > nanos) or (seconds < 0 < nanos):
        raise InvalidArgument(where, "is not a valid duration")
    if seconds < 0 or nanos < 0:
        raise InvalidArgument(where, "must not be negative")
    within = seconds + nanos / 1e9
    if within > MAX_WITHIN_SECONDS:
        raise InvalidArgument(where, "must be at most ten years")
    return within or None


def parse_timestamp(text: str, where: str, label: str = "") -> float:
    """RFC 3339 ("2024-05-01T00:00:00Z", offsets allowed) to epoch seconds (microseconds)."""
    match = _RFC3339.fullmatch(text)
    if match is None:
        raise InvalidArgument(where, f"{label}{text!r} is not an RFC 3339 timestamp")
    date, time, fraction, offset = match.groups()
    offset = "+00:00" if offset in ("Z", "z") else offset
    micros = (fraction or "").ljust(6, "0")[:6]
    try:
        moment = datetime.fromisoformat(f"{date}T{time}.{micros}{offset}")
        whole = (moment - _EPOCH) // _MICRO
        _EPOCH + timedelta(microseconds=whole)  # representable as a UTC datetime
    except (ValueError, OverflowError) as exc:
        raise InvalidArgument(where, f"{label}{text!r} is not a valid timestamp") from exc
    return whole / 10**6


def _micros(seconds: float) -> int:
    guess = round(seconds * 1e6)
    for candidate in (guess, guess - 1, guess + 1, guess - 2, guess + 2):
        if candidate / 10**6 == seconds:
            return candidate
    return guess


def format_timestamp(seconds: float) -> str:
    """Epoch seconds as RFC 3339 in UTC, microsecond precision ("2024-05-01T00:00:00Z")."""
    moment = _EPOCH + timedelta(microseconds=_micros(seconds))
    return moment.replace(tzinfo=None).isoformat() + "Z"


# ---------------------------------------------------------------- AST -> proto


def to_proto(node: Node) -> condition_pb2.Condition:
    if isinstance(node, Group):
        group = condition_pb2.ConditionGroup(conditions=[to_proto(c) for c in node.children])
        condition = condition_pb2.Condition()
        getattr(condition, node.op).CopyFrom(group)
        return condition
    if isinstance(node, Property):
        return condition_pb2.Condition(property=_test(node, profile_field, _property_msg))
    if isinstance(node, ContextCond):
        return condition_pb2.Condition(context=_test(node, context_field, _context_msg))
    if isinstance(node, SegmentRef):
        return condition_pb2.Condition(
            segment=condition_pb2.SegmentCondition(segment_id=node.segment_id)
        )
    event = condition_pb2.EventCondition(
        type=f"EVENT_TYPE_{node.type}",
        filters=[_test(f, event_field, _property_msg) for f in node.filters],
        count_op=f"OPERATOR_{node.count_op}",
        count=node.count,
    )
    if node.within_seconds:
        seconds = math.floor(node.within_seconds)
        nanos = round((node.within_seconds - seconds) * 1e9)
        if nanos >= 1_000_000_000:
            seconds, nanos = seconds + 1, nanos - 1_000_000_000
        event.within.CopyFrom(duration_pb2.Duration(seconds=seconds, nanos=nanos))
    return condition_pb2.Condition(event=event)


def _property_msg(path: str, op: str, value: struct_pb2.Value | None) -> Any:
    return condition_pb2.PropertyCondition(path=path, op=op, value=value)


def _context_msg(path: str, op: str, value: struct_pb2.Value | None) -> Any:
    return condition_pb2.ContextCondition(path=path, op=op, value=value)


def _test(
    node: Property | ContextCond,
    resolve: Resolver,
    make: Callable[[str, str, struct_pb2.Value | None], Any],
) -> Any:
    spec = resolve(node.path)
    timestamp = spec is not None and spec.kind == "timestamp"
    op = f"OPERATOR_{node.op}"
    if node.value is None:
        return make(node.path, op, None)
    if isinstance(node.value, tuple):
        items = [_value_msg(v, timestamp) for v in node.value]
        return make(node.path, op, struct_pb2.Value(list_value=struct_pb2.ListValue(values=items)))
    return make(node.path, op, _value_msg(node.value, timestamp))


def _value_msg(value: Any, timestamp: bool) -> struct_pb2.Value:
    if isinstance(value, bool):
        return struct_pb2.Value(bool_value=value)
    if isinstance(value, float):
        if timestamp:
            return struct_pb2.Value(string_value=format_timestamp(value))
        return struct_pb2.Value(number_value=value)
    return struct_pb2.Value(string_value=str(value))

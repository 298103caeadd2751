"""The per-customer evaluator: one customer's facts, events and (optionally) request context.

It must agree exactly with the set-wise SQL compiler (`sql.py`); the property test in
tests/integration/test_conditions_agree.py holds both to that. The shared rules:

- an absent value (missing, null, an empty string field, a JSON value of another type than
  the condition's value) never matches, except under NE, which is "not EQ";
- numbers compare as floats, strings by code point, bools only by EQ/NE;
- an event counts when its type matches, `occurred_at > now - within` (all history without
  `within`) and every filter matches.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from libs import profile_status
from services.segmentation.conditions.ast import (
    ContextCond,
    EventCond,
    Group,
    Node,
    Property,
    SegmentRef,
    walk,
)
from services.segmentation.conditions.fields import (
    DAY,
    FieldSpec,
    context_field,
    event_field,
    profile_field,
)
from services.segmentation.facts import ContextFacts, CustomerFacts, FactEvent

__all__ = ["EventIndex", "Verdict", "evaluate", "holds", "matches", "status_at"]

NEW_DAYS = profile_status.NEW_DAYS
ACTIVE_DAYS = profile_status.ACTIVE_DAYS
CHURN_RISK_DAYS = profile_status.CHURN_RISK_DAYS


@dataclass(frozen=True)
class Verdict:
    matched: bool
    # When the answer can next change by time alone (None: never). Conservative: the
    # earliest moment any time-dependent atom of the tree can change, decisive or not.
    next_change_at: float | None


class EventIndex:
    """A customer's events grouped by type: built once, shared by every segment evaluated
    for the customer (an event condition then reads only the events of its type)."""

    __slots__ = ("by_type",)

    def __init__(self, events: Iterable[FactEvent]) -> None:
        by_type: dict[str, list[FactEvent]] = {}
        for e in events:
            by_type.setdefault(e.type, []).append(e)
        self.by_type = by_type


def evaluate(
    node: Node,
    facts: CustomerFacts,
    events: Sequence[FactEvent] | EventIndex,
    context: ContextFacts | None,
    now: float,
    segment_member: Callable[[str], bool],
) -> Verdict:
    """Whether the customer matches `node` at `now`; `events` are that customer's events
    (an `EventIndex` of them when many segments are evaluated for one customer)."""
    run = _Run(facts, events, context, float(now), segment_member)
    # next_change walks the whole tree first and raises when a context condition has no
    # context (before match could short-circuit past it): one walk instead of two.
    next_at = run.next_change(node)
    return Verdict(run.match(node), next_at)


def holds(
    node: Node,
    facts: CustomerFacts,
    events: Sequence[FactEvent] | EventIndex,
    context: ContextFacts | None,
    now: float,
    segment_member: Callable[[str], bool],
) -> bool:
    """`evaluate(...).matched` without the next change time, which only the maintained
    memberships need (request-time answers are not scheduled). Several conditions over one
    customer share one `EventIndex` of its events."""
    if context is None and any(isinstance(n, ContextCond) for n in walk(node)):
        raise ValueError("a context condition needs the request's context")
    return _Run(facts, events, context, float(now), segment_member).match(node)


def status_at(facts: CustomerFacts, now: float) -> str:
    """Profile status at `now` (the rule of libs/profile_status.py)."""
    return profile_status.status_at(facts.created_at, facts.last_activity_at, facts.orders, now)


class _Run:
    def __init__(
        self,
        facts: CustomerFacts,
        events: Sequence[FactEvent] | EventIndex,
        context: ContextFacts | None,
        now: float,
        segment_member: Callable[[str], bool],
    ) -> None:
        self.facts, self.context = facts, context
        self.events = events if isinstance(events, EventIndex) else EventIndex(events)
        self.now, self.segment_member = now, segment_member
        self._counted: dict[int, list[FactEvent]] = {}  # id(EventCond) -> its events

    def match(self, node: Node) -> bool:
        if isinstance(node, Group):
            if node.op == "all_of":
                return all(self.match(c) for c in node.children)
            hit = any(self.match(c) for c in node.children)
            return hit if node.op == "any_of" else not hit
        if isinstance(node, Property):
            spec = _spec(profile_field, node.path)
            return matches(spec.kind, self.profile_value(spec), node.op, node.value)
        if isinstance(node, EventCond):
            return count_matches(len(self.counted(node)), node.count_op, node.count)
        if isinstance(node, SegmentRef):
            return bool(self.segment_member(node.segment_id))
        spec = _spec(context_field, node.path)
        return matches(spec.kind, self.context_value(spec), node.op, node.value)

    def counted(self, node: EventCond) -> list[FactEvent]:
        """The events `node` counts (once per run: matching and timing both ask)."""
        known = self._counted.get(id(node))
        if known is not None:
            return known
        cutoff = None if node.within_seconds is None else self.now - node.within_seconds
        filters = [(_spec(event_field, f.path), f) for f in node.filters]
        out = []
        for e in self.events.by_type.get(node.type, ()):
            if cutoff is not None and not e.occurred_at > cutoff:
                continue
            if filters and not all(
                matches(spec.kind, _event_value(spec, e), f.op, f.value) for spec, f in filters
            ):
                continue
            out.append(e)
        self._counted[id(node)] = out
        return out

    def profile_value(self, spec: FieldSpec) -> Any:
        source, facts = spec.source, self.facts
        if source[0] == "column":
            return getattr(facts, source[1])
        if source[0] == "status":
            return status_at(facts, self.now)
        if source[0] == "recency_days":
            if facts.last_purchase_at is None:
                return None
            return math.floor((self.now - facts.last_purchase_at) / DAY)
        section = getattr(facts, source[1])
        value = section.get(source[2]) if isinstance(section, dict) else None
        return _present(spec, value)

    def context_value(self, spec: FieldSpec) -> Any:
        context = self.context
        assert context is not None  # checked by evaluate()
        if spec.source[0] == "context_attribute":
            return _present(spec, context.attributes.get(spec.source[1]))
        name = spec.source[1]
        if name == "cart.total":
            return sum(item.quantity * item.unit_price for item in context.cart)
        if name == "cart.quantity":
            return sum(item.quantity for item in context.cart)
        if name == "cart.skus":
            return [item.sku for item in context.cart if item.sku]
        if name == "cart.categories":
            return [item.category for item in context.cart if item.category]
        if name in ("now.hour", "now.weekday"):
            try:
                moment = datetime.fromtimestamp(context.now, UTC)
            except (OverflowError, OSError, ValueError):
                return None
            return moment.hour if name == "now.hour" else moment.isoweekday()
        return _present(spec, getattr(context, name))

    # ------------------------------------------------------------ time

    def next_change(self, node: Node) -> float | None:
        facts, now = self.facts, self.now
        times: list[float] = []
        for kind, n in _time_atoms(node):
            if kind == "window":
                assert isinstance(n, EventCond) and n.within_seconds is not None
                counted = self.counted(n)
                if counted:
                    # _window_exit grows with occurred_at: the earliest event leaves first
                    oldest = min(e.occurred_at for e in counted)
                    times.append(_window_exit(oldest, n.within_seconds, now))
            elif kind == "context":
                if self.context is None:
                    raise ValueError("a context condition needs the request's context")
            elif kind == "recency":
                if facts.last_purchase_at is not None:
                    times.append(_next_day(facts.last_purchase_at, now))
            else:  # status
                for start, limit in (
                    (facts.created_at, NEW_DAYS),
                    (facts.last_activity_at, ACTIVE_DAYS),
                    (facts.last_activity_at, CHURN_RISK_DAYS),
                ):
                    if (now - start) / DAY <= limit:
                        times.append(_days_exceeded(start, limit, now))
        finite = [t for t in times if math.isfinite(t)]
        return min(finite) if finite else None


# id(node) -> (node, its time atoms). The node is kept with its atoms so that an id is never
# read back for another node; catalogue nodes live long, request-time ones are few, and the
# memo is emptied when it grows past _TIME_ATOMS_MAX.
_TIME_ATOMS: dict[int, tuple[Node, tuple[tuple[str, Node], ...]]] = {}
_TIME_ATOMS_MAX = 4096


def _time_atoms(node: Node) -> tuple[tuple[str, Node], ...]:
    """The atoms of the tree whose answer can change with time alone (windowed event
    conditions, recency and status) and its context conditions, in tree order: what
    next_change reads, found once per tree instead of walking it per evaluation."""
    known = _TIME_ATOMS.get(id(node))
    if known is not None and known[0] is node:
        return known[1]
    atoms: list[tuple[str, Node]] = []
    for n in walk(node):
        if isinstance(n, EventCond) and n.within_seconds is not None:
            atoms.append(("window", n))
        elif isinstance(n, ContextCond):
            atoms.append(("context", n))
        elif isinstance(n, Property):
            source = _spec(profile_field, n.path).source
            if source == ("recency_days",):
                atoms.append(("recency", n))
            elif source == ("status",):
                atoms.append(("status", n))
    if len(_TIME_ATOMS) >= _TIME_ATOMS_MAX:
        _TIME_ATOMS.clear()
    found = tuple(atoms)
    _TIME_ATOMS[id(node)] = (node, found)
    return found


# The moments below are pure functions of their arguments, and the segments of one customer
# evaluated at one `now` ask the same ones (the status thresholds of every segment reading the
# status, a window's oldest event): each is searched once, not once per segment.
_MOMENTS = 4096


@functools.lru_cache(maxsize=_MOMENTS)
def _window_exit(occurred_at: float, within: float, now: float) -> float:
    """When an event counted at `now` leaves the window `occurred_at > t - within`."""

    def gone(t: float) -> bool:
        return occurred_at <= t - within

    return _first_true(gone, occurred_at + within, now)


@functools.lru_cache(maxsize=_MOMENTS)
def _next_day(last_purchase_at: float, now: float) -> float:
    """When floor((t - last_purchase_at) / DAY) next grows."""
    days = math.floor((now - last_purchase_at) / DAY)

    def next_day(t: float) -> bool:
        return (t - last_purchase_at) / DAY >= days + 1

    return _first_true(next_day, last_purchase_at + (days + 1) * DAY, now)


@functools.lru_cache(maxsize=_MOMENTS)
def _days_exceeded(start: float, limit: float, now: float) -> float:
    """When `(t - start) / DAY <= limit` (a status threshold) turns false."""

    def exceeded(t: float) -> bool:
        return (t - start) / DAY > limit

    return _first_true(exceeded, start + limit * DAY, now)


def _spec(resolve: Callable[[str], FieldSpec | None], path: str) -> FieldSpec:
    spec = resolve(path)
    if spec is None:  # the parser only builds known paths
        raise ValueError(f"unknown field path {path!r}")
    return spec


def _present(spec: FieldSpec, value: Any) -> Any:
    """The value as the field's kind sees it; None when absent."""
    if spec.kind in ("string", "enum"):
        return value if isinstance(value, str) and value else None
    if spec.kind == "number":
        return value if isinstance(value, int | float) and not isinstance(value, bool) else None
    return value


def _event_value(spec: FieldSpec, event: FactEvent) -> Any:
    if spec.source[0] == "properties":
        props = event.properties
        return props.get(spec.source[1]) if isinstance(props, dict) else None
    name = spec.source[1]
    return _present(spec, getattr(event, name))


def _typed(field_value: Any, value: Any) -> Any:
    """`field_value` when it has the condition value's type (numbers as float), else None."""
    if isinstance(value, bool):
        return field_value if isinstance(field_value, bool) else None
    if isinstance(value, float):
        if isinstance(field_value, bool) or not isinstance(field_value, int | float):
            return None
        try:
            number = float(field_value)
        except OverflowError:
            return None
        return None if math.isnan(number) else number
    return field_value if isinstance(field_value, str) else None


def matches(kind: str, field_value: Any, op: str, value: Any) -> bool:
    """One atom: `field_value` (None = absent) `op` `value`, strictly two-valued."""
    if kind == "list":
        items = field_value or []
        if op == "EXISTS":
            return bool(items)
        if op == "CONTAINS":
            return value in items
        return any(item in value for item in items)  # IN
    if op == "EXISTS":
        return field_value is not None
    if op == "NE":
        return not matches(kind, field_value, "EQ", value)
    if op == "IN":
        return any(matches(kind, field_value, "EQ", v) for v in value)
    if op == "BETWEEN":
        low, high = value
        return matches(kind, field_value, "GTE", low) and matches(kind, field_value, "LTE", high)
    x = _typed(field_value, value)
    if x is None:
        return False
    if op == "EQ":
        return bool(x == value)
    if op == "LT":
        return bool(x < value)
    if op == "LTE":
        return bool(x <= value)
    if op == "GT":
        return bool(x > value)
    if op == "GTE":
        return bool(x >= value)
    if op == "CONTAINS":
        return value in x
    if op == "PREFIX":
        return bool(x.startswith(value))
    raise ValueError(f"unknown operator {op}")


def count_matches(n: int, op: str, count: int) -> bool:
    return {
        "EQ": n == count,
        "NE": n != count,
        "LT": n < count,
        "LTE": n <= count,
        "GT": n > count,
        "GTE": n >= count,
    }[op]


def _first_true(pred: Callable[[float], bool], guess: float, now: float) -> float:
    """The earliest float t > now at which the monotone `pred` (false at now) holds.

    `guess` is the arithmetic answer; float rounding may put the real flip an ulp or two
    to either side, and a late answer would be a missed change, so it is checked.
    """
    if not math.isfinite(guess):
        return guess
    up = math.nextafter(now, math.inf)
    hi = max(guess, up)
    for _ in range(64):
        if pred(hi):
            break
        hi = math.nextafter(hi, math.inf)
    else:
        return max(guess, up)  # early is safe: the caller re-evaluates and asks again
    below = math.nextafter(hi, -math.inf)
    if below <= now or not pred(below):
        return hi
    lo, hi = now, below  # pred(lo) is false, pred(hi) true: bisect to the flip
    for _ in range(2100):
        mid = lo + (hi - lo) / 2
        if mid <= lo or mid >= hi:
            break
        if pred(mid):
            hi = mid
        else:
            lo = mid
    return hi

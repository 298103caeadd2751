"""The condition tree as plain, immutable Python values (no protobuf).

`parse.parse_condition` builds it from a `Condition` message after validating every node, so
everything downstream (the per-customer evaluator, the SQL compiler, `kind_of`, `reads_of`)
can trust its shape:

- `Property.value` / `ContextCond.value` are normalised: numbers are `float`, timestamps
  epoch seconds (`float`), enums their short name ("ACTIVE"), `IN` values a tuple,
  `BETWEEN` values a `(low, high)` tuple with low <= high, `EXISTS` values `None`.
- `EventCond.count_op` is one of EQ..GTE ("UNSPECIFIED with count 0" became GTE 1) and
  `within_seconds` is `None` for "all history".
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

from services.segmentation.conditions.fields import profile_field

__all__ = [
    "COUNT_OPS",
    "OPERATORS",
    "ContextCond",
    "EventCond",
    "Group",
    "GroupOp",
    "Node",
    "Property",
    "Reads",
    "SegmentRef",
    "kind_of",
    "merge_windows",
    "reads_of",
    "segment_refs",
    "walk",
    "windows_of",
]

GroupOp: TypeAlias = Literal["all_of", "any_of", "none_of"]

OPERATORS = (
    "EQ",
    "NE",
    "LT",
    "LTE",
    "GT",
    "GTE",
    "IN",
    "CONTAINS",
    "PREFIX",
    "EXISTS",
    "BETWEEN",
)
COUNT_OPS = ("EQ", "NE", "LT", "LTE", "GT", "GTE")


@dataclass(frozen=True)
class Group:
    op: GroupOp
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Property:
    """A test on a profile field, or (inside `EventCond.filters`) on an event field."""

    path: str
    op: str
    value: Any


@dataclass(frozen=True)
class EventCond:
    type: str
    filters: tuple[Property, ...]
    within_seconds: float | None
    count_op: str
    count: int


@dataclass(frozen=True)
class SegmentRef:
    segment_id: str


@dataclass(frozen=True)
class ContextCond:
    path: str
    op: str
    value: Any


Node: TypeAlias = Group | Property | EventCond | SegmentRef | ContextCond


@dataclass(frozen=True)
class Reads:
    """What a condition reads: the index from a change to the segments it can affect."""

    paths: frozenset[str]  # profile field paths, as written
    event_types: frozenset[str]
    segments: frozenset[str]
    time_dependent: bool  # the answer can change with time alone
    contextual: bool


def walk(node: Node) -> Iterator[Node]:
    """Every node of the tree, parents before children."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        if isinstance(current, Group):
            stack.extend(reversed(current.children))


def kind_of(node: Node, segment_kind: Callable[[str], str]) -> str:
    """BEHAVIORAL, CONTEXTUAL or COMBINED; referenced segments contribute their own kind."""
    behavioral = contextual = False
    for n in walk(node):
        if isinstance(n, Property | EventCond):
            behavioral = True
        elif isinstance(n, ContextCond):
            contextual = True
        elif isinstance(n, SegmentRef):
            kind = segment_kind(n.segment_id)
            behavioral = behavioral or kind in ("BEHAVIORAL", "COMBINED")
            contextual = contextual or kind in ("CONTEXTUAL", "COMBINED")
    if behavioral and contextual:
        return "COMBINED"
    return "CONTEXTUAL" if contextual else "BEHAVIORAL"


def reads_of(node: Node) -> Reads:
    paths: set[str] = set()
    event_types: set[str] = set()
    segments: set[str] = set()
    time_dependent = contextual = False
    for n in walk(node):
        if isinstance(n, Property):
            paths.add(n.path)
            spec = profile_field(n.path)
            time_dependent = time_dependent or (spec is not None and spec.time_dependent)
        elif isinstance(n, EventCond):
            event_types.add(n.type)
            time_dependent = time_dependent or n.within_seconds is not None
        elif isinstance(n, SegmentRef):
            segments.add(n.segment_id)
        elif isinstance(n, ContextCond):
            contextual = True
    return Reads(
        frozenset(paths), frozenset(event_types), frozenset(segments), time_dependent, contextual
    )


def segment_refs(node: Node) -> set[str]:
    return {n.segment_id for n in walk(node) if isinstance(n, SegmentRef)}


def windows_of(node: Node) -> dict[str, float | None]:
    """Per event type the tree reads, its longest window (None: some condition on the type
    reads all history): how far back a customer's events of each type must be read."""
    return merge_windows(
        [{n.type: n.within_seconds or None} for n in walk(node) if isinstance(n, EventCond)]
    )


def merge_windows(many: Iterable[dict[str, float | None]]) -> dict[str, float | None]:
    """The longest window per type over several `windows_of` (None wins: all history)."""
    out: dict[str, float | None] = {}
    for windows in many:
        for kind, within in windows.items():
            if kind not in out:
                out[kind] = within
            else:
                known = out[kind]
                out[kind] = None if known is None or within is None else max(known, within)
    return out

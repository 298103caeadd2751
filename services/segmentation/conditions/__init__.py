"""The condition engine: the Condition tree is data, never code.

    parse_condition(proto, field) -> Node     validate a Condition into the AST (parse.py)
    decode_condition(bytes) -> Node           a stored (already validated) condition
    to_proto(node) -> Condition               and back
    kind_of / reads_of / segment_refs         what a tree is and what it reads (ast.py)
    windows_of(node)                          its longest event window per event type
    evaluate(node, facts, events, ...)        one customer, with next_change_at (evaluate.py)
    holds(node, facts, events, ...)           the same answer without next_change_at (requests)
    to_sql(node, now, segment_sql)            every customer at once, as SQL (sql.py)

The two evaluators agree exactly; tests/integration/test_conditions_agree.py checks it on
SQLite and PostgreSQL.
"""

from __future__ import annotations

from services.segmentation.conditions import fields
from services.segmentation.conditions.ast import (
    ContextCond,
    EventCond,
    Group,
    Node,
    Property,
    Reads,
    SegmentRef,
    kind_of,
    merge_windows,
    reads_of,
    segment_refs,
    windows_of,
)
from services.segmentation.conditions.evaluate import EventIndex, Verdict, evaluate, holds
from services.segmentation.conditions.parse import (
    MAX_DEPTH,
    MAX_NODES,
    count_nodes,
    decode_condition,
    parse_condition,
    to_proto,
)
from services.segmentation.conditions.sql import to_sql

__all__ = [
    "MAX_DEPTH",
    "MAX_NODES",
    "ContextCond",
    "EventCond",
    "EventIndex",
    "Group",
    "Node",
    "Property",
    "Reads",
    "SegmentRef",
    "Verdict",
    "count_nodes",
    "decode_condition",
    "evaluate",
    "fields",
    "holds",
    "kind_of",
    "merge_windows",
    "parse_condition",
    "reads_of",
    "segment_refs",
    "to_proto",
    "to_sql",
    "windows_of",
]

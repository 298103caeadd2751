"""The condition engine: the Condition tree is data, never code.

    parse_condition(proto, field) -> Node     validate a Condition into the AST (parse.py)
    to_proto(node) -> Condition               and back
    kind_of / reads_of / segment_refs         what a tree is and what it reads (ast.py)
    evaluate(node, facts, events, ...)        one customer, with next_change_at (evaluate.py)
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
    reads_of,
    segment_refs,
)
from services.segmentation.conditions.evaluate import Verdict, evaluate
from services.segmentation.conditions.parse import (
    MAX_DEPTH,
    MAX_NODES,
    count_nodes,
    parse_condition,
    to_proto,
)
from services.segmentation.conditions.sql import to_sql

__all__ = [
    "MAX_DEPTH",
    "MAX_NODES",
    "ContextCond",
    "EventCond",
    "Group",
    "Node",
    "Property",
    "Reads",
    "SegmentRef",
    "Verdict",
    "count_nodes",
    "evaluate",
    "fields",
    "kind_of",
    "parse_condition",
    "reads_of",
    "segment_refs",
    "to_proto",
    "to_sql",
]

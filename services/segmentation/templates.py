"""Built-in segment templates: the classic RFM labels as conditions on the 1-5 scores.

The eight labels partition the 5 x 5 grid of recency (R) and frequency (F) scores, so every
scored customer has exactly one label:

| template | rule |
|---|---|
| rfm_champions | R 4-5 and F 4-5 |
| rfm_loyal | R 3-5 and F 3-5, not a champion |
| rfm_potential_loyalists | R 4-5 and F 1-2, not new |
| rfm_new | R 5 and F 1 |
| rfm_at_risk | R 1-2 and F 3-4 |
| rfm_cannot_lose_them | R 1-2 and F 5 |
| rfm_hibernating | R 2-3 and F 1-2 |
| rfm_lost | R 1 and F 1-2 |
"""

from __future__ import annotations

from dataclasses import dataclass

from backcrm.segmentation.v1 import condition_pb2 as c
from google.protobuf import struct_pb2

__all__ = ["TEMPLATES", "Template", "template_condition"]


@dataclass(frozen=True)
class Template:
    key: str
    name: str
    description: str
    r: tuple[int, int]
    f: tuple[int, int]
    unless: tuple[str, ...] = ()


TEMPLATES = {
    t.key: t
    for t in (
        Template(
            "rfm_champions",
            "Champions",
            "R 4-5 and F 4-5: bought recently and often",
            (4, 5),
            (4, 5),
        ),
        Template(
            "rfm_loyal",
            "Loyal",
            "R 3-5 and F 3-5, not a champion",
            (3, 5),
            (3, 5),
            ("rfm_champions",),
        ),
        Template(
            "rfm_potential_loyalists",
            "Potential loyalists",
            "R 4-5 and F 1-2, not new: recent, not yet frequent",
            (4, 5),
            (1, 2),
            ("rfm_new",),
        ),
        Template("rfm_new", "New", "R 5 and F 1: first order just now", (5, 5), (1, 1)),
        Template(
            "rfm_at_risk", "At risk", "R 1-2 and F 3-4: were regulars, gone quiet", (1, 2), (3, 4)
        ),
        Template(
            "rfm_cannot_lose_them",
            "Cannot lose them",
            "R 1-2 and F 5: best customers, gone quiet",
            (1, 2),
            (5, 5),
        ),
        Template(
            "rfm_hibernating",
            "Hibernating",
            "R 2-3 and F 1-2: few orders, a while ago",
            (2, 3),
            (1, 2),
        ),
        Template("rfm_lost", "Lost", "R 1 and F 1-2: few orders, long ago", (1, 1), (1, 2)),
    )
}


def _between(path: str, low: int, high: int) -> c.Condition:
    value = struct_pb2.Value(
        list_value=struct_pb2.ListValue(
            values=[struct_pb2.Value(number_value=low), struct_pb2.Value(number_value=high)]
        )
    )
    return c.Condition(property=c.PropertyCondition(path=path, op=c.OPERATOR_BETWEEN, value=value))


def _grid(template: Template) -> c.Condition:
    return c.Condition(
        all_of=c.ConditionGroup(
            conditions=[
                _between("rfm.recency_score", *template.r),
                _between("rfm.frequency_score", *template.f),
            ]
        )
    )


def template_condition(key: str) -> c.Condition:
    template = TEMPLATES[key]
    condition = _grid(template)
    if template.unless:
        excluded = [_grid(TEMPLATES[other]) for other in template.unless]
        condition = c.Condition(
            all_of=c.ConditionGroup(
                conditions=[condition, c.Condition(none_of=c.ConditionGroup(conditions=excluded))]
            )
        )
    return condition

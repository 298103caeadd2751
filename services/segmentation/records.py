"""Segmentation's domain records (plain data; no protobuf, no SQL)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["MembershipChange", "SegmentRecord"]


@dataclass
class SegmentRecord:
    segment_id: str
    name: str
    description: str
    condition: bytes  # the serialized Condition, as the caller sent it (after validation)
    kind: str  # BEHAVIORAL | CONTEXTUAL | COMBINED
    state: str  # BUILDING | READY
    member_count: int = 0
    build_progress: float = 0.0
    created_at: float = 0.0
    updated_at: float = 0.0
    built_at: float | None = None
    reads: dict[str, Any] = field(default_factory=dict)
    template: str = ""


@dataclass(frozen=True)
class MembershipChange:
    segment_id: str
    customer_id: str
    change: str  # ENTERED | LEFT
    at: float
    reason: str

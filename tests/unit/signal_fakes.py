"""A fake of `libs.signals.CustomerSignals` (segmentation's answers), for unit tests."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from backcrm.common.v1 import common_pb2
from backcrm.segmentation.v1 import condition_pb2

from libs.signals import CustomerSignals

__all__ = ["FakeSignals"]


@dataclass
class FakeSignals(CustomerSignals):
    """Segmentation's answers, set by the test: `members` the segments the customer is in,
    `verdicts` condition -> answer (by serialized bytes; unlisted conditions are False);
    `down` makes every call answer None, as the adapter does when segmentation fails."""

    members: dict[str, set[str]] = field(default_factory=dict)
    verdicts: dict[bytes, bool] = field(default_factory=dict)
    down: bool = False
    calls: int = 0

    async def segments(
        self,
        customer_id: str,
        segment_ids: Sequence[str],
        context: common_pb2.Context | None,
        timeout: float,
    ) -> frozenset[str] | None:
        self.calls += 1
        if self.down:
            return None
        return frozenset(set(segment_ids) & self.members.get(customer_id, set()))

    async def conditions(
        self,
        customer_id: str,
        conditions: Sequence[condition_pb2.Condition],
        context: common_pb2.Context | None,
        timeout: float,
    ) -> list[bool] | None:
        self.calls += 1
        if self.down:
            return None
        return [
            self.verdicts.get(c.SerializeToString(deterministic=True), False) for c in conditions
        ]

"""What every bonus process keeps in memory: programs and their active promotions, with the
conditions parsed, so a quote reads no configuration from the database.

Freshness: every change to a program or a promotion publishes an event (bonus.programs,
bonus.promotions) that every process tails (a fan-out tail, not a consumer group: each process
must see each change) and that drops the cache; the same transaction moves the configuration
version row, which each process compares at most every `max_age` seconds (0.5 s), so an event
lost (a process that was not tailing yet, a bus hiccup) leaves a stale price for at most that
long. A load that overlaps an invalidation answers its caller but is not kept.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from backcrm.segmentation.v1 import condition_pb2

from services.bonus.domain import Program
from services.bonus.ports import BonusUnitOfWork
from services.bonus.promotions import Compiled, compile_promotion

__all__ = ["ConfigCache", "ProgramConfig"]


@dataclass(frozen=True)
class ProgramConfig:
    program: Program
    promotions: tuple[Compiled, ...]
    # every customer atom of the promotions, deduplicated (serialized -> message), then the
    # program's segment-multiplier segments as segment conditions
    customer_atoms: dict[bytes, condition_pb2.Condition] = field(default_factory=dict)
    segment_atoms: dict[str, bytes] = field(default_factory=dict)  # segment_id -> serialized

    @property
    def limited(self) -> bool:
        """Some promotion limits uses per customer (a quote then reads the customer's uses)."""
        return any(c.promotion.max_uses_per_customer for c in self.promotions)


def program_config(program: Program, compiled: list[Compiled]) -> ProgramConfig:
    atoms: dict[bytes, condition_pb2.Condition] = {}
    for c in compiled:
        for key in c.customer_atoms.values():
            atoms.setdefault(key, condition_pb2.Condition.FromString(key))
    segments: dict[str, bytes] = {}
    for segment_id in sorted(program.segment_multipliers):
        message = condition_pb2.Condition(
            segment=condition_pb2.SegmentCondition(segment_id=segment_id)
        )
        key = message.SerializeToString(deterministic=True)
        atoms.setdefault(key, message)
        segments[segment_id] = key
    return ProgramConfig(program, tuple(compiled), atoms, segments)


class ConfigCache:
    def __init__(
        self,
        uow: Callable[[], BonusUnitOfWork],
        clock: Callable[[], float],
        max_age: float = 0.5,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self.max_age = max_age
        self._entries: dict[str, ProgramConfig | None] = {}
        self._loading: dict[str, asyncio.Task[ProgramConfig | None]] = {}
        self._generation = 0
        self._version: int | None = None
        self.loads = 0  # how many times configuration was read (tests, metrics)

    def invalidate(self) -> None:
        """Drop everything (an event said something changed)."""
        self._generation += 1
        self._entries.clear()
        self._loading.clear()

    async def check_version(self) -> None:
        """The safety net: drop everything when the version row moved since the last load."""
        async with self._uow() as uow:
            version = await uow.config_version()
        if self._version is not None and version != self._version:
            self.invalidate()
        self._version = version

    async def get(self, program_id: str) -> ProgramConfig | None:
        """The program and its active promotions (None: no such program)."""
        if program_id in self._entries:
            return self._entries[program_id]
        task = self._loading.get(program_id)
        if task is None:
            task = asyncio.ensure_future(self._load(program_id, self._generation))
            self._loading[program_id] = task
        return await asyncio.shield(task)

    async def _load(self, program_id: str, generation: int) -> ProgramConfig | None:
        try:
            async with self._uow() as uow:
                version = await uow.config_version()
                program = await uow.program(program_id)
                promotions = await uow.active_promotions(program_id) if program else []
            self.loads += 1
            config = (
                program_config(program, [compile_promotion(p) for p in promotions])
                if program is not None
                else None
            )
            if generation == self._generation:
                self._entries[program_id] = config
                if self._version is None:
                    self._version = version
            return config
        finally:
            if self._loading.get(program_id) is asyncio.current_task():
                del self._loading[program_id]

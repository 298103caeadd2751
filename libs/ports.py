"""The port every service's storage is reached through: one unit of work (a transaction) at a
time. `libs.db.SqlUnitOfWork` is the SQL adapter's base; unit tests use in-memory fakes.

A service's port subclasses `UnitOfWork` and adds its queries; a write that lost a race to a
concurrent one raises `libs.errors.Conflict` (at the write or at `commit`), and the whole unit
of work may be run again (`libs.retry.retry_conflicts`).
"""

from __future__ import annotations

import abc
from typing import Self

__all__ = ["UnitOfWork"]


class UnitOfWork(abc.ABC):
    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, exc_type: object, exc: object, tb: object) -> None:
        await self.rollback()  # whatever was not committed

    @abc.abstractmethod
    async def commit(self) -> None:
        """Commits; the outbox rows written are then published (the relay is nudged)."""

    @abc.abstractmethod
    async def rollback(self) -> None: ...

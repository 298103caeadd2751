"""The in-memory unit of work the services' fakes are built on (tests/unit/*_fakes.py).

It has the semantics of `libs.db.SqlUnitOfWork` that the handlers rely on: units of work take
turns (one at a time, as row locks make writes to one row), and each works on a private copy
of the shared state that replaces it only on commit; leaving without a commit keeps nothing.
"""

from __future__ import annotations

import asyncio
import copy
from dataclasses import dataclass, field
from typing import Generic, Self, TypeVar

__all__ = ["FakeStore", "FakeUnitOfWork"]

S = TypeVar("S")


@dataclass
class FakeStore(Generic[S]):
    state: S
    turn: asyncio.Lock = field(default_factory=asyncio.Lock)


class FakeUnitOfWork(Generic[S]):
    def __init__(self, store: FakeStore[S]) -> None:
        self._store = store
        self._s: S = store.state  # replaced by a private copy on entry

    async def __aenter__(self) -> Self:
        await self._store.turn.acquire()
        self._s = copy.deepcopy(self._store.state)
        return self

    async def __aexit__(self, exc_type: object, exc: object, tb: object) -> None:
        self._store.turn.release()

    async def commit(self) -> None:
        self._store.state = copy.deepcopy(self._s)

    async def rollback(self) -> None:
        self._s = copy.deepcopy(self._store.state)

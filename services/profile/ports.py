"""Ports of the profile service: the unit of work over its storage, and domain events out.

Handlers depend on these small abstractions only; `repository.SqlProfileUnitOfWork` implements them
over SQLAlchemy, `tests/unit/fakes.py` in memory.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Self

from services.profile.domain import Customer, EventIn, IdentityKey

__all__ = [
    "DomainEvent",
    "MergeRecord",
    "ProfileChanged",
    "ProfileDeleted",
    "ProfileUnitOfWork",
    "ProfilesMerged",
    "PurchaseRecord",
    "StoredEventRecord",
]


@dataclass(frozen=True)
class ProfileChanged:
    """One committed change of a profile. It always carries the profile after the change (the
    bus snapshot): consumers such as segmentation act on it with no call back, whatever made
    the change (events, UpsertProfile, SetTraits, a merge, RFM scores)."""

    customer_id: str
    version: int
    paths: tuple[str, ...]
    at: float
    customer: Customer
    event_ids: tuple[str, ...] = ()
    event_types: tuple[str, ...] = ()
    # the accepted events behind the change, when it came from TrackEvents
    events: tuple[EventIn, ...] = ()


@dataclass(frozen=True)
class ProfileDeleted:
    customer_id: str
    at: float


@dataclass(frozen=True)
class ProfilesMerged:
    source_customer_id: str
    target_customer_id: str
    at: float


DomainEvent = ProfileChanged | ProfileDeleted | ProfilesMerged


@dataclass(frozen=True)
class PurchaseRecord:
    event_id: str
    customer_id: str
    order_id: str
    placed_at: float
    is_return: bool
    counted: bool
    total_micros: int
    currency: str
    channel: str
    lines: list[list[Any]]  # [sku, category, quantity, unit_price_micros, currency]


@dataclass(frozen=True)
class StoredEventRecord:
    event: EventIn
    customer_id: str
    received_at: float


@dataclass
class MergeRecord:
    source_customer_id: str
    target_customer_id: str
    actor: str
    reason: str
    merged_at: float


@dataclass
class ProfileUnitOfWork(abc.ABC):
    """One transaction. Events emitted are written atomically with the data (outbox)."""

    emitted: list[DomainEvent] = field(default_factory=list)

    async def __aenter__(self) -> Self:
        self.emitted = []
        return self

    async def __aexit__(self, exc_type: object, exc: object, tb: object) -> None:
        await self.rollback()

    def emit(self, event: DomainEvent) -> None:
        self.emitted.append(event)

    @abc.abstractmethod
    async def commit(self) -> None: ...

    @abc.abstractmethod
    async def rollback(self) -> None: ...

    # identities and ids
    @abc.abstractmethod
    async def owners_of(self, keys: Iterable[IdentityKey]) -> dict[IdentityKey, str]: ...

    @abc.abstractmethod
    async def live_ids(self, customer_ids: Iterable[str]) -> dict[str, str]:
        """Each known id -> the live customer it is now (itself, or its merge target)."""

    @abc.abstractmethod
    async def identities_of(self, customer_ids: Iterable[str]) -> dict[str, list[IdentityKey]]: ...

    @abc.abstractmethod
    async def link_identities(self, links: Sequence[tuple[IdentityKey, str]], at: float) -> None:
        """Claim identities nobody owned when read for the given (existing) customers, atomically:
        raises Conflict if a concurrent writer has claimed one since (never moves it)."""

    # customers
    @abc.abstractmethod
    async def load(self, customer_ids: Iterable[str], for_update: bool) -> dict[str, Customer]: ...

    @abc.abstractmethod
    async def save(self, customers: Iterable[Customer]) -> None:
        """Insert the new (is_new) and update the others, versions already bumped."""

    async def save_and_commit(self, customers: Iterable[Customer]) -> None:
        """`save` (changed customers only), then `commit`: the end of a TrackEvents batch. The
        SQL adapter sends the customers and the outbox rows as one statement on PostgreSQL."""
        await self.save(customers)
        await self.commit()

    @abc.abstractmethod
    async def delete_customer(self, customer_id: str) -> None:
        """Erase the customer: row, identities, events, purchases, merge records."""

    # events and purchases
    @abc.abstractmethod
    async def known_event_ids(self, event_ids: Iterable[str]) -> set[str]: ...

    async def known_events_and_owners(
        self, event_ids: Iterable[str], keys: Iterable[IdentityKey]
    ) -> tuple[set[str], dict[IdentityKey, str]]:
        """`known_event_ids` and `owners_of` together: what a TrackEvents batch reads first
        (the SQL adapter answers both in one round trip)."""
        return await self.known_event_ids(event_ids), await self.owners_of(keys)

    @abc.abstractmethod
    async def insert_events(self, events: Sequence[StoredEventRecord]) -> set[str]:
        """Insert; returns the ids actually inserted (a concurrent duplicate is skipped)."""

    @abc.abstractmethod
    async def counted_order_ids(self, order_ids: Iterable[str]) -> set[str]: ...

    @abc.abstractmethod
    async def insert_purchases(self, purchases: Sequence[PurchaseRecord]) -> None: ...

    @abc.abstractmethod
    async def list_purchases(
        self, customer_id: str, after: tuple[float, str] | None, limit: int
    ) -> list[PurchaseRecord]:
        """Newest first; `after` = (placed_at, event_id) of the last row already seen."""

    @abc.abstractmethod
    async def list_events(
        self, customer_id: str, after: tuple[float, str] | None, limit: int
    ) -> list[StoredEventRecord]:
        """Oldest first; `after` = (occurred_at, event_id) of the last row already seen."""

    @abc.abstractmethod
    async def move_history(self, source_id: str, target_id: str) -> None:
        """Re-point the source's identities, events and purchases at the target."""

    @abc.abstractmethod
    async def record_merge(self, record: MergeRecord) -> None:
        """Audit the merge; ids merged into the source now resolve to the target too."""

    @abc.abstractmethod
    async def merges_of(self, customer_id: str) -> list[MergeRecord]: ...

    @abc.abstractmethod
    async def claim_rfm_run(self, run: int) -> bool:
        """Whether RFM scores of recomputation `run` may be applied: not older than the latest
        applied (which `run` then becomes). Holds the run row until this unit of work ends,
        so scores of two runs are never applied at once."""

"""What the recommend handlers need: one unit of work (a transaction) at a time.

SQL adapter: `services.recommend.repository.SqlRecommendUnitOfWork`; in-memory fake:
tests/unit/recommend_fakes.py. Segments come only through `libs.signals.CustomerSignals`.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Self

from libs.signals import CustomerSignals  # re-exported: the port recommend asks segmentation by
from services.recommend.domain import Item, Showcase

__all__ = [
    "Behaviour",
    "CustomerSignals",
    "Guard",
    "History",
    "RecommendUnitOfWork",
    "StoredModel",
]


@dataclass(frozen=True)
class History:
    sku: str
    purchased: float  # units bought minus units returned
    viewed: float
    last_at: float


@dataclass(frozen=True)
class Guard:
    """A customer's guard row: erased (a tombstone) or merged into another customer."""

    customer_id: str
    erased: bool = False
    merged_into: str = ""


@dataclass(frozen=True)
class Behaviour:
    """What one profile event adds: to the customer's history, co-occurrence and popularity."""

    event_id: str
    customer_id: str
    at: float
    # sku -> units (negative: a return)
    purchased: Mapping[str, float]
    viewed: tuple[str, ...] = ()


@dataclass(frozen=True)
class StoredModel:
    version: int
    trained_at: float
    customers: int
    items: int
    data: bytes


class RecommendUnitOfWork(abc.ABC):
    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, exc_type: object, exc: object, tb: object) -> None:
        await self.rollback()

    @abc.abstractmethod
    async def commit(self) -> None: ...

    @abc.abstractmethod
    async def rollback(self) -> None: ...

    # catalogue

    @abc.abstractmethod
    async def items(self, skus: Sequence[str], *, for_update: bool = False) -> dict[str, Item]:
        """The stored items among `skus` (locked, in sku order, when for_update)."""

    @abc.abstractmethod
    async def put_items(self, created: Sequence[Item], updated: Sequence[Item], at: float) -> None:
        """Inserts `created` (first upsert: created_at = at) and replaces `updated`."""

    @abc.abstractmethod
    async def list_items(self, category: str, after: str | None, limit: int) -> list[Item]:
        """By sku ascending, strictly after `after` when given."""

    @abc.abstractmethod
    async def all_items(self) -> list[Item]: ...

    @abc.abstractmethod
    async def announce_items(self, skus: Sequence[str], at: float) -> None:
        """Bumps the catalogue version and publishes ItemsUpserted (outbox), in this
        transaction."""

    @abc.abstractmethod
    async def catalog_version(self) -> int: ...

    # showcases

    @abc.abstractmethod
    async def showcase(self, showcase_id: str, *, for_update: bool = False) -> Showcase | None: ...

    @abc.abstractmethod
    async def add_showcase(self, showcase: Showcase) -> None: ...

    @abc.abstractmethod
    async def save_showcase(self, showcase: Showcase) -> None: ...

    @abc.abstractmethod
    async def list_showcases(self, after: tuple[float, str] | None, limit: int) -> list[Showcase]:
        """Newest first; strictly after the (created_at, showcase_id) position when given."""

    @abc.abstractmethod
    async def all_showcases(self) -> list[Showcase]: ...

    @abc.abstractmethod
    async def announce_showcase(self, showcase_id: str, at: float) -> None:
        """Bumps the catalogue version and publishes ShowcaseChanged (outbox)."""

    # behaviour (profile events)

    @abc.abstractmethod
    async def guard(self, customer_id: str) -> Guard:
        """Creates the customer's guard row when missing and locks it (FOR UPDATE) until
        commit; every per-customer write takes it first."""

    @abc.abstractmethod
    async def claim_event(self, event_id: str, at: float) -> bool:
        """Records the event as counted; False when it was already (a redelivery)."""

    @abc.abstractmethod
    async def history(self, customer_id: str, limit: int = 500) -> list[History]:
        """The customer's items, most recent first."""

    @abc.abstractmethod
    async def add_history(
        self, customer_id: str, deltas: Mapping[str, tuple[float, float]], at: float
    ) -> None:
        """Adds (units bought, views) per sku to the customer's history (additively)."""

    @abc.abstractmethod
    async def add_cooccurrence(
        self, item_deltas: Mapping[str, float], pair_deltas: Mapping[tuple[str, str], float]
    ) -> None:
        """Adds to item and pair counts (additive upserts in key order; pairs both ways)."""

    @abc.abstractmethod
    async def add_popularity(self, deltas: Mapping[tuple[str, int, str], float]) -> None:
        """Adds (segment, day, sku) -> weight (additively, in key order)."""

    @abc.abstractmethod
    async def item_counts(self, skus: Sequence[str]) -> dict[str, float]:
        """The basket counts (the co-occurrence's n(item)) of `skus`."""

    @abc.abstractmethod
    async def related(
        self, skus: Sequence[str], limit: int, shrink: float
    ) -> dict[str, list[tuple[str, float, float]]]:
        """Per sku, its `limit` best partners as (other, pair count c, other's count n) by the
        co-occurrence's similarity (c / sqrt(n) * c / (c + shrink): the sku's own count is
        the same for all its partners), ties by other; the database ranks them, so a sku with
        thousands of partners sends `limit` rows."""

    @abc.abstractmethod
    async def popularity(
        self, segment_ids: Sequence[str], since_day: int
    ) -> list[tuple[str, str, int, float]]:
        """(segment, sku, day, weight) of the segments from `since_day` on."""

    @abc.abstractmethod
    async def erase_customer(self, customer_id: str, at: float) -> None:
        """Under the customer's guard (locked by the caller): marks it erased and deletes its
        history."""

    @abc.abstractmethod
    async def merge_customer(self, source: str, target: str) -> None:
        """Under both guards (locked by the caller): adds the source's history to the target's,
        deletes the source's and marks it merged into the target."""

    # the personal model

    @abc.abstractmethod
    async def training_triples(self) -> list[tuple[str, str, float, float]]:
        """(customer, sku, units bought, views) of every live customer."""

    @abc.abstractmethod
    async def lease_training(self, now: float, until: float) -> bool:
        """Takes the training lease when it is free (atomic); False when another holds it."""

    @abc.abstractmethod
    async def lease_rebuild(self, now: float, until: float) -> bool:
        """Takes the co-occurrence rebuild's lease (the training's lease table, its own row)."""

    @abc.abstractmethod
    async def add_basket(
        self,
        event_id: str,
        customer_id: str,
        basket: Sequence[str],
        joins: Sequence[tuple[str, Sequence[str]]],
    ) -> None:
        """Keeps what a counted event added to the co-occurrence: the basket it bought and the
        views that joined a session ((viewed sku, the session's skus before it))."""

    @abc.abstractmethod
    async def baskets(self) -> list[tuple[list[str], list[tuple[str, list[str]]]]]:
        """Every kept (basket, joins) of live customers (erasure deletes a customer's), for a
        rebuild: first the counts are locked against concurrent counting until the unit of
        work ends, so an event counted meanwhile adds to the rebuilt counts afterwards (never
        lost, never twice)."""

    @abc.abstractmethod
    async def replace_cooccurrence(
        self, item_counts: Mapping[str, float], pairs: Mapping[tuple[str, str], float]
    ) -> None:
        """Replaces every item and pair count with these (pairs keyed (a, b), a < b, stored
        both ways)."""

    @abc.abstractmethod
    async def add_model(
        self, trained_at: float, seconds: float, customers: int, items: int, data: bytes
    ) -> int: ...

    @abc.abstractmethod
    async def prune_models(self, before: int) -> int:
        """Deletes model versions older than `before`; how many."""

    @abc.abstractmethod
    async def latest_model_version(self) -> int:
        """0 when none."""

    @abc.abstractmethod
    async def model(self, version: int) -> StoredModel | None: ...

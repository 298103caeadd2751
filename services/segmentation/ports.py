"""The storage port of the segmentation service: one unit of work over its projection,
segments, memberships, due queue, tombstones and outbox.

The handlers, the engine and the builder depend on this abstraction only;
`store.SegStore` implements it over SQLAlchemy, `tests/unit/segmentation_fakes.py` in memory.
A unit of work is one transaction: nothing it writes is seen by others before `commit`, and
leaving it without committing discards everything. Membership changes are logged and written
to the outbox in the same transaction as the memberships themselves.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Mapping, Sequence
from typing import Self

from libs.db import OutboxMessage
from services.segmentation.conditions import Node
from services.segmentation.facts import CustomerFacts, FactEvent
from services.segmentation.records import MembershipChange, SegmentRecord

__all__ = ["SegmentationUnitOfWork"]


class SegmentationUnitOfWork(abc.ABC):
    """One transaction. A write that lost a race to a concurrent one raises
    `libs.errors.Conflict` (at the write or at `commit`): the whole unit of work may be re-run."""

    @abc.abstractmethod
    async def __aenter__(self) -> Self: ...

    @abc.abstractmethod
    async def __aexit__(self, exc_type: object, exc: object, tb: object) -> None: ...

    @abc.abstractmethod
    async def commit(self) -> None:
        """Commit; the outbox rows written are then published (the relay is nudged)."""

    # ------------------------------------------------------------ projection

    @abc.abstractmethod
    async def upsert_profiles(self, rows: Sequence[CustomerFacts]) -> None:
        """Store the snapshots newer than the stored ones (by version); RFM scores are kept."""

    @abc.abstractmethod
    async def insert_events(self, events: Sequence[FactEvent]) -> None:
        """Events not stored yet (a redelivered change brings its events again)."""

    async def store_changes(
        self, rows: Sequence[CustomerFacts], events: Sequence[FactEvent]
    ) -> dict[str, CustomerFacts]:
        """`upsert_profiles` and `insert_events` together; returns what `load_facts` would
        now read of some of the customers whose snapshot was stored (adapters that learn it
        from the write itself), so the caller loads only the others."""
        await self.upsert_profiles(rows)
        if events:
            await self.insert_events(events)
        return {}

    @abc.abstractmethod
    async def load_facts(self, customer_ids: Iterable[str]) -> dict[str, CustomerFacts]: ...

    @abc.abstractmethod
    async def load_events(
        self, customer_ids: Iterable[str], since: Mapping[str, float | None]
    ) -> dict[str, list[FactEvent]]:
        """The customers' events of the types `since` names, each type's that occurred after
        its moment there (None: all of them)."""

    @abc.abstractmethod
    async def forget_customer(self, customer_id: str, *, keep_events: bool = False) -> list[str]:
        """Drop the customer's projection, memberships and due times (its events too unless
        `keep_events`); returns the segments it was a member of."""

    @abc.abstractmethod
    async def erase_log(self, customer_id: str) -> None: ...

    @abc.abstractmethod
    async def move_events(self, source: str, target: str) -> None: ...

    # ------------------------------------------------------------ locks and tombstones

    @abc.abstractmethod
    async def lock_customers(self, customer_ids: Iterable[str], *, exclusive: bool = False) -> None:
        """Serialise with other units of work on these customers until this one ends: shared
        for writers of a customer's rows, exclusive for its erasure, its merges and the
        consumption of its changes (which reads what a concurrent one writes)."""

    @abc.abstractmethod
    async def lock_segments(self, segment_ids: Iterable[str], *, exclusive: bool = False) -> None:
        """Serialise with a segment's first build until this unit of work ends: exclusive for
        the build, shared for whoever reads or writes the memberships of a segment being
        built (they wait for the build's members, then correct them)."""

    @abc.abstractmethod
    async def retired(self, customer_ids: Iterable[str]) -> dict[str, str | None]:
        """The customers that are gone, each with where it lives on: the customer it was
        merged into (following later merges), or None when erased."""

    @abc.abstractmethod
    async def retire(self, customer_id: str, at: float, merged_into: str | None) -> None:
        """Record the customer as gone; those merged into it follow it."""

    @abc.abstractmethod
    async def projected(self, customer_ids: Sequence[str]) -> set[str]:
        """Those of the customers that have a projection, held against erasure."""

    # ------------------------------------------------------------ catalogue version

    @abc.abstractmethod
    async def catalog_version(self, *, hold: bool = False) -> int:
        """The catalogue's version; `hold` keeps definition changes out until this unit of
        work ends."""

    async def catalog_version_and_lock(
        self, customer_ids: Iterable[str], *, hold: bool = True
    ) -> int:
        """`catalog_version`, then `lock_customers(customer_ids, exclusive=True)`: the
        catalogue before the customers, the order every unit of work takes them in (adapters
        may take both in one statement)."""
        version = await self.catalog_version(hold=hold)
        await self.lock_customers(customer_ids, exclusive=True)
        return version

    @abc.abstractmethod
    async def bump_catalog_version(self) -> int:
        """Version + 1: definition changes run one at a time."""

    # ------------------------------------------------------------ segments

    @abc.abstractmethod
    async def segments(self) -> list[SegmentRecord]: ...

    @abc.abstractmethod
    async def segment(self, segment_id: str) -> SegmentRecord | None: ...

    @abc.abstractmethod
    async def list_segments(
        self, after: str | None, limit: int, kind: str | None
    ) -> list[SegmentRecord]:
        """By id, after `after`."""

    @abc.abstractmethod
    async def save_segment(self, record: SegmentRecord) -> None: ...

    @abc.abstractmethod
    async def set_build(
        self, segment_id: str, *, state: str, progress: float, built_at: float | None = None
    ) -> None: ...

    @abc.abstractmethod
    async def delete_segment(self, segment_id: str) -> None:
        """The segment, its members and their due times."""

    @abc.abstractmethod
    async def clear_members(self, segment_id: str) -> None:
        """Its members and their due times; its count becomes 0."""

    @abc.abstractmethod
    async def refresh_count(self, segment_id: str, count: int | None = None) -> int:
        """Store the segment's member count: `count` when the caller knows it (a first build
        holding its segment inserted every member), else as counted now; returns it."""

    # ------------------------------------------------------------ memberships

    @abc.abstractmethod
    async def memberships_of(self, customer_id: str) -> set[str]: ...

    @abc.abstractmethod
    async def memberships_of_many(self, customer_ids: Sequence[str]) -> dict[str, set[str]]: ...

    async def customer_read(
        self,
        customer_id: str,
        *,
        memberships: bool,
        facts: bool,
        types: Iterable[str],
        since: float | None,
    ) -> tuple[set[str] | None, CustomerFacts | None, list[FactEvent] | None]:
        """What a request-time evaluation reads of one customer, each part only when asked
        (`facts` brings the events of `types` since `since` too): (memberships, facts, events).
        Adapters answer it with a few ready-made statements (it runs per request)."""
        members = await self.memberships_of(customer_id) if memberships else None
        if not facts:
            return members, None, None
        found = (await self.load_facts([customer_id])).get(customer_id)
        cutoffs = dict.fromkeys(types, since)
        events = (await self.load_events([customer_id], cutoffs)).get(customer_id, [])
        return members, found, events

    @abc.abstractmethod
    async def members(self, segment_id: str) -> set[str]: ...

    @abc.abstractmethod
    async def list_members(self, segment_id: str, after: str | None, limit: int) -> list[str]:
        """By customer id, after `after`."""

    @abc.abstractmethod
    async def apply(
        self,
        changes: Sequence[MembershipChange],
        *,
        publish: bool = True,
        tolerant: bool = False,
        log: bool = True,
    ) -> None:
        """Write membership changes (ENTERED inserts, LEFT deletes), their log and outbox rows.

        An ENTERED for a pair already stored is a Conflict unless `tolerant` (a build, which
        tolerates members the incremental path added meanwhile). Without `publish` nothing is
        logged or published; without `log` the changes are published but not logged."""

    @abc.abstractmethod
    async def bump_counts(self, deltas: dict[str, int]) -> None: ...

    # ------------------------------------------------------------ due queue

    @abc.abstractmethod
    async def schedule(self, items: Sequence[tuple[str, str, float | None]]) -> None:
        """(segment, customer, due_at): when the answer can change by time; None clears."""

    @abc.abstractmethod
    async def due_times(self, pairs: Sequence[tuple[str, str]]) -> dict[tuple[str, str], float]:
        """The stored due times of these (segment, customer) pairs (those that have one)."""

    async def memberships_and_due(
        self, customer_ids: Sequence[str], pairs: Sequence[tuple[str, str]]
    ) -> tuple[dict[str, set[str]], dict[tuple[str, str], float]]:
        """`memberships_of_many` and `due_times` at once (adapters may read both in one
        statement): what a change diffs its verdicts against."""
        return await self.memberships_of_many(customer_ids), await self.due_times(pairs)

    @abc.abstractmethod
    async def due(self, now: float, limit: int) -> list[tuple[str, str]]:
        """(segment, customer) pairs due at `now`, earliest first."""

    # ------------------------------------------------------------ set-wise

    @abc.abstractmethod
    async def matching(self, node: Node, now: float) -> set[str]:
        """Every projected customer matching the (behavioural) condition at `now`; referenced
        segments are read from their stored members."""

    @abc.abstractmethod
    async def insert_matching(self, segment_id: str, node: Node, now: float) -> int:
        """Make every matching customer a member (a first build, holding the segment
        exclusively and with no members yet); returns how many."""

    @abc.abstractmethod
    async def count_matching(self, node: Node, now: float) -> int: ...

    @abc.abstractmethod
    async def sample_matching(self, node: Node, now: float, size: int) -> list[str]:
        """The first `size` matching customers by id."""

    # ------------------------------------------------------------ outbox and RFM

    @abc.abstractmethod
    async def write_outbox(self, messages: Iterable[OutboxMessage]) -> None:
        """Outbox rows (topic, payload, customer id) published after commit."""

    @abc.abstractmethod
    async def rfm_inputs(self) -> list[tuple[str, float, int, float]]:
        """(customer, last purchase, orders, revenue) of every customer who bought."""

    @abc.abstractmethod
    async def set_rfm_scores(self, scores: Sequence[tuple[str, int, int, int]]) -> int:
        """(customer, R, F, M); customers who never bought score 0. Returns the run number this
        recomputation takes (the next one; concurrent recomputations write one at a time)."""

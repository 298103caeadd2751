"""An in-memory adapter of the segmentation port, for unit tests: no I/O, microseconds a call.

`FakeSegmentationUnitOfWork` has the semantics of `services.segmentation.store.SegStore`: each
unit of work works on a private copy of the shared `FakeSegmentationStore`, which replaces the
store's state only on commit; leaving the unit without committing discards everything. An
ENTERED for a membership stored already raises `Conflict`, as the table's primary key does.
Set-wise queries evaluate the condition customer by customer (the two evaluators agree:
tests/integration/test_conditions_agree.py). Locks are no-ops: one test runs one unit of
work at a time, as SQLite does.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from libs.errors import Conflict
from services.segmentation.conditions import Node, evaluate
from services.segmentation.facts import CustomerFacts, FactEvent
from services.segmentation.handlers import SegmentationDeps
from services.segmentation.ports import SegmentationUnitOfWork
from services.segmentation.records import MembershipChange, SegmentRecord
from services.segmentation.store import follow_tombstones
from services.segmentation.translate import (
    encode_membership_change,
    encode_rfm,
    encode_segment_change,
)
from tests.unit.fakes import FakeCache, FakeClock

__all__ = [
    "FakeSegmentationStore",
    "FakeSegmentationUnitOfWork",
    "LogRow",
    "fake_segmentation",
]


@dataclass(frozen=True)
class LogRow:
    segment_id: str
    customer_id: str
    change: str
    at: float
    reason: str


@dataclass
class _State:
    profiles: dict[str, CustomerFacts] = field(default_factory=dict)
    events: dict[str, FactEvent] = field(default_factory=dict)  # by event id
    tombstones: dict[str, str | None] = field(default_factory=dict)  # -> merged into
    catalog_version: int = 0
    rfm_run: int = 0
    segments: dict[str, SegmentRecord] = field(default_factory=dict)
    members: dict[tuple[str, str], float] = field(default_factory=dict)  # (segment, customer)
    due: dict[tuple[str, str], float] = field(default_factory=dict)
    log: list[LogRow] = field(default_factory=list)
    outbox: list[tuple[str, bytes, str]] = field(default_factory=list)  # topic, payload, customer
    published: list[MembershipChange] = field(default_factory=list)  # what `outbox` announces


@dataclass
class FakeSegmentationStore:
    """The committed state every unit of work of a test shares."""

    state: _State = field(default_factory=_State)
    encode_change: Callable[[MembershipChange], tuple[str, bytes]] = encode_membership_change
    commits: int = 0
    # the next N commits fail as if a concurrent writer changed the same memberships first
    conflicts: int = 0

    def members_of(self, segment_id: str) -> set[str]:
        return {c for s, c in self.state.members if s == segment_id}

    def topics(self) -> list[str]:
        return [topic for topic, _, _ in self.state.outbox]


class FakeSegmentationUnitOfWork(SegmentationUnitOfWork):
    def __init__(self, store: FakeSegmentationStore) -> None:
        self.store = store
        self._work: _State | None = None

    async def __aenter__(self) -> FakeSegmentationUnitOfWork:
        self._work = copy.deepcopy(self.store.state)
        return self

    async def __aexit__(self, exc_type: object, exc: object, tb: object) -> None:
        self._work = None

    @property
    def w(self) -> _State:
        assert self._work is not None, "use the unit of work as an async context manager"
        return self._work

    async def commit(self) -> None:
        work = self.w
        if self.store.conflicts:
            self.store.conflicts -= 1
            raise Conflict("simulated concurrent writer")
        self.store.state = work
        self.store.commits += 1
        # The unit of work stays usable after a commit, in a new transaction.
        self._work = copy.deepcopy(work)

    # ------------------------------------------------------------ projection

    async def upsert_profiles(self, rows: Sequence[CustomerFacts]) -> None:
        for facts in rows:
            stored = self.w.profiles.get(facts.customer_id)
            if stored is None:
                self.w.profiles[facts.customer_id] = copy.deepcopy(facts)
            elif stored.version < facts.version:
                # RFM scores are segmentation's own: a profile snapshot does not reset them
                self.w.profiles[facts.customer_id] = dataclasses.replace(
                    copy.deepcopy(facts),
                    recency_score=stored.recency_score,
                    frequency_score=stored.frequency_score,
                    monetary_score=stored.monetary_score,
                )

    async def insert_events(self, events: Sequence[FactEvent]) -> None:
        for event in events:
            self.w.events.setdefault(event.event_id, event)

    async def load_facts(self, customer_ids: Iterable[str]) -> dict[str, CustomerFacts]:
        profiles = self.w.profiles
        return {c: copy.deepcopy(profiles[c]) for c in set(customer_ids) if c in profiles}

    async def load_events(
        self, customer_ids: Iterable[str], since: Mapping[str, float | None]
    ) -> dict[str, list[FactEvent]]:
        wanted = set(customer_ids)
        out: dict[str, list[FactEvent]] = {}
        for event in self.w.events.values():
            if event.customer_id in wanted and event.type in since:
                cutoff = since[event.type]
                if cutoff is None or event.occurred_at > cutoff:
                    out.setdefault(event.customer_id, []).append(event)
        return out

    async def forget_customer(self, customer_id: str, *, keep_events: bool = False) -> list[str]:
        w = self.w
        segments = sorted(await self.memberships_of(customer_id))
        w.profiles.pop(customer_id, None)
        w.members = {k: v for k, v in w.members.items() if k[1] != customer_id}
        w.due = {k: v for k, v in w.due.items() if k[1] != customer_id}
        if not keep_events:
            w.events = {k: e for k, e in w.events.items() if e.customer_id != customer_id}
        return segments

    async def erase_log(self, customer_id: str) -> None:
        self.w.log = [row for row in self.w.log if row.customer_id != customer_id]

    async def move_events(self, source: str, target: str) -> None:
        self.w.events = {
            k: dataclasses.replace(e, customer_id=target) if e.customer_id == source else e
            for k, e in self.w.events.items()
        }

    # ------------------------------------------------------------ locks and tombstones

    async def lock_customers(self, customer_ids: Iterable[str], *, exclusive: bool = False) -> None:
        pass

    async def lock_segments(self, segment_ids: Iterable[str], *, exclusive: bool = False) -> None:
        pass  # units of work take turns on this fake: nothing runs alongside a build

    async def retired(self, customer_ids: Iterable[str]) -> dict[str, str | None]:
        return follow_tombstones(customer_ids, self.w.tombstones)

    async def retire(self, customer_id: str, at: float, merged_into: str | None) -> None:
        tombstones = self.w.tombstones
        tombstones[customer_id] = merged_into
        for other, target in list(tombstones.items()):
            if target == customer_id:
                tombstones[other] = merged_into

    async def projected(self, customer_ids: Sequence[str]) -> set[str]:
        return set(customer_ids) & self.w.profiles.keys()

    # ------------------------------------------------------------ catalogue version

    async def catalog_version(self, *, hold: bool = False) -> int:
        return self.w.catalog_version

    async def bump_catalog_version(self) -> int:
        self.w.catalog_version += 1
        return self.w.catalog_version

    # ------------------------------------------------------------ segments

    async def segments(self) -> list[SegmentRecord]:
        return [copy.deepcopy(self.w.segments[s]) for s in sorted(self.w.segments)]

    async def segment(self, segment_id: str) -> SegmentRecord | None:
        return copy.deepcopy(self.w.segments.get(segment_id))

    async def list_segments(
        self, after: str | None, limit: int, kind: str | None
    ) -> list[SegmentRecord]:
        records = [
            r
            for r in await self.segments()
            if (not after or r.segment_id > after) and (not kind or r.kind == kind)
        ]
        return records[:limit]

    async def save_segment(self, record: SegmentRecord) -> None:
        self.w.segments[record.segment_id] = copy.deepcopy(record)

    async def set_build(
        self, segment_id: str, *, state: str, progress: float, built_at: float | None = None
    ) -> None:
        record = self.w.segments.get(segment_id)
        if record is not None:
            record.state, record.build_progress = state, progress
            if built_at is not None:
                record.built_at = built_at

    async def delete_segment(self, segment_id: str) -> None:
        await self.clear_members(segment_id)
        self.w.segments.pop(segment_id, None)

    async def clear_members(self, segment_id: str) -> None:
        w = self.w
        w.members = {k: v for k, v in w.members.items() if k[0] != segment_id}
        w.due = {k: v for k, v in w.due.items() if k[0] != segment_id}
        if segment_id in w.segments:
            w.segments[segment_id].member_count = 0

    async def refresh_count(self, segment_id: str, count: int | None = None) -> int:
        if count is None:
            count = len(await self.members(segment_id))
        if segment_id in self.w.segments:
            self.w.segments[segment_id].member_count = count
        return count

    # ------------------------------------------------------------ memberships

    async def memberships_of(self, customer_id: str) -> set[str]:
        return {s for s, c in self.w.members if c == customer_id}

    async def memberships_of_many(self, customer_ids: Sequence[str]) -> dict[str, set[str]]:
        wanted = set(customer_ids)
        out: dict[str, set[str]] = {}
        for segment_id, customer_id in self.w.members:
            if customer_id in wanted:
                out.setdefault(customer_id, set()).add(segment_id)
        return out

    async def members(self, segment_id: str) -> set[str]:
        return {c for s, c in self.w.members if s == segment_id}

    async def list_members(self, segment_id: str, after: str | None, limit: int) -> list[str]:
        ids = sorted(c for c in await self.members(segment_id) if not after or c > after)
        return ids[:limit]

    async def apply(
        self,
        changes: Sequence[MembershipChange],
        *,
        publish: bool = True,
        tolerant: bool = False,
        log: bool = True,
    ) -> None:
        w = self.w
        for c in changes:
            key = (c.segment_id, c.customer_id)
            if c.change == "ENTERED":
                if key in w.members:
                    if not tolerant:
                        raise Conflict(f"membership {key} exists")
                    continue
                w.members[key] = c.at
            else:
                w.members.pop(key, None)
        if not publish or not changes:
            return
        for c in changes:
            if log:
                w.log.append(LogRow(c.segment_id, c.customer_id, c.change, c.at, c.reason[:256]))
            topic, payload = self.store.encode_change(c)
            w.outbox.append((topic, payload, c.customer_id))
            w.published.append(c)

    async def bump_counts(self, deltas: dict[str, int]) -> None:
        for segment_id, delta in deltas.items():
            if delta and segment_id in self.w.segments:
                self.w.segments[segment_id].member_count += delta

    # ------------------------------------------------------------ due queue

    async def schedule(self, items: Sequence[tuple[str, str, float | None]]) -> None:
        for segment_id, customer_id, _ in items:
            self.w.due.pop((segment_id, customer_id), None)
        for segment_id, customer_id, due_at in items:
            if due_at is not None:
                self.w.due[(segment_id, customer_id)] = due_at

    async def due_times(self, pairs: Sequence[tuple[str, str]]) -> dict[tuple[str, str], float]:
        return {p: self.w.due[p] for p in pairs if p in self.w.due}

    async def due(self, now: float, limit: int) -> list[tuple[str, str]]:
        ready = sorted((at, key) for key, at in self.w.due.items() if at <= now)
        return [key for _, key in ready[:limit]]

    # ------------------------------------------------------------ set-wise

    async def matching(self, node: Node, now: float) -> set[str]:
        w = self.w
        events: dict[str, list[FactEvent]] = {}
        for event in w.events.values():
            events.setdefault(event.customer_id, []).append(event)
        return {
            customer_id
            for customer_id, facts in w.profiles.items()
            if evaluate(
                node,
                facts,
                events.get(customer_id, []),
                None,
                now,
                _member_of(w.members, customer_id),
            ).matched
        }

    async def insert_matching(self, segment_id: str, node: Node, now: float) -> int:
        inserted = 0
        for customer_id in sorted(await self.matching(node, now)):
            if (segment_id, customer_id) not in self.w.members:
                self.w.members[(segment_id, customer_id)] = now
                inserted += 1
        return inserted

    async def count_matching(self, node: Node, now: float) -> int:
        return len(await self.matching(node, now))

    async def sample_matching(self, node: Node, now: float, size: int) -> list[str]:
        return sorted(await self.matching(node, now))[:size]

    # ------------------------------------------------------------ outbox and RFM

    async def write_outbox(self, items: Iterable[tuple[str, bytes, str]]) -> None:
        self.w.outbox.extend(items)

    async def rfm_inputs(self) -> list[tuple[str, float, int, float]]:
        return [
            (f.customer_id, float(f.last_purchase_at or 0.0), int(f.orders), float(f.revenue))
            for f in sorted(self.w.profiles.values(), key=lambda f: f.customer_id)
            if f.orders > 0 and f.last_purchase_at is not None
        ]

    async def set_rfm_scores(self, scores: Sequence[tuple[str, int, int, int]]) -> int:
        self.w.rfm_run += 1
        profiles = self.w.profiles
        for facts in profiles.values():
            if facts.orders <= 0:
                facts.recency_score = facts.frequency_score = facts.monetary_score = 0
        for customer_id, r, f, m in scores:
            if customer_id in profiles:
                facts = profiles[customer_id]
                facts.recency_score, facts.frequency_score, facts.monetary_score = r, f, m
        return self.w.rfm_run


def _member_of(members: dict[tuple[str, str], float], customer_id: str) -> Callable[[str], bool]:
    """Referenced segments read from stored members, as the SQL of a build does."""
    return lambda segment_id: (segment_id, customer_id) in members


def fake_segmentation(
    store: FakeSegmentationStore | None = None,
    cache: FakeCache | None = None,
    clock: FakeClock | None = None,
) -> SegmentationDeps:
    """The deps of one segmentation process over the fakes (several may share one store)."""
    shared = store if store is not None else FakeSegmentationStore()
    return SegmentationDeps.create(
        lambda: FakeSegmentationUnitOfWork(shared),
        cache if cache is not None else FakeCache(),
        clock if clock is not None else FakeClock(),
        encode_segment=encode_segment_change,
        encode_rfm=encode_rfm,
    )

"""Segmentation use cases: segments, previews, membership reads and request-time evaluation.

Plain async functions over the store, the catalog, the engine and the builder; conditions
arrive parsed (the entrypoint validates and translates them).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson

from libs.errors import CacheUnavailable, FailedPrecondition, InvalidArgument, NotFound
from services.segmentation.build import Builder
from services.segmentation.catalog import Catalog, Entry
from services.segmentation.conditions import Node, evaluate, kind_of, reads_of, segment_refs
from services.segmentation.conditions.ast import walk
from services.segmentation.engine import FACTS_TTL, Engine, facts_key
from services.segmentation.facts import ContextFacts, CustomerFacts, FactEvent
from services.segmentation.records import SegmentRecord
from services.segmentation.rfm import RfmResult, score_population
from services.segmentation.store import SegStore

__all__ = ["Segmentation"]

log = logging.getLogger(__name__)
RFM_CHUNK = 1000  # scores per RfmScored message
# Builds running at once. Each holds a pooled connection for its set-wise queries: creating
# many segments together must queue their builds, not exhaust the pool (a build that times
# out waiting for a connection fails and leaves its segment BUILDING until a restart).
MAX_CONCURRENT_BUILDS = 4
# Condition nodes times events beyond which request-time evaluation leaves the event loop.
HEAVY_EVALUATION = 50_000
# How stale a request may find the segment catalogue (another process's definition change
# also arrives as a `segmentation.segments` event, which refreshes at once).
CATALOG_MAX_AGE = 0.5


@dataclass
class Segmentation:
    store: Callable[[], SegStore]
    engine: Engine
    builder: Builder
    clock: Callable[[], float]
    decode: Callable[[bytes], Node]
    window_of: Callable[[Node], float | None]
    # (scores chunk, as of, result) -> (topic, payload) for the profile service
    encode_rfm: (
        Callable[[Sequence[tuple[str, int, int, int]], float, RfmResult], tuple[str, bytes]] | None
    ) = None
    # (segment id, change, record or None when deleted, at) -> (topic, payload)
    encode_segment: Callable[[str, str, SegmentRecord | None, float], tuple[str, bytes]] | None = (
        None
    )
    catalog: Catalog = field(default_factory=Catalog)
    # the seg_catalog version `catalog` was loaded at, and when it was last compared
    catalog_version: int = -1
    checked_at: float = float("-inf")
    builds: dict[str, asyncio.Task[int]] = field(default_factory=dict)
    build_slots: asyncio.Semaphore = field(
        default_factory=lambda: asyncio.Semaphore(MAX_CONCURRENT_BUILDS)
    )

    # ------------------------------------------------------------ catalog

    async def reload(self) -> None:
        await self.refresh(max_age=0.0)

    async def refresh(self, max_age: float = CATALOG_MAX_AGE) -> None:
        """Reload the catalogue if another process changed it (its version moved); compares
        at most every `max_age` seconds (the `segmentation.segments` event asks at once)."""
        if time.monotonic() - self.checked_at < max_age:
            return
        async with self.store() as store:
            await self.catalog_in(store, hold=False)

    async def catalog_in(self, store: SegStore, *, hold: bool = True) -> Catalog:
        """The catalogue current in this unit of work. With `hold`, definition changes wait
        for the unit of work to end, so nothing it evaluates is missed by a build that
        starts after such a change (the build reads what the unit of work committed)."""
        checked = time.monotonic()
        version = await store.catalog_version(hold=hold)
        if version != self.catalog_version:
            # the version first, then the segments: a change committed in between is
            # reloaded again next time, never missed
            catalog = Catalog.load(await store.segments(), self.decode, self.window_of)
            if version >= self.catalog_version:
                self.catalog, self.catalog_version = catalog, version
                log.info(
                    "segment catalogue at version %d: %d segments", version, len(catalog.entries)
                )
            else:
                return catalog
        self.checked_at = max(self.checked_at, checked)
        return self.catalog

    async def _definition_change(self, store: SegStore) -> int:
        """Open a definition change: bump the version (one change at a time across
        processes) and bring the catalogue to the version before it, so the change is
        validated against every definition, including those made elsewhere."""
        version = await store.bump_catalog_version()
        if version - 1 != self.catalog_version:
            self.catalog = Catalog.load(await store.segments(), self.decode, self.window_of)
            self.catalog_version = version - 1
        return version

    def _committed(self, version: int, put: Entry | None = None, remove: str = "") -> None:
        """Apply a committed definition change to the catalogue (now at `version`)."""
        if put is not None:
            self.catalog.put(put)
        if remove:
            self.catalog.remove(remove)
        if self.catalog_version == version - 1:
            self.catalog_version = version

    async def _announce(
        self, store: SegStore, segment_id: str, change: str, record: SegmentRecord | None
    ) -> None:
        if self.encode_segment is not None:
            topic, payload = self.encode_segment(segment_id, change, record, self.clock())
            await store.write_outbox([(topic, payload, "")])

    async def mark_ready(self, store: SegStore, segment_id: str) -> None:
        """A build finished (BUILDING -> READY): every process's catalogue learns it."""
        await self._definition_change(store)
        await self._announce(store, segment_id, "READY", await store.segment(segment_id))

    def _check_refs(self, node: Node) -> None:
        for ref in sorted(segment_refs(node)):
            if ref not in self.catalog.entries:
                raise InvalidArgument("segment.condition", f"names no segment: {ref}")

    def current_catalog(self) -> Catalog:
        return self.catalog

    def segment_kind(self, segment_id: str) -> str:
        entry = self.catalog.entries.get(segment_id)
        return entry.record.kind if entry else "BEHAVIORAL"

    def exists(self, segment_id: str) -> bool:
        return segment_id in self.catalog.entries

    def _check_cycle(self, segment_id: str, node: Node) -> None:
        # A reference path back to the segment itself would never settle.
        todo, seen = list(segment_refs(node)), set()
        while todo:
            ref = todo.pop()
            if ref == segment_id:
                raise InvalidArgument("segment.condition", f"references form a cycle through {ref}")
            if ref in seen:
                continue
            seen.add(ref)
            entry = self.catalog.entries.get(ref)
            if entry is not None:
                todo.extend(entry.reads.segments)

    # ------------------------------------------------------------ segments

    async def create(
        self, name: str, description: str, condition: bytes, node: Node, template: str = ""
    ) -> SegmentRecord:
        now = self.clock()
        async with self.store() as store:
            version = await self._definition_change(store)
            self._check_refs(node)
            kind = kind_of(node, self.segment_kind)
            record = SegmentRecord(
                segment_id=uuid.uuid4().hex,
                name=name,
                description=description,
                condition=condition,
                kind=kind,
                state="BUILDING" if kind == "BEHAVIORAL" else "READY",
                created_at=now,
                updated_at=now,
                reads=_reads_json(node),
                template=template,
            )
            await store.save_segment(record)
            await self._announce(store, record.segment_id, "CREATED", record)
            await store.commit()
        self._committed(version, put=Entry(record, node, reads_of(node), self.window_of(node)))
        if kind == "BEHAVIORAL":
            self._start_build(record.segment_id, announce=False, reason="segment created")
        return record

    async def update(
        self,
        segment_id: str,
        name: str | None,
        description: str | None,
        condition: bytes | None,
        node: Node | None,
    ) -> SegmentRecord:
        async with self.store() as store:
            version = await self._definition_change(store)
            found = await store.segment(segment_id)
            if found is None:
                raise NotFound(f"segment {segment_id!r} not found", reason="SEGMENT_NOT_FOUND")
            record = found
            record.updated_at = self.clock()
            if name is not None:
                record.name = name
            if description is not None:
                record.description = description
            rebuild = False
            if condition is not None and node is not None and condition != record.condition:
                self._check_refs(node)
                self._check_cycle(segment_id, node)
                record.condition = condition
                record.kind = kind_of(node, self.segment_kind)
                record.reads = _reads_json(node)
                record.template = ""
                rebuild = record.kind == "BEHAVIORAL"
                if rebuild:
                    record.state, record.build_progress = "BUILDING", 0.0
            await store.save_segment(record)
            if record.kind != "BEHAVIORAL":
                # no precomputed members for segments that need a request's context
                await store.clear_members(segment_id)
            await self._announce(store, segment_id, "UPDATED", record)
            await store.commit()
        node = node if node is not None else self.decode(record.condition)
        self._committed(version, put=Entry(record, node, reads_of(node), self.window_of(node)))
        if rebuild:
            self._start_build(segment_id, announce=True, reason="segment updated")
        return record

    async def delete(self, segment_id: str) -> None:
        async with self.store() as store:
            version = await self._definition_change(store)
            if await store.segment(segment_id) is None:
                raise NotFound(f"segment {segment_id!r} not found", reason="SEGMENT_NOT_FOUND")
            users = sorted(self.catalog.dependents(segment_id))
            if users:
                raise FailedPrecondition(
                    f"segment {segment_id} is referenced by {', '.join(users)}",
                    reason="SEGMENT_IN_USE",
                )
            task = self.builds.pop(segment_id, None)
            if task is not None:
                task.cancel()
            await store.delete_segment(segment_id)
            await self._announce(store, segment_id, "DELETED", None)
            await store.commit()
        self._committed(version, remove=segment_id)

    async def get(self, segment_id: str) -> SegmentRecord:
        async with self.store() as store:
            record = await store.segment(segment_id)
        if record is None:
            raise NotFound(f"segment {segment_id!r} not found", reason="SEGMENT_NOT_FOUND")
        return record

    async def list_segments(
        self, after: str | None, limit: int, kind: str | None
    ) -> list[SegmentRecord]:
        async with self.store() as store:
            return await store.list_segments(after, limit, kind)

    def _start_build(self, segment_id: str, *, announce: bool, reason: str) -> None:
        previous = self.builds.pop(segment_id, None)
        if previous is not None:
            previous.cancel()
        task = asyncio.create_task(
            self._build(segment_id, announce=announce, reason=reason),
            name=f"build-{segment_id}",
        )
        self.builds[segment_id] = task
        task.add_done_callback(lambda t: _log_build(segment_id, t))

    async def _build(self, segment_id: str, *, announce: bool, reason: str) -> int:
        async with self.build_slots:
            return await self.builder.build(segment_id, announce=announce, reason=reason)

    async def resume_builds(self) -> None:
        for segment_id, entry in self.catalog.entries.items():
            if entry.record.state == "BUILDING" and segment_id not in self.builds:
                self._start_build(segment_id, announce=False, reason="segment created")

    # ------------------------------------------------------------ reads

    async def preview(self, node: Node, sample_size: int) -> tuple[int, list[str]]:
        return await self.builder.preview(node, sample_size)

    async def list_members(
        self, segment_id: str, after: str | None, limit: int
    ) -> tuple[SegmentRecord, list[str]]:
        record = await self.get(segment_id)
        if record.kind != "BEHAVIORAL":
            raise FailedPrecondition(
                f"segment {segment_id} depends on the request context: it has no member list",
                reason="CONTEXTUAL_SEGMENT",
            )
        async with self.store() as store:
            return record, await store.list_members(segment_id, after, limit)

    async def evaluate_segments(
        self, customer_id: str, context: ContextFacts | None, segment_ids: Sequence[str]
    ) -> tuple[list[str], list[str]]:
        """(matched, unknown): precomputed behavioural membership plus request-time evaluation
        of contextual and combined segments against the context."""
        await self.refresh()
        catalog = self.catalog
        wanted = list(dict.fromkeys(segment_ids)) if segment_ids else sorted(catalog.entries)
        unknown = [s for s in wanted if s not in catalog.entries]
        known = [s for s in wanted if s in catalog.entries]
        precomputed = set(await self.engine.memberships(customer_id))
        on_request = [s for s in known if not catalog.maintained(s)]
        needs_request = catalog.with_refs(on_request, lambda s: not catalog.maintained(s))
        if not needs_request:
            return [s for s in known if s in precomputed], unknown
        now = context.now if context is not None and context.now else self.clock()
        facts, events = await self._facts(customer_id, needs_request, now)
        memo: dict[str, bool] = {}

        def member(segment_id: str) -> bool:
            if segment_id in memo:
                return memo[segment_id]
            if catalog.maintained(segment_id) or segment_id not in catalog.entries:
                memo[segment_id] = segment_id in precomputed
            else:
                memo[segment_id] = False  # a cycle guard; references are acyclic by validation
                node = catalog.entries[segment_id].node
                reads = catalog.entries[segment_id].reads
                if reads.contextual and context is None:
                    memo[segment_id] = False
                else:
                    memo[segment_id] = evaluate(node, facts, events, context, now, member).matched
            return memo[segment_id]

        return [s for s in known if member(s)], unknown

    async def evaluate_conditions(
        self, customer_id: str, context: ContextFacts | None, nodes: Sequence[Node]
    ) -> list[bool]:
        now = context.now if context is not None and context.now else self.clock()
        precomputed = set(await self.engine.memberships(customer_id))
        types: set[str] = set()
        for node in nodes:
            types |= set(reads_of(node).event_types)
        facts, events = await self._facts_for_types(customer_id, types, None)

        def run() -> list[bool]:
            return [
                evaluate(node, facts, events, context, now, precomputed.__contains__).matched
                for node in nodes
            ]

        # Event conditions scan the customer's events: many nodes over a long history is
        # work for a worker thread, not for the event loop every other call shares.
        size = sum(1 for node in nodes for _ in walk(node))
        if size * (1 + len(events)) > HEAVY_EVALUATION:
            return await asyncio.to_thread(run)
        return run()

    async def _facts(
        self, customer_id: str, segment_ids: set[str], now: float
    ) -> tuple[CustomerFacts, list[FactEvent]]:
        catalog = self.catalog
        types, window = catalog.event_needs(segment_ids, lambda s: not catalog.maintained(s))
        return await self._facts_for_types(
            customer_id, types, None if window is None else now - window
        )

    async def _facts_for_types(
        self, customer_id: str, types: set[str], since: float | None
    ) -> tuple[CustomerFacts, list[FactEvent]]:
        """The customer's projection and events of `types` since `since`, cache first.

        The cached bundle holds the facts and the events of the given types from a point in
        time; a change of the customer evicts it (engine), so within its TTL it is complete.
        """
        bundle = await self._cached_bundle(customer_id)
        if bundle is not None and types <= set(bundle["types"]):
            start = bundle["since"]
            if start is None or (since is not None and since >= start):
                facts = CustomerFacts(**bundle["facts"]) if bundle["facts"] else None
                events = [FactEvent(**e) for e in bundle["events"] if e["type"] in types]
                if since is not None:
                    events = [e for e in events if e.occurred_at > since]
                return facts or CustomerFacts(customer_id=customer_id), events
        async with self.store() as store:
            facts = (await store.load_facts([customer_id])).get(customer_id)
            events = (await store.load_events([customer_id], types, since)).get(customer_id, [])
        with contextlib.suppress(CacheUnavailable):
            await self.engine.cache.set(
                facts_key(customer_id),
                orjson.dumps(
                    {
                        "facts": asdict(facts) if facts else None,
                        "types": sorted(types),
                        "since": since,
                        "events": [asdict(e) for e in events],
                    }
                ),
                FACTS_TTL,
            )
        # An unknown customer is a customer with no profile data yet (e.g. a new cookie).
        return facts or CustomerFacts(customer_id=customer_id), events

    async def _cached_bundle(self, customer_id: str) -> dict[str, Any] | None:
        try:
            raw = await self.engine.cache.get(facts_key(customer_id))
        except CacheUnavailable:
            return None
        return orjson.loads(raw) if raw is not None else None  # type: ignore[no-any-return]

    # ------------------------------------------------------------ RFM

    async def recompute_rfm(self, as_of: float | None) -> RfmResult:
        now = as_of if as_of is not None else self.clock()
        async with self.store() as store:
            rows = await store.rfm_inputs()
        result = score_population(rows, now)
        async with self.store() as store:
            await store.set_rfm_scores(result.scores)
            if self.encode_rfm is not None:
                outbox = []
                for start in range(0, len(result.scores), RFM_CHUNK):
                    chunk = result.scores[start : start + RFM_CHUNK]
                    topic, payload = self.encode_rfm(chunk, now, result)
                    outbox.append((topic, payload, chunk[0][0]))
                await store.write_outbox(outbox)
            await store.commit()
        readers = [
            s
            for s, e in self.catalog.entries.items()
            if e.record.kind == "BEHAVIORAL"
            and any(p.endswith("_score") and p.startswith("rfm.") for p in e.reads.paths)
        ]
        for segment_id in self.catalog.ordered(self.catalog.with_dependents(readers)):
            entry = self.catalog.entries[segment_id]
            announce = entry.record.state == "READY"
            await self.builder.build(segment_id, announce=announce, reason="RFM scores recomputed")
        return result


def _reads_json(node: Node) -> dict[str, object]:
    reads = reads_of(node)
    return {
        "paths": sorted(reads.paths),
        "event_types": sorted(reads.event_types),
        "segments": sorted(reads.segments),
        "time_dependent": reads.time_dependent,
        "contextual": reads.contextual,
    }


def _log_build(segment_id: str, task: asyncio.Task[int]) -> None:
    if task.cancelled():
        return
    error = task.exception()
    if error is not None:
        log.error("building segment %s failed: %r", segment_id, error)

"""Segmentation use cases: segments, previews, membership reads and request-time evaluation.

Plain async functions over `SegmentationDeps`: the unit-of-work port, the catalogue holder,
the engine (incremental memberships), the builder (set-wise) and the clock. They never import
grpc or generated code: conditions arrive parsed (the entrypoint validates and translates
them), records leave as domain values.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import orjson

from libs.cache.port import Cache, taken_generations
from libs.errors import CacheUnavailable, FailedPrecondition, InvalidArgument, NotFound
from services.segmentation.build import MAX_CONCURRENT_BUILDS, Builder, BuildQueue
from services.segmentation.catalog import Catalog, Entry
from services.segmentation.conditions import (
    EventIndex,
    Node,
    decode_condition,
    holds,
    kind_of,
    reads_of,
    segment_refs,
)
from services.segmentation.conditions.ast import walk
from services.segmentation.definitions import CATALOG_MAX_AGE, CatalogHolder, EncodeSegmentChange
from services.segmentation.engine import (
    FILL_TTL,
    Engine,
    cached_memberships,
    facts_key,
    memberships_entry,
    memberships_key,
)
from services.segmentation.facts import ContextFacts, CustomerFacts, FactEvent
from services.segmentation.ports import SegmentationUnitOfWork
from services.segmentation.records import SegmentRecord
from services.segmentation.rfm import RfmResult, score_population

__all__ = [
    "EncodeRfm",
    "Preview",
    "SegmentationDeps",
    "create_segment",
    "delete_segment",
    "evaluate_conditions",
    "evaluate_segments",
    "get_memberships",
    "get_segment",
    "list_members",
    "list_segments",
    "preview_segment",
    "recompute_rfm",
    "refresh_catalog",
    "reload_catalog",
    "resume_builds",
    "update_segment",
]

RFM_CHUNK = 1000  # scores per RfmScored message
# Condition nodes times events beyond which request-time evaluation leaves the event loop.
HEAVY_EVALUATION = 50_000
# (scores chunk, as of, result) -> (topic, payload) for the profile service
EncodeRfm = Callable[
    [Sequence[tuple[str, int, int, int]], float, RfmResult, int], tuple[str, bytes]
]


@dataclass
class SegmentationDeps:
    store: Callable[[], SegmentationUnitOfWork]
    catalogs: CatalogHolder
    engine: Engine
    builder: Builder
    builds: BuildQueue
    cache: Cache
    clock: Callable[[], float]
    encode_rfm: EncodeRfm

    @classmethod
    def create(
        cls,
        store: Callable[[], SegmentationUnitOfWork],
        cache: Cache,
        clock: Callable[[], float],
        *,
        encode_segment: EncodeSegmentChange,
        encode_rfm: EncodeRfm,
        concurrent_builds: int = MAX_CONCURRENT_BUILDS,
    ) -> SegmentationDeps:
        """The engine and the builder of one process, sharing its catalogue."""
        catalogs = CatalogHolder(encode_change=encode_segment, clock=clock)
        builder = Builder(store=store, catalogs=catalogs, cache=cache, clock=clock)
        builds = BuildQueue(builder, slots=asyncio.Semaphore(concurrent_builds))
        return cls(
            store=store,
            catalogs=catalogs,
            engine=Engine(store=store, catalogs=catalogs, cache=cache, clock=clock),
            builder=builder,
            builds=builds,
            cache=cache,
            clock=clock,
            encode_rfm=encode_rfm,
        )


@dataclass(frozen=True)
class Preview:
    count: int
    sample: list[str]
    kind: str


# ---------------------------------------------------------------- catalogue


async def reload_catalog(deps: SegmentationDeps) -> None:
    await refresh_catalog(deps, max_age=0.0)


async def refresh_catalog(deps: SegmentationDeps, max_age: float = CATALOG_MAX_AGE) -> None:
    """Reload the catalogue if another process changed it (its version moved); compares
    at most every `max_age` seconds (the `segmentation.segments` event asks at once)."""
    if not deps.catalogs.stale(max_age):
        return
    async with deps.store() as store:
        await deps.catalogs.current_in(store, hold=False)


def _check_refs(deps: SegmentationDeps, node: Node) -> None:
    for ref in sorted(segment_refs(node)):
        if not deps.catalogs.exists(ref):
            raise InvalidArgument("segment.condition", f"names no segment: {ref}")


def _check_cycle(deps: SegmentationDeps, segment_id: str, node: Node) -> None:
    # A reference path back to the segment itself would never settle.
    todo, seen = list(segment_refs(node)), set()
    while todo:
        ref = todo.pop()
        if ref == segment_id:
            raise InvalidArgument("segment.condition", f"references form a cycle through {ref}")
        if ref in seen:
            continue
        seen.add(ref)
        entry = deps.catalogs.catalog.entries.get(ref)
        if entry is not None:
            todo.extend(entry.reads.segments)


def _reads_json(node: Node) -> dict[str, object]:
    reads = reads_of(node)
    return {
        "paths": sorted(reads.paths),
        "event_types": sorted(reads.event_types),
        "segments": sorted(reads.segments),
        "time_dependent": reads.time_dependent,
        "contextual": reads.contextual,
    }


def _not_found(segment_id: str) -> NotFound:
    return NotFound(f"segment {segment_id!r} not found", reason="SEGMENT_NOT_FOUND")


# ---------------------------------------------------------------- segments


async def create_segment(
    deps: SegmentationDeps,
    name: str,
    description: str,
    condition: bytes,
    node: Node,
    template: str = "",
) -> SegmentRecord:
    now = deps.clock()
    catalogs = deps.catalogs
    async with deps.store() as store:
        version = await catalogs.open_change(store)
        _check_refs(deps, node)
        kind = kind_of(node, catalogs.segment_kind)
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
        await catalogs.announce(store, record.segment_id, "CREATED", record)
        await store.commit()
    catalogs.committed(version, put=Entry.of(record, node))
    if kind == "BEHAVIORAL":
        deps.builds.start(record.segment_id, announce=False, reason="segment created")
    return record


async def update_segment(
    deps: SegmentationDeps,
    segment_id: str,
    name: str | None,
    description: str | None,
    condition: bytes | None,
    node: Node | None,
) -> SegmentRecord:
    catalogs = deps.catalogs
    async with deps.store() as store:
        version = await catalogs.open_change(store)
        found = await store.segment(segment_id)
        if found is None:
            raise _not_found(segment_id)
        record = found
        record.updated_at = deps.clock()
        if name is not None:
            record.name = name
        if description is not None:
            record.description = description
        rebuild = False
        if condition is not None and node is not None and condition != record.condition:
            _check_refs(deps, node)
            _check_cycle(deps, segment_id, node)
            record.condition = condition
            record.kind = kind_of(node, catalogs.segment_kind)
            record.reads = _reads_json(node)
            record.template = ""
            rebuild = record.kind == "BEHAVIORAL"
            if rebuild:
                record.state, record.build_progress = "BUILDING", 0.0
        await store.save_segment(record)
        if record.kind != "BEHAVIORAL":
            # no precomputed members for segments that need a request's context
            await store.clear_members(segment_id)
        await catalogs.announce(store, segment_id, "UPDATED", record)
        await store.commit()
    node = node if node is not None else decode_condition(record.condition)
    catalogs.committed(version, put=Entry.of(record, node))
    if rebuild:
        deps.builds.start(segment_id, announce=True, reason="segment updated")
    return record


async def delete_segment(deps: SegmentationDeps, segment_id: str) -> None:
    catalogs = deps.catalogs
    async with deps.store() as store:
        version = await catalogs.open_change(store)
        if await store.segment(segment_id) is None:
            raise _not_found(segment_id)
        users = sorted(catalogs.catalog.dependents(segment_id))
        if users:
            raise FailedPrecondition(
                f"segment {segment_id} is referenced by {', '.join(users)}",
                reason="SEGMENT_IN_USE",
            )
        deps.builds.cancel(segment_id)
        await store.delete_segment(segment_id)
        await catalogs.announce(store, segment_id, "DELETED", None)
        await store.commit()
    catalogs.committed(version, remove=segment_id)


async def get_segment(deps: SegmentationDeps, segment_id: str) -> SegmentRecord:
    async with deps.store() as store:
        record = await store.segment(segment_id)
    if record is None:
        raise _not_found(segment_id)
    return record


async def list_segments(
    deps: SegmentationDeps, after: str | None, limit: int, kind: str | None
) -> list[SegmentRecord]:
    async with deps.store() as store:
        return await store.list_segments(after, limit, kind)


async def resume_builds(deps: SegmentationDeps) -> None:
    """Start again the builds a previous process left unfinished."""
    for segment_id, entry in deps.catalogs.catalog.entries.items():
        if entry.record.state == "BUILDING" and segment_id not in deps.builds.running:
            deps.builds.start(segment_id, announce=False, reason="segment created")


# ---------------------------------------------------------------- reads


async def preview_segment(deps: SegmentationDeps, node: Node, sample_size: int) -> Preview:
    kind = kind_of(node, deps.catalogs.segment_kind)
    if kind != "BEHAVIORAL":
        raise InvalidArgument(
            "condition", "contextual conditions depend on a request; preview the behavioural part"
        )
    count, sample = await deps.builder.preview(node, sample_size)
    return Preview(count, sample, kind)


async def get_memberships(deps: SegmentationDeps, customer_id: str) -> list[str]:
    """The behavioural segments the customer is in now."""
    await refresh_catalog(deps)  # a segment built since: cached entries older than it miss
    return await deps.engine.memberships(customer_id)


async def list_members(
    deps: SegmentationDeps, segment_id: str, after: str | None, limit: int
) -> tuple[SegmentRecord, list[str]]:
    record = await get_segment(deps, segment_id)
    if record.kind != "BEHAVIORAL":
        raise FailedPrecondition(
            f"segment {segment_id} depends on the request context: it has no member list",
            reason="CONTEXTUAL_SEGMENT",
        )
    async with deps.store() as store:
        return record, await store.list_members(segment_id, after, limit)


@dataclass(frozen=True)
class _Plan:
    """What an EvaluateSegments over a given list of ids needs, from the definitions alone."""

    known: tuple[str, ...]
    unknown: tuple[str, ...]
    # segments evaluated per request (the contextual and combined ones asked for, and those
    # they reference that have no precomputed members)
    evaluated: frozenset[str]
    types: frozenset[str]  # the event types they read
    window: float | None  # their longest window (None: all history)


PLANS_PER_CATALOG = 256  # distinct id lists remembered per catalogue (callers repeat theirs)
PLAN_MAX_IDS = 200  # longer lists are planned per request (a bound on what is remembered)


def _plan(catalog: Catalog, segment_ids: Sequence[str]) -> _Plan:
    key = tuple(segment_ids)
    plan: _Plan | None = catalog.derived.get(key)
    if plan is not None:
        return plan
    wanted = list(dict.fromkeys(segment_ids)) if segment_ids else sorted(catalog.entries)
    on_request = [s for s in wanted if s in catalog.entries and not catalog.maintained(s)]
    evaluated = catalog.with_refs(on_request, lambda s: not catalog.maintained(s))
    types, window = catalog.event_needs(evaluated, lambda s: not catalog.maintained(s))
    plan = _Plan(
        known=tuple(s for s in wanted if s in catalog.entries),
        unknown=tuple(s for s in wanted if s not in catalog.entries),
        evaluated=frozenset(evaluated),
        types=frozenset(types),
        window=window,
    )
    if len(key) <= PLAN_MAX_IDS:
        if len(catalog.derived) >= PLANS_PER_CATALOG:
            catalog.derived.clear()
        catalog.derived[key] = plan
    return plan


async def evaluate_segments(
    deps: SegmentationDeps,
    customer_id: str,
    context: ContextFacts | None,
    segment_ids: Sequence[str],
) -> tuple[list[str], list[str]]:
    """(matched, unknown): precomputed behavioural membership plus request-time evaluation
    of contextual and combined segments against the context."""
    await refresh_catalog(deps)
    catalog = deps.catalogs.catalog
    plan = _plan(catalog, segment_ids)
    if not plan.evaluated:
        behavioural = set(await deps.engine.memberships(customer_id))
        return [s for s in plan.known if s in behavioural], list(plan.unknown)
    now = context.now if context is not None and context.now else deps.clock()
    since = None if plan.window is None else now - plan.window
    view = await _customer_view(deps, customer_id, plan.types, since)
    member = _Member(view, EventIndex(view.events), context, now, plan.evaluated, catalog)
    stored, evaluated = view.memberships, plan.evaluated
    matched = [s for s in plan.known if (member(s) if s in evaluated else s in stored)]
    return matched, list(plan.unknown)


class _Member:
    """`segment_member` of one EvaluateSegments: the stored membership of a maintained
    segment, the request-time answer (computed once) of one evaluated per request.

    An object rather than a closure that calls itself: such a closure is a reference cycle
    (function -> cell -> function) that kept the request's whole view — facts, events,
    context — alive until the cyclic garbage collector came by, instead of freeing it when
    the call returns.
    """

    __slots__ = ("catalog", "context", "evaluated", "events", "memo", "now", "view")

    def __init__(
        self,
        view: _CustomerView,
        events: EventIndex,
        context: ContextFacts | None,
        now: float,
        evaluated: frozenset[str],
        catalog: Catalog,
    ) -> None:
        self.view, self.events, self.context, self.now = view, events, context, now
        self.evaluated, self.catalog = evaluated, catalog
        self.memo: dict[str, bool] = {}

    def __call__(self, segment_id: str) -> bool:
        found = self.memo.get(segment_id)
        if found is not None:
            return found
        if segment_id not in self.evaluated:
            found = segment_id in self.view.memberships
        else:
            self.memo[segment_id] = False  # a cycle guard; references are acyclic by validation
            entry = self.catalog.entries[segment_id]
            if entry.reads.contextual and self.context is None:
                found = False
            else:
                found = holds(
                    entry.node, self.view.facts, self.events, self.context, self.now, self
                )
        self.memo[segment_id] = found
        return found


async def evaluate_conditions(
    deps: SegmentationDeps, customer_id: str, context: ContextFacts | None, nodes: Sequence[Node]
) -> list[bool]:
    """Whether the customer matches each condition now (`conditions[i]` names the i-th)."""
    if context is None:
        for i, node in enumerate(nodes):
            if reads_of(node).contextual:
                raise InvalidArgument(
                    f"conditions[{i}]", "reads the request context: send a context"
                )
    now = context.now if context is not None and context.now else deps.clock()
    types: set[str] = set()
    for node in nodes:
        types |= set(reads_of(node).event_types)
    view = await _customer_view(deps, customer_id, frozenset(types), None)
    facts, events, precomputed = view.facts, view.events, view.memberships

    def run() -> list[bool]:
        member, index = precomputed.__contains__, EventIndex(events)  # one index, every node
        return [holds(node, facts, index, context, now, member) for node in nodes]

    # Event conditions scan the customer's events: many nodes over a long history is
    # work for a worker thread, not for the event loop every other call shares.
    size = sum(1 for node in nodes for _ in walk(node))
    if size * (1 + len(events)) > HEAVY_EVALUATION:
        return await asyncio.to_thread(run)
    return run()


@dataclass(frozen=True)
class _CustomerView:
    """What request-time evaluation reads of one customer."""

    memberships: frozenset[str]  # the precomputed behavioural segments it is in
    facts: CustomerFacts
    events: list[FactEvent]  # of the asked types, since the asked time


async def _customer_view(
    deps: SegmentationDeps, customer_id: str, types: frozenset[str], since: float | None
) -> _CustomerView:
    """The customer's memberships, projection and events of `types` since `since`: one
    cache round trip, and for what it misses one unit of work (not one per part).

    Memberships: the entry `Engine.memberships` fills too. The cached bundle holds the facts
    and the events of the given types from a point in time; a change of the customer
    invalidates both (engine), so within its TTL it is complete. What is missing is filled
    here for FILL_TTL, in one round trip, only if no change invalidated it since the
    generations were taken, before storage was read (libs/cache/port.py).
    """
    m_key, f_key = memberships_key(customer_id), facts_key(customer_id)
    version = deps.catalogs.version  # before any read: what the reads reflect at least
    try:
        cached_members, raw_bundle = await deps.cache.get_many([m_key, f_key])
    except CacheUnavailable:
        cached_members = raw_bundle = None
    members = cached_memberships(cached_members, version)
    found = None if raw_bundle is None else _from_bundle(orjson.loads(raw_bundle), types, since)
    if members is not None and found is not None:
        return _CustomerView(members, found[0] or CustomerFacts(customer_id=customer_id), found[1])
    missing = ([m_key] if members is None else []) + ([f_key] if found is None else [])
    taken = dict(zip(missing, await taken_generations(deps.cache, missing), strict=True))
    fills: list[tuple[str, bytes, bytes | None]] = []
    async with deps.store() as store:
        stored, facts, events = await store.customer_read(
            customer_id, memberships=members is None, facts=found is None, types=types, since=since
        )
    if members is None:
        members = frozenset(stored or ())
        fills.append((m_key, memberships_entry(version, members), taken[m_key]))
    if found is None:
        found = facts, events or []
        bundle = {
            "facts": asdict(facts) if facts else None,
            "types": sorted(types),
            "since": since,
            "events": [asdict(e) for e in found[1]],
        }
        fills.append((f_key, orjson.dumps(bundle), taken[f_key]))
    with contextlib.suppress(CacheUnavailable):
        await deps.cache.set_many_if(fills, FILL_TTL)
    # An unknown customer is a customer with no profile data yet (e.g. a new cookie).
    return _CustomerView(members, found[0] or CustomerFacts(customer_id=customer_id), found[1])


def _from_bundle(
    bundle: dict[str, Any], types: frozenset[str], since: float | None
) -> tuple[CustomerFacts | None, list[FactEvent]] | None:
    """(facts, events of `types` since `since`) from a cached bundle, or None when the
    bundle does not hold them all (other types, or a later start)."""
    if not types <= set(bundle["types"]):
        return None
    start = bundle["since"]
    if start is not None and (since is None or since < start):
        return None
    facts = CustomerFacts(**bundle["facts"]) if bundle["facts"] else None
    events = [
        FactEvent(**e)
        for e in bundle["events"]
        if e["type"] in types and (since is None or e["occurred_at"] > since)
    ]
    return facts, events


# ---------------------------------------------------------------- RFM


async def recompute_rfm(deps: SegmentationDeps, as_of: float | None) -> RfmResult:
    """Score every customer who bought, publish the scores to the profile service, and
    rebuild the segments that read them."""
    now = as_of if as_of is not None else deps.clock()
    async with deps.store() as store:
        rows = await store.rfm_inputs()
    result = score_population(rows, now)
    async with deps.store() as store:
        run = await store.set_rfm_scores(result.scores)
        outbox = []
        for start in range(0, len(result.scores), RFM_CHUNK):
            chunk = result.scores[start : start + RFM_CHUNK]
            topic, payload = deps.encode_rfm(chunk, now, result, run)
            outbox.append((topic, payload, chunk[0][0]))
        await store.write_outbox(outbox)
        await store.commit()
    catalog = deps.catalogs.catalog
    readers = [
        s
        for s, e in catalog.entries.items()
        if e.record.kind == "BEHAVIORAL"
        and any(p.endswith("_score") and p.startswith("rfm.") for p in e.reads.paths)
    ]
    for segment_id in catalog.ordered(catalog.with_dependents(readers)):
        entry = catalog.entries[segment_id]
        announce = entry.record.state == "READY"
        await deps.builder.build(segment_id, announce=announce, reason="RFM scores recomputed")
    return result

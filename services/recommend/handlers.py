"""The recommend use cases: plain async functions over the ports (no grpc, no protobuf
messages of their own; a request's Context travels through opaque to segmentation).

Catalogue and showcase writes are one unit of work each inside `retry_conflicts`, lock the
rows they change (in sku order) and bump the catalogue version and publish their change in
the same transaction; the writing process reloads its cache at once, the others on the event
(or the version check). Behaviour from profile events is counted once per event id under the
customer's guard row, a batch of events in one unit of work; the baskets counted are kept, and
a periodic full rebuild recounts the co-occurrence from them. GetRecommendations reads the
catalogue and showcases from memory, the customer's history and its seeds' counts from
storage, each seed's related items from the process's PairBoard (read again when the seed's
count moved), the popularity lists (cached for a few seconds) and the personal model from
memory, and mixes them (services/recommend/mix.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from libs.errors import NotFound
from libs.retry import retry_conflicts
from services.recommend.catalog import Catalogue, CatalogueCache
from services.recommend.cooccurrence import (
    PURCHASE_WEIGHT,
    VIEW_WEIGHT,
    CoOccurrence,
    basket_deltas,
    join_deltas,
    recommend_from,
)
from services.recommend.domain import Item, Showcase, new_id
from services.recommend.mix import Candidate, Mixed, MixSpec, Strategy, mix
from services.recommend.personal import Hyper, PersonalModel, fit, interaction_weight
from services.recommend.popularity import OVERALL, WINDOW_DAYS, day_of, top_from_buckets
from services.recommend.ports import Behaviour, CustomerSignals, History, RecommendUnitOfWork

__all__ = [
    "Models",
    "PairBoard",
    "PopularBoard",
    "RecommendDeps",
    "RequestContext",
    "Shelf",
    "create_showcase",
    "erase_customer",
    "get_showcase",
    "list_items",
    "list_showcases",
    "load_model",
    "merge_customers",
    "rebuild_cooccurrence",
    "rebuild_if_due",
    "recommend",
    "record_behaviour",
    "record_behaviours",
    "similar_items",
    "train",
    "update_showcase",
    "upsert_items",
]

log = logging.getLogger(__name__)

# A view joins the customer's views of the last SESSION seconds (its "view basket").
SESSION = 1800.0
# How long a process reuses a popularity list it read (a 30-day window with a 7-day half-life:
# seconds do not move it; reading a month of (sku, day) buckets does cost).
POPULAR_TTL = 10.0
# How many items of each popularity list a process keeps.
KEPT = 500
# How long a process reuses a seed's list of related items whose own count has not moved (every
# basket with the seed moves it: that list is read again by the next request), and how many
# related items of each seed it keeps.
NEIGHBOURS_TTL = 120.0
NEIGHBOURS_KEPT = 100


class Models:
    """The personal model this process serves: the latest finished one it loaded."""

    def __init__(self) -> None:
        self.version = 0
        self.model: PersonalModel | None = None


class PopularBoard:
    """Popularity lists per segment, read from storage at most every POPULAR_TTL seconds."""

    def __init__(self, ttl: float = POPULAR_TTL) -> None:
        self.ttl = ttl
        self._lists: dict[str, tuple[float, list[tuple[str, float]]]] = {}

    async def top(
        self,
        uow: Callable[[], RecommendUnitOfWork],
        segment_id: str,
        now: float,
        limit: int,
    ) -> list[tuple[str, float]]:
        held = self._lists.get(segment_id)
        fresh = held is not None and held[0] > time.monotonic() - self.ttl
        if held is not None and fresh and (len(held[1]) >= limit or len(held[1]) < KEPT):
            return held[1][:limit]  # fresh, and long enough (or all there is)
        today = day_of(now)
        async with uow() as u:
            rows = await u.popularity([segment_id], today - WINDOW_DAYS + 1)
        ranked = top_from_buckets(
            ((sku, day, w) for _, sku, day, w in rows), today, max(KEPT, limit)
        )
        self._lists[segment_id] = (time.monotonic(), ranked)
        return ranked[:limit]


class PairBoard:
    """Each seed's related items and their similarity (`CoOccurrence.neighbours`), kept per
    process, so a request reads one count per seed instead of every pair of every seed. A
    seed's list (its NEIGHBOURS_KEPT best partners, ranked by the database) is read again when
    the seed's count moved (a purchase or a view with it was counted: a new pair is served by
    the next request, in every process) or when it is older than NEIGHBOURS_TTL (partners'
    counts moved, or a view session added a pair without a basket of this seed)."""

    def __init__(
        self, ttl: float = NEIGHBOURS_TTL, kept: int = NEIGHBOURS_KEPT, shrink: float = 1.0
    ) -> None:
        self.ttl, self.kept, self.shrink = ttl, kept, shrink
        # sku -> (read at, the sku's count then, its related items best first)
        self._lists: dict[str, tuple[float, float, list[tuple[str, float]]]] = {}

    async def neighbours(
        self, uow: RecommendUnitOfWork, seeds: Sequence[str]
    ) -> dict[str, list[tuple[str, float]]]:
        if not seeds:
            return {}
        now = time.monotonic()
        counts = await uow.item_counts(seeds)
        # An item with no count is in no pair (and is not kept: a cart may name anything).
        stale = sorted(
            s
            for s in seeds
            if counts.get(s, 0.0) > 0
            and (
                (held := self._lists.get(s)) is None
                or held[1] != counts[s]
                or held[0] <= now - self.ttl
            )
        )
        if stale:
            related = await uow.related(stale, self.kept, self.shrink)
            co = CoOccurrence(shrink=self.shrink, item_counts=dict(counts))
            for sku, rows in related.items():
                for other, c, n in rows:
                    co.pairs.setdefault(sku, {})[other] = c
                    co.item_counts.setdefault(other, n)
            for sku in stale:
                self._lists[sku] = (now, counts.get(sku, 0.0), co.neighbours(sku, self.kept))
        return {s: self._lists[s][2] for s in seeds if counts.get(s, 0.0) > 0}


@dataclass(frozen=True)
class RecommendDeps:
    uow: Callable[[], RecommendUnitOfWork]
    clock: Callable[[], float]
    signals: CustomerSignals
    cache: CatalogueCache
    models: Models = field(default_factory=Models)
    popular: PopularBoard = field(default_factory=PopularBoard)
    pairs: PairBoard = field(default_factory=PairBoard)
    # segmentation's share of a GetRecommendations deadline, and of a purchase's counting
    segment_timeout: float = 0.05
    count_segment_timeout: float = 2.0
    hyper: Hyper = field(default_factory=Hyper)
    attempts: int = 8


@dataclass(frozen=True)
class RequestContext:
    cart: tuple[str, ...] = ()
    current_sku: str = ""
    message: Any = None  # the request's Context as received, passed on to segmentation


@dataclass
class Shelf:
    customer_id: str
    items: list[Mixed]
    # the catalogue the shelf was made from (to render its items)
    catalogue: Mapping[str, Item]
    degraded: bool = False


# ---------------------------------------------------------------------------------- catalogue


async def upsert_items(deps: RecommendDeps, items: Sequence[Item]) -> tuple[int, int]:
    """Creates or replaces the items (validated, distinct skus): (created, updated). Locks the
    existing rows in sku order; a sku created concurrently by another call makes this one
    re-run and update it instead, so each sku is created once."""
    if not items:
        return 0, 0

    async def attempt() -> tuple[int, int]:
        now = deps.clock()
        async with deps.uow() as uow:
            stored = await uow.items([i.sku for i in items], for_update=True)
            created = [i for i in items if i.sku not in stored]
            updated = [
                i
                if i.released_at is not None
                else replace(i, released_at=stored[i.sku].released_at)
                for i in items
                if i.sku in stored
            ]
            await uow.put_items(created, updated, now)
            await uow.announce_items(sorted(i.sku for i in items), now)
            await uow.commit()
            return len(created), len(updated)

    counts = await retry_conflicts(attempt, attempts=deps.attempts)
    await deps.cache.refresh()  # this process serves the change at once; the others on the event
    return counts


async def list_items(
    deps: RecommendDeps, category: str, after: str | None, limit: int
) -> tuple[list[Item], str | None]:
    async with deps.uow() as uow:
        rows = await uow.list_items(category, after, limit + 1)
    page = rows[:limit]
    return page, (page[-1].sku if len(rows) > limit else None)


# ---------------------------------------------------------------------------------- showcases


def _showcase_not_found(showcase_id: str) -> NotFound:
    return NotFound(f"no showcase {showcase_id!r}", reason="SHOWCASE_NOT_FOUND")


async def create_showcase(deps: RecommendDeps, showcase: Showcase) -> Showcase:
    now = deps.clock()
    created = replace(showcase, showcase_id=new_id(), created_at=now, updated_at=now)
    async with deps.uow() as uow:
        await uow.add_showcase(created)
        await uow.announce_showcase(created.showcase_id, now)
        await uow.commit()
    await deps.cache.refresh()
    return created


async def get_showcase(deps: RecommendDeps, showcase_id: str) -> Showcase:
    async with deps.uow() as uow:
        showcase = await uow.showcase(showcase_id)
    if showcase is None:
        raise _showcase_not_found(showcase_id)
    return showcase


async def update_showcase(
    deps: RecommendDeps, showcase_id: str, fields: Mapping[str, Any]
) -> Showcase:
    """Applies the validated fields to the showcase as committed, under its row lock: two
    concurrent updates of different fields both stick."""

    async def attempt() -> Showcase:
        now = deps.clock()
        async with deps.uow() as uow:
            current = await uow.showcase(showcase_id, for_update=True)
            if current is None:
                raise _showcase_not_found(showcase_id)
            updated = replace(current, **fields, updated_at=now)
            await uow.save_showcase(updated)
            await uow.announce_showcase(showcase_id, now)
            await uow.commit()
            return updated

    updated = await retry_conflicts(attempt, attempts=deps.attempts)
    await deps.cache.refresh()
    return updated


async def list_showcases(
    deps: RecommendDeps, after: tuple[float, str] | None, limit: int
) -> tuple[list[Showcase], tuple[float, str] | None]:
    async with deps.uow() as uow:
        rows = await uow.list_showcases(after, limit + 1)
    page = rows[:limit]
    following = (page[-1].created_at, page[-1].showcase_id) if len(rows) > limit else None
    return page, following


# ---------------------------------------------------------------------------------- behaviour


def _tracked_segments(catalogue: Catalogue) -> list[str]:
    """The segments popularity is counted for: those some showcase boosts."""
    return sorted({s for sc in catalogue.showcases.values() for s in sc.segment_boosts})


async def record_behaviour(deps: RecommendDeps, behaviour: Behaviour) -> bool:
    """Counts one profile event once (`record_behaviours` of one): False when it was counted
    already or its customer is erased."""
    return await record_behaviours(deps, [behaviour]) == 1


async def record_behaviours(deps: RecommendDeps, behaviours: Sequence[Behaviour]) -> int:
    """Counts profile events once each, in one unit of work (a batch from the bus): each
    customer's history, the co-occurrence of each basket (purchases) or view session (views,
    weighted lower), and the popularity of what was bought, overall and in the tracked
    segments the customer is in; the co-occurrence and popularity of the whole batch are added
    in one statement each. How many were counted (not: already counted, erased customer).
    Segments come from segmentation (asked before the transaction); when it does not answer,
    only the overall count moves."""
    if not behaviours:
        return 0
    segments: dict[str, Sequence[str]] = {}
    buyers = sorted({b.customer_id for b in behaviours if any(u > 0 for u in b.purchased.values())})
    tracked = _tracked_segments(await deps.cache.current()) if buyers else []
    for customer_id in buyers if tracked else ():
        found = await deps.signals.segments(customer_id, tracked, None, deps.count_segment_timeout)
        if found is None:
            log.warning("segmentation did not answer: a purchase counted overall only")
        segments[customer_id] = sorted(found or ())

    async def attempt() -> int:
        async with deps.uow() as uow:
            # guard rows in key order (no deadlock between two batches), then each event
            guards = {c: await uow.guard(c) for c in sorted({b.customer_id for b in behaviours})}
            item_deltas: dict[str, float] = {}
            pair_deltas: dict[tuple[str, str], float] = {}
            popularity: dict[tuple[str, int, str], float] = {}
            counted = 0
            for behaviour in behaviours:
                guard, customer = guards[behaviour.customer_id], behaviour.customer_id
                if guard.merged_into and not guard.erased:
                    target = await uow.guard(guard.merged_into)
                    if target.erased:
                        guard = target
                    customer = guard.merged_into
                if not await uow.claim_event(behaviour.event_id, behaviour.at):
                    continue
                if guard.erased:
                    continue  # claimed, so a redelivery does not count it either
                bought = sorted(s for s, units in behaviour.purchased.items() if units > 0)
                deltas: dict[str, tuple[float, float]] = {}
                for sku, units in behaviour.purchased.items():
                    deltas[sku] = (units, 0.0)
                added = [basket_deltas(bought, PURCHASE_WEIGHT)]
                joins: list[tuple[str, list[str]]] = []  # kept for a rebuild
                if behaviour.viewed:
                    session = [
                        h.sku
                        for h in await uow.history(customer, 50)
                        if h.viewed > 0 and h.last_at >= behaviour.at - SESSION
                    ]
                    for sku in sorted(set(behaviour.viewed)):
                        units, views = deltas.get(sku, (0.0, 0.0))
                        deltas[sku] = (units, views + 1.0)
                        added.append(join_deltas(sku, session, VIEW_WEIGHT))
                        joins.append((sku, list(session)))
                        session.append(sku)
                for items, pairs in added:
                    for k, w in items.items():
                        item_deltas[k] = item_deltas.get(k, 0.0) + w
                    for pair, w in pairs.items():
                        pair_deltas[pair] = pair_deltas.get(pair, 0.0) + w
                await uow.add_history(customer, deltas, behaviour.at)
                if bought or joins:
                    await uow.add_basket(behaviour.event_id, customer, bought, joins)
                day = day_of(behaviour.at)
                for seg in (OVERALL, *segments.get(behaviour.customer_id, ())):
                    for sku in bought:
                        popularity[(seg, day, sku)] = popularity.get((seg, day, sku), 0.0) + 1.0
                counted += 1
            await uow.add_cooccurrence(item_deltas, pair_deltas)
            await uow.add_popularity(popularity)
            await uow.commit()
            return counted

    return await retry_conflicts(attempt, attempts=deps.attempts)


async def erase_customer(deps: RecommendDeps, customer_id: str) -> None:
    """profile.deleted: the customer's history and kept baskets go at once (and so out of the
    next training and the next co-occurrence rebuild); its guard stays as a tombstone, so
    events delivered later count nothing. The anonymous aggregates (co-occurrence counts,
    popularity) stay until the rebuild. Idempotent."""

    async def attempt() -> None:
        async with deps.uow() as uow:
            await uow.guard(customer_id)
            await uow.erase_customer(customer_id, deps.clock())
            await uow.commit()

    await retry_conflicts(attempt, attempts=deps.attempts)


async def merge_customers(deps: RecommendDeps, source: str, target: str) -> None:
    """profile.merged: the source's history joins the target's (units and views add up) and
    later events of the source count for the target. Idempotent: a second run finds nothing
    left under the source."""
    if source == target:
        return

    async def attempt() -> None:
        async with deps.uow() as uow:
            guards = {c: await uow.guard(c) for c in sorted((source, target))}  # key order
            if guards[target].erased:
                await uow.erase_customer(source, deps.clock())
            elif not guards[source].erased:
                await uow.merge_customer(source, target)
            await uow.commit()

    await retry_conflicts(attempt, attempts=deps.attempts)


# ---------------------------------------------------------------------------------- serving


def _seeds(
    history: Sequence[History], context: RequestContext
) -> tuple[dict[str, float], dict[str, float]]:
    """(item seeds for co-occurrence and content, the customer's weighted history for the
    personal model). The cart and the current item weigh most: they are what the customer
    is doing now."""
    seeds: dict[str, float] = {}
    personal: dict[str, float] = {}
    for h in history[:50]:
        weight = interaction_weight(h.purchased, h.viewed)
        if weight > 0:
            personal[h.sku] = weight
    for h in history[:20]:
        w = 1.0 if h.purchased > 0 else (VIEW_WEIGHT if h.viewed > 0 else 0.0)
        if w > 0:
            seeds[h.sku] = max(seeds.get(h.sku, 0.0), w)
    for sku in context.cart:
        seeds[sku] = 2.0
        personal[sku] = personal.get(sku, 0.0) + 1.0
    if context.current_sku:
        seeds[context.current_sku] = 2.0
        personal[context.current_sku] = personal.get(context.current_sku, 0.0) + VIEW_WEIGHT
    return seeds, personal


async def _bought_together(
    deps: RecommendDeps, uow: RecommendUnitOfWork, seeds: Mapping[str, float], pool: int
) -> list[Candidate]:
    if not seeds:
        return []
    lists = await deps.pairs.neighbours(uow, sorted(seeds))
    return [Candidate(r.sku, r.score, r.because_sku) for r in recommend_from(lists, seeds, pool)]


async def recommend(
    deps: RecommendDeps,
    customer_id: str,
    showcase_id: str,
    context: RequestContext,
    limit: int,
) -> Shelf:
    catalogue = await deps.cache.current()
    showcase = catalogue.showcases.get(showcase_id)
    if showcase is None:
        raise _showcase_not_found(showcase_id)
    now = deps.clock()
    pool = max(limit * 5, 50)
    wanted = {s for s, _ in showcase.strategies} | set(showcase.fallback_chain)
    candidates: dict[Strategy, list[Candidate]] = {}
    degraded = False
    together: list[Candidate] | None = None
    history: list[History] = []
    async with deps.uow() as uow:  # one unit of work for the customer's and the pairs' reads
        if customer_id:
            history = await uow.history(customer_id, 200)
        seeds, personal_history = _seeds(history, context)
        if Strategy.BOUGHT_TOGETHER in wanted or Strategy.PERSONAL in wanted:
            together = await _bought_together(deps, uow, seeds, pool)
            candidates[Strategy.BOUGHT_TOGETHER] = together
    purchased = {h.sku for h in history if h.purchased > 0}
    if Strategy.PERSONAL in wanted:
        model = deps.models.model
        found = (
            model.recommend(customer_id, personal_history, pool, exclude=purchased)
            if model is not None and (customer_id or personal_history)
            else []
        )
        if found:
            candidates[Strategy.PERSONAL] = [
                Candidate(r.sku, r.score, r.because_sku) for r in found
            ]
        else:
            # No model yet, or a customer and items it has never seen: item-based from the
            # customer's own history at once.
            candidates[Strategy.PERSONAL] = list(together or [])
    if Strategy.SIMILAR_ITEMS in wanted:
        candidates[Strategy.SIMILAR_ITEMS] = [
            Candidate(sku, score, because)
            for sku, score, because in catalogue.content.similar(seeds, pool)
        ]
    if Strategy.POPULAR_IN_SEGMENT in wanted and customer_id and showcase.segment_boosts:
        found_segments = await deps.signals.segments(
            customer_id, sorted(showcase.segment_boosts), context.message, deps.segment_timeout
        )
        if found_segments is None:
            degraded = True
        best: dict[str, Candidate] = {}
        for segment in sorted(found_segments or ()):
            boost = showcase.segment_boosts.get(segment, 1.0)
            for sku, score in await deps.popular.top(deps.uow, segment, now, pool):
                c = Candidate(sku, score * boost, because_segment_id=segment)
                if sku not in best or c.score > best[sku].score:
                    best[sku] = c
        candidates[Strategy.POPULAR_IN_SEGMENT] = list(best.values())
    if Strategy.POPULAR in wanted:
        candidates[Strategy.POPULAR] = [
            Candidate(sku, score)
            for sku, score in await deps.popular.top(deps.uow, OVERALL, now, pool)
        ]
    if Strategy.NEW in wanted:
        candidates[Strategy.NEW] = [
            Candidate(item.sku, 1.0 / (1 + rank))
            for rank, item in enumerate(catalogue.newest[:pool])
        ]
    shelf = mix(candidates, showcase.spec(), catalogue.info, limit, purchased, set(context.cart))
    return Shelf(customer_id, shelf, catalogue.items, degraded)


async def similar_items(deps: RecommendDeps, sku: str, limit: int, strategy: Strategy) -> Shelf:
    """Bought together and/or similar by content; never the sku itself, never an
    unavailable item; the reason names the sku."""
    catalogue = await deps.cache.current()
    if sku not in catalogue.items:
        raise NotFound(f"no item {sku!r}", reason="ITEM_NOT_FOUND")
    pool = max(limit * 5, 50)
    candidates: dict[Strategy, list[Candidate]] = {}
    if strategy in (Strategy.UNSPECIFIED, Strategy.BOUGHT_TOGETHER):
        async with deps.uow() as uow:
            together = await _bought_together(deps, uow, {sku: 1.0}, pool)
        candidates[Strategy.BOUGHT_TOGETHER] = together
    if strategy in (Strategy.UNSPECIFIED, Strategy.SIMILAR_ITEMS):
        candidates[Strategy.SIMILAR_ITEMS] = [
            Candidate(other, score, sku)
            for other, score, _ in catalogue.content.similar({sku: 1.0}, pool)
        ]
    spec = MixSpec(weights={s: 1.0 for s in candidates}, only_available=True, fallback=())
    return Shelf("", mix(candidates, spec, catalogue.info, limit), catalogue.items)


# ---------------------------------------------------------------------------------- training


async def train(
    deps: RecommendDeps, progress: Callable[[int], None] | None = None
) -> tuple[int, PersonalModel]:
    """Trains the personal model on every live customer's history and stores it as the next
    version (the processes serving the previous one switch when they see it)."""
    async with deps.uow() as uow:
        rows = await uow.training_triples()
    triples = [(c, s, interaction_weight(p, v)) for c, s, p, v in rows]
    started = time.monotonic()
    model = await asyncio.to_thread(fit, triples, deps.hyper, progress)
    seconds = time.monotonic() - started
    data = model.to_bytes()
    async with deps.uow() as uow:
        version = await uow.add_model(
            deps.clock(), seconds, len(model.customers), len(model.items), data
        )
        # Keep the new version and the one before it (still served by processes that have not
        # switched yet); older ones go, and with them erased customers' factors.
        await uow.prune_models(version - 1)
        await uow.commit()
    deps.models.version, deps.models.model = version, model
    return version, model


async def rebuild_cooccurrence(deps: RecommendDeps) -> tuple[int, int]:
    """Recounts the co-occurrence from the kept baskets of live customers, the same
    arithmetic as the incremental counting (`basket_deltas`, `join_deltas`), and replaces the
    counts in one unit of work: an erased customer's baskets drop out. (baskets, distinct
    pairs). Serving processes see moved counts by their next request."""

    async def attempt() -> tuple[int, int]:
        async with deps.uow() as uow:
            kept = await uow.baskets()
            items: dict[str, float] = {}
            pairs: dict[tuple[str, str], float] = {}

            def add(deltas: tuple[dict[str, float], dict[tuple[str, str], float]]) -> None:
                for sku, w in deltas[0].items():
                    items[sku] = items.get(sku, 0.0) + w
                for pair, w in deltas[1].items():
                    pairs[pair] = pairs.get(pair, 0.0) + w

            for basket, joins in kept:
                add(basket_deltas(basket, PURCHASE_WEIGHT))
                for sku, session in joins:
                    add(join_deltas(sku, session, VIEW_WEIGHT))
            await uow.replace_cooccurrence(items, pairs)
            await uow.commit()
            return len(kept), len(pairs)

    return await retry_conflicts(attempt, attempts=deps.attempts)


async def rebuild_if_due(deps: RecommendDeps, every_seconds: float) -> tuple[int, int] | None:
    """The scheduled rebuild: at most one process per period (its own row of the training's
    lease table); None when another process has it."""
    now = deps.clock()
    async with deps.uow() as uow:
        taken = await uow.lease_rebuild(now, now + every_seconds * 0.9)
        await uow.commit()
    if not taken:
        return None
    return await rebuild_cooccurrence(deps)


async def train_if_due(deps: RecommendDeps, every_seconds: float) -> int | None:
    """The scheduled training: at most one process per period trains (a lease row taken
    atomically); the others keep serving and pick the new model up when it is stored."""
    now = deps.clock()
    async with deps.uow() as uow:
        taken = await uow.lease_training(now, now + every_seconds * 0.9)
        await uow.commit()
    if not taken:
        return None
    version, _ = await train(deps)
    return version


async def load_model(deps: RecommendDeps) -> bool:
    """Loads the latest stored model when it is newer than the one served; True when it
    switched. Serving goes on with the previous model while a new one trains."""
    async with deps.uow() as uow:
        latest = await uow.latest_model_version()
        if latest <= deps.models.version:
            return False
        stored = await uow.model(latest)
    if stored is None:
        return False
    model = await asyncio.to_thread(PersonalModel.from_bytes, stored.data)
    deps.models.version, deps.models.model = stored.version, model
    return True

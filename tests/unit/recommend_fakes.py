"""In-memory adapter of the recommend port, for unit tests: no I/O.

`FakeRecommendUnitOfWork` has the semantics of `services.recommend.repository.
SqlRecommendUnitOfWork` the handlers rely on: units of work take turns, each works on a
private copy of the shared store that replaces it on commit, events are claimed once, counts
add up, and pairs are kept both ways.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Self

from libs.errors import Conflict
from services.recommend.domain import Item, Showcase
from services.recommend.ports import Guard, History, RecommendUnitOfWork, StoredModel
from tests.unit.signal_fakes import FakeSignals

__all__ = ["FakeRecommendStore", "FakeRecommendUnitOfWork", "FakeSignals"]


@dataclass
class _State:
    items: dict[str, Item] = field(default_factory=dict)
    created: dict[str, float] = field(default_factory=dict)
    showcases: dict[str, Showcase] = field(default_factory=dict)
    version: int = 0
    published: list[str] = field(default_factory=list)
    counts: dict[str, float] = field(default_factory=dict)
    pairs: dict[tuple[str, str], float] = field(default_factory=dict)
    popularity: dict[tuple[str, int, str], float] = field(default_factory=dict)
    history: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    guards: dict[str, Guard] = field(default_factory=dict)
    events: set[str] = field(default_factory=set)
    models: dict[int, StoredModel] = field(default_factory=dict)
    leased_until: float = 0.0
    rebuild_until: float = 0.0
    # event id -> (customer, basket, joins)
    baskets: dict[str, tuple[str, list[str], list[tuple[str, list[str]]]]] = field(
        default_factory=dict
    )


@dataclass
class FakeRecommendStore:
    state: _State = field(default_factory=_State)
    turn: asyncio.Lock = field(default_factory=asyncio.Lock)


class FakeRecommendUnitOfWork(RecommendUnitOfWork):
    def __init__(self, store: FakeRecommendStore) -> None:
        self._store = store
        self._s = _State()

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

    # catalogue

    async def items(self, skus: Sequence[str], *, for_update: bool = False) -> dict[str, Item]:
        return {s: self._s.items[s] for s in sorted(set(skus)) if s in self._s.items}

    async def put_items(self, created: Sequence[Item], updated: Sequence[Item], at: float) -> None:
        for item in created:
            if item.sku in self._s.items:
                raise Conflict(f"item {item.sku} exists")
            self._s.created[item.sku] = at
        for item in [*created, *updated]:
            released = item.released_at if item.released_at is not None else at
            self._s.items[item.sku] = replace(item, released_at=released, updated_at=at)

    async def list_items(self, category: str, after: str | None, limit: int) -> list[Item]:
        rows = sorted(
            (i for i in self._s.items.values() if not category or i.category == category),
            key=lambda i: i.sku,
        )
        return [i for i in rows if after is None or i.sku > after][:limit]

    async def all_items(self) -> list[Item]:
        return list(self._s.items.values())

    async def announce_items(self, skus: Sequence[str], at: float) -> None:
        self._s.version += 1
        self._s.published.append("items:" + ",".join(skus))

    async def catalog_version(self) -> int:
        return self._s.version

    # showcases

    async def showcase(self, showcase_id: str, *, for_update: bool = False) -> Showcase | None:
        return self._s.showcases.get(showcase_id)

    async def add_showcase(self, showcase: Showcase) -> None:
        self._s.showcases[showcase.showcase_id] = showcase

    async def save_showcase(self, showcase: Showcase) -> None:
        self._s.showcases[showcase.showcase_id] = showcase

    async def list_showcases(self, after: tuple[float, str] | None, limit: int) -> list[Showcase]:
        rows = sorted(
            self._s.showcases.values(), key=lambda s: (s.created_at, s.showcase_id), reverse=True
        )
        return [s for s in rows if after is None or (s.created_at, s.showcase_id) < after][:limit]

    async def all_showcases(self) -> list[Showcase]:
        return list(self._s.showcases.values())

    async def announce_showcase(self, showcase_id: str, at: float) -> None:
        self._s.version += 1
        self._s.published.append(f"showcase:{showcase_id}")

    # behaviour

    async def guard(self, customer_id: str) -> Guard:
        return self._s.guards.setdefault(customer_id, Guard(customer_id))

    async def claim_event(self, event_id: str, at: float) -> bool:
        if event_id in self._s.events:
            return False
        self._s.events.add(event_id)
        return True

    async def history(self, customer_id: str, limit: int = 500) -> list[History]:
        rows = [
            History(sku, p, v, at)
            for (c, sku), (p, v, at) in self._s.history.items()
            if c == customer_id
        ]
        return sorted(rows, key=lambda h: (-h.last_at, h.sku))[:limit]

    async def add_history(
        self, customer_id: str, deltas: Mapping[str, tuple[float, float]], at: float
    ) -> None:
        for sku, (p, v) in deltas.items():
            row = self._s.history.setdefault((customer_id, sku), [0.0, 0.0, at])
            row[0] += p
            row[1] += v
            row[2] = max(row[2], at)

    async def add_cooccurrence(
        self, item_deltas: Mapping[str, float], pair_deltas: Mapping[tuple[str, str], float]
    ) -> None:
        for sku, w in item_deltas.items():
            self._s.counts[sku] = self._s.counts.get(sku, 0.0) + w
        for (a, b), w in pair_deltas.items():
            for key in ((a, b), (b, a)):
                self._s.pairs[key] = self._s.pairs.get(key, 0.0) + w

    async def add_popularity(self, deltas: Mapping[tuple[str, int, str], float]) -> None:
        for key, w in deltas.items():
            self._s.popularity[key] = self._s.popularity.get(key, 0.0) + w

    async def item_counts(self, skus: Sequence[str]) -> dict[str, float]:
        return {s: self._s.counts[s] for s in skus if s in self._s.counts}

    async def related(
        self, skus: Sequence[str], limit: int, shrink: float
    ) -> dict[str, list[tuple[str, float, float]]]:
        out: dict[str, list[tuple[str, float, float]]] = {}
        for (sku, other), c in sorted(self._s.pairs.items()):
            n = self._s.counts.get(other, 0.0)
            if sku in skus and c > 0 and n > 0:
                out.setdefault(sku, []).append((other, c, n))
        for rows in out.values():
            rows.sort(key=lambda r: (-(r[1] ** 4) / ((r[1] + shrink) ** 2 * r[2]), r[0]))
            del rows[limit:]
        return out

    async def popularity(
        self, segment_ids: Sequence[str], since_day: int
    ) -> list[tuple[str, str, int, float]]:
        return [
            (seg, sku, day, w)
            for (seg, day, sku), w in self._s.popularity.items()
            if seg in segment_ids and day >= since_day
        ]

    async def erase_customer(self, customer_id: str, at: float) -> None:
        self._s.guards[customer_id] = Guard(customer_id, erased=True)
        for key in [k for k in self._s.history if k[0] == customer_id]:
            del self._s.history[key]
        for event_id in [e for e, b in self._s.baskets.items() if b[0] == customer_id]:
            del self._s.baskets[event_id]

    async def merge_customer(self, source: str, target: str) -> None:
        for (c, sku), (p, v, at) in list(self._s.history.items()):
            if c == source:
                await self.add_history(target, {sku: (p, v)}, at)
                del self._s.history[(c, sku)]
        self._s.guards[source] = Guard(source, merged_into=target)
        for event_id, (c, basket, joins) in list(self._s.baskets.items()):
            if c == source:
                self._s.baskets[event_id] = (target, basket, joins)

    # the personal model

    async def training_triples(self) -> list[tuple[str, str, float, float]]:
        return [(c, s, p, v) for (c, s), (p, v, _) in self._s.history.items()]

    async def lease_training(self, now: float, until: float) -> bool:
        if self._s.leased_until > now:
            return False
        self._s.leased_until = until
        return True

    async def lease_rebuild(self, now: float, until: float) -> bool:
        if self._s.rebuild_until > now:
            return False
        self._s.rebuild_until = until
        return True

    async def add_basket(
        self,
        event_id: str,
        customer_id: str,
        basket: Sequence[str],
        joins: Sequence[tuple[str, Sequence[str]]],
    ) -> None:
        assert event_id not in self._s.baskets
        self._s.baskets[event_id] = (
            customer_id,
            list(basket),
            [(sku, list(others)) for sku, others in joins],
        )

    async def baskets(self) -> list[tuple[list[str], list[tuple[str, list[str]]]]]:
        return [(b, j) for _, (_, b, j) in sorted(self._s.baskets.items())]

    async def replace_cooccurrence(
        self, item_counts: Mapping[str, float], pairs: Mapping[tuple[str, str], float]
    ) -> None:
        self._s.counts, self._s.pairs = {}, {}
        await self.add_cooccurrence(item_counts, pairs)

    async def add_model(
        self, trained_at: float, seconds: float, customers: int, items: int, data: bytes
    ) -> int:
        version = max(self._s.models, default=0) + 1
        self._s.models[version] = StoredModel(version, trained_at, customers, items, data)
        return version

    async def prune_models(self, before: int) -> int:
        old = [v for v in self._s.models if v < before]
        for v in old:
            del self._s.models[v]
        return len(old)

    async def latest_model_version(self) -> int:
        return max(self._s.models, default=0)

    async def model(self, version: int) -> StoredModel | None:
        return self._s.models.get(version)

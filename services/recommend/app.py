"""Wires the recommend service: handlers' ports bound to real adapters, the outbox relay,
the catalogue cache's listeners, the consumers of profile changes, merges and erasures, and
the model jobs (load the latest model; train on schedule; rebuild the co-occurrence on
schedule)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from backcrm.common.v1 import common_pb2
from backcrm.common.v1.common_pb2 import EventEnvelope

from libs.bus.port import EventBus, Subscription
from libs.outbox import OutboxRelay
from libs.resolver import profile_resolver
from libs.rpc.service import RpcService
from libs.runtime import Peers, Resources, every
from libs.signals import SegmentationSignals
from libs.topics import (
    PROFILE_CHANGED,
    PROFILE_DELETED,
    PROFILE_MERGED,
    RECOMMEND_ITEMS,
    RECOMMEND_SHOWCASES,
)
from services.recommend.catalog import CatalogueCache
from services.recommend.entrypoint import recommend_service
from services.recommend.handlers import (
    RecommendDeps,
    erase_customer,
    load_model,
    merge_customers,
    rebuild_if_due,
    record_behaviours,
    train,
    train_if_due,
)
from services.recommend.models import RecommendOutboxRow
from services.recommend.personal import PersonalModel
from services.recommend.render import encode_items, encode_showcase
from services.recommend.repository import SqlRecommendUnitOfWork
from services.recommend.translate import behaviours_of

__all__ = ["RecommendApp", "offline_deps", "train_now"]

log = logging.getLogger(__name__)

GROUP = "recommend"


@dataclass
class RecommendApp:
    deps: RecommendDeps
    relay: OutboxRelay
    rpc: RpcService
    bus: EventBus
    check_seconds: float
    model_check_seconds: float
    train_seconds: float
    rebuild_seconds: float
    subscriptions: list[Subscription] = field(default_factory=list)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @classmethod
    def build(cls, resources: Resources, peers: Peers) -> RecommendApp:
        settings = resources.settings
        relay = resources.outbox_relay(RecommendOutboxRow)

        def uow() -> SqlRecommendUnitOfWork:
            return SqlRecommendUnitOfWork(
                resources.sessions, encode_items, encode_showcase, after_commit=relay.nudge
            )

        async def resolve(ref: common_pb2.CustomerRef, field_name: str) -> str:
            return await profile_resolver(peers.client())(ref, field_name)

        deps = RecommendDeps(
            uow=uow,
            clock=resources.clock,
            signals=SegmentationSignals(peers.client, peers.local),
            cache=CatalogueCache(uow),
            segment_timeout=settings.recommend_segment_timeout_seconds,
        )
        return cls(
            deps=deps,
            relay=relay,
            rpc=recommend_service(deps, resolve),
            bus=resources.bus,
            check_seconds=settings.recommend_catalog_check_seconds,
            model_check_seconds=settings.recommend_model_check_seconds,
            train_seconds=settings.recommend_train_seconds,
            rebuild_seconds=settings.recommend_rebuild_seconds,
        )

    async def start(self) -> None:
        consumer = f"{socket.gethostname()}-{os.getpid()}-{id(self)}"
        self.subscriptions = [
            await self.bus.subscribe_batch(PROFILE_CHANGED.name, GROUP, consumer, self._on_changed),
            await self.bus.subscribe(PROFILE_DELETED.name, GROUP, consumer, self._on_deleted),
            await self.bus.subscribe(PROFILE_MERGED.name, GROUP, consumer, self._on_merged),
        ]
        self.relay.start()
        self.tasks = [
            asyncio.create_task(self._watch(RECOMMEND_ITEMS.name), name="reco-items"),
            asyncio.create_task(self._watch(RECOMMEND_SHOWCASES.name), name="reco-showcases"),
            asyncio.create_task(
                every(self.check_seconds, self.deps.cache.refresh), name="reco-catalog"
            ),
            asyncio.create_task(every(self.model_check_seconds, self._load), name="reco-model"),
        ]
        if self.train_seconds > 0:
            self.tasks.append(
                asyncio.create_task(every(self.train_seconds, self._train), name="reco-train")
            )
        if self.rebuild_seconds > 0:
            self.tasks.append(
                asyncio.create_task(every(self.rebuild_seconds, self._rebuild), name="reco-rebuild")
            )
        try:  # a restart serves the stored model at once, without retraining
            await load_model(self.deps)
        except Exception:  # the model job retries every few seconds
            log.exception("loading the stored personal model failed")

    async def _load(self) -> None:
        await load_model(self.deps)

    async def _train(self) -> None:
        version = await train_if_due(self.deps, self.train_seconds)
        if version is not None:
            log.info("recommend: trained personal model version %d", version)

    async def _rebuild(self) -> None:
        rebuilt = await rebuild_if_due(self.deps, self.rebuild_seconds)
        if rebuilt is not None:
            log.info("recommend: co-occurrence rebuilt from %d baskets, %d pairs", *rebuilt)

    async def _watch(self, topic: str) -> None:
        # Fan-out, not a group: every process must see every catalogue change. A tail misses
        # what was published while it was down; the version check covers that.
        while True:
            tail = self.bus.tail(topic, internal=True)
            try:
                async for _ in tail:
                    await self.deps.cache.refresh()
            except Exception:
                log.exception("watching %s failed; retrying", topic)
                await asyncio.sleep(1.0)
            finally:
                await tail.aclose()  # type: ignore[attr-defined]

    async def _on_changed(self, envelopes: Sequence[EventEnvelope]) -> None:
        """Up to a hundred changes in one unit of work (a failed batch is handed over again
        one message at a time)."""
        behaviours = [b for e in envelopes for b in behaviours_of(PROFILE_CHANGED.unpack(e))]
        await record_behaviours(self.deps, behaviours)

    async def _on_deleted(self, envelope: EventEnvelope) -> None:
        await erase_customer(self.deps, PROFILE_DELETED.unpack(envelope).customer_id)

    async def _on_merged(self, envelope: EventEnvelope) -> None:
        merged = PROFILE_MERGED.unpack(envelope)
        await merge_customers(self.deps, merged.source_customer_id, merged.target_customer_id)

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for subscription in self.subscriptions:
            await subscription.stop()
        await self.relay.stop()


def offline_deps(resources: Resources) -> RecommendDeps:
    """The recommend use cases over `resources` outside a serving process (the CLI, the demo
    seed): no relay (outbox rows wait for the next serving process) and no segmentation."""

    def uow() -> SqlRecommendUnitOfWork:
        return SqlRecommendUnitOfWork(resources.sessions, encode_items, encode_showcase)

    peers = Peers(resources.settings, "", lambda: resources.settings.address)  # never called
    return RecommendDeps(
        uow=uow,
        clock=resources.clock,
        signals=SegmentationSignals(peers.client, peers.local),
        cache=CatalogueCache(uow),
    )


async def train_now(
    resources: Resources, progress: Callable[[int], None] | None = None
) -> tuple[int, PersonalModel]:
    """`backcrm train recommend`: trains and stores the next model version on the configured
    storage; serving processes switch to it when they next look (every few seconds)."""
    return await train(offline_deps(resources), progress)

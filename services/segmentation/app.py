"""Wires the segmentation service: storage, engine, builder, bus consumers, background loops."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc
from backcrm.common.v1 import common_pb2
from backcrm.common.v1.common_pb2 import EventEnvelope
from backcrm.profile.v1 import profile_service_pb2 as profile_pb
from backcrm.segmentation.v1 import condition_pb2
from google.protobuf import field_mask_pb2

from libs.bus.port import Subscription
from libs.client import Client
from libs.errors import InvalidArgument, NotFound, Unavailable
from libs.outbox import OutboxRelay
from libs.rpc.service import RpcService
from libs.runtime import Peers, Resources
from libs.topics import PROFILE_CHANGED, PROFILE_DELETED, PROFILE_MERGED, SEGMENTATION_SEGMENTS
from services.segmentation.build import Builder
from services.segmentation.catalog import Catalog
from services.segmentation.conditions import EventCond, Group, Node, parse_condition
from services.segmentation.engine import Engine, memberships_key
from services.segmentation.entrypoint import segmentation_service
from services.segmentation.models import SegOutboxRow
from services.segmentation.service import Segmentation
from services.segmentation.store import SegStore
from services.segmentation.translate import (
    encode_membership_change,
    encode_rfm,
    encode_segment_change,
    profile_update,
)

__all__ = ["SegmentationApp", "window_of"]

log = logging.getLogger(__name__)
GROUP = "segmentation"


def _event_conditions(node: Node) -> list[EventCond]:
    if isinstance(node, EventCond):
        return [node]
    if isinstance(node, Group):
        return [e for child in node.children for e in _event_conditions(child)]
    return []


def window_of(node: Node) -> float | None:
    """The longest event window in the tree (None when some event condition reads all history)."""
    windows = [e.within_seconds for e in _event_conditions(node)]
    if any(not w for w in windows):
        return None
    return max(windows, default=0.0)  # type: ignore[type-var]


def decode(condition: bytes) -> Node:
    return parse_condition(condition_pb2.Condition.FromString(condition), "condition")


@dataclass
class SegmentationApp:
    seg: Segmentation
    relay: OutboxRelay
    rpc: RpcService
    resources: Resources
    subscriptions: list[Subscription] = field(default_factory=list)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @classmethod
    def build(cls, resources: Resources, peers: Peers) -> SegmentationApp:
        settings = resources.settings

        async def resolve(ref: common_pb2.CustomerRef, field_name: str) -> str:
            return await profile_resolver(peers.client())(ref, field_name)

        async def evict(customer_ids: Sequence[str]) -> None:
            # Before a membership change goes out, its customers' cached memberships go: a
            # caller who reacts to the event by asking GetMemberships sees the change.
            # (Segment definition events name no customer.)
            await resources.cache.delete([memberships_key(c) for c in customer_ids if c])

        relay = OutboxRelay(
            resources.sessions,
            resources.bus,
            SegOutboxRow,
            before_publish=evict,
            idle_seconds=settings.outbox_poll_seconds,
        )

        def store() -> SegStore:
            return SegStore(resources.sessions, encode_membership_change, after_commit=relay.nudge)

        holder: dict[str, Segmentation] = {}

        async def catalog_in(store: SegStore) -> Catalog:
            return await holder["seg"].catalog_in(store)

        async def ready(store: SegStore, segment_id: str) -> None:
            await holder["seg"].mark_ready(store, segment_id)

        engine = Engine(
            store=store,
            catalog=catalog_in,
            cache=resources.cache,
            clock=resources.clock,
        )
        builder = Builder(
            store=store,
            catalog=lambda: holder["seg"].catalog,
            cache=resources.cache,
            clock=resources.clock,
            ready=ready,
        )
        seg = Segmentation(
            store=store,
            engine=engine,
            builder=builder,
            clock=resources.clock,
            decode=decode,
            window_of=window_of,
            encode_rfm=encode_rfm,
            encode_segment=encode_segment_change,
        )
        holder["seg"] = seg
        rpc = segmentation_service(seg, resources.bus, resolve)
        return cls(seg=seg, relay=relay, rpc=rpc, resources=resources)

    async def start(self) -> None:
        await self.seg.reload()
        bus = self.resources.bus
        consumer = f"{socket.gethostname()}-{os.getpid()}"
        self.subscriptions = [
            await bus.subscribe_batch(PROFILE_CHANGED.name, GROUP, consumer, self._on_changed),
            await bus.subscribe(PROFILE_DELETED.name, GROUP, consumer, self._on_deleted),
            await bus.subscribe(PROFILE_MERGED.name, GROUP, consumer, self._on_merged),
        ]
        self.relay.start()
        settings = self.resources.settings
        self.tasks = [
            # Fan-out, not a group: every process must see every definition change. A tail
            # misses what was published while it was down; the version check covers that.
            asyncio.create_task(self._watch_catalog(), name="seg-catalog"),
            asyncio.create_task(
                self._every(settings.segment_due_poll_seconds, self._due), name="seg-due"
            ),
            asyncio.create_task(
                self._every(settings.segment_reconcile_seconds, self._reconcile),
                name="seg-reconcile",
            ),
            asyncio.create_task(
                self._every(settings.segment_rfm_seconds, self._rfm), name="seg-rfm"
            ),
        ]
        await self.seg.resume_builds()

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for subscription in self.subscriptions:
            await subscription.stop()
        for build in list(self.seg.builds.values()):
            build.cancel()
        await self.relay.stop()

    async def _on_changed(self, envelopes: Sequence[EventEnvelope]) -> None:
        updates = [profile_update(PROFILE_CHANGED.unpack(e)) for e in envelopes]
        await self.seg.engine.on_profile_changes(updates)

    async def _on_deleted(self, envelope: EventEnvelope) -> None:
        await self.seg.engine.on_profile_deleted(PROFILE_DELETED.unpack(envelope).customer_id)

    async def _on_merged(self, envelope: EventEnvelope) -> None:
        merged = PROFILE_MERGED.unpack(envelope)
        await self.seg.engine.on_profiles_merged(
            merged.source_customer_id, merged.target_customer_id
        )

    async def _watch_catalog(self) -> None:
        while True:
            tail = self.resources.bus.tail(SEGMENTATION_SEGMENTS.name, internal=True)
            try:
                async for _ in tail:
                    await self.seg.refresh(max_age=0.0)
            except Exception:
                log.exception("watching segment definitions failed; retrying")
                await asyncio.sleep(1.0)
            finally:
                await tail.aclose()  # type: ignore[attr-defined]

    async def _due(self) -> None:
        while await self.seg.engine.run_due() > 0:
            pass

    async def _rfm(self) -> None:
        await self.seg.recompute_rfm(None)

    async def _reconcile(self) -> None:
        await self.seg.refresh()
        await self.seg.builder.reconcile()

    @staticmethod
    async def _every(seconds: float, job: Callable[[], Awaitable[Any]]) -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                await job()
            except Exception:
                log.exception("background job %s failed; retrying", getattr(job, "__name__", job))


def profile_resolver(client: Client) -> Callable[[common_pb2.CustomerRef, str], Awaitable[str]]:
    """CustomerRef -> customer id: ids as given; identities resolved by the profile service."""

    async def resolve(ref: common_pb2.CustomerRef, field: str) -> str:
        which = ref.WhichOneof("ref")
        if which == "customer_id":
            value = ref.customer_id.strip()
            if not value or len(value) > 64 or not value.isprintable():
                raise InvalidArgument(
                    f"{field}.customer_id", "is required (at most 64 printable characters)"
                )
            return value
        if which != "identity":
            raise InvalidArgument(field, "is required: set customer_id or identity")
        try:
            reply = await client.profile.GetProfile(
                profile_pb.GetProfileRequest(
                    customer=ref, field_mask=field_mask_pb2.FieldMask(paths=["customer_id"])
                )
            )
        except grpc.aio.AioRpcError as err:
            if err.code() == grpc.StatusCode.NOT_FOUND:
                raise NotFound(
                    f"no customer with that {field}.identity", reason="CUSTOMER_NOT_FOUND"
                ) from err
            if err.code() == grpc.StatusCode.INVALID_ARGUMENT:
                raise InvalidArgument(f"{field}.identity", err.details() or "is invalid") from err
            raise Unavailable(f"profile service: {err.code().name}") from err
        return str(reply.profile.customer_id)

    return resolve

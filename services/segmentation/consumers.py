"""Segmentation's bus consumers: profile changes, erasures and merges, into the engine.

One consumer group (`segmentation`) for all the processes of the service: each message is
handled by one of them, at least once (the engine is idempotent).
"""

from __future__ import annotations

import functools
import os
import socket
from collections.abc import Sequence

from backcrm.common.v1.common_pb2 import EventEnvelope
from backcrm.profile.v1 import profile_service_pb2 as profile_pb

from libs.bus.envelope import unpack
from libs.bus.port import EventBus, Subscription
from services.segmentation.engine import Engine
from services.segmentation.translate import profile_update

__all__ = ["GROUP", "on_changed", "on_deleted", "on_merged", "subscribe"]

GROUP = "segmentation"


async def on_changed(engine: Engine, envelopes: Sequence[EventEnvelope]) -> None:
    updates = [profile_update(unpack(e, profile_pb.ProfileChanged)) for e in envelopes]
    await engine.on_profile_changes(updates)


async def on_deleted(engine: Engine, envelope: EventEnvelope) -> None:
    await engine.on_profile_deleted(unpack(envelope, profile_pb.ProfileDeleted).customer_id)


async def on_merged(engine: Engine, envelope: EventEnvelope) -> None:
    merged = unpack(envelope, profile_pb.ProfilesMerged)
    await engine.on_profiles_merged(merged.source_customer_id, merged.target_customer_id)


async def subscribe(bus: EventBus, engine: Engine) -> list[Subscription]:
    """Changes in batches (one transaction for up to a hundred), the rest one by one."""
    consumer = f"{socket.gethostname()}-{os.getpid()}"
    return [
        await bus.subscribe_batch(
            "profile.changed", GROUP, consumer, functools.partial(on_changed, engine)
        ),
        await bus.subscribe(
            "profile.deleted", GROUP, consumer, functools.partial(on_deleted, engine)
        ),
        await bus.subscribe(
            "profile.merged", GROUP, consumer, functools.partial(on_merged, engine)
        ),
    ]

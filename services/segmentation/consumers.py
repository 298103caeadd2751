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

from libs.bus.port import EventBus, Subscription
from libs.topics import PROFILE_CHANGED, PROFILE_DELETED, PROFILE_MERGED
from services.segmentation.engine import Engine
from services.segmentation.translate import profile_update

__all__ = ["GROUP", "on_changed", "on_deleted", "on_merged", "subscribe"]

GROUP = "segmentation"


async def on_changed(engine: Engine, envelopes: Sequence[EventEnvelope]) -> None:
    updates = [profile_update(PROFILE_CHANGED.unpack(e)) for e in envelopes]
    await engine.on_profile_changes(updates)


async def on_deleted(engine: Engine, envelope: EventEnvelope) -> None:
    await engine.on_profile_deleted(PROFILE_DELETED.unpack(envelope).customer_id)


async def on_merged(engine: Engine, envelope: EventEnvelope) -> None:
    merged = PROFILE_MERGED.unpack(envelope)
    await engine.on_profiles_merged(merged.source_customer_id, merged.target_customer_id)


async def subscribe(bus: EventBus, engine: Engine) -> list[Subscription]:
    """Changes in batches (one transaction for up to a hundred), the rest one by one."""
    consumer = f"{socket.gethostname()}-{os.getpid()}"
    return [
        await bus.subscribe_batch(
            PROFILE_CHANGED.name, GROUP, consumer, functools.partial(on_changed, engine)
        ),
        await bus.subscribe(
            PROFILE_DELETED.name, GROUP, consumer, functools.partial(on_deleted, engine)
        ),
        await bus.subscribe(
            PROFILE_MERGED.name, GROUP, consumer, functools.partial(on_merged, engine)
        ),
    ]

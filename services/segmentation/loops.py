"""Segmentation's background jobs: the due queue, reconciliation, RFM scoring, and the watch
on segment definition changes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

from libs.bus.port import EventBus
from libs.config import Settings
from libs.runtime import every
from libs.topics import SEGMENTATION_SEGMENTS
from services.segmentation import handlers
from services.segmentation.handlers import SegmentationDeps

__all__ = ["start_loops", "stop_loops"]

log = logging.getLogger(__name__)


def start_loops(
    deps: SegmentationDeps, bus: EventBus, settings: Settings
) -> list[asyncio.Task[None]]:
    async def due() -> None:
        while await deps.engine.run_due() > 0:
            pass

    async def reconcile() -> None:
        await handlers.refresh_catalog(deps)
        await deps.builder.reconcile()

    async def rfm() -> None:
        await handlers.recompute_rfm(deps, None)

    return [
        # Fan-out, not a group: every process must see every definition change. A tail
        # misses what was published while it was down; the version check covers that.
        asyncio.create_task(_watch_catalog(deps, bus), name="seg-catalog"),
        asyncio.create_task(every(settings.segment_due_poll_seconds, due), name="seg-due"),
        asyncio.create_task(
            every(settings.segment_reconcile_seconds, reconcile), name="seg-reconcile"
        ),
        asyncio.create_task(every(settings.segment_rfm_seconds, rfm), name="seg-rfm"),
    ]


async def stop_loops(tasks: Sequence[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _watch_catalog(deps: SegmentationDeps, bus: EventBus) -> None:
    while True:
        tail = bus.tail(SEGMENTATION_SEGMENTS.name, internal=True)
        try:
            async for _ in tail:
                await handlers.reload_catalog(deps)
        except Exception:
            log.exception("watching segment definitions failed; retrying")
            await asyncio.sleep(1.0)
        finally:
            await tail.aclose()  # type: ignore[attr-defined]

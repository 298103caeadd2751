"""Creating many segments at once queues their builds instead of exhausting the pool."""

from __future__ import annotations

import asyncio
from typing import Any

from services.segmentation.service import MAX_CONCURRENT_BUILDS, Segmentation


class CountingBuilder:
    def __init__(self) -> None:
        self.running = 0
        self.peak = 0
        self.built: list[str] = []

    async def build(self, segment_id: str, *, announce: bool, reason: str) -> int:
        self.running += 1
        self.peak = max(self.peak, self.running)
        await asyncio.sleep(0.01)
        self.running -= 1
        self.built.append(segment_id)
        return 0


def _segmentation(builder: Any) -> Segmentation:
    return Segmentation(
        store=lambda: None,  # type: ignore[arg-type, return-value]
        engine=None,  # type: ignore[arg-type]
        builder=builder,
        clock=lambda: 0.0,
        decode=lambda _b: None,  # type: ignore[arg-type, return-value]
        window_of=lambda _n: None,
    )


async def test_builds_run_at_most_max_concurrent_builds_at_once() -> None:
    builder = CountingBuilder()
    seg = _segmentation(builder)
    ids = [f"s{i}" for i in range(5 * MAX_CONCURRENT_BUILDS)]
    for segment_id in ids:
        seg._start_build(segment_id, announce=False, reason="segment created")
    await asyncio.gather(*seg.builds.values())
    assert sorted(builder.built) == sorted(ids)
    assert builder.peak == MAX_CONCURRENT_BUILDS


async def test_a_queued_build_can_still_be_cancelled() -> None:
    builder = CountingBuilder()
    seg = _segmentation(builder)
    ids = [f"s{i}" for i in range(MAX_CONCURRENT_BUILDS + 1)]
    for segment_id in ids:
        seg._start_build(segment_id, announce=False, reason="segment created")
    seg.builds[ids[-1]].cancel()
    await asyncio.gather(*seg.builds.values(), return_exceptions=True)
    assert ids[-1] not in builder.built
    assert len(builder.built) == MAX_CONCURRENT_BUILDS

"""RFM recomputations are numbered in the order they write their scores, on both backends:
the profile service drops a late event of an earlier run by that number
(tests/integration/test_profile_races.py has the consumer's side)."""

from __future__ import annotations

import asyncio

import pytest

from libs.runtime import Resources
from services.segmentation.store import SegStore
from services.segmentation.translate import encode_membership_change
from tests.support import soon

pytestmark = pytest.mark.integration

AT_ONCE = 6


async def test_concurrent_recomputations_take_distinct_consecutive_run_numbers(
    resources: Resources,
) -> None:
    async def recompute() -> int:
        async with SegStore(resources.sessions, encode_membership_change) as store:
            run = await store.set_rfm_scores([])
            await asyncio.sleep(0.01)  # hold the run row while the others queue behind it
            await store.commit()
        return run

    async with SegStore(resources.sessions, encode_membership_change) as store:
        first = await store.set_rfm_scores([])
        await store.commit()
    for trial in range(10):
        runs = await asyncio.gather(*(soon(recompute()) for _ in range(AT_ONCE)))
        start = first + 1 + trial * AT_ONCE
        assert sorted(runs) == list(range(start, start + AT_ONCE)), runs

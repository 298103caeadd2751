"""Tier changes announced on bonus.tiers: up with accruals, down with reversals and time."""

from __future__ import annotations

import pytest

from libs.errors import Unavailable
from services.bonus import handlers as h
from services.bonus.domain import DAY, Tier
from services.bonus.merges import merge_customers
from services.bonus.tiers import publish_tier
from tests.unit.bonus_fakes import FakeTraits
from tests.unit.test_bonus_handlers import UNIT, World, order


def announced(w: World) -> list[tuple[str, str, str, int]]:
    return [(t.customer_id, t.previous, t.tier, t.points) for t in w.store.state.tiers]


async def test_tiers_are_announced_when_they_change_and_only_then() -> None:
    w = World()
    tiers = (Tier("silver", 100), Tier("gold", 300))
    p = await w.program(welcome_points=0, tiers=tiers, tier_period_days=30)
    await h.accrue(w.deps, p.program_id, "c1", order("o1", ("", 1, 60 * UNIT)))
    assert announced(w) == []
    await h.accrue(w.deps, p.program_id, "c1", order("o2", ("", 1, 60 * UNIT)))
    await h.accrue(w.deps, p.program_id, "c1", order("o3", ("", 1, 10 * UNIT)))
    assert announced(w) == [("c1", "", "silver", 120)]
    accrued = await h.accrue(w.deps, p.program_id, "c1", order("o4", ("", 1, 200 * UNIT)))
    assert announced(w)[-1] == ("c1", "silver", "gold", 330)
    assert accrued.movement is not None
    await h.reverse(w.deps, accrued.movement.transaction_id, 0, "returned", "r1")
    assert announced(w)[-1] == ("c1", "gold", "silver", 130)

    # time alone: the sweep finds the account whose points left the period
    w.clock.advance(31 * DAY)
    assert await h.tier_sweep(w.deps, None) is None
    assert announced(w)[-1] == ("c1", "silver", "", 0)
    assert await h.tier_sweep(w.deps, None) is None  # nothing changes twice
    assert len(announced(w)) == 4
    assert w.store.state.accounts[p.program_id, "c1"].tier == ""


async def test_the_sweep_pages_through_tiered_accounts() -> None:
    w = World()
    p = await w.program(welcome_points=0, tiers=(Tier("silver", 10),), tier_period_days=1)
    for i in range(5):
        await h.accrue(w.deps, p.program_id, f"c{i}", order(f"o{i}", ("", 1, 10 * UNIT)))
    w.clock.advance(2 * DAY)
    after = await h.tier_sweep(w.deps, None, limit=2)
    assert after == (p.program_id, "c1")
    while after is not None:
        after = await h.tier_sweep(w.deps, after, limit=2)
    assert sorted(c for c, _, tier, _ in announced(w) if tier == "") == [f"c{i}" for i in range(5)]


async def test_a_merge_carries_tier_points_to_the_target() -> None:
    w = World()
    p = await w.program(welcome_points=0, tiers=(Tier("silver", 100),))
    await h.accrue(w.deps, p.program_id, "a", order("o1", ("", 1, 60 * UNIT)))
    await h.accrue(w.deps, p.program_id, "b", order("o2", ("", 1, 50 * UNIT)))
    await merge_customers(w.deps, "a", "b")
    assert announced(w) == [("b", "", "silver", 110)]


async def test_the_tier_goes_to_the_profile_as_stored_when_published() -> None:
    w = World()
    traits = FakeTraits()
    first = await w.program(welcome_points=0, tiers=(Tier("silver", 10),))
    w.clock.advance(1)
    second = await w.program(welcome_points=0, tiers=(Tier("gold", 5),))
    await h.accrue(w.deps, first.program_id, "c1", order("o1", ("", 1, 4 * UNIT)))
    w.clock.advance(1)
    await h.accrue(w.deps, second.program_id, "c1", order("o2", ("", 1, 6 * UNIT)))
    [change] = w.store.state.tiers
    traits.down = True
    with pytest.raises(Unavailable):  # the bus delivers it again later
        await publish_tier(w.deps, traits, change.program_id, "c1")
    traits.down = False
    assert await publish_tier(w.deps, traits, change.program_id, "c1")
    # bonus.tier is the first program's (no tier yet); the second's has its own key
    assert traits.traits["c1"] == {f"tier_{second.program_id}": "gold"}
    await h.accrue(w.deps, first.program_id, "c1", order("o3", ("", 1, 6 * UNIT)))
    stale = change  # an old event delivered late still writes what is stored now
    await publish_tier(w.deps, traits, stale.program_id, "c1")
    await publish_tier(w.deps, traits, first.program_id, "c1")
    assert traits.traits["c1"] == {
        f"tier_{second.program_id}": "gold",
        f"tier_{first.program_id}": "silver",
        "tier": "silver",
    }
    traits.known = set()
    assert not await publish_tier(w.deps, traits, first.program_id, "c1")  # unknown to profile
    assert not await publish_tier(w.deps, traits, first.program_id, "nobody")

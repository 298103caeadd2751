"""profile.merged moves loyalty accounts (services/bonus/merges.py) — against the fake."""

from __future__ import annotations

import pytest

from libs.errors import NotFound
from services.bonus import handlers as h
from services.bonus.domain import DAY, OrderLine
from services.bonus.merges import merge_customers
from services.bonus.purchases import PurchaseEvent, record_purchase
from tests.unit.test_bonus_handlers import UNIT, World, order


def kinds(w: World, program_id: str, customer: str) -> list[tuple[str, int]]:
    return [
        (m.type, m.points)
        for m in w.store.state.ledger
        if (m.program_id, m.customer_id) == (program_id, customer)
    ]


async def test_a_merge_moves_balance_lots_and_tier_points_once() -> None:
    w = World()
    p = await w.program(
        welcome_points=10, pending_days=14, expiry_days=100, tiers=(), tier_period_days=30
    )
    await h.accrue(w.deps, p.program_id, "src", order("o1", ("", 1, 40 * UNIT)))
    w.clock.advance(20 * DAY)  # o1 is spendable, o2 pending
    await h.accrue(w.deps, p.program_id, "src", order("o2", ("", 1, 7 * UNIT)))
    await h.accrue(w.deps, p.program_id, "dst", order("o3", ("", 1, 5 * UNIT)))
    before = await h.get_account(w.deps, p.program_id, "src")
    assert (before.balance, before.pending) == (50, 7)

    assert await merge_customers(w.deps, "src", "dst") == 1
    assert await merge_customers(w.deps, "src", "dst") == 0  # redelivered: nothing moves
    assert kinds(w, p.program_id, "src")[-1] == ("TRANSFER_OUT", -57)
    assert kinds(w, p.program_id, "dst")[-1] == ("TRANSFER_IN", 57)
    assert w.ledger_sum(p.program_id, "src") == 0
    after = await h.get_account(w.deps, p.program_id, "dst")
    # the lots moved as they were: o2 still pending; tier points are both customers' accruals
    assert (after.balance, after.pending) == (60, 12)  # o2 and o3 pending
    assert after.standing is not None and after.standing.points == 52
    assert after.lifetime_points == 57 + 15
    # reads naming the source follow it; the history is both customers'
    assert await h.get_account(w.deps, p.program_id, "src") == after
    page, _ = await h.list_transactions(w.deps, p.program_id, "dst", None, 100)
    assert {m.customer_id for m in page} == {"src", "dst"}
    # a retried key of the source answers its first result; a new write is refused
    again = await h.accrue(w.deps, p.program_id, "src", order("o2", ("", 1, 7 * UNIT)))
    assert again.movement is not None and again.movement.order_id == "o2"
    with pytest.raises(NotFound) as info:
        await h.redeem(w.deps, p.program_id, "src", 1, "", "r1")
    assert (info.value.reason, info.value.metadata) == (
        "CUSTOMER_MERGED",
        {"target_customer_id": "dst"},
    )
    # the source's accrual is reversed in the target's account (its lot moved there)
    o1 = next(m for m in w.store.state.ledger if m.order_id == "o1" and m.type == "ACCRUAL")
    back = await h.reverse(w.deps, o1.transaction_id, 0, "cancelled", "rev-1")
    assert back.movement is not None and back.movement.customer_id == "dst"
    assert (back.movement.points, back.account.balance) == (-40, 20)


async def test_a_merge_opens_the_targets_account_and_chains_follow() -> None:
    w = World()
    p = await w.program(welcome_points=10)
    await h.enroll(w.deps, p.program_id, "a")
    await merge_customers(w.deps, "a", "b")  # b had no account: it gets one, no welcome
    await merge_customers(w.deps, "b", "c")
    assert kinds(w, p.program_id, "b") == [("TRANSFER_IN", 10), ("TRANSFER_OUT", -10)]
    assert kinds(w, p.program_id, "c") == [("TRANSFER_IN", 10)]
    assert (await h.get_account(w.deps, p.program_id, "a")).balance == 10
    assert w.store.state.merged == {"a": "c", "b": "c"}
    await h.erase_customer(w.deps, "c")  # the erasure takes the merged customers' rows too
    assert w.store.state.ledger == []


async def test_a_purchase_event_arriving_after_its_buyer_was_merged_earns_for_the_target(
    caplog: pytest.LogCaptureFixture,
) -> None:
    w = World()
    p = await w.program(welcome_points=0)
    for c in ("src", "dst"):
        await h.enroll(w.deps, p.program_id, c)
    early = PurchaseEvent("e1", "src", "o1", (OrderLine("", 1, 5 * UNIT),), "GBP", 5 * UNIT)
    late = PurchaseEvent("e2", "src", "o2", (OrderLine("", 1, 7 * UNIT),), "GBP", 7 * UNIT)
    await record_purchase(w.deps, early)
    await merge_customers(w.deps, "src", "dst")
    await record_purchase(w.deps, early)  # redelivered: its key answers, nothing moves
    [outcome] = await record_purchase(w.deps, late)
    assert outcome.movement is not None and outcome.movement.customer_id == "dst"
    assert outcome.account.balance == 12
    await record_purchase(w.deps, late)
    assert (await h.get_account(w.deps, p.program_id, "dst")).balance == 12
    assert not [r for r in caplog.records if r.name == "services.bonus.purchases"]  # no refusal

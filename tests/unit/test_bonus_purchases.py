"""Purchases and returns from profile events (services/bonus/purchases.py, consumers.py)."""

from __future__ import annotations

import dataclasses
import itertools

import pytest
from backcrm.common.v1 import common_pb2
from backcrm.profile.v1 import profile_service_pb2 as ppb

from services.bonus import handlers as h
from services.bonus.consumers import purchases_in
from services.bonus.domain import OrderLine
from services.bonus.purchases import PurchaseEvent, record_purchase
from tests.unit.test_bonus_handlers import UNIT, World, order


def purchase(
    event_id: str, order_id: str, *lines: tuple[str, int, int], customer: str = "c1", ref: str = ""
) -> PurchaseEvent:
    return PurchaseEvent(
        event_id,
        customer,
        order_id,
        tuple(OrderLine(c, q, p) for c, q, p in lines),
        "GBP",
        sum(q * p for _, q, p in lines),
        ref,
    )


def moved(w: World, program_id: str, customer: str = "c1") -> list[tuple[str, int]]:
    return [
        (m.type, m.points)
        for m in w.store.state.ledger
        if (m.program_id, m.customer_id) == (program_id, customer)
    ]


async def test_a_purchase_accrues_once_in_every_program_the_customer_is_enrolled_in() -> None:
    w = World()
    member, other, stranger = await w.program(), await w.program(), await w.program()
    await h.enroll(w.deps, member.program_id, "c1")
    await h.enroll(w.deps, other.program_id, "c1")
    event = purchase("e1", "o1", ("", 2, 5 * UNIT))
    first = await record_purchase(w.deps, event)
    again = await record_purchase(w.deps, event)  # redelivered
    assert [o.movement.points for o in first if o.movement] == [10, 10]
    assert [o.movement.transaction_id for o in again if o.movement] == [
        o.movement.transaction_id for o in first if o.movement
    ]
    for p in (member, other):
        assert moved(w, p.program_id) == [("WELCOME", 50), ("ACCRUAL", 10)]
        assert w.ledger_sum(p.program_id, "c1") == 60
    assert moved(w, stranger.program_id) == []  # a purchase never enrols


async def test_an_order_accrued_explicitly_is_left_alone_by_its_event() -> None:
    w = World()
    p = await w.program()
    await h.accrue(w.deps, p.program_id, "c1", order("o1", ("", 1, 7 * UNIT), key="shop-o1"))
    outcomes = await record_purchase(w.deps, purchase("e1", "o1", ("", 1, 7 * UNIT)))
    assert outcomes == []  # ORDER_ALREADY_ACCRUED: done already, not a failure
    assert moved(w, p.program_id) == [("WELCOME", 50), ("ACCRUAL", 7)]


async def test_a_return_naming_its_order_takes_back_that_orders_share() -> None:
    w = World()
    p = await w.program(welcome_points=0)
    await h.enroll(w.deps, p.program_id, "c1")
    await record_purchase(w.deps, purchase("e1", "o1", ("", 3, 10 * UNIT), ("", 1, 5 * UNIT)))
    await record_purchase(w.deps, purchase("e2", "o2", ("", 1, 100 * UNIT)))
    # 35 points on 35.00: returning one of the 10.00 units takes back 10 of o1's points
    part = purchase("e3", "r1", ("", -1, 10 * UNIT), ref="o1")
    [outcome] = await record_purchase(w.deps, part)
    assert outcome.movement is not None and outcome.movement.points == -10
    assert outcome.account.balance == 125
    await record_purchase(w.deps, part)  # redelivered: nothing moves
    # returning more than is left of o1 takes back what is left (25), never o2's points
    rest = purchase("e4", "r2", ("", -3, 10 * UNIT), ("", -1, 5 * UNIT), ref="o1")
    [outcome] = await record_purchase(w.deps, rest)
    assert outcome.movement is not None and outcome.movement.points == -25
    assert moved(w, p.program_id) == [
        ("ACCRUAL", 35),
        ("ACCRUAL", 100),
        ("REVERSAL", -10),
        ("REVERSAL", -25),
    ]
    assert outcome.account.balance == 100


async def test_a_return_with_the_orders_own_id_reverses_that_order() -> None:
    # The importer splits an invoice mixing bought and returned lines into two events with one
    # order id: the return finds its purchase by that id.
    w = World()
    p = await w.program(welcome_points=0, category_multipliers={"x": 2.0})
    await h.enroll(w.deps, p.program_id, "c1")
    await record_purchase(w.deps, purchase("e1", "o1", ("x", 1, 3 * UNIT), ("", 1, 4 * UNIT)))
    await record_purchase(w.deps, purchase("e2", "o1", ("x", -1, 3 * UNIT)))
    # o1 earned 6 + 4 = 10 on a weighed value of 10.00; the x line is 6.00 of it
    assert moved(w, p.program_id) == [("ACCRUAL", 10), ("REVERSAL", -6)]


async def test_a_return_without_a_reference_takes_back_newest_accruals_first() -> None:
    w = World()
    p = await w.program(welcome_points=0)
    await h.enroll(w.deps, p.program_id, "c1")
    for i, amount in enumerate((20, 30, 5)):
        await record_purchase(w.deps, purchase(f"e{i}", f"o{i}", ("", 1, amount * UNIT)))
    # 40 points back: all of o2 (5), all of o1 (30), then 5 of o0
    [outcome] = await record_purchase(w.deps, purchase("c1", "C1", ("", -4, 10 * UNIT)))
    ledger = [m for m in w.store.state.ledger if m.type == "REVERSAL"]
    accruals = {m.order_id: m.transaction_id for m in w.store.state.ledger if m.type == "ACCRUAL"}
    assert [(m.reversed_transaction_id, m.points) for m in ledger] == [
        (accruals["o2"], -5),
        (accruals["o1"], -30),
        (accruals["o0"], -5),
    ]
    assert outcome.account.balance == 15
    # more than every accrual holds: what none covers is not taken
    await record_purchase(w.deps, purchase("c2", "C2", ("", -100, UNIT)))
    assert w.ledger_sum(p.program_id, "c1") == 0
    # a return with nothing left to take back is recorded (0 points), so that redelivering
    # it after a later purchase takes nothing from that purchase
    late = purchase("c3", "C3", ("", -1, 3 * UNIT))
    await record_purchase(w.deps, late)
    await record_purchase(w.deps, purchase("e9", "o9", ("", 1, 8 * UNIT)))
    await record_purchase(w.deps, late)
    assert moved(w, p.program_id)[-2:] == [("REVERSAL", 0), ("ACCRUAL", 8)]
    assert w.ledger_sum(p.program_id, "c1") == 8


async def test_a_return_of_spent_points_records_them_unrecovered() -> None:
    w = World()
    p = await w.program(welcome_points=0)
    await h.enroll(w.deps, p.program_id, "c1")
    await record_purchase(w.deps, purchase("e1", "o1", ("", 1, 50 * UNIT)))
    await h.redeem(w.deps, p.program_id, "c1", 45, "", "spend")
    [outcome] = await record_purchase(w.deps, purchase("e2", "r1", ("", -1, 50 * UNIT), ref="o1"))
    assert outcome.movement is not None
    assert (outcome.movement.points, outcome.movement.unrecovered) == (-5, 45)
    assert outcome.account.balance == 0


def test_purchases_are_read_from_profile_changed() -> None:
    gbp = common_pb2.Money(currency="GBP", units_micros=2 * UNIT)
    line = common_pb2.CartLine(sku="s", category="k", quantity=-2, unit_price=gbp)
    change = ppb.ProfileChanged(customer_id="c9")
    change.events.add(event_id="v", type=ppb.EVENT_TYPE_PAGE_VIEW)
    returned = change.events.add(
        event_id="r",
        type=ppb.EVENT_TYPE_PURCHASE,
        order=common_pb2.Order(
            order_id="C1", lines=[line], total=common_pb2.Money(currency="GBP", units_micros=0)
        ),
    )
    returned.properties.update({"original_order_id": "o7", "quote_id": "q.sig"})
    mixed = common_pb2.Money(currency="EUR", units_micros=UNIT)
    change.events.add(
        event_id="bad",
        type=ppb.EVENT_TYPE_PURCHASE,
        order=common_pb2.Order(
            order_id="o8", lines=[line, common_pb2.CartLine(quantity=1, unit_price=mixed)]
        ),
    )
    change.changed_at.FromSeconds(1_700_000_000)
    [event] = purchases_in(change)
    assert event == PurchaseEvent(
        "r", "c9", "C1", (OrderLine("k", -2, 2 * UNIT),), "GBP", 0, "o7", 1_700_000_000.0, "q.sig"
    )
    assert event.is_return and event.key == "event:r"


async def test_a_purchase_recorded_before_the_customer_enrolled_does_not_earn() -> None:
    w = World()
    p = await w.program(welcome_points=0)
    before = w.clock.now
    w.clock.advance(60)
    await h.enroll(w.deps, p.program_id, "c1")
    early = PurchaseEvent("e1", "c1", "o1", (OrderLine("", 1, 9 * UNIT),), "GBP", 9 * UNIT)
    assert await record_purchase(w.deps, dataclasses.replace(early, recorded_at=before)) == []
    late = dataclasses.replace(early, event_id="e2", order_id="o2", recorded_at=w.clock.now)
    assert [o.movement.points for o in await record_purchase(w.deps, late) if o.movement] == [9]


async def test_a_return_naming_an_order_that_earned_nothing_here_takes_nothing() -> None:
    w = World()
    p = await w.program(welcome_points=0)
    await h.enroll(w.deps, p.program_id, "c1")
    await record_purchase(w.deps, purchase("e1", "o1", ("", 1, 40 * UNIT)))
    # o0 was bought before the customer joined: returning it leaves o1's points alone
    [outcome] = await record_purchase(w.deps, purchase("e2", "r0", ("", -1, 30 * UNIT), ref="o0"))
    assert outcome.movement is not None and outcome.movement.points == 0
    assert outcome.account.balance == 40


async def test_an_order_returned_in_parts_takes_back_all_its_points() -> None:
    """Each part takes back the returns' cumulative share less what earlier parts took, so
    the parts add up to the whole: 5 points on two units of 2.50, returned one at a time,
    take back 2 then 3 (floor of each part's own share alone would leave 1 point behind)."""
    w = World()
    p = await w.program(welcome_points=0)
    await h.enroll(w.deps, p.program_id, "c1")
    await record_purchase(w.deps, purchase("e1", "o1", ("", 2, 2_500_000)))
    for i in (2, 3):
        part = purchase(f"e{i}", f"r{i}", ("", -1, 2_500_000), ref="o1")
        await record_purchase(w.deps, part)
        await record_purchase(w.deps, part)  # redelivered: nothing moves
    assert moved(w, p.program_id) == [("ACCRUAL", 5), ("REVERSAL", -2), ("REVERSAL", -3)]
    assert w.ledger_sum(p.program_id, "c1") == 0


async def _outcome_of(deliveries: list[PurchaseEvent], **program: object) -> tuple[object, ...]:
    """The account after the deliveries, each delivered twice (at-least-once), as one tuple:
    balance, pending, lifetime, ledger sum, earned (tiers), lots left (by order) and the
    value returned of the order's accrual."""
    w = World()
    p = await w.program(welcome_points=0, **program)
    await h.enroll(w.deps, p.program_id, "c1")
    for event in deliveries:
        await record_purchase(w.deps, event)
        await record_purchase(w.deps, event)
    account = await h.get_account(w.deps, p.program_id, "c1")
    ledger = [m for m in w.store.state.ledger if m.program_id == p.program_id]
    orders = {m.transaction_id: m.order_id for m in ledger}
    lots = sorted(
        (orders[lot_id], lot.remaining) for lot_id, (_, lot) in w.store.state.lots.items()
    )
    accrual = next(m for m in ledger if m.type == "ACCRUAL" and m.order_id == "o1")
    returned = sum(
        m.value_micros for m in ledger if m.reversed_transaction_id == accrual.transaction_id
    )
    assert w.store.state.pending_returns == []  # every waiting return was taken back
    return (
        account.balance,
        account.pending,
        account.lifetime_points,
        sum(m.points for m in ledger),
        sum(m.earned for m in ledger),
        lots,
        returned,
    )


@pytest.mark.parametrize("pending_days", [0, 14])
async def test_returns_taken_before_their_purchase_take_back_as_after_it(
    pending_days: int,
) -> None:
    """Two consumers of one group may take a return before the purchase it names: it waits
    for the order's accrual, which takes its share back at once, so every order of delivery
    ends as the purchase-first one does (parts adding up to the whole, other orders left
    alone, redeliveries moving nothing)."""
    bought = purchase("e1", "o1", ("", 2, 2_500_000), ("x", 3, 7 * UNIT))
    other = purchase("e2", "o2", ("", 1, 30 * UNIT))
    parts = [
        purchase("e3", "r1", ("", -1, 2_500_000), ref="o1"),
        purchase("e4", "r2", ("", -1, 2_500_000), ("x", -1, 7 * UNIT), ref="o1"),
        purchase("e5", "r3", ("x", -5, 7 * UNIT), ref="o1"),  # more than is left of it
    ]
    program = {"pending_days": pending_days, "category_multipliers": {"x": 1.5}}
    in_order = await _outcome_of([bought, other, *parts], **program)
    assert in_order[3] == 30  # o1 taken back whole, o2 untouched
    for delivery in itertools.permutations([bought, other, *parts]):
        assert await _outcome_of(list(delivery), **program) == in_order, delivery
    partly = await _outcome_of([bought, parts[0]], **program)
    assert partly[3] == 36 - 2  # 5 + 31 points; a 2.50 unit of 36.50 weighed takes back 2
    assert await _outcome_of([parts[0], bought], **program) == partly


async def test_a_waiting_return_of_another_customer_takes_nothing_back() -> None:
    w = World()
    p = await w.program(welcome_points=0)
    for customer in ("c1", "c2"):
        await h.enroll(w.deps, p.program_id, customer)
    [early] = await record_purchase(
        w.deps, purchase("e1", "r1", ("", -1, 10 * UNIT), customer="c2", ref="o1")
    )
    assert early.movement is not None and early.movement.points == 0
    assert "waits for the accrual of o1" in early.movement.description
    await record_purchase(w.deps, purchase("e2", "o1", ("", 1, 10 * UNIT)))
    assert moved(w, p.program_id) == [("ACCRUAL", 10)]
    assert moved(w, p.program_id, "c2") == [("REVERSAL", 0)]
    assert w.store.state.pending_returns == []


async def test_an_explicit_accrual_takes_back_the_returns_waiting_for_its_order() -> None:
    w = World()
    p = await w.program(welcome_points=0)
    await h.enroll(w.deps, p.program_id, "c1")
    await record_purchase(w.deps, purchase("e1", "r1", ("", -1, 10 * UNIT), ref="o1"))
    accrued = await h.accrue(w.deps, p.program_id, "c1", order("o1", ("", 4, 10 * UNIT)))
    assert accrued.movement is not None and accrued.movement.points == 40  # the accrual itself
    assert accrued.account.balance == 30  # and the waiting return's 10 taken back with it
    [reversal] = [m for m in w.store.state.ledger if m.reversed_transaction_id]
    assert (reversal.order_id, reversal.points, reversal.idempotency_key) == ("r1", -10, "")
    assert reversal.reversed_transaction_id == accrued.movement.transaction_id
    # the event of the order, delivered later, finds it accrued; the return's redelivery
    # answers with its first movement: nothing moves again
    await record_purchase(w.deps, purchase("e2", "o1", ("", 4, 10 * UNIT)))
    await record_purchase(w.deps, purchase("e1", "r1", ("", -1, 10 * UNIT), ref="o1"))
    assert w.ledger_sum(p.program_id, "c1") == 30

"""Concurrent writes to the loyalty ledger, for real (SQLite and PostgreSQL).

Each call runs in its own unit of work; the calls start together (asyncio.gather, with a
random few milliseconds of stagger), so on PostgreSQL they overlap inside the database. There
they are also spread over two apps with separate connection pools: two replicas. (The
embedded default is one process by design.) Every race runs many trials; after each, the
ledger must add up: movements sum to the cached account points and to what the lots hold.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Sequence
from dataclasses import dataclass, replace

import pytest
from backcrm.common.v1.common_pb2 import EventEnvelope
from sqlalchemy import func, select

from libs.errors import FailedPrecondition, InvalidArgument
from libs.runtime import Peers, Resources
from libs.topics import BONUS_TIERS
from services.bonus import handlers as h
from services.bonus.app import BonusApp
from services.bonus.domain import OrderLine, Program, Tier
from services.bonus.merges import merge_customers
from services.bonus.models import (
    AccountRow,
    BonusOutboxRow,
    CustomerGuardRow,
    LotRow,
    PendingReturnRow,
    TransactionRow,
)
from services.bonus.purchases import PurchaseEvent, record_purchase
from tests.support import Backend, count_rows, soon

pytestmark = pytest.mark.integration

UNIT = 1_000_000


def uid() -> str:
    return uuid.uuid4().hex[:12]


@dataclass
class World:
    replicas: list[BonusApp]
    resources: Resources

    def deps(self, i: int) -> h.BonusDeps:
        return self.replicas[i % len(self.replicas)].deps

    async def program(self, **changes: object) -> Program:
        fields: dict[str, object] = {
            "program_id": "",
            "name": "Club",
            "currency": "GBP",
            "points_per_unit": 1.0,
            **changes,
        }
        return await h.create_program(self.deps(0), Program(**fields), "")  # type: ignore[arg-type]

    async def books(self, program_id: str, customer_id: str) -> tuple[int, int, int]:
        """(sum of the ledger, the account's cached points, what its lots hold)."""
        async with self.resources.sessions() as s:
            ledger = await s.scalar(
                select(func.coalesce(func.sum(TransactionRow.points), 0)).where(
                    TransactionRow.program_id == program_id,
                    TransactionRow.customer_id == customer_id,
                )
            )
            cached = await s.scalar(
                select(AccountRow.points).where(
                    AccountRow.program_id == program_id, AccountRow.customer_id == customer_id
                )
            )
            lots = await s.scalar(
                select(func.coalesce(func.sum(LotRow.remaining), 0)).where(
                    LotRow.program_id == program_id, LotRow.customer_id == customer_id
                )
            )
        return int(ledger or 0), int(cached or 0), int(lots or 0)

    async def rows_of(self, customer_id: str) -> int:
        """Ledger, lot and account rows naming the customer."""
        return await count_rows(
            self.resources.sessions, (TransactionRow, LotRow, AccountRow), customer_id
        )

    async def erased(self, customer_id: str) -> bool:
        async with self.resources.sessions() as s:
            at = await s.scalar(
                select(CustomerGuardRow.erased_at).where(
                    CustomerGuardRow.customer_id == customer_id
                )
            )
        return at is not None

    async def movements_with_key(self, program_id: str, key: str) -> int:
        async with self.resources.sessions() as s:
            return int(
                await s.scalar(
                    select(func.count())
                    .select_from(TransactionRow)
                    .where(
                        TransactionRow.program_id == program_id,
                        TransactionRow.idempotency_key == key,
                    )
                )
                or 0
            )


@pytest.fixture
async def world(backend: Backend) -> AsyncIterator[World]:
    count = 2 if backend.name == "postgres" else 1
    opened = [Resources.open(backend.settings) for _ in range(count)]
    peers = [Peers(r.settings, "token", lambda: "127.0.0.1:1") for r in opened]
    apps = [BonusApp.build(r, p) for r, p in zip(opened, peers, strict=True)]
    try:
        yield World(apps, opened[0])
    finally:
        for r in opened:
            await r.close()


def outcomes(results: Sequence[object]) -> list[str]:
    """ "ok" for each call that moved points, the refusal's reason for the others; sorted."""
    return sorted(
        "ok"
        if isinstance(r, h.Outcome)
        else r.reason
        if isinstance(r, FailedPrecondition)
        else type(r).__name__
        for r in results
    )


async def test_a_hundred_concurrent_redemptions_never_overdraw(world: World) -> None:
    program = await world.program(welcome_points=250)
    for _ in range(3):
        customer = uid()
        await h.enroll(world.deps(0), program.program_id, customer)
        results = await asyncio.gather(
            *(
                soon(h.redeem(world.deps(i), program.program_id, customer, 3, "", f"r-{uid()}"))
                for i in range(100)
            ),
            return_exceptions=True,
        )
        assert outcomes(results) == ["INSUFFICIENT_POINTS"] * 17 + ["ok"] * 83
        view = await h.get_account(world.deps(0), program.program_id, customer)
        assert view.balance == 1
        assert await world.books(program.program_id, customer) == (1, 1, 1)


async def test_concurrent_retries_of_one_key_make_one_movement(world: World) -> None:
    program = await world.program(welcome_points=1000)
    wrong = 0
    for _ in range(25):
        customer, key = uid(), f"r-{uid()}"
        await h.enroll(world.deps(0), program.program_id, customer)
        results = await asyncio.gather(
            *(
                soon(h.redeem(world.deps(i), program.program_id, customer, 7, "o", key))
                for i in range(6)
            ),
            return_exceptions=True,
        )
        ids = {
            r.movement.transaction_id for r in results if isinstance(r, h.Outcome) and r.movement
        }
        if (
            len(ids) != 1
            or not all(isinstance(r, h.Outcome) for r in results)
            or await world.movements_with_key(program.program_id, key) != 1
            or await world.books(program.program_id, customer) != (993, 993, 993)
        ):
            wrong += 1
    assert wrong == 0, f"{wrong} of 25 retried keys did not make exactly one movement"


async def test_one_key_raced_by_two_customers_moves_once(world: World) -> None:
    program = await world.program(welcome_points=100)
    wrong = 0
    for _ in range(20):
        key, customers = f"r-{uid()}", [uid(), uid()]
        for c in customers:
            await h.enroll(world.deps(0), program.program_id, c)
        results = await asyncio.gather(
            *(
                soon(h.redeem(world.deps(i), program.program_id, c, 5, "", key))
                for i, c in enumerate(customers)
            ),
            return_exceptions=True,
        )
        if (
            outcomes(results) != ["IDEMPOTENCY_KEY_REUSED", "ok"]
            or await world.movements_with_key(program.program_id, key) != 1
        ):
            wrong += 1
    assert wrong == 0


async def test_one_order_accrued_under_racing_keys_accrues_once(world: World) -> None:
    program = await world.program(welcome_points=10)
    wrong = 0
    for _ in range(20):
        customer, order_id = uid(), f"o-{uid()}"
        line = (OrderLine("", 1, 20 * UNIT),)
        results = await asyncio.gather(
            *(
                soon(
                    h.accrue(
                        world.deps(i),
                        program.program_id,
                        customer,
                        h.Accrual(order_id, line, "GBP", 20 * UNIT, f"k-{uid()}"),
                    )
                )
                for i in range(5)
            ),
            return_exceptions=True,
        )
        books = await world.books(program.program_id, customer)
        if outcomes(results) != ["ORDER_ALREADY_ACCRUED"] * 4 + ["ok"] or books != (30, 30, 30):
            wrong += 1
    assert wrong == 0, f"{wrong} of 20 raced orders did not accrue exactly once"


async def test_concurrent_enrolments_credit_one_welcome(world: World) -> None:
    program = await world.program(welcome_points=40)
    wrong = 0
    for _ in range(20):
        customer = uid()
        results = await asyncio.gather(
            *(soon(h.enroll(world.deps(i), program.program_id, customer)) for i in range(5))
        )
        welcomes = [r.movement for r in results if r.movement is not None]
        if len(welcomes) != 1 or await world.books(program.program_id, customer) != (40, 40, 40):
            wrong += 1
    assert wrong == 0


async def test_concurrent_updates_of_different_fields_both_stick(world: World) -> None:
    wrong = 0
    for i in range(10):
        program = await world.program()
        await asyncio.gather(
            soon(
                h.update_program(
                    world.deps(0), program.program_id, h.ProgramPatch({"welcome_points": i + 1})
                )
            ),
            soon(
                h.update_program(
                    world.deps(1), program.program_id, h.ProgramPatch({"expiry_days": i + 2})
                )
            ),
        )
        stored = await h.get_program(world.deps(0), program.program_id)
        if (stored.welcome_points, stored.expiry_days) != (i + 1, i + 2):
            wrong += 1
    assert wrong == 0


async def test_an_erasure_racing_accruals_leaves_nothing_of_the_customer(world: World) -> None:
    programs = [await world.program(welcome_points=10), await world.program(welcome_points=10)]
    leftovers = 0
    for _ in range(20):
        customer = uid()
        await h.enroll(world.deps(0), programs[0].program_id, customer)
        accruals = [
            soon(
                h.accrue(
                    world.deps(i),
                    programs[i % 2].program_id,  # the second program opens a new account
                    customer,
                    h.Accrual(f"o-{uid()}", (OrderLine("", 1, UNIT),), "GBP", UNIT, uid()),
                )
            )
            for i in range(4)
        ]
        results = await asyncio.gather(
            *accruals, soon(h.erase_customer(world.deps(1), customer)), return_exceptions=True
        )
        refused = {
            r.reason for r in results if isinstance(r, BaseException) and hasattr(r, "reason")
        }
        assert refused <= {"CUSTOMER_NOT_FOUND"}, results
        assert not [r for r in results if isinstance(r, BaseException) and not hasattr(r, "reason")]
        if await world.rows_of(customer) or not await world.erased(customer):
            leftovers += 1
    assert leftovers == 0, f"{leftovers} of 20 erased customers kept loyalty rows"


async def test_replicas_sweeping_expiry_at_once_expire_each_lot_once(world: World) -> None:
    # Points that expire the moment they are earned: every lot is due at once.
    program = await world.program(welcome_points=0)
    await h.update_program(world.deps(0), program.program_id, h.ProgramPatch({"expiry_days": 1}))
    customers = [uid() for _ in range(30)]
    for c in customers:
        line = (OrderLine("", 1, 3 * UNIT),)
        await h.accrue(
            world.deps(0), program.program_id, c, h.Accrual(uid(), line, "GBP", 0, uid())
        )
    later = replace(world.deps(0), clock=lambda: time.time() + 2 * 86_400)
    other = replace(world.deps(1), clock=lambda: time.time() + 2 * 86_400)
    await asyncio.gather(*(soon(h.expire_due(d, limit=10)) for d in (later, other, later, other)))
    while await h.expire_due(later) > 0:
        pass
    async with world.resources.sessions() as s:
        expirations = await s.scalar(
            select(func.count())
            .select_from(TransactionRow)
            .where(
                TransactionRow.program_id == program.program_id,
                TransactionRow.type == "EXPIRATION",
            )
        )
    assert expirations == len(customers)
    for c in customers:
        assert await world.books(program.program_id, c) == (0, 0, 0)


# ------------------------------------------------------------- purchases from profile events


def _event(event_id: str, order_id: str, quantity: int, ref: str = "") -> PurchaseEvent:
    lines = (OrderLine("", quantity, 10 * UNIT),)
    return PurchaseEvent(event_id, "", order_id, lines, "GBP", quantity * 10 * UNIT, ref)


async def test_redelivered_purchases_and_returns_racing_an_explicit_accrual_move_once(
    world: World,
) -> None:
    """Per trial: a purchase event delivered three times (two replicas) races an explicit
    Accrue of its order under the shop's key and another order's event; then a partial return
    naming the order and an unreferenced one, each delivered three times at once."""
    program = await world.program(welcome_points=0)
    wrong = 0
    trials = 25
    for _ in range(trials):
        customer = uid()
        await h.enroll(world.deps(0), program.program_id, customer)
        bought = replace(_event(uid(), f"o-{uid()}", 3), customer_id=customer)  # 30 points
        other = replace(_event(uid(), f"o-{uid()}", 2), customer_id=customer)  # 20 points
        explicit = h.Accrual(bought.order_id, bought.lines, "GBP", bought.total_micros, uid())
        results = await asyncio.gather(
            *(soon(record_purchase(world.deps(i), bought)) for i in range(3)),
            soon(h.accrue(world.deps(1), program.program_id, customer, explicit)),
            soon(record_purchase(world.deps(0), other)),
            return_exceptions=True,
        )
        raised = [r for r in results if isinstance(r, BaseException)]
        # the explicit call may lose the order to the event (ORDER_ALREADY_ACCRUED): fine
        if any(getattr(r, "reason", "") != "ORDER_ALREADY_ACCRUED" for r in raised):
            raise AssertionError(raised)
        partial = replace(
            _event(uid(), f"r-{uid()}", -1, ref=bought.order_id), customer_id=customer
        )
        loose = replace(_event(uid(), f"C-{uid()}", -1), customer_id=customer)
        await asyncio.gather(
            *(soon(record_purchase(world.deps(i), e)) for i in range(3) for e in (partial, loose))
        )
        books = await world.books(program.program_id, customer)
        if books != (30, 30, 30):  # 50 earned, 10 of the order and 10 of the newest taken back
            wrong += 1
        async with world.resources.sessions() as s:
            accruals = await s.scalar(
                select(func.count())
                .select_from(TransactionRow)
                .where(TransactionRow.customer_id == customer, TransactionRow.type == "ACCRUAL")
            )
        if accruals != 2:
            wrong += 1
    assert wrong == 0, f"{wrong} of {trials} trials moved points twice or lost them"


async def test_an_order_returned_in_racing_parts_takes_back_exactly_its_points(
    world: World,
) -> None:
    """Per trial: 7 points on three units of 2.50; the three units returned as three events
    naming the order, each delivered three times at once (two replicas): whatever the order,
    the parts take back exactly 7 (each part's own floor, 2 + 2 + 2, would leave 1)."""
    program = await world.program(welcome_points=0)
    wrong = 0
    trials = 25
    for _ in range(trials):
        customer = uid()
        await h.enroll(world.deps(0), program.program_id, customer)
        line = (OrderLine("", 3, 2_500_000),)
        bought = PurchaseEvent(uid(), customer, f"o-{uid()}", line, "GBP", 7_500_000)
        await record_purchase(world.deps(0), bought)
        parts = [
            PurchaseEvent(
                uid(),
                customer,
                f"r-{uid()}",
                (OrderLine("", -1, 2_500_000),),
                "GBP",
                -2_500_000,
                bought.order_id,
            )
            for _ in range(3)
        ]
        await asyncio.gather(
            *(soon(record_purchase(world.deps(i), e)) for i in range(3) for e in parts)
        )
        if await world.books(program.program_id, customer) != (0, 0, 0):
            wrong += 1
    assert wrong == 0, f"{wrong} of {trials} trials left points of a returned order"


async def test_a_mixed_invoice_taken_return_first_ends_as_if_in_order(world: World) -> None:
    """The importer splits an invoice of bought and returned lines into a purchase and a
    return of one order id, the return naming it (`original_order_id`). Taken return first
    (two consumers), at once, or purchase first, after an older order: the return takes its
    share of this invoice's accrual only, never the older order's points."""
    program = await world.program(welcome_points=0, pending_days=14)
    wrong: list[str] = []
    trials = 12
    for _ in range(trials):
        endings = []
        for delivery in ("purchase first", "return first", "at once"):
            customer = uid()
            await h.enroll(world.deps(0), program.program_id, customer)
            older = replace(_event(uid(), f"o-{uid()}", 2), customer_id=customer)  # 20 points
            invoice = f"inv-{uid()}"
            line = (OrderLine("", 3, 2_500_000),)
            bought = PurchaseEvent(uid(), customer, invoice, line, "GBP", 7_500_000)
            returned = PurchaseEvent(
                uid(),
                customer,
                invoice,
                (OrderLine("", -2, 2_500_000),),
                "GBP",
                -5_000_000,
                invoice,
            )
            await record_purchase(world.deps(0), older)
            if delivery == "at once":
                await asyncio.gather(
                    *(
                        soon(record_purchase(world.deps(i), e))
                        for i in range(2)
                        for e in (bought, returned)
                    )
                )
            else:
                first, second = (
                    (bought, returned) if delivery == "purchase first" else (returned, bought)
                )
                await record_purchase(world.deps(0), first)
                await record_purchase(world.deps(1), second)
                await record_purchase(world.deps(1), first)  # redelivered
            account = await h.get_account(world.deps(0), program.program_id, customer)
            endings.append(
                (
                    await world.books(program.program_id, customer),
                    account.balance,
                    account.lifetime_points,
                    await count_rows(world.resources.sessions, (PendingReturnRow,), customer),
                )
            )
        # 20 + 7 earned; the return takes floor(7 x 5.00 / 7.50) = 4 of the invoice's 7 (taken
        # from the older order at the base rate it would be 5)
        expected = ((23, 23, 23), 0, 23, 0)
        wrong += [f"{endings}" for ending in endings if ending != expected][:1]
    assert not wrong, f"{len(wrong)} of {trials} trials ended apart from in order: {wrong[:3]}"


async def test_returns_racing_the_purchase_they_name_end_as_if_in_order(world: World) -> None:
    """Per trial (two replicas on PostgreSQL: two consumers of one group): 7 points on three
    units of 2.50 and another order; two of the units returned as two events naming the
    order. Delivered purchase first, returns first, and all at once, each event twice: every
    delivery ends with the books, balance, pending and lifetime of the purchase-first one
    (a return taken before its purchase waits for the order's accrual), and no return is
    left waiting."""
    program = await world.program(welcome_points=0, pending_days=14)
    wrong: list[str] = []
    trials = 25
    for _ in range(trials):
        endings = []
        for delivery in ("purchase first", "returns first", "at once"):
            customer = uid()
            await h.enroll(world.deps(0), program.program_id, customer)
            line = (OrderLine("", 3, 2_500_000),)
            bought = PurchaseEvent(uid(), customer, f"o-{uid()}", line, "GBP", 7_500_000)
            other = replace(_event(uid(), f"o-{uid()}", 2), customer_id=customer)  # 20 points
            parts = [
                PurchaseEvent(
                    uid(),
                    customer,
                    f"r-{uid()}",
                    (OrderLine("", -1, 2_500_000),),
                    "GBP",
                    -2_500_000,
                    bought.order_id,
                )
                for _ in range(2)
            ]
            events = {
                "purchase first": [bought, other, *parts],
                "returns first": [*parts, other, bought],
                "at once": [],
            }[delivery]
            for i, event in enumerate(events):
                await record_purchase(world.deps(i), event)
                await record_purchase(world.deps(i + 1), event)
            await asyncio.gather(
                *(
                    soon(record_purchase(world.deps(i), e))
                    for i in range(2)
                    for e in (bought, other, *parts)
                    if delivery == "at once"
                )
            )
            account = await h.get_account(world.deps(0), program.program_id, customer)
            endings.append(
                (
                    await world.books(program.program_id, customer),
                    account.balance,
                    account.pending,
                    account.lifetime_points,
                    await count_rows(world.resources.sessions, (PendingReturnRow,), customer),
                )
            )
        # 27 earned; the two parts take back 2 then 2 (floor(7 x 5.00 / 7.50) = 4 in all)
        expected = ((23, 23, 23), 0, 23, 23, 0)
        wrong += [f"{endings}" for ending in endings if ending != expected][:1]
    assert not wrong, f"{len(wrong)} of {trials} trials ended apart from in order: {wrong[:3]}"


# ----------------------------------------------------------------------------------- merges


async def test_a_merge_racing_writes_to_both_accounts_moves_everything_once(world: World) -> None:
    """Per trial: the merge delivered twice (both replicas) races accruals and redemptions on
    the source and on the target. Whatever wins, nothing is lost or counted twice: the target
    ends with both balances plus what the writes that succeeded moved, the source with none."""
    program = await world.program(welcome_points=100)
    wrong = 0
    trials = 20
    for _ in range(trials):
        source, target = uid(), uid()
        for c in (source, target):
            await h.enroll(world.deps(0), program.program_id, c)

        def accrue(i: int, customer: str) -> Awaitable[h.Outcome]:
            line = (OrderLine("", 1, 10 * UNIT),)
            order = h.Accrual(f"o-{uid()}", line, "GBP", 10 * UNIT, uid())
            return h.accrue(world.deps(i), program.program_id, customer, order)

        def redeem(i: int, customer: str) -> Awaitable[h.Outcome]:
            return h.redeem(world.deps(i), program.program_id, customer, 3, "", uid())

        writes = [accrue(0, source), redeem(1, source), accrue(1, target), redeem(0, target)]
        results = await asyncio.gather(
            *(soon(w) for w in writes),
            soon(merge_customers(world.deps(0), source, target)),
            soon(merge_customers(world.deps(1), source, target)),
            return_exceptions=True,
        )
        calls, merges = results[:4], results[4:]
        refused = [r for r in calls if isinstance(r, BaseException)]
        if any(getattr(r, "reason", "") != "CUSTOMER_MERGED" for r in refused):
            raise AssertionError(refused)
        if sorted(merges) != [0, 1]:  # type: ignore[type-var]
            raise AssertionError(merges)
        moved = sum(r.movement.points for r in calls if isinstance(r, h.Outcome) and r.movement)
        expected = 200 + moved
        if await world.books(program.program_id, target) != (expected, expected, expected):
            wrong += 1
        if await world.books(program.program_id, source) != (0, 0, 0):
            wrong += 1
        transfers = await count_rows(world.resources.sessions, (TransactionRow,), source)
        async with world.resources.sessions() as s:
            outs = await s.scalar(
                select(func.count())
                .select_from(TransactionRow)
                .where(TransactionRow.customer_id == source, TransactionRow.type == "TRANSFER_OUT")
            )
        if outs != 1 or transfers < 2:
            wrong += 1
    assert wrong == 0, f"{wrong} checks failed over {trials} trials"


async def test_replicas_sweeping_activations_at_once_record_each_once(world: World) -> None:
    program = await world.program(welcome_points=0, pending_days=1)
    customers = [uid() for _ in range(30)]
    for c in customers:
        line = (OrderLine("", 1, 3 * UNIT),)
        await h.accrue(
            world.deps(0), program.program_id, c, h.Accrual(uid(), line, "GBP", 0, uid())
        )
    later = replace(world.deps(0), clock=lambda: time.time() + 2 * 86_400)
    other = replace(world.deps(1), clock=lambda: time.time() + 2 * 86_400)
    writes = [
        soon(h.redeem(d, program.program_id, c, 1, "", uid()))
        for d, c in zip((later, other), customers[:2], strict=True)
    ]
    await asyncio.gather(
        *(soon(h.expire_due(d, limit=10)) for d in (later, other, later, other)), *writes
    )
    while await h.expire_due(later) > 0:
        pass
    async with world.resources.sessions() as s:
        activations = await s.scalar(
            select(func.count())
            .select_from(TransactionRow)
            .where(
                TransactionRow.program_id == program.program_id,
                TransactionRow.type == "ACTIVATION",
            )
        )
    assert activations == len(customers)
    for i, c in enumerate(customers):
        left = 2 if i < 2 else 3
        assert await world.books(program.program_id, c) == (left, left, left)


async def test_replicas_sweeping_tiers_at_once_announce_each_downgrade_once(world: World) -> None:
    program = await world.program(welcome_points=0, tiers=(Tier("silver", 3),), tier_period_days=1)
    customers = [uid() for _ in range(30)]
    for c in customers:
        line = (OrderLine("", 1, 3 * UNIT),)
        await h.accrue(
            world.deps(0), program.program_id, c, h.Accrual(uid(), line, "GBP", 0, uid())
        )
    later = replace(world.deps(0), clock=lambda: time.time() + 2 * 86_400)
    other = replace(world.deps(1), clock=lambda: time.time() + 2 * 86_400)

    async def sweep(deps: h.BonusDeps) -> None:
        after = await h.tier_sweep(deps, None, limit=7)
        while after is not None:
            after = await h.tier_sweep(deps, after, limit=7)

    await asyncio.gather(*(soon(sweep(d)) for d in (later, other, later, other)))
    async with world.resources.sessions() as s:
        payloads = (
            await s.scalars(
                select(BonusOutboxRow.payload).where(BonusOutboxRow.topic == "bonus.tiers")
            )
        ).all()
    changes = [BONUS_TIERS.unpack(EventEnvelope.FromString(p)) for p in payloads]
    mine = [t for t in changes if t.program_id == program.program_id]
    ups = sorted(t.customer_id for t in mine if t.tier == "silver")
    downs = sorted(t.customer_id for t in mine if t.tier == "" and t.previous_tier == "silver")
    assert ups == downs == sorted(customers)
    async with world.resources.sessions() as s:
        tiers = (
            await s.scalars(
                select(AccountRow.tier).where(AccountRow.program_id == program.program_id)
            )
        ).all()
    assert set(tiers) == {""}


# --------------------------------------------------------------------------- hostile amounts


async def test_an_order_worth_more_than_int64_is_refused_naming_its_lines(world: World) -> None:
    """Every line the RPC accepts (a million units of a billion pounds, in a category weighing
    1000) can make an order worth more than an int64 of micros; at a small points rate it
    earns few points, and its value used to reach the ledger's int64 column: INTERNAL on the
    RPC, an event the bonus consumer could never apply. It is INVALID_ARGUMENT `order.lines`
    (an event with it is logged and skipped), and the account is untouched."""
    program = await world.program(
        points_per_unit=0.000001, category_multipliers={"gold": 1000.0}, welcome_points=0
    )
    customer = uid()
    lines = (OrderLine("gold", 1_000_000, 10**15),)
    order = h.Accrual(f"o-{uid()}", lines, "GBP", 10**15, uid())
    with pytest.raises(InvalidArgument) as refused:
        await h.accrue(world.deps(0), program.program_id, customer, order)
    assert [f for f, _ in refused.value.violations] == ["order.lines"]
    await h.enroll(world.deps(0), program.program_id, customer)
    event = PurchaseEvent(
        uid(), customer, f"o-{uid()}", (OrderLine("gold", 9, 10**18),), "GBP", 9 * 10**18
    )
    assert await record_purchase(world.deps(0), event) == []
    assert await world.books(program.program_id, customer) == (0, 0, 0)

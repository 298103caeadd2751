"""Promotions and quotes for real (SQLite and PostgreSQL), with two bonus processes.

Two `BonusApp`s on one database, each with its own Resources (connection pool, bus) and its own
configuration cache, play two replicas: a promotion paused through one stops appearing in the
quotes of the other (by the bus event, or the version check when the event does not reach it:
the embedded bus is per process). The budget races run many concurrent accruals against
quotes, spread over both replicas on PostgreSQL (over one process on the embedded default); a
budget is never overshot and a retried key counts once.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace

import pytest
from backcrm.common.v1 import common_pb2
from backcrm.segmentation.v1 import condition_pb2
from sqlalchemy import func, select

from libs.errors import FailedPrecondition, InvalidArgument, NotFound
from libs.runtime import Peers, Resources
from services.bonus import handlers as h
from services.bonus import offers as o
from services.bonus.app import BonusApp
from services.bonus.domain import Movement, OrderLine, Program
from services.bonus.merges import merge_customers
from services.bonus.models import ExposureRow, PromotionUseRow
from services.bonus.offers import PromotionPatch
from services.bonus.ports import GroupFigures
from services.bonus.pricing import CartLine
from services.bonus.promotions import Effect, Promotion, held_out
from services.bonus.purchases import PurchaseEvent, record_purchase
from services.bonus.translate import _context
from tests.support import Backend, eventually, soon

pytestmark = pytest.mark.integration

UNIT = 1_000_000


def uid() -> str:
    return uuid.uuid4().hex[:12]


@dataclass
class World:
    replicas: list[BonusApp]
    resources: Resources

    def app(self, i: int) -> BonusApp:
        return self.replicas[i % len(self.replicas)]

    async def program(self, **changes: object) -> Program:
        fields: dict[str, object] = {
            "program_id": "",
            "name": "Club",
            "currency": "GBP",
            "points_per_unit": 1.0,
            **changes,
        }
        return await h.create_program(self.app(0).deps, Program(**fields), "")  # type: ignore[arg-type]

    async def promotion(self, program: Program, effect: Effect, **changes: object) -> Promotion:
        fields: dict[str, object] = {
            "promotion_id": "",
            "program_id": program.program_id,
            "name": "Promo",
            "effect": effect,
            **changes,
        }
        return await o.create_promotion(self.app(0).offers, Promotion(**fields), [])  # type: ignore[arg-type]

    async def quote(
        self,
        i: int,
        program: Program,
        customer_id: str,
        *lines: CartLine,
        coupons: tuple[str, ...] = (),
    ) -> o.QuoteResult:
        context = common_pb2.Context(
            cart=[
                common_pb2.CartLine(
                    sku=c.sku,
                    category=c.category,
                    quantity=c.quantity,
                    unit_price=common_pb2.Money(currency="GBP", units_micros=c.unit_price_micros),
                )
                for c in lines
            ]
        )
        now = self.app(i).deps.clock()
        request = o.QuoteRequest(
            program.program_id, customer_id, lines, "GBP", _context(context, now), context, coupons
        )
        return await o.quote_offer(self.app(i).offers, request)

    async def accrue(
        self,
        i: int,
        program: Program,
        customer_id: str,
        result: o.QuoteResult,
        key: str,
        order_id: str,
    ) -> h.Outcome:
        app = self.app(i)
        claim = o.read_quote_id(app.offers.quote_key, result.quote_id)
        q = result.quote
        lines = tuple(OrderLine(x.category, 1, x.line_total_micros) for x in q.lines)
        order = h.Accrual(order_id, lines, "GBP", q.total_micros, key, quote=claim)
        return await h.accrue(app.deps, program.program_id, customer_id, order)

    async def uses_rows(self, promotion_id: str) -> int:
        async with self.resources.sessions() as s:
            return int(
                await s.scalar(
                    select(func.count())
                    .select_from(PromotionUseRow)
                    .where(PromotionUseRow.promotion_id == promotion_id)
                )
                or 0
            )

    async def version(self) -> int:
        """The configuration version: every announced change moves it (with its outbox row,
        which the relay deletes once published)."""
        async with self.app(0).deps.uow() as uow:
            return await uow.config_version()


async def _world(backend: Backend, count: int) -> AsyncIterator[World]:
    opened = [Resources.open(backend.settings) for _ in range(count)]
    peers = [Peers(r.settings, "token", lambda: "127.0.0.1:1") for r in opened]
    apps = [BonusApp.build(r, p) for r, p in zip(opened, peers, strict=True)]
    for app in apps:
        await app.start()
    try:
        yield World(apps, opened[0])
    finally:
        for app in apps:
            await app.stop()
        for r in opened:
            await r.close()


@pytest.fixture
async def world(backend: Backend) -> AsyncIterator[World]:
    """Two replicas on PostgreSQL; one on the embedded default (one process by design: two
    engines on one SQLite file do not lock rows for each other)."""
    async for w in _world(backend, 2 if backend.name == "postgres" else 1):
        yield w


@pytest.fixture
async def pair(backend: Backend) -> AsyncIterator[World]:
    """Two processes with their own caches and buses on one database, on both backends (the
    reads of the freshness test need no row locks)."""
    async for w in _world(backend, 2):
        yield w


def outcomes(results: list[object]) -> list[str]:
    return sorted(
        "ok"
        if isinstance(r, h.Outcome)
        else r.reason
        if isinstance(r, FailedPrecondition)
        else repr(r)
        for r in results
    )


# ------------------------------------------------------------------------------ CRUD


async def test_promotions_are_created_updated_listed_and_paused(world: World) -> None:
    program = await world.program()
    offers = world.app(0).offers
    made = [
        await world.promotion(program, Effect("PERCENT_OFF", percent=5), priority=p, name=f"n{p}")
        for p in (1, 3, 2, 3)
    ]
    got = await o.get_promotion(offers, made[0].promotion_id)
    assert got == made[0]
    # listed by priority desc, then creation; paged
    first, after = await o.list_promotions(offers, program.program_id, "", None, 3)
    rest, end = await o.list_promotions(offers, program.program_id, "", after, 3)
    assert [p.promotion_id for p in first + rest] == [made[i].promotion_id for i in (1, 3, 2, 0)]
    assert end is None
    version = await world.version()
    # two concurrent updates of different fields both stick
    await asyncio.gather(
        o.update_promotion(offers, made[0].promotion_id, PromotionPatch({"name": "renamed"})),
        o.update_promotion(
            world.app(1).offers, made[0].promotion_id, PromotionPatch({"priority": 9})
        ),
    )
    updated = await o.get_promotion(offers, made[0].promotion_id)
    assert (updated.name, updated.priority) == ("renamed", 9)
    paused = await o.pause_promotion(offers, made[0].promotion_id)
    again = await o.pause_promotion(world.app(1).offers, made[0].promotion_id)
    assert paused.status == again.status == "PAUSED" and again.updated_at == paused.updated_at
    only_paused, _ = await o.list_promotions(offers, program.program_id, "PAUSED", None, 10)
    assert [p.promotion_id for p in only_paused] == [made[0].promotion_id]
    # two updates and one pause were announced (the second pause changed nothing)
    assert await world.version() == version + 3
    with pytest.raises(NotFound):
        await o.get_promotion(offers, "nope")


async def test_coupon_codes_are_unique_among_live_promotions_whatever_the_case(
    world: World,
) -> None:
    program = await world.program()
    results = await asyncio.gather(
        *(
            soon(
                o.create_promotion(
                    world.app(i).offers,
                    Promotion(
                        "",
                        program.program_id,
                        f"c{i}",
                        Effect("PERCENT_OFF", percent=5),
                        coupon_code=code,
                    ),
                    [],
                )
            )
            for i, code in enumerate(["SUMMER", "summer", "Summer", "sUmmer"])
        ),
        return_exceptions=True,
    )
    assert sum(isinstance(r, Promotion) for r in results) == 1
    refused = [r for r in results if isinstance(r, InvalidArgument)]
    assert len(refused) == 3 and all(r.reason == "COUPON_CODE_TAKEN" for r in refused)


async def test_amounts_must_be_in_the_programs_currency(world: World) -> None:
    program = await world.program()
    with pytest.raises(InvalidArgument) as info:
        await o.create_promotion(
            world.app(0).offers,
            Promotion("", program.program_id, "x", Effect("AMOUNT_OFF", amount_micros=UNIT)),
            [("promotion.effect.amount", "EUR", UNIT)],
        )
    assert info.value.reason == "CURRENCY_MISMATCH"


# ------------------------------------------------------------------------- freshness


async def test_a_pause_in_one_process_leaves_the_quotes_of_the_other(pair: World) -> None:
    world = pair
    program = await world.program()
    promotion = await world.promotion(program, Effect("PERCENT_OFF", percent=10))
    cart = CartLine("a", "", 1, 10 * UNIT)

    async def applied_in(i: int) -> list[str]:
        q = (await world.quote(i, program, "c1", cart)).quote
        return [a.promotion.promotion_id for a in q.applied]

    # both processes cache it (the second loads it on its first quote)
    assert await applied_in(0) == [promotion.promotion_id]
    assert await applied_in(1) == [promotion.promotion_id]
    await o.pause_promotion(world.app(0).offers, promotion.promotion_id)

    async def gone() -> bool:
        return await applied_in(1) == []

    await eventually(gone, "the paused promotion to leave the other process's quotes")
    assert await applied_in(0) == []


# ---------------------------------------------------------------------------- budgets


async def test_accruals_against_quotes_never_overshoot_max_uses(world: World) -> None:
    program = await world.program()
    for trial in range(3):
        n = 7
        promotion = await world.promotion(
            program, Effect("POINTS_MULTIPLIER", multiplier=2.0), max_uses=n, name=f"t{trial}"
        )
        customers = [uid() for _ in range(30)]
        quotes = [
            await world.quote(i, program, c, CartLine("a", "", 1, 10 * UNIT))
            for i, c in enumerate(customers)
        ]
        assert all(q.quote.applied for q in quotes)
        keys = [f"k-{uid()}" for _ in customers]
        orders = [f"o-{uid()}" for _ in customers]
        calls = [
            soon(world.accrue(i, program, c, q, keys[i], orders[i]))
            for i, (c, q) in enumerate(zip(customers, quotes, strict=True))
        ]
        # every accrual is also retried with its own key, at once, from the other replica
        calls += [
            soon(world.accrue(i + 1, program, c, q, keys[i], orders[i]))
            for i, (c, q) in enumerate(zip(customers, quotes, strict=True))
        ]
        results = await asyncio.gather(*calls, return_exceptions=True)
        firsts, retries = results[:30], results[30:]
        # a key and its retry agree: the same movement, or both refused (uses never go down)
        assert outcomes(firsts) == outcomes(retries) == ["PROMOTION_BUDGET_SPENT"] * 23 + ["ok"] * 7
        for a, b in zip(firsts, retries, strict=True):
            if isinstance(a, h.Outcome):
                assert isinstance(b, h.Outcome) and a.movement and b.movement
                assert a.movement.transaction_id == b.movement.transaction_id
                assert a.movement.points == 20  # 10 base + 10 from the doubled points
        after = await o.get_promotion(world.app(0).offers, promotion.promotion_id)
        assert (after.uses, after.status) == (n, "ENDED")
        assert await world.uses_rows(promotion.promotion_id) == n


async def test_accruals_never_overshoot_max_discount(world: World) -> None:
    program = await world.program()
    promotion = await world.promotion(
        program,
        Effect("AMOUNT_OFF", amount_micros=3 * UNIT),
        max_discount_micros=20 * UNIT,
    )
    customers = [uid() for _ in range(20)]
    quotes = [
        await world.quote(i, program, c, CartLine("a", "", 1, 10 * UNIT))
        for i, c in enumerate(customers)
    ]
    results = await asyncio.gather(
        *(
            soon(world.accrue(i, program, c, q, f"k-{uid()}", f"o-{uid()}"))
            for i, (c, q) in enumerate(zip(customers, quotes, strict=True))
        ),
        return_exceptions=True,
    )
    assert outcomes(list(results)) == ["PROMOTION_BUDGET_SPENT"] * 14 + ["ok"] * 6
    after = await o.get_promotion(world.app(0).offers, promotion.promotion_id)
    assert (after.uses, after.discount_given_micros) == (6, 18 * UNIT)
    assert after.status == "ACTIVE"  # 2.00 left: not enough for a 3.00 use, never overshot


async def test_a_per_customer_limit_holds_and_a_whole_reversal_releases_the_use(
    world: World,
) -> None:
    program = await world.program()
    promotion = await world.promotion(
        program, Effect("PERCENT_OFF", percent=10), max_uses_per_customer=1, coupon_code="ONCE"
    )
    customer = uid()
    cart = CartLine("a", "", 1, 10 * UNIT)
    quotes = [await world.quote(i, program, customer, cart, coupons=("once",)) for i in range(4)]
    results = await asyncio.gather(
        *(
            soon(world.accrue(i, program, customer, q, f"k-{uid()}", f"o-{uid()}"))
            for i, q in enumerate(quotes)
        ),
        return_exceptions=True,
    )
    assert outcomes(list(results)) == ["PROMOTION_LIMIT_REACHED"] * 3 + ["ok"]
    # the next quote leaves it out (the customer's uses are read)
    later = await world.quote(1, program, customer, cart, coupons=("ONCE",))
    assert not later.quote.applied
    won = next(r for r in results if isinstance(r, h.Outcome))
    assert won.movement is not None
    assert won.movement.promotion_ids == (promotion.promotion_id,)
    await h.reverse(world.app(0).deps, won.movement.transaction_id, 0, "returned", f"r-{uid()}")
    after = await o.get_promotion(world.app(0).offers, promotion.promotion_id)
    assert after.uses == 0 and await world.uses_rows(promotion.promotion_id) == 0
    # the accrual still says which promotions it counted, released or not
    page, _ = await h.list_transactions(world.app(1).deps, program.program_id, customer, None, 10)
    accrual = next(m for m in page if m.type == "ACCRUAL")
    assert accrual.promotion_ids == (promotion.promotion_id,)
    again = await world.quote(0, program, customer, cart, coupons=("ONCE",))
    assert [a.promotion.promotion_id for a in again.quote.applied] == [promotion.promotion_id]


async def test_a_quote_id_is_checked_at_the_accrual(world: World) -> None:
    program = await world.program()
    await world.promotion(program, Effect("PERCENT_OFF", percent=10))
    q = await world.quote(0, program, "alice", CartLine("a", "", 1, 10 * UNIT))
    with pytest.raises(InvalidArgument) as info:
        await world.accrue(0, program, "bob", q, f"k-{uid()}", f"o-{uid()}")
    assert [f for f, _ in info.value.violations] == ["quote_id"]
    body, _, signature = q.quote_id.partition(".")
    with pytest.raises(InvalidArgument):
        o.read_quote_id(world.app(0).offers.quote_key, f"{body}x.{signature}")
    clock_app = world.app(0)
    expired = o.QuoteResult(q.quote, q.program, q.quote_id, q.expires_at)
    claim = o.read_quote_id(clock_app.offers.quote_key, expired.quote_id)
    order = h.Accrual(f"o-{uid()}", (OrderLine("", 1, 9 * UNIT),), "GBP", 9 * UNIT, f"k-{uid()}")
    late = h.BonusDeps(
        uow=clock_app.deps.uow,
        clock=lambda: claim.expires_at + 1,
        signals=clock_app.deps.signals,
    )
    with pytest.raises(FailedPrecondition) as spent:
        await h.accrue(late, program.program_id, "alice", replace(order, quote=claim))
    assert spent.value.reason == "QUOTE_EXPIRED"


# ---------------------------------------------------------------------------- holdout


async def test_the_holdout_report_compares_treated_and_held_out_customers(world: World) -> None:
    program = await world.program()
    promotion = await world.promotion(
        program, Effect("PERCENT_OFF", percent=10), holdout_percent=50.0
    )
    customers = [f"h-{uid()}" for _ in range(40)]
    cart = CartLine("a", "", 1, 10 * UNIT)
    quotes = {c: await world.quote(i, program, c, cart) for i, c in enumerate(customers)}
    held = {c for c in customers if held_out(promotion, c)}
    assert {c for c, q in quotes.items() if not q.quote.applied} == held
    for app in world.replicas:
        await o.flush_exposures(app.offers)
    buyers = customers[::3]
    for i, c in enumerate(buyers):
        q = quotes[c]
        await world.accrue(i, program, c, q, f"k-{uid()}", f"o-{uid()}")
    report = await o.promotion_report(world.app(0).offers, promotion.promotion_id)
    for is_held in (False, True):
        group = [c for c in customers if (c in held) == is_held]
        bought = [c for c in buyers if (c in held) == is_held]
        revenue = sum(quotes[c].quote.total_micros for c in bought)
        assert report.groups[is_held] == GroupFigures(len(group), len(bought), len(bought), revenue)


async def test_a_single_use_coupon_is_used_once_whoever_races_for_it(world: World) -> None:
    program = await world.program()
    promotion = await world.promotion(
        program, Effect("AMOUNT_OFF", amount_micros=5 * UNIT), coupon_code="ONE-TIME", max_uses=1
    )
    customers = [uid() for _ in range(6)]
    cart = CartLine("a", "", 1, 20 * UNIT)
    quotes = [
        await world.quote(i, program, c, cart, coupons=("one-time",))
        for i, c in enumerate(customers)
    ]
    assert all(q.quote.applied for q in quotes)
    results = await asyncio.gather(
        *(
            soon(world.accrue(i, program, c, q, f"k-{uid()}", f"o-{uid()}"))
            for i, (c, q) in enumerate(zip(customers, quotes, strict=True))
        ),
        return_exceptions=True,
    )
    assert outcomes(list(results)) == ["PROMOTION_BUDGET_SPENT"] * 5 + ["ok"]
    after = await o.get_promotion(world.app(0).offers, promotion.promotion_id)
    assert (after.uses, after.status) == (1, "ENDED")

    async def unknown_code() -> bool:  # once the caches drop the ended promotion
        later = await world.quote(0, program, uid(), cart, coupons=("ONE-TIME",))
        return not later.quote.applied and later.quote.invalid_coupons == ["ONE-TIME"]

    await eventually(unknown_code, "quotes to drop the used-up coupon")


async def test_with_segmentation_unreachable_a_quote_degrades_instead_of_failing(
    world: World,
) -> None:
    # the replicas' peers point at a closed port: the real gRPC adapter answers None
    program = await world.program(segment_multipliers={"vip": 3.0})
    vip = condition_pb2.Condition(segment=condition_pb2.SegmentCondition(segment_id="vip"))
    needs = await world.promotion(
        program,
        Effect("PERCENT_OFF", percent=50),
        condition=vip.SerializeToString(deterministic=True),
    )
    free = await world.promotion(program, Effect("AMOUNT_OFF", amount_micros=UNIT))
    result = await world.quote(0, program, uid(), CartLine("a", "", 1, 10 * UNIT))
    q = result.quote
    assert q.degraded
    assert [a.promotion.promotion_id for a in q.applied] == [free.promotion_id]
    assert needs.promotion_id in [p.promotion_id for p, _ in q.not_applied]
    assert q.points_to_earn == 9  # no segment multiplier when segmentation is silent


# ------------------------------------------------------------- seams with the ledger


async def exposure_rows(world: World, customer_id: str) -> int:
    async with world.resources.sessions() as s:
        return int(
            await s.scalar(
                select(func.count())
                .select_from(ExposureRow)
                .where(ExposureRow.customer_id == customer_id)
            )
            or 0
        )


async def test_a_merged_customer_does_not_escape_a_per_customer_limit(world: World) -> None:
    """The source's uses count for the customer it was merged into: in quotes, and at the
    accrual (a quote taken by the target before the merge is refused after it)."""
    program = await world.program()
    promotion = await world.promotion(
        program, Effect("PERCENT_OFF", percent=10), max_uses_per_customer=1, coupon_code="ONCE"
    )
    source, target = f"s-{uid()}", f"t-{uid()}"
    cart = CartLine("a", "", 1, 10 * UNIT)
    used = await world.quote(0, program, source, cart, coupons=("ONCE",))
    await world.accrue(0, program, source, used, f"k-{uid()}", f"o-{uid()}")
    early = await world.quote(0, program, target, cart, coupons=("ONCE",))
    assert [a.promotion.promotion_id for a in early.quote.applied] == [promotion.promotion_id]
    await h.enroll(world.app(0).deps, program.program_id, target)
    assert await merge_customers(world.app(0).deps, source, target) == 1
    later = await world.quote(0, program, target, cart, coupons=("ONCE",))
    assert not later.quote.applied
    with pytest.raises(FailedPrecondition) as refused:
        await world.accrue(0, program, target, early, f"k-{uid()}", f"o-{uid()}")
    assert refused.value.reason == "PROMOTION_LIMIT_REACHED"
    after = await o.get_promotion(world.app(0).offers, promotion.promotion_id)
    assert after.uses == 1


async def test_a_whole_return_from_a_profile_event_releases_the_quotes_uses(
    world: World,
) -> None:
    """A return event that takes back all of an accrual made with a quote frees its uses, as
    a Reverse of all of it does; a partial return first and the rest later release once."""
    program = await world.program()
    promotion = await world.promotion(
        program, Effect("PERCENT_OFF", percent=10), max_uses_per_customer=1, coupon_code="ONCE"
    )
    customer = uid()
    cart = CartLine("a", "", 2, 10 * UNIT)
    q = await world.quote(0, program, customer, cart, coupons=("ONCE",))
    order_id = f"o-{uid()}"
    app = world.app(0)
    claim = o.read_quote_id(app.offers.quote_key, q.quote_id)
    line = q.quote.lines[0]
    unit = line.line_total_micros // 2
    order = h.Accrual(
        order_id, (OrderLine("", 2, unit),), "GBP", q.quote.total_micros, f"k-{uid()}", claim
    )
    await h.accrue(app.deps, program.program_id, customer, order)
    assert (await o.get_promotion(app.offers, promotion.promotion_id)).uses == 1

    def returned(event_id: str) -> PurchaseEvent:
        return PurchaseEvent(
            event_id,
            customer,
            f"r-{uid()}",
            (OrderLine("", -1, unit),),
            "GBP",
            -unit,
            original_order_id=order_id,
        )

    first, second = returned(uid()), returned(uid())
    await record_purchase(app.deps, first)
    # half returned: the use stays
    assert (await o.get_promotion(app.offers, promotion.promotion_id)).uses == 1
    for _ in range(2):  # the rest, and its redelivery
        await record_purchase(app.deps, second)
    after = await o.get_promotion(app.offers, promotion.promotion_id)
    assert after.uses == 0 and await world.uses_rows(promotion.promotion_id) == 0
    again = await world.quote(0, program, customer, cart, coupons=("ONCE",))
    assert [a.promotion.promotion_id for a in again.quote.applied] == [promotion.promotion_id]


async def test_no_exposure_of_an_erased_customer_is_written(world: World) -> None:
    """Exposures wait in memory for the next flush: an erasure in between must not be undone
    by it, and quotes naming an erased customer leave nothing behind either."""
    program = await world.program()
    await world.promotion(program, Effect("PERCENT_OFF", percent=10), holdout_percent=50.0)
    customer = f"e-{uid()}"
    cart = CartLine("a", "", 1, 10 * UNIT)
    await world.accrue(
        0,
        program,
        customer,
        await world.quote(0, program, customer, cart),
        f"k-{uid()}",
        f"o-{uid()}",
    )
    await world.quote(0, program, customer, cart)  # noted in memory, not flushed yet
    await h.erase_customer(world.app(0).deps, customer)
    await world.quote(0, program, customer, cart)  # after the erasure
    for app in world.replicas:
        await o.flush_exposures(app.offers)
    assert await exposure_rows(world, customer) == 0
    # a customer merged into an erased one is gone too (quotes may still name its old id)
    source, target = f"s-{uid()}", f"t-{uid()}"
    await h.enroll(world.app(0).deps, program.program_id, source)
    await h.enroll(world.app(0).deps, program.program_id, target)
    await merge_customers(world.app(0).deps, source, target)
    await h.erase_customer(world.app(0).deps, target)
    await world.quote(0, program, source, cart)
    await o.flush_exposures(world.app(0).offers)
    assert await exposure_rows(world, source) == 0
    # an erasure racing the flush of the customer's exposures, 20 trials
    for _ in range(20):
        customer = f"e-{uid()}"
        for i in range(len(world.replicas)):
            await world.quote(i, program, customer, cart)
        await asyncio.gather(
            soon(h.erase_customer(world.app(0).deps, customer)),
            *(soon(o.flush_exposures(app.offers)) for app in world.replicas),
        )
        assert await exposure_rows(world, customer) == 0


async def test_a_purchase_event_first_still_counts_the_quote_of_its_order(world: World) -> None:
    """The profile event of an order can reach bonus before the shop's Accrue with the quote
    it was priced with: the event accrues the order without the quote, the Accrue is
    ORDER_ALREADY_ACCRUED, and the single-use coupon is never counted, so a second customer
    gets it too (two discounts given against max_uses 1)."""
    program = await world.program()
    promotion = await world.promotion(
        program, Effect("AMOUNT_OFF", amount_micros=5 * UNIT), coupon_code="ONE", max_uses=1
    )
    first, second = f"a-{uid()}", f"b-{uid()}"
    cart = CartLine("a", "", 1, 20 * UNIT)
    await h.enroll(world.app(0).deps, program.program_id, first)
    q1 = await world.quote(0, program, first, cart, coupons=("ONE",))
    q2 = await world.quote(0, program, second, cart, coupons=("ONE",))
    order_id = f"o-{uid()}"
    paid = q1.quote.total_micros
    event = PurchaseEvent(uid(), first, order_id, (OrderLine("", 1, paid),), "GBP", paid)
    await record_purchase(world.app(0).deps, event)
    results = []
    for customer, q, order in ((first, q1, order_id), (second, q2, f"o-{uid()}")):
        try:
            results.append(await world.accrue(0, program, customer, q, f"k-{uid()}", order))
        except FailedPrecondition as exc:
            results.append(exc)
    # the coupon is counted once, for the first order, and the second is refused
    assert outcomes(results) == ["ORDER_ALREADY_ACCRUED", "PROMOTION_BUDGET_SPENT"]
    assert (await o.get_promotion(world.app(0).offers, promotion.promotion_id)).uses == 1
    # and the event's accrual names it now
    page, _ = await h.list_transactions(world.app(0).deps, program.program_id, first, None, 10)
    assert [m.promotion_ids for m in page if m.type == "ACCRUAL"] == [(promotion.promotion_id,)]


async def test_a_promotions_discount_counter_never_passes_int64(world: World) -> None:
    """A quote of a 1000-line cart at 100 % off gives 10^18 micros of discount (the cart is
    not checked at the accrual): ten accruals with it would pass the int64 counter
    (INTERNAL, and every later accrual of the promotion too). The one that would pass it is
    refused as the budget it is, and the counter keeps its value."""
    program = await world.program(points_per_unit=0.000001)
    promotion = await world.promotion(program, Effect("PERCENT_OFF", percent=100))
    customer = uid()
    lines = [CartLine(f"s{i}", "", 1_000, 10**12) for i in range(1000)]
    q = await world.quote(0, program, customer, *lines)
    assert q.quote.applied[0].discount_micros == 10**18
    app = world.app(0)
    claim = o.read_quote_id(app.offers.quote_key, q.quote_id)
    results = []
    for _ in range(10):
        order = h.Accrual(f"o-{uid()}", (OrderLine("", 1, UNIT),), "GBP", UNIT, uid(), claim)
        try:
            results.append(await h.accrue(app.deps, program.program_id, customer, order))
        except FailedPrecondition as exc:
            results.append(exc)
    assert outcomes(results) == ["PROMOTION_BUDGET_SPENT"] + ["ok"] * 9
    after = await o.get_promotion(app.offers, promotion.promotion_id)
    assert (after.uses, after.discount_given_micros) == (9, 9 * 10**18)


async def uses_of_order(world: World, promotion_id: str) -> list[tuple[str, str]]:
    """(order_id, transaction_id) of the promotion's uses."""
    async with world.resources.sessions() as s:
        rows = await s.execute(
            select(PromotionUseRow.order_id, PromotionUseRow.transaction_id).where(
                PromotionUseRow.promotion_id == promotion_id
            )
        )
        return sorted((r[0], r[1]) for r in rows)


async def test_the_late_quote_of_an_evented_order_counts_once_and_respects_the_budget(
    world: World,
) -> None:
    """After the event accrued the order: the shop's Accrue with the quote counts its use
    against the event's accrual (ORDER_ALREADY_ACCRUED naming it); retried under the same
    key and under another, it counts nothing more. Another customer's late Accrue of a coupon
    spent meanwhile is PROMOTION_BUDGET_SPENT and counts nothing; an accrual made by another
    Accrue (not by the event) is not counted against."""
    program = await world.program()
    promotion = await world.promotion(
        program, Effect("AMOUNT_OFF", amount_micros=5 * UNIT), coupon_code="TWO", max_uses=2
    )
    cart = CartLine("a", "", 1, 20 * UNIT)
    app = world.app(0)
    first, second, third = (f"{n}-{uid()}" for n in "abc")
    for c in (first, second, third):
        await h.enroll(app.deps, program.program_id, c)
    q1, q2, q3 = [
        await world.quote(0, program, c, cart, coupons=("TWO",)) for c in (first, second, third)
    ]
    order1, order2, order3 = (f"o-{uid()}" for _ in range(3))
    paid = q1.quote.total_micros

    def bought(customer: str, order_id: str) -> PurchaseEvent:
        return PurchaseEvent(uid(), customer, order_id, (OrderLine("", 1, paid),), "GBP", paid)

    [accrued] = await record_purchase(app.deps, bought(first, order1))
    assert accrued.movement is not None
    key = f"k-{uid()}"
    for i, k in enumerate((key, key, f"k-{uid()}")):
        with pytest.raises(FailedPrecondition) as refused:
            await world.accrue(i, program, first, q1, k, order1)
        assert refused.value.reason == "ORDER_ALREADY_ACCRUED"
        assert refused.value.metadata["transaction_id"] == accrued.movement.transaction_id
    assert await uses_of_order(world, promotion.promotion_id) == [
        (order1, accrued.movement.transaction_id)
    ]
    # an order the shop accrued without its quote is not counted by its later Accrue
    plain = h.Accrual(order2, (OrderLine("", 1, paid),), "GBP", paid, f"k-{uid()}")
    await h.accrue(app.deps, program.program_id, second, plain)
    with pytest.raises(FailedPrecondition) as refused:
        await world.accrue(0, program, second, q2, f"k-{uid()}", order2)
    assert refused.value.reason == "ORDER_ALREADY_ACCRUED"
    assert (await o.get_promotion(app.offers, promotion.promotion_id)).uses == 1
    await world.accrue(1, program, second, q2, f"k-{uid()}", f"o-{uid()}")  # spends it
    assert (await o.get_promotion(app.offers, promotion.promotion_id)).uses == 2
    await record_purchase(app.deps, bought(third, order3))
    with pytest.raises(FailedPrecondition) as spent:
        await world.accrue(1, program, third, q3, f"k-{uid()}", order3)
    assert spent.value.reason == "PROMOTION_BUDGET_SPENT"
    after = await o.get_promotion(app.offers, promotion.promotion_id)
    assert (after.uses, after.status) == (2, "ENDED")
    assert order3 not in [u[0] for u in await uses_of_order(world, promotion.promotion_id)]


async def test_a_purchase_event_carrying_its_quote_counts_it(world: World) -> None:
    """The event's property quote_id: its uses count with the event's accrual, once however
    often the event comes, and the shop's Accrue with it afterwards counts nothing more. A
    forged quote id, or a coupon spent meanwhile, accrues the order without the quote."""
    program = await world.program()
    promotion = await world.promotion(
        program, Effect("AMOUNT_OFF", amount_micros=5 * UNIT), coupon_code="ONE", max_uses=1
    )
    cart = CartLine("a", "", 1, 20 * UNIT)
    app = world.app(0)
    first, second, third = (f"{n}-{uid()}" for n in "abc")
    for c in (first, second, third):
        await h.enroll(app.deps, program.program_id, c)
    q1, q2 = [await world.quote(0, program, c, cart, coupons=("ONE",)) for c in (first, second)]
    paid = q1.quote.total_micros

    def bought(customer: str, quote_id: str) -> PurchaseEvent:
        return PurchaseEvent(
            uid(), customer, f"o-{uid()}", (OrderLine("", 1, paid),), "GBP", paid, quote_id=quote_id
        )

    forged = bought(third, q1.quote_id[:-2] + "xx")
    [plain] = await record_purchase(app.deps, forged)
    assert plain.movement is not None and plain.movement.points == paid // UNIT
    assert (await o.get_promotion(app.offers, promotion.promotion_id)).uses == 0

    event = bought(first, q1.quote_id)
    for i in range(3):  # delivered, redelivered, to the other replica
        [outcome] = await record_purchase(world.app(i).deps, event)
        assert outcome.movement is not None
    assert await uses_of_order(world, promotion.promotion_id) == [
        (event.order_id, outcome.movement.transaction_id)
    ]
    with pytest.raises(FailedPrecondition) as refused:
        await world.accrue(0, program, first, q1, f"k-{uid()}", event.order_id)
    assert refused.value.reason == "ORDER_ALREADY_ACCRUED"

    late = bought(second, q2.quote_id)  # the coupon is spent: the purchase still earns
    [outcome] = await record_purchase(app.deps, late)
    assert outcome.movement is not None and outcome.movement.points == paid // UNIT
    after = await o.get_promotion(app.offers, promotion.promotion_id)
    assert after.uses == 1 and await world.uses_rows(promotion.promotion_id) == 1


async def test_event_and_accrue_with_quote_race_and_a_single_use_coupon_counts_once(
    world: World,
) -> None:
    """The race of the defect, many times, over both replicas on PostgreSQL: the order's
    PURCHASE event (delivered once or twice, sometimes carrying the quote) against the shop's
    Accrue with its quote, and a second customer's Accrue with another quote of the same
    single-use coupon. The coupon's uses end at exactly 1, the use belongs to an order that
    was accrued once, and the shop of the other order was told PROMOTION_BUDGET_SPENT (the
    defect: ORDER_ALREADY_ACCRUED, the discount given a second time uncounted)."""
    trials, first_won, late = 25, 0, 0
    for trial in range(trials):
        program = await world.program()
        code = f"ONE{trial}"
        promotion = await world.promotion(
            program, Effect("AMOUNT_OFF", amount_micros=5 * UNIT), coupon_code=code, max_uses=1
        )
        first, second = f"a-{uid()}", f"b-{uid()}"
        cart = CartLine("a", "", 1, 20 * UNIT)
        await h.enroll(world.app(0).deps, program.program_id, first)
        q1 = await world.quote(0, program, first, cart, coupons=(code,))
        q2 = await world.quote(1, program, second, cart, coupons=(code,))
        order1, order2 = f"o-{uid()}", f"o-{uid()}"
        paid = q1.quote.total_micros
        event = PurchaseEvent(
            uid(),
            first,
            order1,
            (OrderLine("", 1, paid),),
            "GBP",
            paid,
            quote_id=q1.quote_id if trial % 3 == 0 else "",
        )
        deliveries = 1 + trial % 2
        results = await asyncio.gather(
            *(soon(record_purchase(world.app(i).deps, event)) for i in range(deliveries)),
            soon(world.accrue(trial, program, first, q1, f"k-{uid()}", order1)),
            soon(world.accrue(trial + 1, program, second, q2, f"k-{uid()}", order2)),
            return_exceptions=True,
        )
        shop = list(results[deliveries:])
        assert not [
            r
            for r in results
            if isinstance(r, BaseException) and not isinstance(r, FailedPrecondition)
        ], results
        after = await o.get_promotion(world.app(0).offers, promotion.promotion_id)
        used = await uses_of_order(world, promotion.promotion_id)
        assert (after.uses, len(used)) == (1, 1), (trial, results)
        [(order_used, transaction_used)] = used
        async with world.app(0).deps.uow() as uow:
            accrual = await uow.accrual_of(program.program_id, order_used)
        assert accrual is not None and accrual.transaction_id == transaction_used
        first_result, second_result = shop
        if order_used == order1:
            first_won += 1
            late += isinstance(first_result, FailedPrecondition)
            assert isinstance(second_result, FailedPrecondition)
            assert second_result.reason == "PROMOTION_BUDGET_SPENT"
            assert isinstance(first_result, h.Outcome) or first_result.reason == (
                "ORDER_ALREADY_ACCRUED"
            )
        else:
            assert isinstance(second_result, h.Outcome)
            # the shop was told the coupon is spent (so it does not give the discount), also
            # when the event had accrued the order already
            assert isinstance(first_result, FailedPrecondition)
            assert first_result.reason == "PROMOTION_BUDGET_SPENT", (trial, results)
        async with world.app(0).deps.uow() as uow:
            assert await uow.accrual_of(program.program_id, order1) is not None
    print(
        f"coupon counted for the first customer's order in {first_won}/{trials} trials, "
        f"{late} of them by the shop's Accrue after the event had accrued the order"
    )


ZERO_POINT_TRIALS = 10


def returned(customer: str, order_id: str, value: int) -> PurchaseEvent:
    """A profile event returning `value` of the customer's order `order_id`."""
    line = (OrderLine("", -1, value),)
    return PurchaseEvent(
        uid(), customer, f"r-{uid()}", line, "GBP", -value, original_order_id=order_id
    )


async def test_a_quoted_accrual_that_earned_no_points_frees_its_uses_when_all_returned(
    world: World,
) -> None:
    """A small order at a low rate earns 0 points, but its quote's uses count: before, no
    return took anything from it and a Reverse had nothing to undo, so the uses (a customer's
    limit, a capped promotion's max_uses) stayed counted for good. Now all of its value
    returned — by a Reverse, by return events (a part and then the rest, redelivered), or by a
    return taken before the purchase — frees them, once."""
    program = await world.program(points_per_unit=0.01)  # a point per 100 GBP
    promotion = await world.promotion(
        program, Effect("PERCENT_OFF", percent=10), max_uses_per_customer=1, coupon_code="ONCE"
    )
    cart = CartLine("a", "", 1, 10 * UNIT)
    app = world.app(0)

    async def uses() -> int:
        return (await o.get_promotion(app.offers, promotion.promotion_id)).uses

    async def quoted_order(customer: str, order_id: str) -> h.Outcome:
        q = await world.quote(0, program, customer, cart, coupons=("ONCE",))
        done = await world.accrue(0, program, customer, q, f"k-{uid()}", order_id)
        assert done.movement is not None and done.movement.points == 0
        return done

    async def applies_again(customer: str) -> bool:
        again = await world.quote(0, program, customer, cart, coupons=("ONCE",))
        return [a.promotion.promotion_id for a in again.quote.applied] == [promotion.promotion_id]

    # a Reverse of all of it; a second one has nothing left to undo
    customer = uid()
    done = await quoted_order(customer, f"o-{uid()}")
    assert done.movement is not None and await uses() == 1
    assert not await applies_again(customer)
    await h.reverse(app.deps, done.movement.transaction_id, 0, "returned", f"r-{uid()}")
    assert await uses() == 0 and await applies_again(customer)
    with pytest.raises(FailedPrecondition) as refused:
        await h.reverse(app.deps, done.movement.transaction_id, 0, "again", f"r-{uid()}")
    assert refused.value.reason == "NOT_REVERSIBLE"

    # return events: half keeps the use, the rest (and its redelivery) frees it once
    customer, order_id = uid(), f"o-{uid()}"
    done = await quoted_order(customer, order_id)
    assert done.movement is not None
    paid = done.movement.value_micros
    await record_purchase(app.deps, returned(customer, order_id, paid // 2))
    assert await uses() == 1
    rest = returned(customer, order_id, paid - paid // 2)
    for _ in range(2):
        await record_purchase(app.deps, rest)
    assert await uses() == 0 and await applies_again(customer)

    # the whole return taken before the purchase: the accrual frees what its quote counts
    customer, order_id = uid(), f"o-{uid()}"
    q = await world.quote(0, program, customer, cart, coupons=("ONCE",))
    await h.enroll(app.deps, program.program_id, customer)
    await record_purchase(app.deps, returned(customer, order_id, q.quote.total_micros))
    await world.accrue(0, program, customer, q, f"k-{uid()}", order_id)
    assert await uses() == 0 and await applies_again(customer)


async def test_racing_reversals_of_a_no_point_accrual_free_its_uses_once(world: World) -> None:
    """The whole return delivered twice, on both replicas, racing a Reverse of the accrual:
    its use is freed exactly once (another customer's use stays counted)."""
    program = await world.program(points_per_unit=0.01)
    promotion = await world.promotion(program, Effect("PERCENT_OFF", percent=10))
    cart = CartLine("a", "", 1, 10 * UNIT)

    async def uses() -> int:
        return (await o.get_promotion(world.app(0).offers, promotion.promotion_id)).uses

    async def quoted_order(customer: str, order_id: str) -> Movement:
        q = await world.quote(0, program, customer, cart)
        done = await world.accrue(0, program, customer, q, f"k-{uid()}", order_id)
        assert done.movement is not None and done.movement.points == 0
        return done.movement

    await quoted_order(uid(), f"o-{uid()}")  # a use that stays counted
    for trial in range(ZERO_POINT_TRIALS):
        customer, order_id = uid(), f"o-{uid()}"
        accrual = await quoted_order(customer, order_id)
        assert await uses() == 2, trial
        event = returned(customer, order_id, accrual.value_micros)
        results = await asyncio.gather(
            soon(record_purchase(world.app(0).deps, event)),
            soon(record_purchase(world.app(1).deps, event)),
            soon(h.reverse(world.app(1).deps, accrual.transaction_id, 0, "x", f"r-{uid()}")),
            return_exceptions=True,
        )
        refusals = [r for r in results if isinstance(r, BaseException)]
        assert all(
            isinstance(r, FailedPrecondition) and r.reason == "NOT_REVERSIBLE" for r in refusals
        ), refusals
        assert await uses() == 1, trial
        assert await world.uses_rows(promotion.promotion_id) == 1, trial


async def test_a_late_quote_counts_nothing_against_a_no_point_order_returned_whole(
    world: World,
) -> None:
    """The purchase event accrued a small order (0 points) and its whole return came back;
    the shop's Accrue with the quote then arrives: the order is gone, no use is counted."""
    program = await world.program(points_per_unit=0.01)
    promotion = await world.promotion(program, Effect("PERCENT_OFF", percent=10))
    customer, order_id = uid(), f"o-{uid()}"
    await h.enroll(world.app(0).deps, program.program_id, customer)
    q = await world.quote(0, program, customer, CartLine("a", "", 1, 10 * UNIT))
    paid = q.quote.total_micros
    bought = PurchaseEvent(uid(), customer, order_id, (OrderLine("", 1, paid),), "GBP", paid)
    await record_purchase(world.app(0).deps, bought)
    await record_purchase(world.app(0).deps, returned(customer, order_id, paid))
    with pytest.raises(FailedPrecondition) as refused:
        await world.accrue(0, program, customer, q, f"k-{uid()}", order_id)
    assert refused.value.reason == "ORDER_ALREADY_ACCRUED"
    assert (await o.get_promotion(world.app(0).offers, promotion.promotion_id)).uses == 0

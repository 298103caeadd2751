"""The promotion and quote use cases against the in-memory fakes: one call to segmentation per
quote (deduplicated atoms), degraded answers, the public price, the cache, quote ids."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import pytest
from backcrm.common.v1 import common_pb2
from backcrm.segmentation.v1 import condition_pb2

from libs.errors import FailedPrecondition, InvalidArgument
from services.bonus import handlers as h
from services.bonus import offers as o
from services.bonus.config import ConfigCache
from services.bonus.domain import OrderLine, Program, Tier
from services.bonus.merges import merge_customers
from services.bonus.pricing import CartLine
from services.bonus.promotions import Effect, Promotion
from services.bonus.purchases import PurchaseEvent, record_purchase
from services.bonus.translate import _context
from tests.unit.bonus_fakes import FakeBonusStore, FakeBonusUnitOfWork, FakeSignals
from tests.unit.fakes import FakeClock

T0 = 1_700_000_000.0
UNIT = 1_000_000
KEY = b"test key"


def segment(segment_id: str) -> condition_pb2.Condition:
    return condition_pb2.Condition(segment=condition_pb2.SegmentCondition(segment_id=segment_id))


def serialized(c: condition_pb2.Condition) -> bytes:
    return c.SerializeToString(deterministic=True)


@dataclass
class World:
    store: FakeBonusStore = field(default_factory=FakeBonusStore)
    clock: FakeClock = field(default_factory=lambda: FakeClock(T0))
    signals: FakeSignals = field(default_factory=FakeSignals)
    offers: o.OfferDeps | None = None

    def __post_init__(self) -> None:
        deps = h.BonusDeps(
            uow=lambda: FakeBonusUnitOfWork(self.store),
            clock=self.clock,
            signals=self.signals,
            quote_key=KEY,
        )
        self.offers = o.OfferDeps(deps, ConfigCache(deps.uow, self.clock), KEY)

    @property
    def deps(self) -> o.OfferDeps:
        assert self.offers is not None
        return self.offers

    async def program(self, **changes: object) -> Program:
        fields: dict[str, object] = {
            "program_id": "",
            "name": "Club",
            "currency": "GBP",
            "points_per_unit": 1.0,
            **changes,
        }
        return await h.create_program(self.deps.bonus, Program(**fields), "")  # type: ignore[arg-type]

    async def promotion(self, program: Program, effect: Effect, **changes: object) -> Promotion:
        fields: dict[str, object] = {
            "promotion_id": "",
            "program_id": program.program_id,
            "name": "P",
            "effect": effect,
            **changes,
        }
        return await o.create_promotion(self.deps, Promotion(**fields), [])  # type: ignore[arg-type]

    async def quote(self, program: Program, customer_id: str, units: int = 10) -> o.QuoteResult:
        context = common_pb2.Context(
            cart=[
                common_pb2.CartLine(
                    sku="a",
                    quantity=1,
                    unit_price=common_pb2.Money(currency="GBP", units_micros=units * UNIT),
                )
            ]
        )
        request = o.QuoteRequest(
            program.program_id,
            customer_id,
            (CartLine("a", "", 1, units * UNIT),),
            "GBP",
            _context(context, self.clock()),
            context,
            (),
        )
        return await o.quote_offer(self.deps, request)


def applied(result: o.QuoteResult) -> list[str]:
    return [a.promotion.promotion_id for a in result.quote.applied]


async def test_one_call_to_segmentation_per_quote_with_each_atom_once() -> None:
    w = World()
    program = await w.program(segment_multipliers={"vip": 2.0})
    vip = serialized(segment("vip"))
    both = condition_pb2.Condition(all_of=condition_pb2.ConditionGroup(conditions=[segment("vip")]))
    p1 = await w.promotion(program, Effect("PERCENT_OFF", percent=10), condition=vip)
    p2 = await w.promotion(
        program, Effect("AMOUNT_OFF", amount_micros=UNIT), condition=serialized(both)
    )
    w.signals.verdicts[vip] = True
    result = await w.quote(program, "c1")
    assert w.signals.calls == 1
    assert sorted(applied(result)) == sorted([p1.promotion_id, p2.promotion_id])
    # the vip segment doubles the points too (program.segment_multipliers), same call
    assert result.quote.points_to_earn == 2 * 8  # 10.00 - 10 % - 1.00 = 8.00


async def test_when_segmentation_is_down_the_quote_degrades_and_says_so() -> None:
    w = World()
    program = await w.program()
    needs = await w.promotion(
        program, Effect("PERCENT_OFF", percent=10), condition=serialized(segment("vip"))
    )
    free = await w.promotion(program, Effect("AMOUNT_OFF", amount_micros=UNIT))
    w.signals.down = True
    result = await w.quote(program, "c1")
    assert applied(result) == [free.promotion_id] and result.quote.degraded
    assert needs.promotion_id in [p.promotion_id for p, _ in result.quote.not_applied]


async def test_an_unknown_customer_gets_the_public_price_without_asking_segmentation() -> None:
    w = World()
    program = await w.program()
    await w.promotion(
        program, Effect("PERCENT_OFF", percent=10), condition=serialized(segment("vip"))
    )
    public = await w.promotion(program, Effect("AMOUNT_OFF", amount_micros=UNIT))
    result = await w.quote(program, "")
    assert applied(result) == [public.promotion_id]
    assert w.signals.calls == 0 and not result.quote.degraded


async def test_quotes_read_configuration_once_until_a_change() -> None:
    w = World()
    program = await w.program()
    p = await w.promotion(program, Effect("PERCENT_OFF", percent=10))
    for _ in range(5):
        assert applied(await w.quote(program, "c1")) == [p.promotion_id]
    assert w.deps.config.loads == 1
    await o.pause_promotion(w.deps, p.promotion_id)
    await w.deps.config.check_version()  # the safety net: the version moved
    assert applied(await w.quote(program, "c1")) == []
    assert w.deps.config.loads == 2


async def test_a_quote_id_is_signed_and_expires() -> None:
    w = World()
    program = await w.program()
    p = await w.promotion(program, Effect("POINTS_MULTIPLIER", multiplier=2.0))
    result = await w.quote(program, "c1")
    claim = o.read_quote_id(KEY, result.quote_id)
    assert [(a.promotion_id, a.bonus_points) for a in claim.applied] == [(p.promotion_id, 10)]
    with pytest.raises(InvalidArgument):
        o.read_quote_id(b"another key", result.quote_id)
    with pytest.raises(InvalidArgument):
        o.read_quote_id(KEY, result.quote_id.replace(".", "x.", 1))
    order = h.Accrual("o1", (OrderLine("", 1, 10 * UNIT),), "GBP", 10 * UNIT, "k1", quote=claim)
    w.clock.advance(w.deps.quote_ttl + 1)
    with pytest.raises(FailedPrecondition) as info:
        await h.accrue(w.deps.bonus, program.program_id, "c1", order)
    assert info.value.reason == "QUOTE_EXPIRED"
    assert w.store.state.ledger == [] and w.store.state.uses == []


async def test_a_promotion_past_its_schedule_ends_and_frees_its_coupon() -> None:
    w = World()
    program = await w.program()
    p = await w.promotion(
        program, Effect("PERCENT_OFF", percent=10), end_time=T0 + 60, coupon_code="X"
    )
    assert await o.end_scheduled(w.deps) == 0
    w.clock.advance(60)
    assert await o.end_scheduled(w.deps) == 1
    assert (await o.get_promotion(w.deps, p.promotion_id)).status == "ENDED"
    assert f"promotion:{p.promotion_id}:ENDED" in w.store.state.published
    again = await w.promotion(program, Effect("PERCENT_OFF", percent=5), coupon_code="x")
    assert again.coupon_code == "x"


async def test_only_atoms_that_can_matter_are_asked_in_batches_of_a_hundred() -> None:
    w = World()
    program = await w.program()
    made = [
        await w.promotion(
            program,
            Effect("PERCENT_OFF", percent=10),
            condition=serialized(segment(f"s{i}")),
            priority=i,
        )
        for i in range(150)
    ]
    await w.promotion(
        program,
        Effect("PERCENT_OFF", percent=10),
        condition=serialized(segment("coupon-only")),
        coupon_code="C",
    )
    w.signals.verdicts[serialized(segment("s7"))] = True
    result = await w.quote(program, "c1")
    assert applied(result) == [made[7].promotion_id] and not result.quote.degraded
    assert w.signals.calls == 2  # 150 atoms: two calls at once; the coupon's atom not asked


async def test_a_budget_lowered_to_its_uses_ends_the_promotion_and_ended_is_final() -> None:
    w = World()
    program = await w.program()
    p = await w.promotion(program, Effect("PERCENT_OFF", percent=10), max_uses=5)
    w.store.state.promotions[p.promotion_id] = replace(p, uses=3)
    ended = await o.update_promotion(w.deps, p.promotion_id, o.PromotionPatch({"max_uses": 3}))
    assert ended.status == "ENDED"
    with pytest.raises(FailedPrecondition) as info:
        await o.update_promotion(w.deps, p.promotion_id, o.PromotionPatch({"status": "ACTIVE"}))
    assert info.value.reason == "PROMOTION_ENDED"


async def test_a_quotes_points_to_earn_are_what_the_accrual_of_its_cart_earns() -> None:
    """Tier and segment multipliers are applied one after the other in exact decimals, as
    Accrue does: 1.2 x 1.5 on 100.00 is 180 points in both (their float product, 1.7999...,
    would give 179)."""
    w = World()
    program = await w.program(
        tiers=(Tier("member", 0, points_multiplier=1.2),), segment_multipliers={"vip": 1.5}
    )
    w.signals.members["c"] = {"vip"}
    w.signals.verdicts[serialized(segment("vip"))] = True
    await h.enroll(w.deps.bonus, program.program_id, "c")
    result = await w.quote(program, "c", units=100)
    assert result.quote.tier == "member" and not result.quote.degraded
    lines = tuple(OrderLine(x.category, 1, x.line_total_micros) for x in result.quote.lines)
    order = h.Accrual("o-1", lines, "GBP", result.quote.total_micros, "k-1")
    accrued = await h.accrue(w.deps.bonus, program.program_id, "c", order)
    assert accrued.movement is not None and accrued.movement.points == 180
    assert result.quote.points_to_earn == accrued.movement.points


def bought(
    event_id: str, customer: str, order_id: str, units: int, quote_id: str = ""
) -> PurchaseEvent:
    line = OrderLine("", 1, units * UNIT)
    return PurchaseEvent(
        event_id, customer, order_id, (line,), "GBP", units * UNIT, quote_id=quote_id
    )


def accrual(result: o.QuoteResult, order_id: str, key: str) -> h.Accrual:
    total = result.quote.total_micros
    claim = o.read_quote_id(KEY, result.quote_id)
    return h.Accrual(order_id, (OrderLine("", 1, total),), "GBP", total, key, claim)


async def test_the_shops_accrue_after_the_orders_event_counts_the_quote_once() -> None:
    """The event accrued the order first: the Accrue with the quote counts its use against the
    event's accrual and answers ORDER_ALREADY_ACCRUED; retried (same key, another key, after
    the quote expired) it counts nothing more. Its bonus points are not credited."""
    w = World()
    program = await w.program(welcome_points=0)
    promotion = await w.promotion(
        program, Effect("POINTS_MULTIPLIER", multiplier=2.0), coupon_code="", max_uses=5
    )
    await h.enroll(w.deps.bonus, program.program_id, "c1")
    q = await w.quote(program, "c1")
    assert applied(q) == [promotion.promotion_id]
    [event] = await record_purchase(w.deps.bonus, bought("e1", "c1", "o1", 10))
    assert event.movement is not None and event.movement.points == 10
    for key in ("k1", "k1", "k2"):
        with pytest.raises(FailedPrecondition) as refused:
            await h.accrue(w.deps.bonus, program.program_id, "c1", accrual(q, "o1", key))
        assert refused.value.reason == "ORDER_ALREADY_ACCRUED"
        assert refused.value.metadata == {"transaction_id": event.movement.transaction_id}
        w.clock.advance(600)  # the third one comes after the quote expired
    [use] = w.store.state.uses
    assert (use.order_id, use.transaction_id) == ("o1", event.movement.transaction_id)
    assert (await o.get_promotion(w.deps, promotion.promotion_id)).uses == 1
    account = await h.get_account(w.deps.bonus, program.program_id, "c1")
    assert account.pending + account.balance == 10  # the multiplier's bonus is not credited


async def test_the_late_quote_is_refused_as_an_accrue_with_it_would_be() -> None:
    """Spent budget: PROMOTION_BUDGET_SPENT, nothing counted; an order the shop accrued itself
    (not the event) and a customer's order accrued for another customer count nothing; an
    order of a customer merged since counts for the customer it lives on as."""
    w = World()
    program = await w.program(welcome_points=0)
    promotion = await w.promotion(
        program, Effect("AMOUNT_OFF", amount_micros=UNIT), coupon_code="", max_uses=2
    )
    for c in ("c1", "c2", "src", "dst"):
        await h.enroll(w.deps.bonus, program.program_id, c)
    # the shop's own accrual of o1 (no quote), then its Accrue with one: not counted
    plain = h.Accrual("o1", (OrderLine("", 1, 9 * UNIT),), "GBP", 9 * UNIT, "shop-o1")
    await h.accrue(w.deps.bonus, program.program_id, "c1", plain)
    with pytest.raises(FailedPrecondition) as refused:
        await h.accrue(
            w.deps.bonus,
            program.program_id,
            "c1",
            accrual(await w.quote(program, "c1"), "o1", "k1"),
        )
    assert refused.value.reason == "ORDER_ALREADY_ACCRUED" and not w.store.state.uses
    # an order bought by src, merged into dst since: dst's Accrue with its quote counts
    await record_purchase(w.deps.bonus, bought("e2", "src", "o2", 9))
    await merge_customers(w.deps.bonus, "src", "dst")
    with pytest.raises(FailedPrecondition) as refused:
        await h.accrue(
            w.deps.bonus,
            program.program_id,
            "dst",
            accrual(await w.quote(program, "dst"), "o2", "k2"),
        )
    assert refused.value.reason == "ORDER_ALREADY_ACCRUED"
    assert [(u.order_id, u.customer_id) for u in w.store.state.uses] == [("o2", "dst")]
    # another customer's evented order: not counted for c2
    await record_purchase(w.deps.bonus, bought("e3", "c1", "o3", 9))
    with pytest.raises(FailedPrecondition) as refused:
        await h.accrue(
            w.deps.bonus,
            program.program_id,
            "c2",
            accrual(await w.quote(program, "c2"), "o3", "k3"),
        )
    assert refused.value.reason == "ORDER_ALREADY_ACCRUED" and len(w.store.state.uses) == 1
    # the budget: one more use spends it, and the late quote after that is refused
    late = await w.quote(program, "c1")  # taken before the budget is spent
    assert applied(late) == [promotion.promotion_id]
    await h.accrue(
        w.deps.bonus, program.program_id, "c2", accrual(await w.quote(program, "c2"), "o4", "k4")
    )
    await record_purchase(w.deps.bonus, bought("e5", "c1", "o5", 9))
    with pytest.raises(FailedPrecondition) as spent:
        await h.accrue(w.deps.bonus, program.program_id, "c1", accrual(late, "o5", "k5"))
    assert spent.value.reason == "PROMOTION_BUDGET_SPENT"
    assert (await o.get_promotion(w.deps, promotion.promotion_id)).uses == 2


async def test_a_purchase_event_with_a_quote_id_counts_it_or_accrues_without_it() -> None:
    w = World()
    program = await w.program(welcome_points=0)
    promotion = await w.promotion(
        program, Effect("POINTS_MULTIPLIER", multiplier=2.0), coupon_code="", max_uses=1
    )
    for c in ("c1", "c2", "c3"):
        await h.enroll(w.deps.bonus, program.program_id, c)
    q1, q2, q3 = [await w.quote(program, c) for c in ("c1", "c2", "c3")]
    # forged: accrued without it
    [forged] = await record_purchase(w.deps.bonus, bought("e0", "c3", "o0", 10, "x" + q3.quote_id))
    assert forged.movement is not None and forged.movement.points == 10 and not w.store.state.uses
    # counted with the event's accrual, bonus points included, once however often it comes
    for _ in range(2):
        [counted] = await record_purchase(w.deps.bonus, bought("e1", "c1", "o1", 10, q1.quote_id))
        assert counted.movement is not None and counted.movement.points == 20
    assert [u.order_id for u in w.store.state.uses] == ["o1"]
    # spent: the purchase still earns, without the promotion
    [plain] = await record_purchase(w.deps.bonus, bought("e2", "c2", "o2", 10, q2.quote_id))
    assert plain.movement is not None and plain.movement.points == 10
    # expired, or another customer's: the same
    w.clock.advance(3600)
    [late] = await record_purchase(w.deps.bonus, bought("e3", "c3", "o3", 10, q3.quote_id))
    [other] = await record_purchase(w.deps.bonus, bought("e4", "c2", "o4", 10, q1.quote_id))
    assert [x.movement.points for x in (late, other) if x.movement] == [10, 10]
    assert (await o.get_promotion(w.deps, promotion.promotion_id)).uses == 1

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
from services.bonus.pricing import CartLine
from services.bonus.promotions import Effect, Promotion
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
            uow=lambda: FakeBonusUnitOfWork(self.store), clock=self.clock, signals=self.signals
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

"""The bonus use cases against the in-memory fake: programs, the ledger's arithmetic, keys."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import pytest

from libs.errors import FailedPrecondition, InvalidArgument, NotFound
from services.bonus import handlers as h
from services.bonus.domain import DAY, OrderLine, Program, Tier, order_points
from tests.unit.bonus_fakes import FakeBonusStore, FakeBonusUnitOfWork, FakeSignals
from tests.unit.fakes import FakeClock

T0 = 1_700_000_000.0
UNIT = 1_000_000  # micros


def gbp_program(**changes: object) -> Program:
    base = {
        "program_id": "",
        "name": "Club",
        "currency": "GBP",
        "points_per_unit": 1.0,
        "welcome_points": 50,
        "point_value_micros": 10_000,
    }
    return Program(**{**base, **changes})  # type: ignore[arg-type]


@dataclass
class World:
    store: FakeBonusStore = field(default_factory=FakeBonusStore)
    clock: FakeClock = field(default_factory=lambda: FakeClock(T0))
    signals: FakeSignals = field(default_factory=FakeSignals)

    @property
    def deps(self) -> h.BonusDeps:
        return h.BonusDeps(
            uow=lambda: FakeBonusUnitOfWork(self.store), clock=self.clock, signals=self.signals
        )

    async def program(self, **changes: object) -> Program:
        return await h.create_program(self.deps, gbp_program(**changes), "GBP")

    def ledger_sum(self, program_id: str, customer_id: str) -> int:
        return sum(
            m.points
            for m in self.store.state.ledger
            if (m.program_id, m.customer_id) == (program_id, customer_id)
        )


def order(order_id: str, *lines: tuple[str, int, int], key: str = "") -> h.Accrual:
    return h.Accrual(
        order_id,
        tuple(OrderLine(c, q, p) for c, q, p in lines),
        "GBP",
        sum(q * p for _, q, p in lines),
        key or f"key-{order_id}",
    )


async def test_enrolling_credits_the_welcome_points_once() -> None:
    w = World()
    p = await w.program()
    first = await h.enroll(w.deps, p.program_id, "c1")
    again = await h.enroll(w.deps, p.program_id, "c1")
    assert first.movement is not None and first.movement.points == 50
    assert again.movement is None
    assert (again.account.balance, again.account.lifetime_points) == (50, 50)
    assert w.ledger_sum(p.program_id, "c1") == 50


async def test_an_unknown_program_is_not_found_and_an_unenrolled_customer_is_empty() -> None:
    w = World()
    with pytest.raises(NotFound) as info:
        await h.get_account(w.deps, "nope", "c1")
    assert info.value.reason == "PROGRAM_NOT_FOUND"
    p = await w.program()
    view = await h.get_account(w.deps, p.program_id, "c1")
    assert (view.enrolled, view.balance) == (False, 0)


async def test_accrual_earns_by_category_and_enrols_implicitly() -> None:
    w = World()
    p = await w.program(category_multipliers={"shoes": 2.0}, welcome_points=0)
    out = await h.accrue(
        w.deps, p.program_id, "c1", order("o1", ("shoes", 1, 10 * UNIT), ("socks", 3, 2_500_000))
    )
    assert out.movement is not None and out.movement.points == 20 + 7  # 7.5 rounds down
    assert out.account.balance == 27


async def test_points_are_exact_decimals_not_doubles() -> None:
    program = gbp_program(points_per_unit=0.3)
    assert order_points(program, [OrderLine("", 10, UNIT)], 1.0) == 3
    assert order_points(program, [OrderLine("", 1, 10 * UNIT), OrderLine("", -2, 5 * UNIT)], 1) == 0


async def test_a_retried_key_moves_nothing_and_a_reused_key_is_refused() -> None:
    w = World()
    p = await w.program(welcome_points=0)
    first = await h.accrue(w.deps, p.program_id, "c1", order("o1", ("", 1, 10 * UNIT)))
    retry = await h.accrue(w.deps, p.program_id, "c1", order("o1", ("", 1, 10 * UNIT)))
    assert first.movement == retry.movement
    with pytest.raises(FailedPrecondition) as reused:
        await h.accrue(w.deps, p.program_id, "c1", order("o1", ("", 2, 10 * UNIT), key="key-o1"))
    assert reused.value.reason == "IDEMPOTENCY_KEY_REUSED"
    with pytest.raises(FailedPrecondition) as twice:
        await h.accrue(w.deps, p.program_id, "c2", order("o1", ("", 1, 10 * UNIT), key="other"))
    assert twice.value.reason == "ORDER_ALREADY_ACCRUED"
    assert len(w.store.state.ledger) == 1


async def test_an_order_in_another_currency_is_refused() -> None:
    w = World()
    p = await w.program()
    euros = h.Accrual("o1", (OrderLine("", 1, UNIT),), "EUR", UNIT, "k")
    with pytest.raises(InvalidArgument) as info:
        await h.accrue(w.deps, p.program_id, "c1", euros)
    assert info.value.reason == "CURRENCY_MISMATCH"
    assert info.value.violations[0][0] == "order.total.currency"


async def test_pending_points_are_not_spendable_until_the_return_window_ends() -> None:
    w = World()
    p = await w.program(welcome_points=0, pending_days=14)
    out = await h.accrue(w.deps, p.program_id, "c1", order("o1", ("", 1, 100 * UNIT)))
    assert (out.account.balance, out.account.pending) == (0, 100)
    with pytest.raises(FailedPrecondition) as info:
        await h.redeem(w.deps, p.program_id, "c1", 10, "", "r1")
    assert info.value.reason == "INSUFFICIENT_POINTS"
    w.clock.advance(14 * DAY)
    spent = await h.redeem(w.deps, p.program_id, "c1", 10, "", "r1")
    assert (spent.account.balance, spent.account.pending) == (90, 0)


async def test_spends_take_the_earliest_expiring_points_first() -> None:
    w = World()
    p = await w.program(welcome_points=0, expiry_days=30)
    await h.accrue(w.deps, p.program_id, "c1", order("o1", ("", 1, 10 * UNIT)))
    w.clock.advance(20 * DAY)
    await h.accrue(w.deps, p.program_id, "c1", order("o2", ("", 1, 10 * UNIT)))
    await h.redeem(w.deps, p.program_id, "c1", 8, "", "r1")
    # The first order's 10 would expire in 10 days: 8 of them were spent, 2 are left.
    view = await h.get_account(w.deps, p.program_id, "c1")
    assert (view.balance, view.expiring_soon) == (12, 12)
    w.clock.advance(11 * DAY)
    view = await h.get_account(w.deps, p.program_id, "c1")
    assert (view.balance, view.expiring_soon) == (10, 10)  # expired points count nowhere
    await h.redeem(w.deps, p.program_id, "c1", 10, "", "r2")
    types = [m.type for m in w.store.state.ledger]
    assert types == ["ACCRUAL", "ACCRUAL", "REDEMPTION", "EXPIRATION", "REDEMPTION"]
    assert w.ledger_sum(p.program_id, "c1") == 0


async def test_redeeming_more_than_the_balance_is_refused_and_moves_nothing() -> None:
    w = World()
    p = await w.program()
    await h.enroll(w.deps, p.program_id, "c1")
    with pytest.raises(FailedPrecondition) as info:
        await h.redeem(w.deps, p.program_id, "c1", 51, "", "r1")
    assert (info.value.reason, info.value.metadata) == ("INSUFFICIENT_POINTS", {"balance": "50"})
    with pytest.raises(FailedPrecondition):
        await h.redeem(w.deps, p.program_id, "nobody", 1, "", "r2")
    out = await h.redeem(w.deps, p.program_id, "c1", 50, "o9", "r3")
    assert out.movement is not None and out.movement.value_micros == 50 * 10_000
    assert out.account.balance == 0


async def test_concurrent_redemptions_never_overdraw() -> None:
    w = World()
    p = await w.program(welcome_points=100)
    await h.enroll(w.deps, p.program_id, "c1")
    results = await asyncio.gather(
        *(h.redeem(w.deps, p.program_id, "c1", 3, "", f"r{i}") for i in range(50)),
        return_exceptions=True,
    )
    assert sum(not isinstance(r, BaseException) for r in results) == 33
    assert (await h.get_account(w.deps, p.program_id, "c1")).balance == 1
    assert w.ledger_sum(p.program_id, "c1") == 1


async def test_reversing_a_spent_credit_takes_back_what_is_left() -> None:
    w = World()
    p = await w.program(welcome_points=0)
    accrued = await h.accrue(w.deps, p.program_id, "c1", order("o1", ("", 1, 100 * UNIT)))
    assert accrued.movement is not None
    await h.redeem(w.deps, p.program_id, "c1", 70, "", "r1")
    part = await h.reverse(w.deps, accrued.movement.transaction_id, 20, "returned", "v1")
    assert part.movement is not None
    assert (part.movement.points, part.movement.unrecovered) == (-20, 0)
    rest = await h.reverse(w.deps, accrued.movement.transaction_id, 0, "cancelled", "v2")
    assert rest.movement is not None
    assert (rest.movement.points, rest.movement.unrecovered) == (-10, 70)
    assert rest.account.balance == 0 and rest.account.lifetime_points == 0
    with pytest.raises(FailedPrecondition) as info:
        await h.reverse(w.deps, accrued.movement.transaction_id, 0, "", "v3")
    assert info.value.reason == "NOT_REVERSIBLE"
    again = await h.reverse(w.deps, accrued.movement.transaction_id, 20, "returned", "v1")
    assert again.movement == part.movement


async def test_reversing_a_redemption_gives_the_points_back() -> None:
    w = World()
    p = await w.program()
    await h.enroll(w.deps, p.program_id, "c1")
    spent = await h.redeem(w.deps, p.program_id, "c1", 30, "", "r1")
    assert spent.movement is not None
    back = await h.reverse(w.deps, spent.movement.transaction_id, 0, "order cancelled", "v1")
    assert back.movement is not None and back.movement.points == 30
    assert back.account.balance == 50
    with pytest.raises(FailedPrecondition) as info:
        await h.reverse(w.deps, back.movement.transaction_id, 0, "", "v2")
    assert info.value.reason == "NOT_REVERSIBLE"
    with pytest.raises(NotFound):
        await h.reverse(w.deps, "missing", 0, "", "v3")


async def test_tiers_count_points_earned_over_the_rolling_period() -> None:
    w = World()
    tiers = (Tier("silver", 100, 0, 0), Tier("gold", 300, 5, 2.0))
    p = await w.program(welcome_points=0, tiers=tiers, tier_period_days=30)
    out = await h.accrue(w.deps, p.program_id, "c1", order("o1", ("", 1, 300 * UNIT)))
    assert out.account.standing is not None
    assert (out.account.standing.name, out.account.standing.points) == ("gold", 300)
    doubled = await h.accrue(w.deps, p.program_id, "c1", order("o2", ("", 1, 10 * UNIT)))
    assert doubled.movement is not None and doubled.movement.points == 20  # gold earns x2
    w.clock.advance(31 * DAY)
    view = await h.get_account(w.deps, p.program_id, "c1")
    assert view.standing is not None
    assert (view.standing.name, view.standing.next_tier, view.standing.points_to_next) == (
        "",
        tiers[0],
        100,
    )


async def test_updating_a_program_changes_only_the_masked_fields() -> None:
    w = World()
    p = await w.program()
    patch = h.ProgramPatch({"welcome_points": 5, "point_value_micros": 20_000}, "GBP")
    updated = await h.update_program(w.deps, p.program_id, patch)
    assert (updated.welcome_points, updated.point_value_micros, updated.name) == (5, 20_000, "Club")
    with pytest.raises(InvalidArgument) as info:
        await h.update_program(w.deps, p.program_id, h.ProgramPatch({}, "EUR"))
    assert info.value.reason == "CURRENCY_MISMATCH"
    assert w.store.state.published == [f"program:{p.program_id}"] * 2


async def test_transactions_page_newest_first() -> None:
    w = World()
    p = await w.program(welcome_points=0)
    for i in range(5):
        await h.accrue(w.deps, p.program_id, "c1", order(f"o{i}", ("", 1, UNIT)))
    first, after = await h.list_transactions(w.deps, p.program_id, "c1", None, 3)
    rest, end = await h.list_transactions(w.deps, p.program_id, "c1", after, 3)
    assert [m.order_id for m in first + rest] == ["o4", "o3", "o2", "o1", "o0"]
    assert end is None


async def test_an_erased_customer_loses_every_account_and_cannot_earn_again() -> None:
    w = World()
    p, q = await w.program(), await w.program()
    await h.enroll(w.deps, p.program_id, "c1")
    await h.enroll(w.deps, q.program_id, "c1")
    await h.enroll(w.deps, p.program_id, "c2")
    await h.erase_customer(w.deps, "c1")
    await h.erase_customer(w.deps, "c1")  # a redelivery changes nothing
    assert not (await h.get_account(w.deps, q.program_id, "c1")).enrolled
    assert {m.customer_id for m in w.store.state.ledger} == {"c2"}
    with pytest.raises(NotFound) as info:
        await h.accrue(w.deps, p.program_id, "c1", order("o1", ("", 1, UNIT)))
    assert info.value.reason == "CUSTOMER_NOT_FOUND"


async def test_the_expiry_sweep_records_expired_points_of_idle_accounts() -> None:
    w = World()
    p = await w.program(welcome_points=0, expiry_days=10)
    await h.accrue(w.deps, p.program_id, "c1", order("o1", ("", 1, 7 * UNIT)))
    await h.accrue(w.deps, p.program_id, "c2", order("o2", ("", 1, 5 * UNIT)))
    assert await h.expire_due(w.deps) == 0
    w.clock.advance(10 * DAY)
    assert await h.expire_due(w.deps) == 2
    assert await h.expire_due(w.deps) == 0
    expired = [(m.customer_id, m.points) for m in w.store.state.ledger if m.type == "EXPIRATION"]
    assert sorted(expired) == [("c1", -7), ("c2", -5)]
    assert (w.ledger_sum(p.program_id, "c1"), w.ledger_sum(p.program_id, "c2")) == (0, 0)


async def test_the_highest_matching_segment_multiplier_applies() -> None:
    w = World()
    p = await w.program(welcome_points=0, segment_multipliers={"vip": 2.0, "regular": 1.5})
    w.signals.members["c1"] = {"vip", "regular"}
    w.signals.members["c2"] = {"regular"}
    vip = await h.accrue(w.deps, p.program_id, "c1", order("o1", ("", 1, 10 * UNIT)))
    regular = await h.accrue(w.deps, p.program_id, "c2", order("o2", ("", 1, 10 * UNIT)))
    nobody = await h.accrue(w.deps, p.program_id, "c3", order("o3", ("", 1, 10 * UNIT)))
    assert [o.movement.points for o in (vip, regular, nobody) if o.movement] == [20, 15, 10]
    assert vip.movement is not None and vip.movement.description == "segment multiplier 2"


async def test_without_segmentation_an_accrual_earns_the_base_rate_and_says_so() -> None:
    w = World()
    p = await w.program(welcome_points=0, segment_multipliers={"vip": 3.0})
    w.signals.members["c1"] = {"vip"}
    w.signals.down = True
    out = await h.accrue(w.deps, p.program_id, "c1", order("o1", ("", 1, 10 * UNIT)))
    assert out.movement is not None and out.movement.points == 10
    assert "segmentation did not answer" in out.movement.description
    # a program without segment multipliers does not ask at all
    plain = await w.program(welcome_points=0)
    calls = w.signals.calls
    await h.accrue(w.deps, plain.program_id, "c1", order("o2", ("", 1, 10 * UNIT)))
    assert w.signals.calls == calls


async def test_pending_points_becoming_spendable_are_recorded_once() -> None:
    w = World()
    p = await w.program(welcome_points=0, pending_days=14)
    await h.accrue(w.deps, p.program_id, "c1", order("o1", ("", 1, 30 * UNIT)))
    await h.accrue(w.deps, p.program_id, "c2", order("o2", ("", 1, 20 * UNIT)))
    w.clock.advance(15 * DAY)
    # the next write to the account records it before its own movement
    spent = await h.redeem(w.deps, p.program_id, "c1", 5, "", "r1")
    kinds = [(m.type, m.points, m.balance_after, m.pending_after) for m in w.store.state.ledger]
    assert kinds[-2:] == [("ACTIVATION", 0, 30, 0), ("REDEMPTION", -5, 25, 0)]
    assert spent.account.balance == 25
    # the sweep records it for accounts nobody writes to, once
    assert await h.expire_due(w.deps) == 1
    assert await h.expire_due(w.deps) == 0
    activations = [m for m in w.store.state.ledger if m.type == "ACTIVATION"]
    assert [(m.customer_id, m.description.split()[0]) for m in activations] == [
        ("c1", "30"),
        ("c2", "20"),
    ]
    assert w.ledger_sum(p.program_id, "c2") == 20


async def test_adjustments_credit_and_debit_but_never_below_zero() -> None:
    w = World()
    p = await w.program(welcome_points=10)
    with pytest.raises(NotFound) as missing:
        await h.adjust_points(w.deps, p.program_id, "c1", 5, "goodwill", "a0")
    assert missing.value.reason == "ACCOUNT_NOT_FOUND"
    await h.enroll(w.deps, p.program_id, "c1")
    up = await h.adjust_points(w.deps, p.program_id, "c1", 5, "goodwill", "a1")
    assert up.movement is not None and (up.movement.type, up.account.balance) == ("ADJUSTMENT", 15)
    again = await h.adjust_points(w.deps, p.program_id, "c1", 5, "goodwill", "a1")
    assert again.movement == up.movement and again.account.balance == 15
    with pytest.raises(FailedPrecondition) as reused:
        await h.adjust_points(w.deps, p.program_id, "c1", 6, "goodwill", "a1")
    assert reused.value.reason == "IDEMPOTENCY_KEY_REUSED"
    with pytest.raises(FailedPrecondition) as short:
        await h.adjust_points(w.deps, p.program_id, "c1", -16, "fraud", "a2")
    assert short.value.reason == "INSUFFICIENT_POINTS"
    down = await h.adjust_points(w.deps, p.program_id, "c1", -15, "fraud", "a3")
    assert down.movement is not None and down.movement.description == "fraud"
    assert down.account.balance == 0 and w.ledger_sum(p.program_id, "c1") == 0
